"""Every error zest_core raises on purpose, under one base.

One dialect for every message: ``"<name>: expected <what>, got <value>"``, where ``name`` is the
argument, the file or the spec the user gave. A wrong *type* raises :class:`ZestTypeError`, which is
also a :class:`TypeError`; every other fault is a :class:`ZestError`, which is a :class:`ValueError`,
so callers that catch either built-in keep working.
"""
from __future__ import annotations


class ZestError(ValueError):
    """Base of every error zest_core raises on purpose; its message names the input and the problem."""


class ZestTypeError(ZestError, TypeError):
    """An argument of the wrong type (a :class:`TypeError` too)."""


class ModelLoadError(ZestError):
    """A model spec or file that cannot be loaded; the message starts with the spec or the path."""


class ModelInputError(ZestError):
    """The model could not take the reference images (wrong size or channels)."""


class ModelOutputError(ZestError):
    """The model returned something that is not a finite [batch, classes] score matrix."""


class ModelRuntimeError(ZestError):
    """The model raised an exception of its own on a batch; the message names the model and the batch.

    The model's exception is the ``__cause__``.
    """


class EndpointError(ZestError):
    """A remote model could not be reached, refused a request, or answered outside the protocol."""


class SignatureFileError(ZestError):
    """A signature file is missing pieces, corrupt, or from an incompatible version."""


class IncompatibleSignaturesError(ZestError):
    """Two signatures were computed on different reference sets or with different configs."""


class NotComparableError(ZestError):
    """A method cannot compare these two models (classes that cannot be matched, or no white-box access)."""


class NullError(ZestError):
    """A null that would make a verdict wrong (the suspect in its own null, a duplicate, a mismatched model).

    It is refused, never used; the message names the flag the models came from (``--unrelated``).
    """


class CommitmentError(ZestError):
    """An audit whose queries differ from the ones committed to (``zest audit --commitment``)."""


class ZooError(ZestError):
    """A zoo that is missing, corrupt, or asked for a model it does not have; the message names the file."""


__all__ = [
    "CommitmentError",
    "EndpointError",
    "IncompatibleSignaturesError",
    "ModelInputError",
    "ModelLoadError",
    "ModelOutputError",
    "ModelRuntimeError",
    "NotComparableError",
    "NullError",
    "SignatureFileError",
    "ZestError",
    "ZestTypeError",
    "ZooError",
]
