"""Remote models: a suspect model behind an HTTP endpoint, queried as a black box.

Zest needs nothing from a model but its scores on chosen images, so the model it compares may sit
behind an API its owner runs [1]_. This module speaks a small, language-neutral JSON protocol over
HTTP with the standard library only (``urllib.request``), and ships a reference server
(:func:`serve_model`) that puts any torch callable behind the same protocol.

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
are refused connections and timeouts, with exponential backoff. Other 4xx answers are refused
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
import hashlib
import http.client
import itertools
import json
import math
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

OUTPUT_KINDS = ("logits", "probabilities")
NO_INFO_STATUSES = (404, 405, 501)
EXCERPT_CHARS = 200

Responder = Callable[[str, str, bytes], tuple[int, bytes]]
"""A server's whole behaviour: (method, path, body) -> (status, JSON body)."""


class EndpointError(ValueError):
    """A remote model could not be reached, refused a request, or answered outside the protocol."""


class _TransientError(Exception):
    """One attempt failed in a way that a later one may not (connection, timeout, 429, 5xx)."""


# --------------------------------------------------------------------------- the wire format


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
    ValueError
        If ``images`` is not 4-dimensional.
    """
    array = np.ascontiguousarray(images, dtype="<f4")
    if array.ndim != 4:
        raise ValueError(f"images: expected a [B, C, H, W] batch, got shape {array.shape}")
    return {"images": base64.b64encode(array.tobytes()).decode("ascii"), "shape": list(array.shape), "dtype": "float32"}


def decode_batch(request: Any) -> np.ndarray:
    """The float32 [B, C, H, W] batch of a parsed request body (the server side of :func:`encode_batch`).

    Raises
    ------
    ValueError
        Naming the field at fault: not an object, ``dtype`` not "float32", ``shape`` not four
        non-negative ints, ``images`` not base64, or a byte count that does not match ``shape``.
    """
    if not isinstance(request, dict):
        raise ValueError(f"the request body must be a JSON object, got {type(request).__name__}")
    if request.get("dtype") != "float32":
        raise ValueError(f'"dtype" must be "float32", got {request.get("dtype")!r}')
    shape = request.get("shape")
    if not (isinstance(shape, list) and len(shape) == 4 and all(_is_count(n) for n in shape)):
        raise ValueError(f'"shape" must be [B, C, H, W] (non-negative ints), got {shape!r}')
    try:
        raw = base64.b64decode(request.get("images"), validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raise ValueError(f'"images" must be a base64 string: {error}') from error
    expected = 4 * math.prod(shape)
    if len(raw) != expected:
        raise ValueError(f'"images" holds {len(raw)} bytes; shape {shape} in float32 needs {expected}')
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def probe_batch(input_shape: Sequence[int]) -> np.ndarray:
    """The fixed probe images whose scores fingerprint an endpoint without a ``model_id``.

    Three deterministic float32 images of shape ``input_shape`` (C, H, W): a ramp over [0, 1], the
    same ramp reversed, and a sawtooth. They depend on nothing but the shape.
    """
    ramp = np.linspace(0.0, 1.0, math.prod(input_shape)).astype(np.float32)
    return np.stack([ramp, ramp[::-1], (ramp * 7.0) % 1.0]).reshape(3, *input_shape)


# --------------------------------------------------------------------------- the client


class EndpointModel:
    """A model behind an HTTP endpoint, callable like a local one: images [B, C, H, W] -> scores [B, K].

    Construction reads the optional ``GET <url>/info`` (see the module docstring for the protocol);
    each call sends ``POST <url>`` requests of at most ``max_batch`` images and concatenates the
    answers in order, validating each.

    Parameters
    ----------
    url : str
        The ``http://`` or ``https://`` URL that takes the POST requests.
    timeout : float
        Seconds to wait for the connection and for each read of an answer.
    retries : int
        Further attempts after a refused connection, a timeout or an HTTP 429/5xx answer (not 501),
        waiting ``backoff``, ``2 * backoff``, ``4 * backoff``... seconds between them. Other 4xx
        answers and malformed answers are never retried.
    max_batch : int
        Most images per request; larger batches are split into several requests.
    headers : mapping of str to str, optional
        Extra HTTP headers sent with every request, e.g. ``{"Authorization": "Bearer ..."}``.
    backoff : float
        Base delay of the retries, in seconds.
    input_shape : (C, H, W), optional
        The images the model takes, when ``/info`` does not say (an explicit value wins). It lets
        the engine check the reference images before any query and lets the fingerprint probe.

    Attributes
    ----------
    class_names : list of str or None
        From ``/info``, else from the first answer that carries them.
    input_shape : tuple of int or None
    outputs : {"logits", "probabilities"} or None
        What the scores are, when ``/info`` says.
    model_id : str or None
    source : str
        "endpoint <url>", with the URL's credentials and query string left out.
    fingerprint : str or None
        The signature cache's key for this model (see the module docstring); computed, with one
        probe request when there is no ``model_id``, the first time it is read.

    Raises
    ------
    ValueError
        For an invalid argument.
    EndpointError
        If ``/info`` cannot be fetched (after the retries) or is malformed.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        max_batch: int = 64,
        headers: Mapping[str, str] | None = None,
        backoff: float = 0.5,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        self.url = _check_url(url)
        self.timeout = _check_seconds("timeout", timeout)
        self.retries = _check_count("retries", retries, minimum=0)
        self.max_batch = _check_count("max_batch", max_batch, minimum=1)
        self.backoff = _check_seconds("backoff", backoff, allow_zero=True)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **dict(headers or {})}
        self.source = f"endpoint {_display_url(self.url)}"
        self._opener = urllib.request.build_opener()  # honours the proxy settings of the environment
        self._fingerprint: str | None = None
        self._num_classes: int | None = None
        self._classes_seen = ""
        info = self._fetch_info()
        self.class_names: list[str] | None = info["class_names"]
        self.outputs: str | None = info["outputs"]
        self.model_id: str | None = info["model_id"]
        self.input_shape = tuple(int(n) for n in input_shape) if input_shape is not None else info["input_shape"]
        if self.class_names is not None:
            self._set_num_classes(len(self.class_names), "in /info's class_names")

    def __repr__(self) -> str:
        return f"EndpointModel({_display_url(self.url)!r}, classes={self._num_classes})"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Scores [B, K] (float64, on the CPU) of a float tensor [B, C, H, W] in [0, 1]."""
        array = torch.as_tensor(images).detach().to("cpu", torch.float32).numpy()
        return torch.from_numpy(self.predict(array))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Scores [B, K] (float64) of an array [B, C, H, W] in [0, 1], in requests of ``max_batch`` images.

        Raises
        ------
        ValueError
            If ``images`` is not 4-dimensional.
        EndpointError
            If a request fails (after the retries) or an answer breaks the protocol.
        """
        array = np.asarray(images, dtype=np.float32)
        if array.ndim != 4:
            raise ValueError(f"images: expected a [B, C, H, W] batch, got shape {array.shape}")
        chunks = [self._predict_chunk(array[i:i + self.max_batch]) for i in range(0, len(array), self.max_batch)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self._num_classes or 0))

    @property
    def fingerprint(self) -> str | None:
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str | None:
        if self.model_id is not None:
            return _hash_text(f"endpoint\n{self.url}\nmodel_id\n{self.model_id}")
        if self.input_shape is None:
            return None
        scores = self.predict(probe_batch(self.input_shape))
        return _hash_text(f"endpoint\n{self.url}\nprobe\n" + ",".join(f"{v:.5g}" for v in scores.ravel()))

    # -- one request and its answer

    def _predict_chunk(self, chunk: np.ndarray) -> np.ndarray:
        status, payload = self._fetch(self.url, json.dumps(encode_batch(chunk)).encode())
        if not 200 <= status < 300:
            raise self._error(_status_problem(status, payload))
        answer = self._parse_json(payload)
        scores = self._check_scores(answer, len(chunk))
        self._set_num_classes(scores.shape[1], "in earlier answers")
        if self.class_names is None and answer.get("class_names") is not None:
            self.class_names = self._check_names(answer["class_names"], "the answer's class_names")
        return scores

    def _check_scores(self, answer: Any, batch: int) -> np.ndarray:
        if not isinstance(answer, dict) or "scores" not in answer:
            raise self._error(f'the answer has no "scores" field: {_excerpt(json.dumps(answer).encode())}')
        rows = answer["scores"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise self._error('"scores" must be a list of rows (lists of numbers), one row per image')
        if len(rows) != batch:
            raise self._error(f"the answer has {len(rows)} rows of scores for a batch of {batch} images")
        widths = sorted({len(row) for row in rows})
        if len(widths) > 1 or widths[0] == 0:
            raise self._error(f"ragged or empty rows of scores: rows of {widths} numbers, expected one width K > 0")
        odd = [v for row in rows for v in row if isinstance(v, bool) or not isinstance(v, (int, float))]
        if odd:
            raise self._error(f"{len(odd)} non-numeric scores, e.g. {odd[0]!r}")
        try:
            scores = np.array(rows, dtype=np.float64)
        except OverflowError as error:
            raise self._error(f"scores too large for float64 ({error})") from error
        bad = int((~np.isfinite(scores)).sum())
        if bad:
            raise self._error(f"the answer holds {bad} NaN or infinite scores for a batch of {batch} images")
        if self._num_classes is not None and scores.shape[1] != self._num_classes:
            raise self._error(
                f"the answer has {scores.shape[1]} classes, but {self._num_classes} {self._classes_seen}"
            )
        return scores

    def _set_num_classes(self, count: int, where: str) -> None:
        if self._num_classes is None:
            self._num_classes, self._classes_seen = count, where

    def _fetch_info(self) -> dict[str, Any]:
        status, payload = self._fetch(_info_url(self.url))
        if status in NO_INFO_STATUSES:
            return {"class_names": None, "input_shape": None, "outputs": None, "model_id": None}
        if not 200 <= status < 300:
            raise self._error(f"GET /info: {_status_problem(status, payload)}")
        return self._check_info(self._parse_json(payload))

    def _check_info(self, info: Any) -> dict[str, Any]:
        if not isinstance(info, dict):
            raise self._error(f"/info must answer a JSON object, got {type(info).__name__}")
        names, shape, outputs, model_id = (info.get(k) for k in ("class_names", "input_shape", "outputs", "model_id"))
        if shape is not None and not (
            isinstance(shape, list) and len(shape) == 3 and all(_is_count(n) and n > 0 for n in shape)
        ):
            raise self._error(f"/info's input_shape must be [C, H, W] (positive ints), got {shape!r}")
        if outputs is not None and outputs not in OUTPUT_KINDS:
            raise self._error(f"/info's outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
        if model_id is not None and (isinstance(model_id, bool) or not isinstance(model_id, (str, int))):
            raise self._error(f"/info's model_id must be a string, got {model_id!r}")
        return {
            "class_names": None if names is None else self._check_names(names, "/info's class_names"),
            "input_shape": None if shape is None else tuple(shape),
            "outputs": outputs,
            "model_id": None if model_id is None else str(model_id),
        }

    def _check_names(self, names: Any, where: str) -> list[str]:
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            got = _excerpt(json.dumps(names).encode())
            raise self._error(f"{where} must be a non-empty list of strings, got {got}")
        if self._num_classes is not None and len(names) != self._num_classes:
            raise self._error(f"{where} names {len(names)} classes, but the scores have {self._num_classes}")
        return names

    def _parse_json(self, payload: bytes) -> Any:
        try:
            return json.loads(payload)
        except ValueError as error:
            raise self._error(f"the answer is not valid JSON ({error}): {_excerpt(payload)}") from error

    # -- transport

    def _fetch(self, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body) of a GET (``body`` None) or POST, retrying transient failures."""
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, payload = self._attempt(url, body)
            except _TransientError as error:
                last = str(error)
                continue
            if status != 429 and not (status >= 500 and status != 501):
                return status, payload
            last = _status_problem(status, payload)
        plural = "s" if attempts > 1 else ""
        raise self._error(
            f"no usable answer after {attempts} attempt{plural} (retries={self.retries}); last error: {last}"
        )

    def _attempt(self, url: str, body: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, headers=self.headers, method="GET" if body is None else "POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, _read_error_body(error)
        except (OSError, http.client.HTTPException) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            if isinstance(reason, TimeoutError):
                raise _TransientError(f"timed out after {self.timeout:g} s (timeout={self.timeout:g})") from error
            raise _TransientError(f"connection failed ({type(reason).__name__}: {reason})") from error

    def _error(self, problem: str) -> EndpointError:
        return EndpointError(f"endpoint {_display_url(self.url)}: {problem}")


def load_endpoint(spec: str, **kwargs: Any) -> EndpointModel:
    """The model behind an ``http(s)://`` spec, for :func:`zest_core.sources.models.load_model`.

    Parameters
    ----------
    spec : str
        The endpoint's URL.
    **kwargs
        Passed to :class:`EndpointModel` (``timeout``, ``retries``, ``max_batch``, ``headers``...).

    Raises
    ------
    ValueError
        If ``spec`` is not an http(s) URL; EndpointError if the endpoint cannot be reached.
    """
    return EndpointModel(spec, **kwargs)


# --------------------------------------------------------------------------- the reference server


class EndpointServer(ThreadingHTTPServer):
    """A threaded HTTP server, run in a daemon thread, whose every answer comes from a :data:`Responder`.

    Use :func:`serve_model` or :func:`serve_responder` to start one; :meth:`shutdown` stops it.
    It is also a context manager that shuts down on exit.
    """

    daemon_threads = True
    block_on_close = False  # shutdown() never waits on a handler that is still busy

    def __init__(self, address: tuple[str, int], responder: Responder) -> None:
        super().__init__(address, _ResponderHandler)
        self.responder = responder
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def shutdown(self) -> None:
        """Stop serving, close the listening socket and wait (at most 5 s) for the serving thread."""
        if self.thread.is_alive():
            super().shutdown()
        self.server_close()
        self.thread.join(timeout=5)

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up (e.g. timed out) before the answer was written
        super().handle_error(request, client_address)


class _ResponderHandler(BaseHTTPRequestHandler):
    server: EndpointServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self._answer()

    def _answer(self) -> None:
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command == "POST" else b""
            status, payload = self.server.responder(self.command, self.path, body)
        except Exception as error:  # noqa: BLE001 - any failure of the model is the server's (500)
            status, payload = 500, _json_bytes({"error": f"{type(error).__name__}: {error}"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Quiet: no line on stderr per request."""


def serve_responder(responder: Responder, host: str = "127.0.0.1", port: int = 0) -> tuple[EndpointServer, str]:
    """Start an :class:`EndpointServer` answering with ``responder``; port 0 picks a free one.

    Returns
    -------
    server : EndpointServer
        Call ``server.shutdown()`` when done.
    url : str
        ``http://host:port``.
    """
    server = EndpointServer((host, port), responder)
    server.thread.start()
    return server, server.url


def model_responder(
    model: Callable[[torch.Tensor], Any],
    *,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    outputs: str = "logits",
    model_id: str | None = None,
) -> Responder:
    """The protocol's server side for a torch callable (see :func:`serve_model` for the parameters).

    ``GET .../info`` answers the description; ``POST`` runs the model under ``torch.inference_mode``
    on the device of its first parameter (the CPU for other callables). A malformed request gets
    400, a failing model 500, any other GET 404.
    """
    if outputs not in OUTPUT_KINDS:
        raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
    expected = None if input_shape is None else [int(n) for n in input_shape]
    described = {"class_names": None if class_names is None else list(class_names), "input_shape": expected,
                 "outputs": outputs, "model_id": model_id}
    info = _json_bytes({k: v for k, v in described.items() if v is not None})
    device = _model_device(model)

    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "GET":
            if urllib.parse.urlsplit(path).path.rstrip("/").endswith("/info"):
                return 200, info
            return 404, _json_bytes({"error": f"no such resource: {path}"})
        try:
            images = decode_batch(json.loads(body))
            if expected is not None and list(images.shape[1:]) != expected:
                raise ValueError(f"the model takes images of shape {expected} (C, H, W), got {list(images.shape[1:])}")
        except ValueError as error:
            return 400, _json_bytes({"error": str(error)})
        with torch.inference_mode():
            scores = model(torch.from_numpy(images).to(device))
        return 200, _json_bytes({"scores": torch.as_tensor(scores).detach().cpu().tolist()})

    return respond


def serve_model(
    model: Callable[[torch.Tensor], Any],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    outputs: str = "logits",
    model_id: str | None = None,
) -> tuple[EndpointServer, str]:
    """Serve a local model under the endpoint protocol, in a background thread.

    For tests, and for users who want to query a local model the way Zest queries a remote one.
    The server has no authentication: keep ``host`` on the loopback interface unless the network is
    trusted.

    Parameters
    ----------
    model : callable
        Maps a float32 tensor [B, C, H, W] in [0, 1] to scores [B, K]. Put an ``nn.Module`` in eval
        mode first; it is not changed.
    host : str
        Interface to listen on (default: loopback only).
    port : int
        0 picks a free port.
    class_names, input_shape, outputs, model_id : optional
        What ``GET <url>/info`` reports (fields left None are left out).

    Returns
    -------
    server : EndpointServer
        Call ``server.shutdown()`` when done (or use it as a context manager).
    url : str
        The URL to give :class:`EndpointModel`.
    """
    responder = model_responder(
        model, class_names=class_names, input_shape=input_shape, outputs=outputs, model_id=model_id
    )
    return serve_responder(responder, host, port)


# --------------------------------------------------------------------------- small helpers


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_count(name: str, value: Any, *, minimum: int) -> int:
    if not _is_count(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not number or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} number of seconds, got {value!r}")
    return float(value)


def _check_url(url: Any) -> str:
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"url must be an http:// or https:// URL, got {url!r}")
    return url


def _display_url(url: str) -> str:
    """The URL without user information and query string (they may hold credentials)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "…" if parts.query else "", "")
    )


def _info_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/info", fragment=""))


def _status_problem(status: int, payload: bytes) -> str:
    return f"HTTP {status} {http.client.responses.get(status, '')}: {_excerpt(payload)}"


def _excerpt(payload: bytes) -> str:
    text = " ".join(payload.decode("utf-8", errors="replace").split())
    return repr(text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…")


def _read_error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _model_device(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
        if first is not None:
            return first.device
    return torch.device("cpu")
