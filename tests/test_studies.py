"""The papers' studies on a tiny zoo: the numbers agree with direct computations, and the commands write their files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zest_core import ZestConfig, compute_signature, load_mnist, zest_distance
from zest_core import figures, studies
from zest_core.cli import main
from zest_core.zoo import ZooConfig, build_zoo


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_zoo(tmp_path_factory.mktemp("zoo") / "tiny", ZooConfig.tiny(epochs=3))


@pytest.fixture(scope="module")
def setup():
    return load_mnist(8, split="test", seed=0), ZestConfig(num_samples=60, batch_size=120, device="cpu")


def test_epoch_curves_match_direct_distances(tiny, setup):
    refset, config = setup
    result = studies.epochs_study(tiny, refset, config, k=1, cache=False)
    assert set(result["related"]) == {"cnn-s0", "lenet-s0"}
    assert set(result["unrelated"]) == {"cnn-s0 vs cnn-u1", "lenet-s0 vs lenet-u1"}
    curve = result["related"]["cnn-s0"]
    assert curve["epochs"] == [1, 2]
    first, second = (compute_signature(tiny.load(f"cnn-s0@epoch{e}"), refset, config, cache=False) for e in (1, 2))
    assert curve["distance"][0] == pytest.approx(zest_distance(first, second), abs=1e-12)
    unrelated = compute_signature(tiny.load("cnn-u1@epoch1"), refset, config, cache=False)
    assert result["unrelated"]["cnn-s0 vs cnn-u1"]["distance"][0] == pytest.approx(zest_distance(first, unrelated), abs=1e-12)
    summary = result["unrelated_summary"]
    assert summary["epochs"] == [1, 2, 3] and summary["count"] == 2
    both = [result["unrelated"][k]["distance"][0] for k in result["unrelated"]]
    assert summary["mean"][0] == pytest.approx(np.mean(both)) and summary["std"][0] == pytest.approx(np.std(both))
    figure = figures.epochs_figure(result)
    assert [t.name for t in figure.data if t.error_y.array is not None] == [
        "related: epoch t vs t+1 (mean ± std)", "unrelated: a_t vs u_t (mean ± std)"]


def test_unlearning_study_uses_the_forget_set_and_brackets_each_distance(tiny, setup):
    _, config = setup
    result = studies.unlearning_study(tiny, config, cache=False)
    assert result["refset"].endswith("unlearning forget set")
    row = result["rows"][0]
    assert row["source"] == "cnn-s0" and row["exact"]["model"] == "cnn-s0.unlearn-exact"
    assert "unrelated cnn-u1" in row
    for key in ("exact", "approx", "unrelated cnn-u1"):
        low, high = row[key]["ci95"]
        assert low <= row[key]["distance"] <= high
    forget = tiny.forget_set()
    a = compute_signature(tiny.load("cnn-s0"), forget, config, cache=False)
    b = compute_signature(tiny.load("cnn-s0.unlearn-approx"), forget, config, cache=False)
    assert row["approx"]["distance"] == pytest.approx(zest_distance(a, b), abs=1e-12)
    assert "cnn-s0" in studies.summary_markdown(result)
    assert len(figures.unlearning_figure(result).data) == 3


def test_refsize_study_spreads_shrink_with_more_images(tiny, setup):
    refset, config = setup
    result = studies.refsize_study_on_zoo(tiny, refset, config, related=("cnn-s0", "cnn-s0.prune50"),
                                          unrelated=("cnn-s0", "cnn-u1"), repeats=6, cache=False)
    sizes, std = result["unrelated"]["sizes"], result["unrelated"]["std"]
    assert sizes[0] == 1 and sizes[-1] == 8
    assert std[-1] <= std[0]
    assert len(figures.refsize_figure(result).data) == 2


def test_bench_command_writes_json_html_and_markdown(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--zoo", str(tiny.root), "--n", "6", "--samples", "40", "--no-cache", "--out", str(out)]
    assert main(["bench", "reuse", "--methods", "zest-cosine", "agreement", *args]) == 0
    printed = capsys.readouterr().out
    assert "steal" in printed and "transfer-10" in printed and "false-positive" in printed
    report = json.loads((out / "reuse.json").read_text())
    assert {p["relation"] for p in report["related"]} >= {"steal", "permuted", "unlearn-approx"}
    assert "plotly" in (out / "reuse.html").read_text()[:20000].lower()
    steal = next(p for p in report["related"] if p["suspect"] == "cnn-s0.steal-lenet" and p["method"] == "zest-cosine")
    assert sorted(steal["null"]) == ["lenet-s0", "lenet-u1"]  # trained from scratch for its task, the thief's architecture
    # Every model trained from scratch played the suspect against every other one outside its lineage.
    suspects = {(n["reference"], n["suspect"]) for n in report["negatives"]}
    assert ("cnn-s0", "cnn-u1") in suspects and ("cnn-u1", "cnn-s0") in suspects
    assert all(n["suspect"] not in n["null"] for n in report["negatives"])
    assert main(["bench", "unlearning", *args]) == 0
    assert json.loads((out / "unlearning.json").read_text())["study"] == "unlearning"
    assert main(["bench", "epochs", "--zoo", str(tmp_path / "missing")]) == 2
    assert "no demo zoo here" in capsys.readouterr().err


def test_write_study_stores_the_figure_it_is_given(tmp_path):
    """The writer stores the figure it is given (anything with Plotly's to_html) as is (zest_core.figures.writers)."""

    class Figure:
        def to_html(self, *, include_plotlyjs, full_html):
            assert include_plotlyjs is True and full_html is True  # self-contained, so it opens offline
            return "<html>figure</html>"

    result = {"study": "x", "value": np.float32(0.5), "array": np.arange(2)}
    paths = figures.write_study(result, Figure(), tmp_path, "x")
    assert json.loads(paths["json"].read_text()) == {"study": "x", "value": 0.5, "array": [0, 1]}
    assert paths["html"].read_text() == "<html>figure</html>"
    with pytest.raises(TypeError, match="^result: expected JSON values"):
        figures.write_study({"study": "x", "value": object()}, Figure(), tmp_path, "y")
