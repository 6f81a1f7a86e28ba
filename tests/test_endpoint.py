"""The remote black-box source: models behind the endpoint protocol, served on 127.0.0.1 only.

Every server listens on an ephemeral loopback port and is shut down by the ``serve`` fixture; every
wait is bounded (client timeouts, ``Event.wait(timeout=...)``, the module's pytest timeout).
"""
from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any, Callable

import numpy as np
import pytest
import torch

from zest_core import ModelInputError, ZestConfig, compute_signature, zest_distance
from zest_core.sources.endpoint import (
    EndpointError,
    EndpointModel,
    Responder,
    decode_batch,
    encode_batch,
    load_endpoint,
    model_responder,
    probe_batch,
    serve_model,
    serve_responder,
)

from conftest import make_cnn

pytestmark = pytest.mark.timeout(60)

SHAPE = (1, 28, 28)
FAST = {"timeout": 5.0, "retries": 2, "backoff": 0.01}  # generous timeout, short backoff


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests go straight to 127.0.0.1, whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def serve():
    """Start a responder on an ephemeral 127.0.0.1 port and return its URL; all are shut down after."""
    servers = []

    def start(responder: Responder) -> str:
        server, url = serve_responder(responder)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()


class Recorder:
    """Wraps a responder: records the batch size of every POST and fails the first ``fail`` of them."""

    def __init__(self, responder: Responder, *, fail: int = 0, status: int = 503) -> None:
        self.responder, self.fail, self.status = responder, fail, status
        self.posts: list[int] = []

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "POST":
            self.posts.append(json.loads(body)["shape"][0])
            if len(self.posts) <= self.fail:
                return self.status, b'{"error": "overloaded, try again"}'
        return self.responder(method, path, body)


def answering(reply: Callable[[np.ndarray], Any], info: dict | None = None) -> Responder:
    """A deliberately simple server: POST answers ``reply(batch)`` (bytes go out raw), GET /info ``info`` or 404."""

    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "GET":
            return (404, b"{}") if info is None else (200, json.dumps(info).encode())
        answer = reply(decode_batch(json.loads(body)))
        return 200, answer if isinstance(answer, bytes) else json.dumps(answer).encode()

    return respond


def rows(batch: np.ndarray, width: int, value: Any = 0.0) -> list[list[Any]]:
    return [[value] * width for _ in range(len(batch))]


def images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, *SHAPE, generator=torch.Generator().manual_seed(seed))


