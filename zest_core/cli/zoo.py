"""``zest demo``, ``zest zoo build`` and ``zest zoo list``: the small MNIST models the demos and studies use."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .._shared.checks import check_int
from .._shared.progress import ProgressBar
from ..pipeline.config import ZestConfig
from ..zoo.demo import DEMO_NUM_SAMPLES, run_demo
from .inputs import EXIT_OK, cache_from_request, config_from_request, named_as_flags
from .requests import DemoRequest, ZooBuildRequest, ZooListRequest


def cmd_demo(request: DemoRequest) -> int:
    """``zest demo``: train small MNIST models and show what Zest says about them."""
    config = config_from_request(request, ZestConfig(num_samples=DEMO_NUM_SAMPLES))
    with named_as_flags({"n": "--n", "epochs": "--epochs"}):
        run_demo(epochs=request.epochs, n=request.n, config=config, cache=cache_from_request(request))
    return EXIT_OK


def cmd_zoo_build(request: ZooBuildRequest) -> int:
    """``zest zoo build``: train the demo zoo (about 2-5 minutes on 2 CPU cores) with a progress bar."""
    from ..zoo import MANIFEST_NAME, ZooConfig, build_zoo, default_zoo_dir, extend_zoo

    check_int("--seed", request.seed, minimum=0)  # numpy's own error for a negative seed names nothing
    config = ZooConfig.tiny(seed=request.seed) if request.tiny else ZooConfig(seed=request.seed)
    target = Path(request.out) if request.out else default_zoo_dir()
    print(f"Building the demo zoo in {target} ({'tiny' if request.tiny else 'full'} configuration, seed {request.seed})",
          file=sys.stderr)
    with ProgressBar("zoo: ") as bar:
        built = (extend_zoo if request.extend else build_zoo)(target, config, progress=bar)
    size = sum(f.stat().st_size for f in built.root.rglob("*") if f.is_file())
    print(f"{len(built.entries)} models, {size / 2**20:.1f} MiB, built in {built.info['build']['seconds']:.0f} s: "
          f"{built.root / MANIFEST_NAME}"
          + (f" (extended by {len(built.info['build']['extension']['added'])} models in "
             f"{built.info['build']['extension']['seconds']:.0f} s)" if request.extend else ""))
    return EXIT_OK


def cmd_zoo_list(request: ZooListRequest) -> int:
    """``zest zoo list``: the zoo's models, their relations and held-out accuracies."""
    from ..zoo import load_zoo

    built = load_zoo(request.root)
    if request.json:
        print(json.dumps([entry.to_dict() for entry in built.entries.values()], indent=1))
        return EXIT_OK
    print(f"{'name':<34} {'arch':<10} {'relation':<18} {'source':<9} {'task':<6} {'accuracy':>8}  checkpoints")
    for entry in built.entries.values():
        epochs = ",".join(map(str, entry.checkpoints)) or "-"
        print(f"{entry.name:<34} {entry.arch:<10} {entry.relation:<18} {entry.source or '-':<9} {entry.task:<6} "
              f"{100 * entry.accuracy:7.2f}%  {epochs}")
    return EXIT_OK
