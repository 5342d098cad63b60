"""The console's WSGI application: the page, its static files and the JSON API it reads.

Mounted in front of moto's application (:func:`middleware`), so the AWS endpoint and the console
share the twin's one loopback port: ``/console`` is the page, ``/console/api/...`` the API, anything
else goes to moto.  The API reads the twin in process: moto's Step Functions backend for runs and
their history, ``twin.ses.sent`` for the outbox, the DLQ through SQS.

Only its user can drive it (:class:`Guard`): every request must name the twin's own loopback address
and port as its ``Host`` (a DNS-rebinding page names its own host), a request carrying an ``Origin``
must come from the console's own origin, and a state-changing request must also be JSON and carry the
token the page was served with (a page of another origin can read neither the page nor the token).
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from infra.config import StepmailConfig
from producer.deployment import Deployment
from stepmail.core.message import SenderPolicy
from twin import server
from twin.console import dead_letters, graph, outbox, runs
from twin.ses import TwinSes


class ConsoleSource(Protocol):
    """What the console reads of a twin (``twin.twin.LocalTwin`` is one)."""

    config: StepmailConfig
    #: None until the twin has started.
    info: Deployment | None
    ses: TwinSes

    def client(self, service: str) -> Any: ...


_log = logging.getLogger(__name__)
PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
#: The email's HTML runs in a sandboxed frame: no scripts, no network, no same-origin access.
_HTML_POLICY = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: The header a state-changing request carries the page's token in (a custom header: no form can send it).
TOKEN_HEADER = "X-Stepmail-Token"  # noqa: S105 - a header name, not a secret
#: Where index.html receives the token.
_TOKEN_PLACEHOLDER = b"__STEPMAIL_CONSOLE_TOKEN__"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_SAFE_METHODS = frozenset({"GET", "HEAD"})

_ROUTES = Map(
    [
        Rule("/console", endpoint="page"),
        Rule("/console/", endpoint="page"),
        Rule("/console/static/<path:name>", endpoint="static"),
        Rule("/console/api/graph", endpoint="graph"),
        Rule("/console/api/executions", endpoint="executions"),
        Rule("/console/api/executions/<path:arn>", endpoint="execution"),
        Rule("/console/api/outbox", endpoint="outbox"),
        Rule("/console/api/outbox/<message_id>", endpoint="email"),
        Rule("/console/api/outbox/<message_id>/html", endpoint="email_html"),
        Rule("/console/api/outbox/<message_id>/attachments/<int:index>", endpoint="attachment"),
        Rule("/console/api/dlq", endpoint="dlq"),
        Rule("/console/api/dlq/redrive", endpoint="redrive", methods=["POST"]),
    ]
)


def middleware(twin: ConsoleSource) -> Callable[[Any], Any]:
    """A WSGI layer for :class:`twin.twin.TwinServer`: the console in front of ``app``."""

    def layer(app: Any) -> Any:
        console = Console(twin)

        def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == PREFIX or path.startswith(PREFIX + "/"):
                return console(environ, start_response)
            served: Iterable[bytes] = app(environ, start_response)
            return served

        return dispatch

    return layer


class Guard:
    """Who may use the console: its own page, on the twin's own loopback address and port.

    Parameters
    ----------
    token
        The secret the page is served with and sends back on every state-changing request.
    """

    def __init__(self, token: str) -> None:
        self.token = token

    def check(self, request: Request) -> None:
        """Refuse (403) a request the console's own page did not send.

        Raises
        ------
        Forbidden
            A foreign ``Host`` (DNS rebinding), a foreign ``Origin``, or a state-changing request that
            is not JSON or lacks the page's token.
        """
        port = request.environ.get("SERVER_PORT", "")
        hosts = {f"{name}:{port}" for name in _LOOPBACK_HOSTS}
        host = request.headers.get("Host", "")
        if host not in hosts:
            raise Forbidden(f"the console answers only to {' or '.join(sorted(hosts))}, not {host!r}")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":
            raise Forbidden(f"requests from {origin!r} are refused: only the console's own page may call it")
        if request.method in _SAFE_METHODS:
            return
        if origin is None:
            raise Forbidden("a state-changing request must name its Origin")
        if request.mimetype != "application/json":
            raise Forbidden("a state-changing request must be application/json")
        sent = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), self.token.encode()):
            raise Forbidden(f"a state-changing request must carry the page's {TOKEN_HEADER}")


class Console:
    """The console for one running twin."""

    def __init__(self, twin: ConsoleSource, token: str | None = None) -> None:
        self.twin = twin
        self.guard = Guard(token or secrets.token_urlsafe(32))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            self.guard.check(request)
            endpoint, values = _ROUTES.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request, **values)
        except HTTPException as error:
            response = _json({"error": error.name, "message": error.description}, status=error.code or 500)
        except Exception as error:  # the page shows it; the twin keeps serving
            _log.exception("console request failed: %s", request.path)
            response = _json({"error": type(error).__name__, "message": str(error)}, status=500)
        body: Iterable[bytes] = response(environ, start_response)
        return body

    # ------------------------------------------------------------------ page
    def _page(self, request: Request) -> Response:
        page = (STATIC / "index.html").read_bytes().replace(_TOKEN_PLACEHOLDER, self.guard.token.encode())
        # no-store: the token lives in the page; a page of another origin cannot frame it.
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
        return Response(page, content_type="text/html; charset=utf-8", headers=headers)

    def _static(self, request: Request, name: str) -> Response:
        file = (STATIC / name).resolve()
        if STATIC.resolve() not in file.parents or not file.is_file():
            raise NotFound(f"no static file {name} (vendor files are copied by `make setup`)")
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return Response(file.read_bytes(), content_type=content_type, headers={"Cache-Control": "no-cache"})

    # ------------------------------------------------------------------ executions
    def _graph(self, request: Request) -> Response:
        return _json(graph.build_graph(self._definition()))

    def _executions(self, request: Request) -> Response:
        status, text = request.args.get("status") or None, request.args.get("q") or None
        summaries = [runs.summarize(execution.to_describe_output()) for execution in self._runs()]
        summaries.sort(key=lambda summary: summary["startDate"], reverse=True)
        shown = [summary for summary in summaries if runs.matches(summary, status=status, text=text)]
        counts = {name: sum(1 for s in summaries if s["status"] == name) for name in runs.STATUSES}
        return _json({"executions": shown, "total": len(summaries), "counts": counts})

    def _execution(self, request: Request, arn: str) -> Response:
        execution = next((run for run in self._runs() if run.exec_arn == arn), None)
        if execution is None:
            raise NotFound(f"no execution {arn} (the twin keeps the latest 2,000)")
        events = list(execution.to_history_output()["events"])
        top_level = set(self._definition()["States"])
        return _json(runs.detail(execution.to_describe_output(), events, top_level))

    # ------------------------------------------------------------------ outbox
    def _outbox(self, request: Request) -> Response:
        emails = [outbox.listing(email) for email in reversed(self.twin.ses.sent)]
        return _json({"emails": emails})

    def _email(self, request: Request, message_id: str) -> Response:
        return _json(outbox.rendered(self._sent(message_id)))

    def _email_html(self, request: Request, message_id: str) -> Response:
        html = outbox.html_part(self._sent(message_id))
        if html is None:
            raise NotFound("this email has no HTML part")
        return Response(
            html, content_type="text/html; charset=utf-8", headers={"Content-Security-Policy": _HTML_POLICY}
        )

    def _attachment(self, request: Request, message_id: str, index: int) -> Response:
        found = outbox.attachment(self._sent(message_id), index)
        if found is None:
            raise NotFound(f"no attachment {index}")
        filename, content_type, data = found
        response = Response(data, content_type=content_type)
        response.headers.set("Content-Disposition", "attachment", filename=filename)
        return response

    # ------------------------------------------------------------------ dead letters
    def _dlq(self, request: Request) -> Response:
        return _json(dead_letters.listing(self._dead_letter_queue()))

    def _redrive(self, request: Request) -> Response:
        selection = dead_letters.selection(request.get_json(silent=True))
        if isinstance(selection, str):
            raise BadRequest(selection)
        result = dead_letters.redrive(self._dead_letter_queue(), selection, policy=self._sender_policy())
        return _json({"redriven": result})

    def _dead_letter_queue(self) -> dead_letters.TwinQueues:
        info = self._info()
        return dead_letters.TwinQueues(
            self.twin.client("sqs"), self.twin.client("dynamodb"), info.dlq_url, info.queue_url, info.table
        )

    # ------------------------------------------------------------------ the twin
    def _info(self) -> Deployment:
        if self.twin.info is None:
            raise NotFound("the twin is still starting")
        return self.twin.info

    def _sender_policy(self) -> SenderPolicy:
        config = self.twin.config
        return SenderPolicy(
            config.sender_identities, config.default_sender, config.sendable_configuration_sets
        )

    def _definition(self) -> dict[str, Any]:
        definition: dict[str, Any] = json.loads(self._state_machine().definition)
        return definition

    def _state_machine(self) -> Any:
        info = self._info()
        machine = server.state_machine(info.region, info.state_machine_arn)
        if machine is None:
            raise NotFound("the twin's state machine is gone")
        return machine

    def _runs(self) -> list[Any]:
        # A copy: the twin prunes the list while runs start.
        return list(self._state_machine().executions)

    def _sent(self, message_id: str) -> Any:
        for email in list(self.twin.ses.sent):
            if email.message_id == message_id:
                return email
        raise NotFound(f"no sent email {message_id}")


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status=status, content_type="application/json")