def local_scores(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(batch).double()


# ----------------------------------------------------------------------------- the happy path


def test_wire_format_round_trips_float32():
    batch = np.random.default_rng(0).random((3, *SHAPE), dtype=np.float32)
    decoded = decode_batch(json.loads(json.dumps(encode_batch(batch))))
    assert decoded.dtype == np.float32 and np.array_equal(decoded, batch)


def test_scores_through_the_endpoint_equal_the_local_model(serve):
    model = make_cnn(0)
    names = [f"digit {i}" for i in range(10)]
    remote = EndpointModel(serve(model_responder(model, input_shape=SHAPE, class_names=names)), **FAST)
    batch = images(5)
    scores = remote(batch)
    assert scores.shape == (5, 10)
    # Not CPU-dependent: the server runs the same batch of 5 through the same kernels in this process,
    # and float32 scores cross JSON exactly (tolist() gives exact Python floats).
    assert torch.allclose(scores, local_scores(model, batch), rtol=1e-6, atol=1e-6)
    assert remote.class_names == names and remote.input_shape == SHAPE and remote.outputs == "logits"


def test_large_batches_are_split_and_come_back_in_order(serve):
    model = make_cnn(1)
    recorder = Recorder(model_responder(model, input_shape=SHAPE))
    remote = EndpointModel(serve(recorder), max_batch=4, **FAST)
    batch = images(10, seed=1)
    scores = remote(batch)
    assert recorder.posts == [4, 4, 2]
    # float32 across batch sizes (4, 4, 2 on the server vs 10 here): kernels differ by batch size and CPU,
    # ~2e-7 of the scores' scale (~0.1) seen, so atol=1e-5 leaves a wide margin.
    assert torch.allclose(scores, local_scores(model, batch), rtol=1e-5, atol=1e-5)


def test_signature_through_the_endpoint_equals_the_local_one(serve, digits_refset):
    model = make_cnn(0)
    config = ZestConfig(num_samples=60, device="cpu")
    remote = EndpointModel(serve(model_responder(model, input_shape=SHAPE)), **FAST)
    local = compute_signature(model, digits_refset, config, cache=False)
    through = compute_signature(remote, digits_refset, config, cache=False)
    # float32 across batch sizes (the client's max_batch=64 vs 256 locally): kernels differ by CPU, but the
    # cosine distance is quadratic in them (1e-13 seen with other kernels): 1e-9 holds on any CPU.
    assert zest_distance(local, through) < 1e-9
    assert through.model_fingerprint == remote.fingerprint is not None


def test_a_second_session_reads_the_signature_cache_after_one_probe(serve, digits_refset):
    recorder = Recorder(model_responder(make_cnn(0), input_shape=SHAPE))
    url = serve(recorder)
    config = ZestConfig(num_samples=40, device="cpu")
    first = compute_signature(EndpointModel(url, **FAST), digits_refset, config)
    queried = len(recorder.posts)
    again = compute_signature(EndpointModel(url, **FAST), digits_refset, config)
    assert recorder.posts[queried:] == [len(probe_batch(SHAPE))]  # the probe, then the cache
    assert np.array_equal(first.matrix(), again.matrix())


def test_class_names_may_come_with_the_answers(serve):
    remote = EndpointModel(serve(answering(lambda b: {"scores": rows(b, 2), "class_names": ["cat", "dog"]})), **FAST)
    assert remote.class_names is None
    remote(images(1))
    assert remote.class_names == ["cat", "dog"]


def test_the_engine_checks_the_input_shape_from_info(serve, digits_refset):
    url = serve(answering(lambda b: {"scores": rows(b, 3)}, info={"input_shape": [3, 32, 32]}))
    remote = EndpointModel(url, **FAST)
    with pytest.raises(ModelInputError, match=r"expects inputs of shape \(3, 32, 32\)"):
        compute_signature(remote, digits_refset, ZestConfig(num_samples=40, device="cpu"), cache=False)


def test_serve_model_answers_info_and_shuts_down():
    server, url = serve_model(make_cnn(0), input_shape=SHAPE, model_id="cnn-v1", outputs="logits")
    with server:
        remote = load_endpoint(url, max_batch=8, **FAST)
        assert (remote.model_id, remote.max_batch, remote.source) == ("cnn-v1", 8, f"endpoint {url}")
    with pytest.raises(EndpointError, match="connection failed"):
        EndpointModel(url, retries=0)


# ----------------------------------------------------------------------------- fingerprints


def test_fingerprint_follows_the_model_id(serve):
    info = {"model_id": "v1", "input_shape": list(SHAPE)}
    recorder = Recorder(answering(lambda b: {"scores": rows(b, 3)}, info=info))
    url = serve(recorder)
    first = EndpointModel(url, **FAST).fingerprint
    assert EndpointModel(url, **FAST).fingerprint == first
    info["model_id"] = "v2"  # redeployed at the same URL
    assert EndpointModel(url, **FAST).fingerprint != first
    assert recorder.posts == []  # a model_id needs no probe


def test_fingerprint_without_model_id_probes_the_scores(serve):
    deployed = [model_responder(make_cnn(0), input_shape=SHAPE)]
    url = serve(lambda *request: deployed[0](*request))
    first = EndpointModel(url, **FAST).fingerprint
    assert first is not None and EndpointModel(url, **FAST).fingerprint == first
    other_url = serve(model_responder(make_cnn(0), input_shape=SHAPE))
    assert EndpointModel(other_url, **FAST).fingerprint != first
    deployed[0] = model_responder(make_cnn(1), input_shape=SHAPE)  # redeployed without a model_id
    assert EndpointModel(url, **FAST).fingerprint != first


def test_no_fingerprint_without_model_id_or_input_shape(serve):
    assert EndpointModel(serve(model_responder(make_cnn(0))), **FAST).fingerprint is None


# ----------------------------------------------------------------------------- transport failures


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_errors_are_retried(serve, status):
    model = make_cnn(0)
    recorder = Recorder(model_responder(model, input_shape=SHAPE), fail=2, status=status)
    remote = EndpointModel(serve(recorder), **FAST)
    batch = images(2)
    assert torch.allclose(remote(batch), local_scores(model, batch), rtol=1e-6, atol=1e-6)
    assert recorder.posts == [2, 2, 2]


def test_retries_give_up_with_the_count_and_the_last_error(serve):
    recorder = Recorder(model_responder(make_cnn(0), input_shape=SHAPE), fail=10)
    remote = EndpointModel(serve(recorder), **FAST)
    with pytest.raises(EndpointError, match=r"3 attempts \(retries=2\).*HTTP 503 Service Unavailable.*overloaded"):
        remote(images(1))
    assert len(recorder.posts) == 3


@pytest.mark.parametrize("status, reason", [(400, "Bad Request"), (401, "Unauthorized"), (404, "Not Found")])
def test_client_errors_are_not_retried(serve, status, reason):
    recorder = Recorder(model_responder(make_cnn(0), input_shape=SHAPE), fail=10, status=status)
    remote = EndpointModel(serve(recorder), **FAST)
    with pytest.raises(EndpointError, match=rf"HTTP {status} {reason}: .*overloaded"):
        remote(images(1))
    assert recorder.posts == [1]


def test_the_reference_server_refuses_wrong_images_with_400(serve):
    recorder = Recorder(model_responder(make_cnn(0), input_shape=SHAPE))
    remote = EndpointModel(serve(recorder), **FAST)
    with pytest.raises(EndpointError, match=r"HTTP 400 .*takes images of shape \[1, 28, 28\]"):
        remote(torch.zeros(2, 3, 28, 28))
    assert recorder.posts == [2]


def test_a_failing_model_is_a_500_with_its_error(serve):
    def broken(batch: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of memory on the server")

    remote = EndpointModel(serve(model_responder(broken)), **FAST)
    with pytest.raises(EndpointError, match=r"3 attempts.*HTTP 500 .*RuntimeError: out of memory on the server"):
        remote(images(1))


def test_endpoint_down_names_attempts_and_last_error():
    server, url = serve_responder(answering(lambda b: {"scores": rows(b, 3)}))
    server.shutdown()
    with pytest.raises(EndpointError, match=rf"endpoint {re.escape(url)}: .*3 attempts.*ConnectionRefusedError"):
        EndpointModel(url, **FAST)


def test_timeout_names_the_timeout(serve):
    release = threading.Event()

    def slow(batch: np.ndarray) -> dict:
        release.wait(timeout=5)
        return {"scores": rows(batch, 3)}

    remote = EndpointModel(serve(answering(slow)), timeout=0.2, retries=0)
    try:
        with pytest.raises(EndpointError, match=r"after 1 attempt .*timed out after 0\.2 s"):
            remote(images(1))
    finally:
        release.set()


def test_error_messages_leave_out_the_query_string():
    server, url = serve_responder(answering(lambda b: {"scores": rows(b, 3)}))
    server.shutdown()
    with pytest.raises(EndpointError) as caught:
        EndpointModel(f"{url}/predict?token=s3cret", retries=0)
    assert "s3cret" not in str(caught.value) and f"{url}/predict?…" in str(caught.value)


# ----------------------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    "reply, problem",
    [
        pytest.param(lambda b: b"{not json", "not valid JSON", id="malformed-json"),
        pytest.param(lambda b: {"logits": rows(b, 3)}, 'no "scores" field', id="missing-scores"),
        pytest.param(lambda b: {"scores": "high"}, "list of rows", id="scores-not-rows"),
        pytest.param(lambda b: {"scores": rows(b, 3)[1:]}, "3 rows of scores for a batch of 4", id="too-few-rows"),
        pytest.param(lambda b: {"scores": rows(b, 3) * 2}, "8 rows of scores for a batch of 4", id="too-many-rows"),
        pytest.param(
            lambda b: {"scores": [[0.0] * (3 + i % 2) for i in range(len(b))]}, r"ragged.*\[3, 4\]", id="ragged"
        ),
        pytest.param(lambda b: {"scores": rows(b, 0)}, "empty rows", id="empty-rows"),
        pytest.param(lambda b: {"scores": rows(b, 3, "x")}, "12 non-numeric scores, e.g. 'x'", id="strings"),
        pytest.param(lambda b: {"scores": rows(b, 3, None)}, "non-numeric scores, e.g. None", id="nulls"),
        pytest.param(lambda b: {"scores": rows(b, 3, float("nan"))}, "12 NaN or infinite", id="nan"),
        pytest.param(lambda b: {"scores": rows(b, 3, float("-inf"))}, "12 NaN or infinite", id="inf"),
        pytest.param(lambda b: {"scores": rows(b, 3), "class_names": ["a"]}, "names 1 classes, but the scores have 3",
                     id="class-names-count"),
    ],
)
def test_malformed_answers_are_reported_and_not_retried(serve, reply, problem):
    recorder = Recorder(answering(reply))
    url = serve(recorder)
    with pytest.raises(EndpointError, match=rf"endpoint {re.escape(url)}: .*{problem}"):
        EndpointModel(url, **FAST)(images(4))
    assert recorder.posts == [4]


def test_class_count_must_match_info(serve):
    url = serve(answering(lambda b: {"scores": rows(b, 3)}, info={"class_names": ["a", "b"]}))
    remote = EndpointModel(url, **FAST)
    with pytest.raises(EndpointError, match="3 classes, but 2 in /info's class_names"):
        remote(images(1))


def test_class_count_must_match_earlier_answers(serve):
    widths = itertools.count(3)
    remote = EndpointModel(serve(answering(lambda b: {"scores": rows(b, next(widths))})), max_batch=2, **FAST)
    with pytest.raises(EndpointError, match="4 classes, but 3 in earlier answers"):
        remote(images(4))


@pytest.mark.parametrize(
    "info, problem",
    [
        ([1, 2], "/info: expected a JSON object"),
        ({"input_shape": [28, 28]}, r"input_shape: expected \[C, H, W\]"),
        ({"outputs": "softmax"}, "outputs: expected one of"),
        ({"class_names": "abc"}, "class_names: expected a non-empty list of strings"),
        ({"model_id": {"v": 1}}, "model_id: expected a string"),
    ],
)
def test_malformed_info_is_reported(serve, info, problem):
    with pytest.raises(EndpointError, match=problem):
        EndpointModel(serve(answering(lambda b: {"scores": rows(b, 3)}, info=info)), **FAST)


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"url": "ftp://example.org/model"}, "http:// or https://"),
        ({"url": "http://"}, "http:// or https://"),
        ({"timeout": 0}, "timeout: expected a number > 0"),
        ({"retries": -1}, "retries: expected an integer ≥ 0"),
        ({"max_batch": 0}, "max_batch: expected an integer ≥ 1"),
        ({"backoff": -0.1}, "backoff: expected a number ≥ 0"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(kwargs, problem):
    kwargs = {"url": "http://127.0.0.1:9/", **kwargs}
    with pytest.raises(ValueError, match=problem):
        EndpointModel(**kwargs)


@pytest.mark.parametrize(
    "request_body, problem",
    [
        ([], "request body: expected a JSON object"),
        ({"images": "", "shape": [0, 1, 1, 1], "dtype": "float64"}, '"dtype": expected "float32"'),
        ({"images": "", "shape": [1, 1, 1], "dtype": "float32"}, r'"shape": expected \[B, C, H, W\]'),
        ({"images": "***", "shape": [1, 1, 1, 1], "dtype": "float32"}, '"images": expected a base64 string'),
        ({"images": "AAAA", "shape": [1, 1, 1, 2], "dtype": "float32"}, r"expected 8 bytes \(shape \[1, 1, 1, 2\] in float32\), got 3"),
    ],
)
def test_decode_batch_names_the_bad_field(request_body, problem):
    with pytest.raises(ValueError, match=problem):
        decode_batch(request_body)


# ----------------------------------------------------------------------------- the timeout bounds the whole request


class TricklingServer:
    """A raw HTTP server on 127.0.0.1 that sends every answer one byte at a time, ``interval`` s apart.

    Each byte arrives well within any per-read socket timeout, so only a deadline on the whole
    request stops the client (issue 9, item 7). ``where`` picks what trickles: the headers or the
    body. The serving thread stops when the client hangs up, on ``stop()``, or after the answer's
    ~140 bytes (7 s).
    """

    def __init__(self, where: str, interval: float = 0.05) -> None:
        import socket

        self.where, self.interval = where, interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        body = json.dumps({"class_names": [f"c{i}" for i in range(5)]}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        fast, slow = (b"", head + body) if self.where == "headers" else (head, body)
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)  # the request
                connection.sendall(fast)
                for byte in slow:
                    if self.stopped.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up: what the deadline should make it do

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("where", ["headers", "body"])
def test_the_timeout_bounds_the_whole_request_not_each_read(where):
    import time

    server = TricklingServer(where)
    try:
        started = time.monotonic()
        with pytest.raises(EndpointError, match=r"timed out after 1 s"):
            EndpointModel(server.url, timeout=1.0, retries=0)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert elapsed < 1.0 + 1.5, f"a 1 s timeout held the client for {elapsed:.1f} s"
    assert not server.thread.is_alive()


@pytest.mark.parametrize(
    "reply, problem",
    [
        pytest.param(lambda b: (200, b"{not json"), "not valid JSON", id="malformed-json"),
        pytest.param(lambda b: (400, b'{"error": "bad images"}'), "HTTP 400 Bad Request", id="http-400"),
        pytest.param(lambda b: (503, b'{"error": "overloaded"}'), "HTTP 503 Service Unavailable", id="http-503"),
        pytest.param(lambda b: (200, json.dumps({"scores": rows(b, 3, float("nan"))}).encode()), "NaN",
                     id="nan"),
    ],
)
def test_a_protocol_error_on_the_first_batch_gets_no_shape_hint(serve, digits_refset, reply, problem):
    """Issue 9, item 7: the hint "Does the model take 1-channel 28×28 images?" is for shape failures only."""

    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "GET":
            return 404, b"{}"
        return reply(decode_batch(json.loads(body)))

    remote = EndpointModel(serve(respond), timeout=5.0, retries=1, backoff=0.01)
    with pytest.raises(EndpointError, match=problem) as caught:
        compute_signature(remote, digits_refset, ZestConfig(num_samples=40, device="cpu"), cache=False)
    assert "Does the model take" not in str(caught.value)
    assert "endpoint http://127.0.0.1:" in str(caught.value)
