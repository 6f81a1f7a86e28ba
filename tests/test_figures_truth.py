"""Issue 19: figures that tell the truth: one colour per method, square tiles, readable labels, B named."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from zest_core import figures
from zest_core.explain import WeightMaps

ROOT = Path(__file__).resolve().parents[1]


def test_every_bar_has_the_colour_of_its_legend_entry():
    report = json.loads((ROOT / "assets" / "reuse_report.json").read_text())
    figure = figures.rates_figure(report)
    legend = {trace.legendgroup: trace.marker.color for trace in figure.data if trace.showlegend is not False}
    assert len(set(legend.values())) == len(legend) >= 4  # one colour per method, all different
    for trace in figure.data:
        assert trace.marker.color == legend[trace.legendgroup], trace.name
    roc = figures.roc_figure(report)
    for trace in roc.data:
        method = trace.name.split(" (")[0]
        if method in legend:
            assert trace.line.color == legend[method]


def test_every_tile_of_the_lime_grid_is_square_against_its_own_axis():
    rng = np.random.default_rng(0)
    count = 5  # a 5-class model: the grid the issue found stretched
    maps = WeightMaps(a=rng.normal(size=(count, 28, 28)), b=rng.normal(size=(count, 28, 28)),
                      pairs=np.stack([np.arange(count)] * 2, axis=1), image_index=0, unit_norm=True)
    figure = figures.weight_small_multiples(maps, [str(k) for k in range(count)], [str(k) for k in range(count)])
    layout = figure.to_plotly_json()["layout"]
    for index in range(1, 3 * count + 1):
        suffix = "" if index == 1 else str(index)
        assert layout[f"yaxis{suffix}"]["scaleanchor"] == f"x{suffix}"


def test_the_null_chart_names_b_and_never_overlaps_its_labels():
    null = {f"model-{k}": 0.1 + 0.0001 * k for k in range(12)}  # a dozen nearly equal distances
    audit = {"null": {"distances": null}, "verdict": "related", "distance": 0.02, "p_value": 1e-4, "alpha": 0.05,
             "detection_threshold": 0.07}
    figure = figures.audit_null_figure(audit, suspect="B (cnn-s0.prune20)")
    unrelated, suspect = figure.data
    assert list(unrelated.y) == sorted(null, key=null.get) and len(set(unrelated.y)) == 12  # one row each
    assert suspect.y == ("B (cnn-s0.prune20)",) and suspect.name == "B (cnn-s0.prune20): related"


def test_photographs_with_many_super_pixels_keep_every_number_on_hover():
    segments = np.arange(64).reshape(8, 8).repeat(4, axis=0).repeat(4, axis=1)  # 32×32, 64 super-pixels of 16 px
    segments[0, 0] = 63  # and one label almost without pixels
    centroids = np.array([[np.mean(np.nonzero(segments == k)[0]), np.mean(np.nonzero(segments == k)[1])]
                          for k in range(64)])
    areas = np.bincount(segments.ravel(), minlength=64)
    figure = figures.numbered_segments(np.zeros((128, 128), np.uint8), centroids, scale=4, title="t", areas=areas)
    assert len(figure.data[1].text) == 64
    written = [a.text for a in figure.layout.annotations]
    assert "0" not in written and len(written) == 63  # no room on super-pixel 0: its number is on hover only
    assert all(a.font.size == 10 for a in figure.layout.annotations)


def test_a_small_difference_can_share_a_and_bs_scale():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1, 8, 8))
    maps = WeightMaps(a=a, b=a + 0.01 * rng.normal(size=a.shape), pairs=np.array([[0, 0]]), image_index=0,
                      unit_norm=True)
    own = figures.weight_triptych(np.zeros((8, 8), np.uint8), maps, 0, names=("0", "0"))
    shared = figures.weight_triptych(np.zeros((8, 8), np.uint8), maps, 0, names=("0", "0"),
                                     shared_difference_scale=True)
    assert own.layout.coloraxis2.cmax < 0.1 * own.layout.coloraxis.cmax  # its own scale magnifies it
    assert shared.layout.coloraxis2.cmax == shared.layout.coloraxis.cmax == maps.limit()


def test_the_matching_cost_has_a_colour_bar_not_a_legend_dot():
    cost = np.array([[0.1, 0.9], [0.8, 0.2]])
    figure = figures.bipartite(np.array([[0, 0], [1, 1]]), cost, ["a", "b"], ["a", "b"], [True, True], "greedy")
    (dots,) = [t for t in figure.data if t.name == "matching cost"]
    assert dots.marker.showscale and dots.showlegend is False
