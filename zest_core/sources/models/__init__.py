"""Model sources: image classifiers from files, endpoints or Python objects, behind one black-box interface.

- :mod:`.classifier`: :class:`Classifier`, the contract every model is reduced to (images in
  [0, 1] in, class scores out), and its checks;
- :mod:`.load`: :func:`load_model`, which dispatches a spec to its source, and
  :func:`register_spec_scheme`, through which higher layers add schemes (``zoo:``);
- :mod:`.formats`: one module per model format (ONNX, TorchScript, ``torch.export``, ``torch.save``,
  safetensors, ``ARCH:PATH`` state_dicts, ``timm:NAME:PATH``, Hugging Face and timm folders); a new
  format goes there;
- :mod:`.files`: reading a model file and hashing it, shared by the formats.

Models behind an HTTP URL live in :mod:`zest_core.sources.endpoint`.
"""
from ...errors import ModelLoadError
from .adapter import adapt_input, convert_images, fit_input
from .classifier import OUTPUTS, Classifier, ModelOptions, ModuleClassifier, Normalization
from .formats import CHECKPOINT_KEYS, IMAGENET_NORMALIZATION, NATIVE_SIZES, OnnxRunner, infer_shape, is_model_folder
from .load import SPEC_SCHEMES, load_file, load_model, register_spec_scheme

__all__ = [
    "CHECKPOINT_KEYS",
    "IMAGENET_NORMALIZATION",
    "NATIVE_SIZES",
    "OUTPUTS",
    "SPEC_SCHEMES",
    "Classifier",
    "ModelLoadError",
    "ModelOptions",
    "ModuleClassifier",
    "Normalization",
    "OnnxRunner",
    "adapt_input",
    "convert_images",
    "fit_input",
    "infer_shape",
    "is_model_folder",
    "load_file",
    "load_model",
    "register_spec_scheme",
]
