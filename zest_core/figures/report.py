"""Why the verdict, drawn, and the audit report: one self-contained HTML file to hand over.

:func:`evidence_figure` draws the images that carry the most evidence (:func:`zest_core.explain.evidence_views`):
the reference image with its super-pixels, then the LIME weights of the reference model, the suspect
and the closest unrelated model, on one colour scale. :func:`audit_report_html` writes the report of
an audit record (:func:`zest_core.studies.audit_record`): the verdict, every method's p-value, α and
detection threshold, the null and why it matches, the evidence, the fingerprints, the config, the
commitment and the command that reproduces it. Plotly's JavaScript is inlined and every image is a
data URI, so the file requests nothing when opened offline; the record itself is embedded as JSON for
``zest verify``.
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from ..explain import EvidenceView, boundary_image
from ..studies.handover import RECORD_ID
from ._style import DIVERGING, TEMPLATE
from .calibration import audit_null_figure
from .images import png_image
from .weights import overlay_weights

SCALE = 4  # 28×28 digits drawn 4× so that the super-pixel boundaries are thin


def evidence_figure(images: Sequence[np.ndarray], segments: Sequence[np.ndarray], views: Sequence[EvidenceView], *,
                    names: tuple[str, str] = ("reference", "suspect")) -> go.Figure:
    """One row per image: the image with its super-pixels, then P's, S's and the closest unrelated model's weights.

    Parameters
    ----------
    images, segments : sequences indexed by reference image
        The reference set's images (uint8) and the signature's super-pixels.
    views : sequence of EvidenceView
    names : (str, str)
        What to call the reference model and the suspect.
    """
    rows = max(1, len(views))
    titles = []
    for view in views:
        titles += [f"image #{view.index} · z = {view.score:.2f}", f"{names[0]} · class {view.reference_class}",
                   f"{names[1]} · d = {view.distances[0]:.3g}", f"{view.unrelated} · d = {view.distances[1]:.3g}"]
    fig = make_subplots(rows=rows, cols=4, subplot_titles=titles or None, horizontal_spacing=0.02,
                        vertical_spacing=min(0.08, 0.4 / rows))
    limit = max((view.limit for view in views), default=1.0)
    for r, view in enumerate(views, start=1):
        image = np.asarray(images[view.index])
        fig.add_trace(png_image(boundary_image(image, segments[view.index], scale=SCALE), hoverinfo="skip",
                                name="super-pixels"), row=r, col=1)
        for c, (values, who) in enumerate(zip(view.maps, (names[0], names[1], view.unrelated)), start=2):
            big = np.kron(values, np.ones((SCALE, SCALE)))
            shown = image.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
            overlay_weights(fig, shown, big, row=r, col=c, coloraxis="coloraxis", name=who, opacity=0.75)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, constrain="domain")
    for r in range(1, rows + 1):
        for c in range(1, 5):
            axis = (r - 1) * 4 + c
            fig.update_yaxes(scaleanchor=f"x{'' if axis == 1 else axis}", row=r, col=c)
    fig.update_layout(
        template=TEMPLATE,
        coloraxis={"colorscale": DIVERGING, "cmin": -limit, "cmax": limit, "cmid": 0,
                   "colorbar": {"title": {"text": "weight"}, "thickness": 12, "len": 0.8}},
        title="Where the suspect kept the reference's reasoning and an independent model did not",
        height=60 + 220 * rows, width=900, margin={"l": 5, "r": 60, "t": 80, "b": 5},
    )
    fig.update_annotations(font_size=11)
    return fig


def method_null_figures(audit: Mapping[str, Any], suspect: str = "suspect") -> list[go.Figure]:
    """One null figure per method of an audit (its own distances and threshold), the suspect named ``suspect``."""
    null_models = audit["null"]["models"]
    figures = []
    for name, decision in audit["methods"].items():
        if not decision.get("null_distances"):
            continue
        one = {**decision, "null": {"distances": dict(zip(null_models, decision["null_distances"]))}}
        figure = audit_null_figure(one, suspect=suspect)
        figure.update_layout(title=f"{name}: {figure.layout.title.text}", width=900)
        figures.append(figure)
    return figures


def audit_report_html(record: Mapping[str, Any], figures: Sequence[go.Figure]) -> str:
    """The audit report: one HTML file with every figure, its data, and the record embedded for ``zest verify``.

    Parameters
    ----------
    record : mapping
        :func:`zest_core.studies.audit_record`'s output.
    figures : sequence of go.Figure
        The null figure(s) and the evidence figure, drawn in this order.
    """
    audit = record["audit"]
    e = html.escape
    parts = [f"<h1>Zest audit: {e(audit['verdict'])}</h1>", _verdict_section(record), _methods_table(audit),
             _null_section(record)]
    for figure in figures:
        figure.update_layout(width=figure.layout.width or 900)
        parts.append('<div class="figure">' + figure.to_html(
            full_html=False, include_plotlyjs=False, include_mathjax=False,
            config={"displayModeBar": False, "responsive": False}) + "</div>")
    evidence = record.get("evidence")
    if evidence:
        parts.append(_evidence_table(evidence))
    parts += [_provenance_section(record)]
    payload = json.dumps(record, indent=1, sort_keys=True).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Zest audit: {e(record['models']['reference']['spec'])} vs {e(record['models']['suspect']['spec'])}"
        f"</title><style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>"
        + "\n".join(parts)
        + f'<script type="application/json" id="{RECORD_ID}">{payload}</script></body></html>\n'
    )


def _verdict_section(record: Mapping[str, Any]) -> str:
    audit, e = record["audit"], html.escape
    p = "n/a" if audit["p_value"] is None else f"{audit['p_value']:.3g}"
    meaning = {
        "related": "The suspect is closer to the reference model than models trained independently for its task are: "
                   "the test rejects independence at level α.",
        "not detected": "The test did not reject: this is <b>not</b> evidence that the models are unrelated. A derived "
                        "model can sit as far from its source as independent ones; each method's detection threshold "
                        "below says what it could have detected.",
        "inconclusive": "There is no calibrated verdict: the null cannot support a test (see why below).",
    }.get(audit["verdict"], "")
    return (f'<section class="verdict {e(audit["verdict"].replace(" ", "-"))}"><p class="big">Verdict: '
            f'<b>{e(audit["verdict"])}</b> at α = {audit["alpha"]:g} (p = {p}; method: {e(audit["method"])})</p>'
            f"<p>{meaning}</p><p>Why: {e(audit['reason'])}</p>"
            f"<p>Reference model <code>{e(record['models']['reference']['spec'])}</code>, suspect "
            f"<code>{e(record['models']['suspect']['spec'])}</code>.</p></section>")


def _methods_table(audit: Mapping[str, Any]) -> str:
    e = html.escape
    adjusted = (audit.get("combination") or {}).get("adjusted", {})
    rows = []
    for name, d in audit["methods"].items():
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in (
            e(name), e(d["verdict"]), _num(d["distance"]), _num(d["p_value"]), _num(adjusted.get(name)),
            _num(d.get("detection_threshold")))) + "</tr>")
    return ("<h2>Every method</h2><table><tr><th>method</th><th>verdict</th><th>distance</th><th>p-value</th>"
            "<th>Holm-adjusted p</th><th>power bound: related below</th></tr>" + "".join(rows) + "</table>"
            "<p class=\"note\">The power bound is the largest distance each test calls related at α against this "
            "null: a derived model further than it cannot be detected by that method here.</p>")


def _null_section(record: Mapping[str, Any]) -> str:
    e = html.escape
    null = record["audit"]["null"]
    first = next(iter(record["audit"]["methods"].values()), {})
    distances = dict(zip(null["models"], first.get("null_distances") or []))
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(str(cell))}</td>" for cell in (
            m["name"], m.get("arch") or "?", m.get("task") or "?", m.get("classes") or "?",
            _num(distances.get(m["name"])), m["fingerprint"] or "none"))
        + "</tr>" for m in record["models"]["unrelated"])
    warnings = "".join(f"<p class=\"note\">⚠ {e(w)}</p>" for w in null.get("warnings", []))
    return (f"<h2>The matched null ({len(record['models']['unrelated'])} models)</h2><p>Why these models: "
            f"{e(null['reason'])}</p>{warnings}<table><tr><th>model</th><th>architecture</th><th>task</th>"
            f"<th>classes</th><th>distance to the reference ({e(next(iter(record['audit']['methods']), ''))})</th>"
            f"<th>SHA-256</th></tr>{rows}</table>")


def _evidence_table(evidence: Mapping[str, Any]) -> str:
    e = html.escape
    images = sorted((i for i in evidence["images"] if i["score"] is not None), key=lambda i: -i["score"])
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in (
        i["index"], _num(i["score"]), _num(i["suspect_distance"]), f"{i['closer_nulls']} of {len(i['null_distances'])}",
        e(i["closest_unrelated"]))) + "</tr>" for i in images[:10])
    return (f"<h2>Why: per-image evidence against the null</h2><p class=\"note\"><b>{e(evidence['note'])}</b></p>"
            f"<p>Statistic: {e(evidence['statistic'])} ({e(evidence['metric'])} on each image's local models).</p>"
            "<table><tr><th>image</th><th>z</th><th>d(P, S) on the image</th><th>unrelated models at least as close"
            f"</th><th>closest unrelated</th></tr>{rows}</table>")


def _provenance_section(record: Mapping[str, Any]) -> str:
    e = html.escape
    models = record["models"]
    refset = record["refset"]
    commitment = record.get("commitment")
    committed = ("none: the queries were not committed to before the audit" if not commitment else
                 f"<code>{e(commitment['digest'])}</code> (checked before any suspect query)")
    digests = "".join(f"<li>{e(k)}: <code>{e(v)}</code></li>" for k, v in record["audit"].get("query_digests", {}).items())
    config = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in sorted(record["config"].items()))
    queries = record["audit"]["queries"].get("total")
    return (
        "<h2>What was compared, and how to check it</h2><table>"
        f"<tr><th>reference model</th><td><code>{e(models['reference']['spec'])}</code><br>SHA-256 "
        f"<code>{e(str(models['reference']['fingerprint']))}</code></td></tr>"
        f"<tr><th>suspect</th><td><code>{e(models['suspect']['spec'])}</code><br>SHA-256 "
        f"<code>{e(str(models['suspect']['fingerprint']))}</code></td></tr>"
        f"<tr><th>reference set</th><td>{e(refset['provenance'])}, {refset['size']} images<br>fingerprint "
        f"<code>{e(refset['fingerprint'])}</code></td></tr>"
        f"<tr><th>queries</th><td>{e(json.dumps(queries))} in all (every model); per method, the SHA-256 of the "
        f"images sent to every suspect:<ul>{digests}</ul></td></tr>"
        f"<tr><th>commitment</th><td>{committed}</td></tr>"
        f"<tr><th>zest-explorer</th><td>{e(record['zest_version'])}</td></tr>"
        f"<tr><th>made (UTC)</th><td>{e(record['created_utc'])}</td></tr>"
        f"<tr><th>reproduce</th><td><code>{e(record['command_line'])}</code><br>in <code>"
        f"{e(record['working_directory'])}</code>; check with <code>zest verify REPORT</code></td></tr></table>"
        f"<h3>Config</h3><table>{config}</table>"
        f"<p class=\"note\">Record digest (SHA-256 of the embedded record): <code>{e(record['digest'])}</code></p>"
    )


def _num(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.4g}"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:960px;margin:2em auto;color:#222;
line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}code{font-size:.85em;word-break:break-all}
.verdict{padding:.6em 1em;border-radius:6px;background:#eef3fb}.verdict.related{background:#fbeeee}
.big{font-size:1.2em}.note{color:#555;font-size:.9em}.figure{margin:1em 0}
@media print{body{max-width:none;margin:0}section,table,.figure{page-break-inside:avoid}h2{page-break-after:avoid}}
"""
