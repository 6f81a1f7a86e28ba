"""Model file formats, one module each; :func:`zest_core.sources.models.load.load_file` picks one per file.

- :mod:`.onnx`: ``*.onnx`` files, run by onnxruntime;
- :mod:`.torchscript`: TorchScript archives (``torch.jit.save``);
- :mod:`.torch_save`: ``torch.save`` files: tensors only, or a whole pickled model when trusted;
- :mod:`.torch_export`: ``torch.export`` programs (``.pt2``; they unpickle, so only when trusted);
- :mod:`.safetensors`: ``.safetensors`` weights, header checked, read without pickle;
- :mod:`.state_dict`: ``ARCH:PATH``, a state_dict file (safetensors or ``torch.save``) and the architecture it fits;
- :mod:`.timm_spec`: ``timm:NAME:PATH``, a timm architecture and its weights;
- :mod:`.hf_folder`: Hugging Face image-classification folders and timm model folders.

To add a format: a module here with ``load_<format>(path, data, options) -> Classifier`` (``data``
is the file's bytes, read by :func:`zest_core.sources.models.files.read_file`; wrap the model with
:func:`zest_core.sources.models.classifier.wrap_model` and ``fingerprint=sha256(data)``), then one
branch in ``load_file`` that recognises its files.
"""
from .hf_folder import is_model_folder, load_model_folder
from .onnx import OnnxRunner, load_onnx
from .safetensors import is_safetensors, read_header, read_safetensors
from .state_dict import CHECKPOINT_KEYS, IMAGENET_NORMALIZATION, NATIVE_SIZES, infer_shape, load_architecture
from .timm_spec import build_timm, load_timm
from .torch_export import is_exported_program, load_exported_program
from .torch_save import load_pickled, torch_load
from .torchscript import is_torchscript, load_torchscript

__all__ = [
    "CHECKPOINT_KEYS",
    "IMAGENET_NORMALIZATION",
    "NATIVE_SIZES",
    "OnnxRunner",
    "build_timm",
    "infer_shape",
    "is_exported_program",
    "is_model_folder",
    "is_safetensors",
    "is_torchscript",
    "load_architecture",
    "load_exported_program",
    "load_model_folder",
    "load_onnx",
    "load_pickled",
    "load_timm",
    "load_torchscript",
    "read_header",
    "read_safetensors",
    "torch_load",
]
