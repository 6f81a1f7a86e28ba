"""The demo zoo: training recipes, reused-model operations, the zoo's build and manifest, and the demo.

Importing this package teaches :func:`zest_core.load_model` the ``zoo:NAME[@epochK]`` spec.
"""
from ..sources.models import register_spec_scheme
from . import reuse
from .build import MANIFEST_NAME, ZOO_DIR, Zoo, ZooConfig, ZooEntry, ZooError, build_zoo, default_zoo_dir, load_zoo, load_zoo_model

register_spec_scheme("zoo", load_zoo_model)

__all__ = [
    "MANIFEST_NAME", "ZOO_DIR", "Zoo", "ZooConfig", "ZooEntry", "ZooError", "build_zoo", "default_zoo_dir", "load_zoo", "load_zoo_model", "reuse",
]
