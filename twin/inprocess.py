"""The twin's own AWS calls, served in process: no socket, no HTTP, the same application.

Over loopback HTTP every call of the twin's own clients (the interpreter's service integrations, the
handlers' SDK clients, the event source's poller) costs a connection from the pool, a server thread,
and an HTTP request written and parsed on each side, with the GIL given up and fought for at every
step: it bounded the twin at a fraction of what the interpreter can run (``bench/twin_throughput.py``).

:class:`InProcessTransport` is a botocore ``before-send`` handler: it hands the signed request, as a
WSGI environ, to the very application the HTTP server serves (moto's, behind the twin's WSGI layers:
the fault injector, the console), in the calling thread, and returns the answer as botocore's
:class:`AWSResponse`.  Everything after the wire is unchanged: the fault layer decides for these calls
as for any other, the client-side fault hooks and botocore's parsing, retries and events still run.
External producers (another process, the aws CLI, the console in a browser) keep the HTTP endpoint.

What an in-process call does not have: a read timeout.  None of the twin's clients has one short
enough to matter (the shortest is 60 s; injected hangs last seconds, and the state machine's own
timeouts still apply, as moto's interpreter runs each task in a thread it can leave behind).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)

#: Set in the environ of every request served in process (the bench counts them apart).
IN_PROCESS_KEY = "stepmail.twin.in_process"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class InProcessTransport:
    """Serves the requests of the clients it is attached to with ``app``, in the calling thread."""

    def __init__(self) -> None:
        self.app: WsgiApp | None = None

    def attach(self, client: Any) -> Any:
        """Route ``client``'s requests in process (registered last: client-side fault hooks run first)."""
        client.meta.events.register_last("before-send", self.send)
        return client

    def send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        if self.app is None:
            raise RuntimeError("the twin's application is not running: start the twin first")
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers

        served = self.app(environ(request), start_response)
        try:
            body = b"".join(served)
        finally:
            close = getattr(served, "close", None)
            if close is not None:
                close()
        return AWSResponse(request.url, answer["status"], answer["headers"], MockRawResponse(body))


def environ(request: AWSPreparedRequest) -> dict[str, Any]:
    """The WSGI environ werkzeug's server would build for ``request`` (see its ``make_environ``)."""
    url = urlsplit(request.url)
    body = _body(request.body)
    target = url.path + (f"?{url.query}" if url.query else "")
    result: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme or "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": _wsgi_text(unquote(url.path)),
        "QUERY_STRING": _wsgi_text(url.query),
        "REQUEST_URI": _wsgi_text(target),
        "RAW_URI": _wsgi_text(target),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": url.hostname or "127.0.0.1",
        "SERVER_PORT": str(url.port or 80),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": url.netloc,
        "CONTENT_LENGTH": str(len(body)),
        IN_PROCESS_KEY: True,
    }
    headers = list(request.headers.items())
    dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
    preserved: dict[str, str] = {}
    for name, value in headers:
        key = environ_key_for_header(name)
        if "_" in name:  # as moto's server: only S3 metadata keeps one, never in place of a dashed one
            if not should_preserve_original_header_name(name) or key in dashed:
                continue
            preserved.setdefault(key, name)
        if key != "CONTENT_LENGTH" and name.lower() != "transfer-encoding":  # the body is whole
            result[key] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    result[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
    return result


def _body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray):
        return bytes(body)
    data = body.read()  # a file-like body (an S3 upload): botocore rewinds it on a retry
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _wsgi_text(text: str) -> str:
    """PEP 3333's native strings: UTF-8 bytes seen as latin-1 (werkzeug's ``_wsgi_encoding_dance``)."""
    return text.encode("utf-8").decode("latin-1")
