"""``zest demo``, ``zest zoo build`` and ``zest zoo list``: the small MNIST models the demos and studies use."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..pipeline.config import ZestConfig
from ..zoo.demo import DEMO_NUM_SAMPLES, run_demo
from .inputs import EXIT_OK, cache_from_args, config_from_args, named_as_flags


def cmd_demo(args: argparse.Namespace) -> int:
    """``zest demo``: train small MNIST models and show what Zest says about them."""
    config = config_from_args(args, ZestConfig(num_samples=DEMO_NUM_SAMPLES))
    with named_as_flags({"n": "--n", "epochs": "--epochs"}):
        run_demo(epochs=args.epochs, n=args.n, config=config, cache=cache_from_args(args))
    return EXIT_OK


def cmd_zoo_build(args: argparse.Namespace) -> int:
    """``zest zoo build``: train the demo zoo (about 2-5 minutes on 2 CPU cores) with a progress bar."""
    from ..zoo import MANIFEST_NAME, ZooConfig, build_zoo, default_zoo_dir, extend_zoo

    check_int("--seed", args.seed, minimum=0)  # numpy's own error for a negative seed names nothing
    config = ZooConfig.tiny(seed=args.seed) if args.tiny else ZooConfig(seed=args.seed)
    target = Path(args.out) if args.out else default_zoo_dir()
    print(f"Building the demo zoo in {target} ({'tiny' if args.tiny else 'full'} configuration, seed {args.seed})",
          file=sys.stderr)
    with ProgressBar("zoo: ") as bar:
        built = (extend_zoo if args.extend else build_zoo)(target, config, progress=bar)
    size = sum(f.stat().st_size for f in built.root.rglob("*") if f.is_file())
    print(f"{len(built.entries)} models, {size / 2**20:.1f} MiB, built in {built.info['build']['seconds']:.0f} s: "
          f"{built.root / MANIFEST_NAME}"
          + (f" (extended by {len(built.info['build']['extension']['added'])} models in "
             f"{built.info['build']['extension']['seconds']:.0f} s)" if args.extend else ""))
    return EXIT_OK


def cmd_zoo_list(args: argparse.Namespace) -> int:
    """``zest zoo list``: the zoo's models, their relations and held-out accuracies."""
    from ..zoo import load_zoo

    built = load_zoo(args.root)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in built.entries.values()], indent=1))
        return EXIT_OK
    print(f"{'name':<34} {'arch':<10} {'relation':<18} {'source':<9} {'task':<6} {'accuracy':>8}  checkpoints")
    for entry in built.entries.values():
        epochs = ",".join(map(str, entry.checkpoints)) or "-"
        print(f"{entry.name:<34} {entry.arch:<10} {entry.relation:<18} {entry.source or '-':<9} {entry.task:<6} "
              f"{100 * entry.accuracy:7.2f}%  {epochs}")
    return EXIT_OK
