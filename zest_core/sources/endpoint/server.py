"""The reference server of the endpoint protocol: any torch callable behind an HTTP URL, in a background thread.

For tests, and for users who want to query a local model the way Zest queries a remote one; the
protocol is documented in :mod:`zest_core.sources.endpoint.protocol`.
"""
from __future__ import annotations

import itertools
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

import torch

from ..._shared.checks import check_choice
from ...errors import ZestError
from .protocol import OUTPUT_KINDS, decode_batch

Responder = Callable[[str, str, bytes], tuple[int, bytes]]
"""A server's whole behaviour: (method, path, body) -> (status, JSON body)."""


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
    check_choice("outputs", outputs, OUTPUT_KINDS)
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
                raise ZestError(f"the model takes images of shape {expected} (C, H, W), got {list(images.shape[1:])}")
        except ValueError as error:  # a ZestError of decode_batch, or json's own for a body that is not JSON
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


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _model_device(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
        if first is not None:
            return first.device
    return torch.device("cpu")
