"""``zest bench STUDY``: the papers' studies on the demo zoo."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..sources.mnist import load_mnist
from ..studies.rules import DEFAULT_METHODS
from .inputs import EXIT_OK, cache_from_request, config_from_request, named_as_flags
from .requests import BenchRequest

BUDGET_METHODS = ("zest-cosine", "modeldiff", "sac", "akh")

# Parameters of the studies that a flag gives, for error messages in the user's terms.
STUDY_FLAGS = {"n": "--n", "k": "--k", "repeats": "--repeats", "num_images": "--sac-images"}


def cmd_bench(request: BenchRequest) -> int:
    """``zest bench STUDY``: one of the papers' studies on the demo zoo, written as JSON + Plotly HTML."""
    check_int("--ref-seed", request.ref_seed, minimum=0)  # numpy's own error for a negative seed names nothing
    with named_as_flags(STUDY_FLAGS):
        return _run_study(request)


def _run_study(request: BenchRequest) -> int:
    # Imported here so that the other commands start without Plotly.
    from ..figures import (ablation_figure, budget_figure, budget_relations_figure, calibration_figures, epochs_figure,
                           refsize_figure, unlearning_figure)
    from ..studies import epochs_study, refsize_study_on_zoo, summary_markdown, unlearning_study
    from ..studies.ablation import ablation_study
    from ..studies.budget import budget_study
    from ..studies.markdown import ablation_markdown, budget_markdown, calibration_markdown
    from ..studies.zoo_studies import calibrated_reuse_study
    from ..figures.writers import write_calibration, write_html, write_study
    from ..zoo import load_zoo

    built = load_zoo(request.zoo)
    config = config_from_request(request)
    cache = cache_from_request(request)
    out = Path(request.out)
    refset = load_mnist(request.n, split="test", seed=request.ref_seed)
    with ProgressBar(f"bench {request.study}: ") as bar:
        if request.study == "reuse":
            result = calibrated_reuse_study(built, refset, config, methods=request.methods or list(DEFAULT_METHODS),
                                            align=request.align,
                                            alpha=request.alpha, sac_options={"num_images": request.sac_images},
                                            # AKH asks about the reference's mistakes among the 1,000
                                            # held-out digits the auditor holds, labelled.
                                            akh_options={"pool": load_mnist(None, split="test")},
                                            progress=bar, cache=cache)
            paths = write_calibration(result, calibration_figures(result.to_dict()), out)
            print(calibration_markdown(result))
        elif request.study == "budget":
            data = budget_study(built, refset, config, methods=_budget_methods(request.methods), align=request.align,
                                alpha=request.alpha, cache=cache, progress=bar, akh_pool=load_mnist(None, split="test"))
            paths = write_study(data, budget_figure(data), out, "budget")
            paths["relations"] = write_html(budget_relations_figure(data), out / "budget_relations.html")
        elif request.study == "ablation":
            data = ablation_study(built, n=request.n, num_samples=config.num_samples, base=config, align=request.align,
                                  ref_seed=request.ref_seed, alpha=request.alpha, cache=cache, progress=bar)
            paths = write_study(data, ablation_figure(data), out, "ablation")
        elif request.study == "epochs":
            data = epochs_study(built, refset, config, k=request.k, progress=bar, cache=cache)
            paths = write_study(data, epochs_figure(data), out, "epochs")
        elif request.study == "refsize":
            data = refsize_study_on_zoo(built, refset, config, repeats=request.repeats, progress=bar, cache=cache)
            paths = write_study(data, refsize_figure(data), out, "refsize")
        else:
            data = unlearning_study(built, config, progress=bar, cache=cache)
            paths = write_study(data, unlearning_figure(data), out, "unlearning")
    if request.study == "ablation":
        print(ablation_markdown(data))
    elif request.study == "budget":
        print(budget_markdown(data))
    elif request.study != "reuse":
        print(summary_markdown(data))
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return EXIT_OK


def _budget_methods(methods: Sequence[str] | None) -> list[str]:
    """The budget study's methods among --methods (default: all four): Zest (cosine), ModelDiff, SAC and AKH."""
    chosen = [m for m in methods or () if m in BUDGET_METHODS]
    return chosen or list(BUDGET_METHODS)

