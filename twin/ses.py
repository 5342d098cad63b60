"""SES v2 as the twin emulates it: identities, the 40 MB limit, the sending quota, and an outbox.

moto checks verified identities, at most 50 recipients and address syntax, but not quotas or size;
the twin adds both, and writes every accepted email to the outbox as an ``.eml`` file holding the
bytes exactly as SES received them (plus one line per email in ``index.jsonl`` with the envelope).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ses.models import RawMessage, ses_backends
from moto.ses.utils import get_random_message_id
from moto.sesv2 import urls as sesv2_urls
from moto.sesv2.responses import SESV2Response

from stepmail.core.message import MAX_RECIPIENTS
from stepmail.core.mime import MAX_EMAIL_BYTES

#: What GetAccount reports when the twin enforces no quota (SES's largest standard rate is far lower).
UNLIMITED_SEND_RATE = 10_000


class TooManyRequestsError(JsonRESTError):
    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", message)


class MessageRejected(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("MessageRejected", message)


class SendingRate:
    """A token bucket: SES's maximum send rate, counted per recipient, with one second of burst."""

    def __init__(self, per_second: float | None) -> None:
        self.per_second = per_second
        self._tokens = per_second or 0.0
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def change(self, per_second: float | None) -> None:
        """A new quota, at once (as SES raises or lowers an account's)."""
        with self._lock:
            self.per_second = per_second
            self._tokens = min(self._tokens, per_second or 0.0)

    def take(self, recipients: int) -> bool:
        if not self.per_second:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.per_second, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            if self._tokens < recipients:
                return False
            self._tokens -= recipients
            return True


@dataclass(frozen=True)
class SentEmail:
    message_id: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    raw: bytes
    sent_at: datetime
    configuration_set: str | None = None
    path: Path | None = None

    @property
    def recipients(self) -> list[str]:
        return self.to + self.cc + self.bcc


@dataclass
class TwinSes:
    """The twin's SES: what it accepts, how fast, and where accepted mail goes."""

    account_id: str
    region: str
    outbox: Path | None = None
    rate: SendingRate = field(default_factory=lambda: SendingRate(None))
    sent: list[SentEmail] = field(default_factory=list)
    throttled: int = 0
    #: What GetAccount reports besides the rate (``stepmail doctor`` reads them).
    production_access: bool = True
    sending_enabled: bool = True
    max_24_hour_send: int = 50_000
    on_accept: Any = None  # called with each accepted SentEmail (the mailbox simulator, twin/simulator.py)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send_raw(self, params: dict[str, Any]) -> str:
        raw = base64.b64decode(params["Content"]["Raw"]["Data"])
        destination = params.get("Destination") or {}
        to, cc, bcc = (
            list(destination.get(key, [])) for key in ("ToAddresses", "CcAddresses", "BccAddresses")
        )
        sender = params.get("FromEmailAddress") or ""
        if len(raw) > MAX_EMAIL_BYTES:
            raise MessageRejected(f"Message length is {len(raw)} bytes; the maximum is {MAX_EMAIL_BYTES}.")
        if not to + cc + bcc:
            raise MessageRejected("No recipients.")
        if len(to + cc + bcc) > MAX_RECIPIENTS:
            raise MessageRejected(f"Too many recipients: at most {MAX_RECIPIENTS}.")
        if not self._backend()._is_verified_address(parseaddr(sender)[1]):
            raise MessageRejected(
                f"Email address is not verified. The following identities failed the check: {sender}"
            )
        if not self.rate.take(len(to + cc + bcc)):
            with self._lock:
                self.throttled += 1
            raise TooManyRequestsError("Maximum sending rate exceeded.")
        return self._accept(sender, to, cc, bcc, raw, params.get("ConfigurationSetName")).message_id

    def _backend(self) -> Any:
        return ses_backends[self.account_id][self.region]

    def account(self) -> dict[str, Any]:
        """SES v2 GetAccount as the twin answers it (moto has none): the quota the twin enforces now.

        Change ``rate.per_second`` (or call :meth:`SendingRate.change`) while a burst runs to see the
        pipeline follow a quota raised or lowered without a redeploy.
        """
        with self._lock:
            sent = sum(len(email.recipients) for email in self.sent)
        return {
            "SendQuota": {
                "MaxSendRate": float(self.rate.per_second or UNLIMITED_SEND_RATE),
                "Max24HourSend": float(self.max_24_hour_send),
                "SentLast24Hours": float(sent),
            },
            "SendingEnabled": self.sending_enabled,
            "ProductionAccessEnabled": self.production_access,
            "EnforcementStatus": "HEALTHY",
            "DedicatedIpAutoWarmupEnabled": False,
        }

    def _accept(
        self,
        sender: str,
        to: list[str],
        cc: list[str],
        bcc: list[str],
        raw: bytes,
        configuration_set: str | None,
    ) -> SentEmail:
        message_id = get_random_message_id()
        now = datetime.now(UTC)
        path = self._write(message_id, raw, now) if self.outbox else None
        email = SentEmail(message_id, sender, to, cc, bcc, raw, now, configuration_set, path)
        backend = self._backend()
        with self._lock:
            backend.sent_messages.append(
                RawMessage(message_id, sender, to + cc + bcc, raw.decode("ascii", "replace"))
            )
            backend.sent_message_count += len(email.recipients)
            self.sent.append(email)
            if self.outbox:
                self._index(email)
        if self.on_accept:
            self.on_accept(email)
        return email

    def _write(self, message_id: str, raw: bytes, now: datetime) -> Path:
        assert self.outbox is not None
        path = self.outbox / f"{now:%Y%m%dT%H%M%S%f}-{message_id}.eml"
        path.write_bytes(raw)
        return path

    def _index(self, email: SentEmail) -> None:
        assert self.outbox is not None
        line = {
            "messageId": email.message_id,
            "from": email.sender,
            "to": email.to,
            "cc": email.cc,
            "bcc": email.bcc,
            "sentAt": email.sent_at.isoformat(),
            "file": email.path.name if email.path else None,
            "configurationSet": email.configuration_set,
        }
        with (self.outbox / "index.jsonl").open("a", encoding="utf-8") as index:
            index.write(json.dumps(line) + "\n")


_ses: TwinSes | None = None


def install(ses: TwinSes) -> None:
    """Route SES v2 raw sends through ``ses`` (idempotent; the last twin started wins)."""
    global _ses
    first = _ses is None
    _ses = ses
    if not first:
        return
    original = SESV2Response.send_email

    def send_email(self: SESV2Response) -> str:
        params = json.loads(self.body)
        if "Raw" not in (params.get("Content") or {}) or _ses is None:
            return original(self)
        return json.dumps({"MessageId": _ses.send_raw(params)})

    def get_account(self: SESV2Response) -> str:
        if _ses is None:
            raise NotImplementedError("GetAccount needs a running twin")
        return json.dumps(_ses.account())

    SESV2Response.send_email = send_email  # type: ignore[method-assign]
    SESV2Response.get_account = get_account  # type: ignore[attr-defined]
    # moto's catch-all "/v2/.*" is a literal path to its server's router: route GetAccount itself
    # (read when the server first builds its SES v2 application, after this).
    sesv2_urls.url_paths["{0}/v2/email/account$"] = SESV2Response.dispatch
