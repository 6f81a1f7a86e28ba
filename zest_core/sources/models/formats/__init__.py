"""Model file formats, one module each; :func:`zest_core.sources.models.load.load_file` picks one per file.

- :mod:`.onnx`: ``*.onnx`` files, run by onnxruntime;
- :mod:`.torchscript`: TorchScript archives (``torch.jit.save``);
- :mod:`.torch_save`: ``torch.save`` files: tensors only, or a whole pickled model when trusted;
- :mod:`.state_dict`: ``ARCH:PATH``, a state_dict file and the architecture it fits.

To add a format: a module here with ``load_<format>(path, data, options) -> Classifier`` (``data``
is the file's bytes, read by :func:`zest_core.sources.models.files.read_file`; wrap the model with
:func:`zest_core.sources.models.classifier.wrap_model` and ``fingerprint=sha256(data)``), then one
branch in ``load_file`` that recognises its files.
"""
from .onnx import OnnxRunner, load_onnx
from .state_dict import CHECKPOINT_KEYS, IMAGENET_NORMALIZATION, NATIVE_SIZES, infer_shape, load_architecture
from .torch_save import load_pickled, torch_load
from .torchscript import is_torchscript, load_torchscript

__all__ = [
    "CHECKPOINT_KEYS",
    "IMAGENET_NORMALIZATION",
    "NATIVE_SIZES",
    "OnnxRunner",
    "infer_shape",
    "is_torchscript",
    "load_architecture",
    "load_onnx",
    "load_pickled",
    "load_torchscript",
    "torch_load",
]
