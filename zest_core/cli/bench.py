"""``zest bench STUDY``: the papers' studies on the demo zoo."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._shared.progress import ProgressBar
from ..sources.mnist import load_mnist
from .inputs import EXIT_OK, cache_from_args, config_from_args


def cmd_bench(args: argparse.Namespace) -> int:
    """``zest bench STUDY``: one of the papers' studies on the demo zoo, written as JSON + Plotly HTML."""
    # Imported here so that the other commands start without Plotly.
    from ..figures import epochs_figure, refsize_figure, reuse_figure, unlearning_figure
    from ..studies import (
        epochs_study,
        refsize_study_on_zoo,
        reuse_study,
        summary_markdown,
        unlearning_study,
        write_reuse,
        write_study,
    )
    from ..zoo import load_zoo

    built = load_zoo(args.zoo)
    config = config_from_args(args)
    cache = cache_from_args(args)
    out = Path(args.out)
    refset = load_mnist(args.n, split="test", seed=args.ref_seed)
    with ProgressBar(f"bench {args.study}: ") as bar:
        if args.study == "reuse":
            result = reuse_study(built, refset, config, methods=args.methods, align=args.align,
                                 baseline=args.baseline, progress=bar, cache=cache)
            paths = write_reuse(result, reuse_figure(result), out)
            print(result.to_markdown())
        elif args.study == "epochs":
            data = epochs_study(built, refset, config, k=args.k, progress=bar, cache=cache)
            paths = write_study(data, epochs_figure(data), out, "epochs")
        elif args.study == "refsize":
            data = refsize_study_on_zoo(built, refset, config, repeats=args.repeats, progress=bar, cache=cache)
            paths = write_study(data, refsize_figure(data), out, "refsize")
        else:
            data = unlearning_study(built, config, progress=bar, cache=cache)
            paths = write_study(data, unlearning_figure(data), out, "unlearning")
    if args.study != "reuse":
        print(summary_markdown(data))
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return EXIT_OK
