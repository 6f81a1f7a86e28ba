"""HTTP requests whose timeout bounds the whole request, not each socket read.

A socket timeout limits one ``recv``; a server that sends one byte a second never trips it and
can hold a client for as long as it likes. Here every request carries a deadline: the connection
gets the time left as its connect timeout, and every later send and read of the socket (headers
and body alike, TLS included) first sets the socket's timeout to the time left, and fails at once
when none is. The requests still go through ``urllib.request``, so proxies from the environment
are honoured as before.
"""
from __future__ import annotations

import functools
import http.client
import io
import socket
import time
import urllib.request
from typing import Any

from ..._shared.limits import RESPONSE_BYTES

DEADLINE_ATTRIBUTE = "zest_deadline"  # where a Request carries its deadline (time.monotonic() seconds)


def open_before(
    opener: urllib.request.OpenerDirector, request: urllib.request.Request, deadline: float
) -> tuple[int, bytes]:
    """(status, body) of ``request``, all of it done before ``deadline`` (a ``time.monotonic()`` value).

    Parameters
    ----------
    opener : OpenerDirector
        One from :func:`build_deadline_opener`.
    request : Request
    deadline : float

    Raises
    ------
    TimeoutError
        Directly, or as the reason of a ``urllib.error.URLError``, when the deadline passes.
    urllib.error.HTTPError
        For an HTTP error status; its body is read under the same deadline.
    OSError, http.client.HTTPException
        For any other failure of the connection.
    """
    setattr(request, DEADLINE_ATTRIBUTE, deadline)
    with opener.open(request, timeout=_time_left(deadline)) as response:
        return response.status, read_bounded(response)


def read_bounded(response: Any, limit: int | None = None) -> bytes:
    """A response body read in chunks of at most 1 MiB, refused as soon as it passes ``limit`` bytes.

    ``limit`` defaults to :data:`zest_core._shared.limits.RESPONSE_BYTES`; a declared Content-Length
    above it is refused before anything is read.

    Raises
    ------
    ResponseTooLarge
    """
    limit = RESPONSE_BYTES.value() if limit is None else limit
    declared = response.headers.get("Content-Length") if getattr(response, "headers", None) is not None else None
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"a declared body of {int(declared):,} bytes", limit)
    chunks, total = [], 0
    while True:
        chunk = response.read(min(2**20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise ResponseTooLarge(f"a body of more than {limit:,} bytes", limit)
        chunks.append(chunk)


class ResponseTooLarge(Exception):
    """An answer larger than the response limit (never retried: the same server would send it again)."""

    def __init__(self, got: str, limit: int) -> None:
        super().__init__(str(RESPONSE_BYTES.refuse(got, "the answer")).removeprefix("the answer: "))
        self.limit = limit


class RedirectRefused(Exception):
    """A 3xx answer: the client follows no redirect (never retried)."""

    def __init__(self, code: int, location: str) -> None:
        super().__init__(f"HTTP {code} redirect to {location!r} refused: zest follows no redirects (an endpoint "
                         "could send queries, or the answers' origin, elsewhere); give the final URL instead")
        self.code, self.location = code, location


def build_deadline_opener() -> urllib.request.OpenerDirector:
    """A urllib opener (proxies from the environment included) whose requests honour their deadline and never
    follow a redirect."""
    return urllib.request.build_opener(_DeadlineHTTPHandler(), _DeadlineHTTPSHandler(), _NoRedirectHandler())


def _time_left(deadline: float) -> float:
    """Seconds left before ``deadline``; a TimeoutError when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's deadline passed")
    return left


class _DeadlineSocket:
    """A connected socket whose sends and reads all end by one deadline (the rest is delegated)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def sendall(self, data: Any) -> None:
        # Since Python 3.5 a socket timeout bounds the whole sendall, not each chunk of it.
        self._sock.settimeout(_time_left(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        """For "rb" (how http.client reads a response): a buffered reader bounded by the time left."""
        if mode != "rb":
            return self._sock.makefile(mode, *args, **kwargs)
        # Built on the socket's own unbuffered reader, so that closing the socket waits for the reader.
        return io.BufferedReader(_DeadlineReader(self._sock, self._sock.makefile("rb", buffering=0), self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    """The raw reader of a :class:`_DeadlineSocket`: each read first sets the socket timeout to the time left."""

    def __init__(self, sock: socket.socket, raw: io.RawIOBase, deadline: float) -> None:
        super().__init__()
        self._sock, self._raw, self._deadline = sock, raw, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_time_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineConnection:
    """Mixin for http.client connections: connect within the time left, then wrap the socket."""

    sock: Any
    timeout: float | None

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg] - the http.client class's own
        self._deadline = deadline

    def connect(self) -> None:
        self.timeout = _time_left(self._deadline)  # connect, proxy tunnel and TLS handshake
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock, self._deadline)


class _DeadlineHTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connection_class(_DeadlineHTTPConnection, req), req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        # The stdlib handler's defaults (the default SSL context, hostname checks), with the deadline added.
        return self.do_open(_connection_class(_DeadlineHTTPSConnection, req), req, context=self._context)


class _NoRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        """Refuse every redirect, whatever its target: nothing is sent to, or read from, another URL."""
        raise RedirectRefused(code, newurl)


def _connection_class(cls: type, req: urllib.request.Request) -> Any:
    """``cls`` bound to the request's deadline; a request without one gets its socket timeout from now."""
    deadline = getattr(req, DEADLINE_ATTRIBUTE, None)
    if deadline is None:
        deadline = time.monotonic() + (req.timeout if isinstance(req.timeout, (int, float)) else 1e9)
    return functools.partial(cls, deadline=deadline)
