"""Remote models: a model behind an HTTP endpoint, queried as a black box.

- :mod:`.protocol`: the JSON protocol over HTTP (documented there), its wire format and the
  fingerprint's probe images;
- :mod:`.client`: :class:`EndpointModel`, the remote model called like a local one, and
  :func:`load_endpoint`, which :func:`zest_core.sources.models.load_model` calls for ``http(s)://`` specs;
- :mod:`.transport`: the HTTP requests, each bounded as a whole by its timeout;
- :mod:`.server`: a reference server that puts any torch callable behind the protocol.
"""
from ...errors import EndpointError
from .client import DEFAULT_RETRIES, DEFAULT_TIMEOUT, EndpointModel, load_endpoint, sent_queries
from .protocol import OUTPUT_KINDS, decode_batch, encode_batch, probe_batch
from .server import EndpointServer, Responder, model_responder, serve_model, serve_responder

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "OUTPUT_KINDS",
    "EndpointError",
    "EndpointModel",
    "EndpointServer",
    "Responder",
    "decode_batch",
    "encode_batch",
    "load_endpoint",
    "model_responder",
    "probe_batch",
    "sent_queries",
    "serve_model",
    "serve_responder",
]
