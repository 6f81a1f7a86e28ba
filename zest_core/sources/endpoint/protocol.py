"""The endpoint protocol: how Zest asks a model behind an HTTP URL for its scores, and the wire format.

Zest needs nothing from a model but its scores on chosen images, so the model it compares may sit
behind an API its owner runs [1]_. The protocol is small, language-neutral JSON over HTTP; the
client (:class:`~zest_core.sources.endpoint.client.EndpointModel`) speaks it with the standard
library only (``urllib.request``), and the reference server
(:func:`~zest_core.sources.endpoint.server.serve_model`) puts any torch callable behind it. This
module holds what both sides share: the request body's encoding and the fingerprint's probe images.

Protocol
--------
Prediction (required)::

    POST <url>
    Content-Type: application/json

    {"images": "<base64 of the float32 little-endian C-order array>",
     "shape": [B, C, H, W],
     "dtype": "float32"}

Pixel values lie in [0, 1]; any normalisation belongs to the model behind the URL. The answer is::

    200 OK
    {"scores": [[s_11, ..., s_1K], ..., [s_B1, ..., s_BK]],
     "class_names": ["...", ...]}

``scores`` holds one row per image, in the order sent, each of the same K finite numbers (logits
or probabilities); K must not change between answers. ``class_names`` (K strings) is optional.

Description (optional)::

    GET <url>/info

    {"class_names": [...], "input_shape": [C, H, W], "outputs": "logits" | "probabilities",
     "model_id": "..."}

Every field is optional, and so is the resource: an answer of 404, 405 or 501 means "no
description". ``model_id`` names the deployed model version; change it whenever the model behind
the URL changes. ``<url>/info`` appends ``/info`` to the URL's path (its query string is kept).

Status codes: 429 and 5xx (but 501, "not implemented", which no retry can change) are retried, as
are refused connections and timeouts, with exponential backoff. The client's timeout bounds each
whole request, from connecting to the answer's last byte: a server that trickles its answer is cut
off, however steadily the bytes come. Other 4xx answers are refused
requests and are reported at once. Put credentials in headers (``headers={"Authorization": ...}``),
not in the URL: error messages show the URL without its user information or query string.

Fingerprint
-----------
A black box has no weights to hash, so the signature cache keys an endpoint on its URL and either
the ``model_id`` from ``/info`` (a redeployed model with a new ``model_id`` gets a new key) or,
without one, a hash of the scores it returns on a fixed, deterministic probe batch
(:func:`probe_batch`; scores rounded to 5 significant digits so that GPU non-determinism in the
last bits does not change the key). A model redeployed at the same URL without a ``model_id`` is
thus told apart by its answers. Without ``model_id`` and without a known input shape there is
nothing to probe with: the fingerprint is None and the signature is never cached.

Example server
--------------
In any language; in Python with numpy only, where ``my_model`` maps a float32 [B, C, H, W] array to
[B, classes] scores::

    import base64, json
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import numpy as np

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            images = np.frombuffer(base64.b64decode(request["images"]), "<f4").reshape(request["shape"])
            body = json.dumps({"scores": np.asarray(my_model(images)).tolist()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    HTTPServer(("127.0.0.1", 8000), Handler).serve_forever()

then ``EndpointModel("http://127.0.0.1:8000")``, or the URL wherever Zest takes a model spec.

References
----------
.. [1] Jia, Yaghini, Choquette-Choo, Dullerud, Thudi, Chandrasekaran & Papernot, "A Zest of LIME:
   Towards Architecture-Independent Model Distances", ICLR 2023.
"""
from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Sequence

import numpy as np

from ...errors import ZestError

OUTPUT_KINDS = ("logits", "probabilities")
"""What an endpoint may declare its scores to be (``/info``'s ``outputs``)."""


def encode_batch(images: np.ndarray) -> dict[str, Any]:
    """The protocol's request body for a batch of images.

    Parameters
    ----------
    images : array-like, shape (B, C, H, W)
        Pixel values in [0, 1]; sent as float32, little-endian, C order.

    Returns
    -------
    dict
        ``{"images": base64 str, "shape": [B, C, H, W], "dtype": "float32"}``, ready for ``json.dumps``.

    Raises
    ------
    ZestError
        If ``images`` is not 4-dimensional.
    """
    array = np.ascontiguousarray(images, dtype="<f4")
    check_batch(array)
    return {"images": base64.b64encode(array.tobytes()).decode("ascii"), "shape": list(array.shape), "dtype": "float32"}


def decode_batch(request: Any) -> np.ndarray:
    """The float32 [B, C, H, W] batch of a parsed request body (the server side of :func:`encode_batch`).

    Raises
    ------
    ZestError
        Naming the field at fault: not an object, ``dtype`` not "float32", ``shape`` not four
        non-negative ints, ``images`` not base64, or a byte count that does not match ``shape``.
    """
    if not isinstance(request, dict):
        raise ZestError(f"request body: expected a JSON object, got {type(request).__name__}")
    if request.get("dtype") != "float32":
        raise ZestError(f'"dtype": expected "float32", got {request.get("dtype")!r}')
    shape = request.get("shape")
    if not (isinstance(shape, list) and len(shape) == 4 and all(is_count(n) for n in shape)):
        raise ZestError(f'"shape": expected [B, C, H, W] (non-negative ints), got {shape!r}')
    try:
        raw = base64.b64decode(request.get("images"), validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raise ZestError(f'"images": expected a base64 string, got one that does not decode ({error})') from error
    expected = 4 * math.prod(shape)
    if len(raw) != expected:
        raise ZestError(f'"images": expected {expected} bytes (shape {shape} in float32), got {len(raw)} bytes')
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def probe_batch(input_shape: Sequence[int]) -> np.ndarray:
    """The fixed probe images whose scores fingerprint an endpoint without a ``model_id``.

    Three deterministic float32 images of shape ``input_shape`` (C, H, W): a ramp over [0, 1], the
    same ramp reversed, and a sawtooth. They depend on nothing but the shape.
    """
    ramp = np.linspace(0.0, 1.0, math.prod(input_shape)).astype(np.float32)
    return np.stack([ramp, ramp[::-1], (ramp * 7.0) % 1.0]).reshape(3, *input_shape)


def check_batch(images: np.ndarray) -> np.ndarray:
    """``images`` itself if it is a 4-dimensional [B, C, H, W] array, else a :class:`ZestError`."""
    if images.ndim != 4:
        raise ZestError(f"images: expected a [B, C, H, W] batch, got shape {images.shape}")
    return images


def is_count(value: Any) -> bool:
    """Whether ``value`` is a non-negative int (a JSON count), bools excluded."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
