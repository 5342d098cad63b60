"""Faults the twin can inject, to prove that every message still ends in exactly one place.

A fault names a *point* in the pipeline and an *effect*; it fires every time, ``times`` times, or with
a ``probability`` (from a seeded RNG, so a failing schedule can be replayed), optionally only for
requests that mention ``match`` (e.g. a mailKey).  Three places inject them:

* a WSGI layer in front of moto answers AWS requests with the error AWS would send (throttling,
  5xx, SES rejections...) — so the interpreter's service integrations and the handlers' SDK calls
  meet them exactly as they would on AWS;
* botocore event hooks on the handlers' clients raise network timeouts, before the request reaches
  the service or *after* the service accepted it (SES's duplicate window);
* wrappers around the sender and the starter crash or hang them.

Points and effects (``--fault point:effect[:times=N][:p=0.3][:match=text][:delay=S]`` on the CLI):

================  =================================================================================
ses.send          throttle, error5xx, reject, unverified, paused, timeout, timeout-after-accept
s3.head, s3.get   throttle (503 SlowDown), error5xx, hang (s3.head), timeout (s3.get)
dynamodb.acquire  throttle, error5xx   (PutItem: Acquire Lock)
dynamodb.read     throttle, error5xx, slow   (GetItem: Read Lock; slow: answered ``delay`` s late)
dynamodb.mark     throttle, error5xx   (UpdateItem: Mark Sent)
dynamodb.release  throttle, error5xx   (DeleteItem: Release Lock)
sender            crash, hang          (the sender Lambda dies before / while sending)
                  bloat, malformed     (it answers, without sending, an output over 256 KiB / one
                                        without the messageId the ASL reads: the run fails with
                                        States.DataLimitExceeded / States.Runtime, which no Catch sees)
starter           crash, double, die   (the starter dies mid-batch, half its runs started / the same
                                        batch reaches two starters at once / it dies before handling
                                        any record, as a timed-out or out-of-memory invocation does)
================  =================================================================================
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ReadTimeoutError

EFFECTS: dict[str, frozenset[str]] = {
    "ses.send": frozenset(
        {"throttle", "error5xx", "reject", "unverified", "paused", "timeout", "timeout-after-accept"}
    ),
    "s3.head": frozenset({"throttle", "error5xx", "hang"}),
    "s3.get": frozenset({"throttle", "error5xx", "timeout"}),
    "dynamodb.acquire": frozenset({"throttle", "error5xx"}),
    "dynamodb.read": frozenset({"throttle", "error5xx", "slow"}),
    "dynamodb.mark": frozenset({"throttle", "error5xx"}),
    "dynamodb.pace": frozenset({"throttle", "error5xx"}),
    "dynamodb.release": frozenset({"throttle", "error5xx"}),
    "sender": frozenset({"crash", "hang", "bloat", "malformed"}),
    "starter": frozenset({"crash", "double", "die"}),
}

#: Effects that happen in the network, on the client's side: the server never sees them.
CLIENT_EFFECTS = frozenset({"timeout", "timeout-after-accept"})

_DYNAMODB_POINTS = {
    "PutItem": "dynamodb.acquire",
    "GetItem": "dynamodb.read",
    "UpdateItem": "dynamodb.mark",
    "DeleteItem": "dynamodb.release",
}


class SenderCrashError(RuntimeError):
    """The sender Lambda's host died (an injected fault): not an error of the contract."""


class StarterCrashError(RuntimeError):
    """The starter Lambda died after starting its runs (an injected fault): SQS redelivers the batch."""


