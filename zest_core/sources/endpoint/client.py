"""The client side of the endpoint protocol: :class:`EndpointModel`, a remote model called like a local one.

The protocol, its status codes and how an endpoint is fingerprinted are documented in
:mod:`zest_core.sources.endpoint.protocol`.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..._shared.checks import check_int, check_number
from ..._shared.limits import check_image_pixels
from ...errors import EndpointError, ZestError
from ...pipeline.counting import QueryCount
from .protocol import OUTPUT_KINDS, check_batch, encode_batch, is_count, probe_batch
from .transport import RedirectRefused, ResponseTooLarge, build_deadline_opener, open_before, read_bounded

DEFAULT_TIMEOUT = 30.0  # seconds per request, connect to last byte
DEFAULT_RETRIES = 2
NO_INFO_STATUSES = (404, 405, 501)  # "no description": /info is optional
EXCERPT_CHARS = 200  # how much of a bad answer an error message quotes


class _TransientError(Exception):
    """One attempt failed in a way that a later one may not (connection, timeout, 429, 5xx)."""


class EndpointModel:
    """A model behind an HTTP endpoint, callable like a local one: images [B, C, H, W] -> scores [B, K].

    Construction reads the optional ``GET <url>/info`` (see :mod:`~zest_core.sources.endpoint.protocol`);
    each call sends ``POST <url>`` requests of at most ``max_batch`` images and concatenates the
    answers in order, validating each.

    Parameters
    ----------
    url : str
        The ``http://`` or ``https://`` URL that takes the POST requests.
    timeout : float
        Seconds one request may take, from connecting to the last byte of the answer (each retry
        gets its own). A server that trickles its answer is cut off at the timeout.
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
        The signature cache's key for this model (see :mod:`~zest_core.sources.endpoint.protocol`); computed, with one
        probe request when there is no ``model_id``, the first time it is read.
    sent : QueryCount
        The scoring requests (``POST``) this client has sent and the images they held, every attempt
        counted (a retry is a request the endpoint sees, and may bill), the fingerprint's probe
        included. A batch larger than ``max_batch`` is several requests.
    info_requests : int
        The ``GET /info`` requests sent (retries included).
    requests_sent, images_sent : int
        Every HTTP request sent (``sent.calls + info_requests``), and ``sent.images``.

    Raises
    ------
    ZestError
        For an invalid argument (a ZestTypeError for one of the wrong type).
    EndpointError
        If ``/info`` cannot be fetched (after the retries) or is malformed.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_batch: int = 64,
        headers: Mapping[str, str] | None = None,
        backoff: float = 0.5,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        self.url = _check_url(url)
        self.timeout = check_number("timeout", timeout, minimum=0, strict=True)
        self.retries = check_int("retries", retries, minimum=0)
        self.max_batch = check_int("max_batch", max_batch, minimum=1)
        self.backoff = check_number("backoff", backoff, minimum=0)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **dict(headers or {})}
        self.source = f"endpoint {_display_url(self.url)}"
        self._opener = build_deadline_opener()  # honours the proxy settings of the environment
        self.sent = QueryCount()
        self.fingerprint_images = 0  # images spent on the fingerprint probe (see fingerprint_queries)
        self.info_requests = 0
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
        ZestError
            If ``images`` is not 4-dimensional.
        EndpointError
            If a request fails (after the retries) or an answer breaks the protocol.
        """
        array = check_batch(np.asarray(images, dtype=np.float32))
        chunks = [self._predict_chunk(array[i:i + self.max_batch]) for i in range(0, len(array), self.max_batch)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self._num_classes or 0))

    @property
    def requests_sent(self) -> int:
        """Every HTTP request sent so far: the scoring requests and the ``GET /info`` ones, retries included."""
        return self.sent.calls + self.info_requests

    @property
    def images_sent(self) -> int:
        """Images sent so far, counted once per request that carried them (a retried request's twice)."""
        return self.sent.images

    @property
    def fingerprint(self) -> str | None:
        """The signature cache's key (see :mod:`~zest_core.sources.endpoint.protocol`), computed on first read."""
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str | None:
        if self.model_id is not None:
            return _hash_text(f"endpoint\n{self.url}\nmodel_id\n{self.model_id}")
        if self.input_shape is None:
            return None
        probe = probe_batch(self.input_shape)
        scores = self.predict(probe)
        self.fingerprint_images = len(probe)  # counted against a budget (zest_core.pipeline.queries)
        return _hash_text(f"endpoint\n{self.url}\nprobe\n" + ",".join(f"{v:.5g}" for v in scores.ravel()))

    # -- one request and its answer

    def _predict_chunk(self, chunk: np.ndarray) -> np.ndarray:
        status, payload = self._fetch(self.url, json.dumps(encode_batch(chunk)).encode(), images=len(chunk))
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
            raise self._error('"scores": expected a list of rows (lists of numbers), one row per image')
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
            raise self._error(f"/info: expected a JSON object, got {type(info).__name__}")
        names, shape, outputs, model_id = (info.get(k) for k in ("class_names", "input_shape", "outputs", "model_id"))
        if shape is not None and not (
            isinstance(shape, list) and len(shape) == 3 and all(is_count(n) and n > 0 for n in shape)
        ):
            raise self._error(f"/info's input_shape: expected [C, H, W] (positive ints), got {shape!r}")
        if shape is not None:
            try:
                check_image_pixels(shape[1], shape[2], "/info's input_shape")
            except ZestError as error:
                raise self._error(str(error)) from None
        if outputs is not None and outputs not in OUTPUT_KINDS:
            raise self._error(f"/info's outputs: expected one of {', '.join(map(repr, OUTPUT_KINDS))}, got {outputs!r}")
        if model_id is not None and (isinstance(model_id, bool) or not isinstance(model_id, (str, int))):
            raise self._error(f"/info's model_id: expected a string, got {model_id!r}")
        return {
            "class_names": None if names is None else self._check_names(names, "/info's class_names"),
            "input_shape": None if shape is None else tuple(shape),
            "outputs": outputs,
            "model_id": None if model_id is None else str(model_id),
        }

    def _check_names(self, names: Any, where: str) -> list[str]:
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            got = _excerpt(json.dumps(names).encode())
            raise self._error(f"{where}: expected a non-empty list of strings, got {got}")
        if self._num_classes is not None and len(names) != self._num_classes:
            raise self._error(f"{where} names {len(names)} classes, but the scores have {self._num_classes}")
        return names

    def _parse_json(self, payload: bytes) -> Any:
        try:
            return json.loads(payload)
        except ValueError as error:
            raise self._error(f"the answer is not valid JSON ({error}): {_excerpt(payload)}") from error

    # -- transport

    def _fetch(self, url: str, body: bytes | None = None, *, images: int = 0) -> tuple[int, bytes]:
        """(status, body) of a GET (``body`` None) or POST of ``images`` images, retrying transient failures.

        Every attempt is counted (:attr:`sent`, :attr:`info_requests`) before it is made.
        """
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            if body is None:
                self.info_requests += 1
            else:
                self.sent.add(images)
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
            # The timeout bounds the whole request: a server that trickles its answer cannot hold us.
            return open_before(self._opener, request, time.monotonic() + self.timeout)
        except (RedirectRefused, ResponseTooLarge) as error:  # not transient: the same answer would come again
            raise self._error(str(error)) from None
        except urllib.error.HTTPError as error:
            return error.code, _read_error_body(error)
        except (OSError, http.client.HTTPException) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            if isinstance(reason, TimeoutError):
                raise _TransientError(f"timed out after {self.timeout:g} s (timeout={self.timeout:g})") from error
            raise _TransientError(f"connection failed ({type(reason).__name__}: {reason})") from error

    def _error(self, problem: str) -> EndpointError:
        return EndpointError(f"endpoint {_display_url(self.url)}: {problem}")


def sent_queries(model: Any) -> QueryCount | None:
    """The requests an endpoint model has sent (:attr:`EndpointModel.sent`), through wrappers' ``.model``; else None.

    A :class:`~zest_core.Classifier` (what :func:`~zest_core.load_model` returns) keeps the
    endpoint as its ``model``; the endpoint's own count is the truth for what went over HTTP.
    """
    for _ in range(8):  # wrappers of wrappers, bounded
        if isinstance(model, EndpointModel):
            return model.sent
        model = getattr(model, "model", None)
        if model is None:
            return None
    return None


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
    ZestError
        If ``spec`` is not an http(s) URL; EndpointError if the endpoint cannot be reached.
    """
    return EndpointModel(spec, **kwargs)


def _check_url(url: Any) -> str:
    """``url`` itself if it is an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ZestError(f"url: expected an http:// or https:// URL, got {url!r}")
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
        return read_bounded(error)
    except ResponseTooLarge:
        return b"(an error body larger than the response limit, not read)"
    except (OSError, http.client.HTTPException):
        return b""


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]