@dataclass
class Fault:
    point: str
    effect: str
    times: int | None = None
    probability: float = 1.0
    match: str = ""
    delay: float = 0.0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS.get(self.point, frozenset()):
            raise ValueError(f"unknown fault {self.point}:{self.effect}; see twin.faults for the list")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``point:effect[:times=N][:p=0.3][:match=text][:delay=S]``"""
        point, effect, *options = text.split(":")
        settings: dict[str, Any] = {}
        for option in options:
            name, _, value = option.partition("=")
            if name == "times":
                settings["times"] = int(value)
            elif name == "p":
                settings["probability"] = float(value)
            elif name in ("match", "delay"):
                settings[name] = value if name == "match" else float(value)
            else:
                raise ValueError(f"unknown fault option {name!r} in {text!r}")
        return cls(point, effect, **settings)


@dataclass
class FaultInjector:
    """The schedule: which faults are armed, and how often each has fired."""

    faults: list[Fault] = field(default_factory=list)
    seed: int = 0
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def add(self, *faults: Fault | str) -> None:
        with self._lock:
            self.faults.extend(Fault.parse(f) if isinstance(f, str) else f for f in faults)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def fire(self, point: str, subject: str = "", effects: frozenset[str] | None = None) -> Fault | None:
        """The fault that fires now at ``point`` for a request mentioning ``subject``, if any.

        ``effects`` restricts the faults considered (each injection place fires only its own kinds).
        """
        with self._lock:
            for fault in self.faults:
                if fault.point != point or (fault.match and fault.match not in subject):
                    continue
                if effects is not None and fault.effect not in effects:
                    continue
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                return fault
        return None

    def fired(self, point: str, effect: str | None = None) -> int:
        with self._lock:
            return sum(f.fired for f in self.faults if f.point == point and effect in (None, f.effect))

    # ------------------------------------------------------------------ server side: AWS's answers
    def middleware(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        """A WSGI layer that answers a matching AWS request with the error AWS would send."""

        def layer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            point = _point_of(environ)
            if point is None or not self.faults:
                return app(environ, start_response)
            body = _read_body(environ)
            subject = environ.get("PATH_INFO", "") + body.decode("utf-8", "replace")
            fault = self.fire(point, subject, EFFECTS[point] - CLIENT_EFFECTS)
            if fault is None:
                return app(environ, start_response)
            if fault.effect == "hang":  # the service sees the request late
                time.sleep(fault.delay or 30)
                return app(environ, start_response)
            if fault.effect == "slow":  # the service answers at once; the answer arrives late
                answer = list(app(environ, start_response))
                time.sleep(fault.delay or 30)
                return answer
            status, headers, payload = _error_response(point, fault.effect)
            start_response(status, headers)
            return [payload]

        return layer

    # ------------------------------------------------------------------ client side: the network
    def instrument(self, client: Any) -> Any:
        """Make ``client`` meet injected network timeouts (its service must be SES v2 or S3)."""
        events = client.meta.events
        events.register("before-send.sesv2.SendEmail", self._timeout_before("ses.send", "timeout"))
        events.register("after-call.sesv2.SendEmail", self._timeout_after("ses.send"))
        events.register("before-send.s3.GetObject", self._timeout_before("s3.get", "timeout"))
        return client

    def _timeout_before(self, point: str, effect: str) -> Callable[..., None]:
        def hook(request: Any = None, **_: Any) -> None:
            url = getattr(request, "url", "")
            if self.fire(point, url, frozenset({effect})) is not None:
                raise ReadTimeoutError(endpoint_url=url or point)

        return hook

    def _timeout_after(self, point: str) -> Callable[..., None]:
        def hook(http_response: Any = None, **_: Any) -> None:
            accepted = getattr(http_response, "status_code", 0) == 200
            if accepted and self.fire(point, "", frozenset({"timeout-after-accept"})) is not None:
                raise ReadTimeoutError(endpoint_url=point)  # SES has the email; the caller never hears

        return hook

    # ------------------------------------------------------------------ around the Lambdas
    def around_sender(self, function: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        def sender(payload: dict[str, Any]) -> Any:
            fault = self.fire("sender", json.dumps(payload.get("message", {})))
            if fault is not None and fault.effect in _SENDER_ANSWERS:
                return _SENDER_ANSWERS[fault.effect]
            if fault is not None and fault.effect == "hang":
                time.sleep(fault.delay or 30)  # past the task's timeout: the run has moved on
            if fault is not None:
                raise SenderCrashError(f"injected: sender {fault.effect}")
            return function(payload)

        return sender

    def around_starter(
        self, handler: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def starter(event: dict[str, Any]) -> dict[str, Any]:
            fault = self.fire("starter", json.dumps([r["body"] for r in event.get("Records", [])]))
            if fault is None:
                return handler(event)
            if fault.effect == "double":
                other = threading.Thread(target=handler, args=(event,), name="second-starter")
                other.start()
                response = handler(event)
                other.join()
                return response
            if fault.effect == "die":  # no record handled, no answer: the batch comes back whole
                raise StarterCrashError("injected: the starter died before handling its batch")
            # It dies mid-batch: the first half of the records' runs happen, the rest never start,
            # and no answer reaches the event source, so SQS delivers the whole batch again.
            records = event.get("Records", [])
            handler({**event, "Records": records[: max(1, len(records) // 2)]})
            raise StarterCrashError("injected: the starter died mid-batch")

        return starter


#: What a faulty sender answers instead of sending: a result over Step Functions' 256 KiB, and one
#: without the ``messageId`` that Render And Send's ResultSelector reads.
_SENDER_ANSWERS: dict[str, dict[str, Any]] = {
    "bloat": {"messageId": "injected-bloat", "padding": "x" * 262_144},
    "malformed": {"injected": "malformed"},
}


def _point_of(environ: dict[str, Any]) -> str | None:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scope = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    service = scope[3] if len(scope) > 3 else ""
    if service == "dynamodb":
        point = _DYNAMODB_POINTS.get(environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2])
        # Take A Send Slot is an UpdateItem too: on a second's counter ("rate#..."), not on a lock
        if point == "dynamodb.mark" and b'"rate#' in _read_body(environ):
            return "dynamodb.pace"
        return point
    if service == "s3" and environ.get("PATH_INFO", "").count("/") >= 2:
        return {"HEAD": "s3.head", "GET": "s3.get"}.get(environ.get("REQUEST_METHOD", ""))
    if service == "ses" and environ.get("PATH_INFO", "") == "/v2/email/outbound-emails":
        return "ses.send"
    return None


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for the application behind."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


_DYNAMODB_ERRORS = {
    "throttle": (
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "error5xx": (500, "InternalServerError", "Internal server error"),
}
_S3_ERRORS = {
    "throttle": (503, "SlowDown", "Please reduce your request rate."),
    "error5xx": (500, "InternalError", "We encountered an internal error. Please try again."),
}
_SES_ERRORS = {
    "throttle": (429, "TooManyRequestsException", "Maximum sending rate exceeded."),
    "error5xx": (500, "InternalServiceErrorException", "Internal service error."),
    "reject": (400, "MessageRejected", "Email address is on the suppression list."),
    "unverified": (400, "MailFromDomainNotVerifiedException", "Email address is not verified."),
    "paused": (400, "SendingPausedException", "Sending is paused for this account."),
}


def _error_response(point: str, effect: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The response AWS sends for this error (with the request id headers every AWS answer has)."""
    request_id = str(uuid.uuid4())
    if point.startswith("dynamodb."):
        status, code, message = _DYNAMODB_ERRORS[effect]
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
        return _status(status), headers, body.encode()
    if point.startswith("s3."):
        status, code, message = _S3_ERRORS[effect]
        headers = [
            ("Content-Type", "application/xml"),
            ("x-amz-request-id", request_id),
            ("x-amz-id-2", request_id),
        ]
        # A HEAD response has no body: the SDK reads the error from the status alone.
        xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return _status(status), headers, b"" if point == "s3.head" else xml.encode()
    status, code, message = _SES_ERRORS[effect]
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", code),
        ("x-amzn-RequestId", request_id),
    ]
    return _status(status), headers, json.dumps({"message": message}).encode()


def _status(code: int) -> str:
    reasons = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Slow Down"}
    return f"{code} {reasons[code]}"
