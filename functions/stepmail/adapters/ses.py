"""SES v2 as the mail transport: raw MIME content (40 MB limit; the v1 API allows only 10 MB)."""

from __future__ import annotations

import binascii
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from stepmail.adapters.aws_errors import NETWORK_ERRORS, error_code, error_message, status_code
from stepmail.core.addresses import redact_addresses
from stepmail.core.errors import (
    MessageRejectedError,
    SenderNotVerifiedError,
    SendingNotAuthorizedError,
    SendingPausedError,
    SesThrottledError,
    SesUnavailableError,
)

log = logging.getLogger(__name__)

_THROTTLED = {"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"}
_NOT_VERIFIED = {"MailFromDomainNotVerifiedException", "NotFoundException"}
_NOT_AUTHORIZED = {"AccessDeniedException", "AccessDenied"}
_PAUSED = {"AccountSuspendedException", "SendingPausedException"}
_REJECTED = {"MessageRejected", "BadRequestException", "InvalidParameterValue"}


#: No SDK retries: SES has no idempotency token, so a retry after a timeout could send the email twice,
#: and throttling is retried by the workflow with backoff and jitter (visible in the execution).
SES_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60
)


#: Sent as ``Content.Raw.Data`` in place of the email; its base64 is then replaced by the email's in the
#: serialized request (see ``_splice_raw_content``).
_RAW_PLACEHOLDER = b"stepmail:raw-content"
_RAW_PLACEHOLDER_BASE64 = binascii.b2a_base64(_RAW_PLACEHOLDER, newline=False)
_BASE64_CHUNK_BYTES = 3 * 256 * 1024
_pending = threading.local()  # the email being sent on this thread (clients are shared by threads)


class SesMailTransport:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client or boto3.client("sesv2", config=SES_CLIENT_CONFIG)
        self._splices = _register_splice(self._client)

    def send_raw(
        self,
        *,
        sender: str,
        to: Sequence[str],
        cc: Sequence[str],
        bcc: Sequence[str],
        raw: bytes,
        configuration_set: str | None,
        tags: dict[str, str],
    ) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": sender,
            # The envelope: bcc recipients appear here and nowhere in the MIME headers.
            "Destination": {"ToAddresses": list(to), "CcAddresses": list(cc), "BccAddresses": list(bcc)},
            "Content": {"Raw": {"Data": _RAW_PLACEHOLDER if self._splices else raw}},
        }
        if configuration_set:
            request["ConfigurationSetName"] = configuration_set
        if tags:
            request["EmailTags"] = [{"Name": name, "Value": value} for name, value in tags.items()]
        _pending.raw = raw
        try:
            return str(self._client.send_email(**request)["MessageId"])
        except ClientError as error:
            raise ses_error(error) from error
        except NETWORK_ERRORS as error:
            raise SesUnavailableError(f"SES unreachable: {type(error).__name__}") from error
        finally:
            _pending.raw = None


def _register_splice(client: Any) -> bool:
    """Have a botocore client send the email through ``_splice_raw_content``; False for a fake."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        return False
    events.register("before-call.sesv2.SendEmail", _splice_raw_content, unique_id="stepmail-raw-content")
    return True


def _splice_raw_content(params: dict[str, Any], **_: Any) -> None:
    """Write the request body once, with the email's base64 streamed into it.

    botocore would hold the base64 three more times (as bytes, as a str in the parameters, in the JSON
    text) before the body: ~4 x 53 MB for a 40 MB email, which is what sizes the sender Lambda.  Here
    the body is one buffer of its final size, filled chunk by chunk (the JSON is otherwise botocore's).

    Raises
    ------
    RuntimeError
        If the placeholder is not in the serialized body (a botocore change): never send it instead.
    """
    raw = getattr(_pending, "raw", None)
    if raw is None:
        return
    body: bytes = params["body"]
    start = body.find(_RAW_PLACEHOLDER_BASE64)
    if start < 0:
        raise RuntimeError("the SES request body does not hold the raw content placeholder")
    head, tail = body[:start], body[start + len(_RAW_PLACEHOLDER_BASE64) :]
    out = bytearray(len(head) + 4 * -(-len(raw) // 3) + len(tail))
    out[: len(head)] = head
    position, view = len(head), memoryview(raw)
    for offset in range(0, len(view), _BASE64_CHUNK_BYTES):
        chunk = binascii.b2a_base64(view[offset : offset + _BASE64_CHUNK_BYTES], newline=False)
        out[position : position + len(chunk)] = chunk
        position += len(chunk)
    out[position:] = tail
    params["body"] = out


def ses_error(error: ClientError) -> Exception:
    """Map an SES v2 error to the contract's class (permanent or transient).

    SES's messages can quote addresses; the error text goes to logs and the DLQ's reason, so they are
    redacted (the DLQ keeps the whole message beside the reason anyway).
    """
    code, status = error_code(error), status_code(error)
    message = redact_addresses(error_message(error))
    if code in _THROTTLED or status == 429:
        return SesThrottledError(f"SES throttled: {message}")
    if code in _PAUSED:
        return SendingPausedError(f"SES sending is paused: {message}")
    if code in _NOT_AUTHORIZED:
        return SendingNotAuthorizedError(
            f"SES refused the send as not authorized ({code}): check the sender function's IAM policy "
            f"for this sender, configuration set and, in the SES sandbox, recipient identities: {message}"
        )
    if code in _NOT_VERIFIED:
        return SenderNotVerifiedError(f"SES refused the sender: {message}")
    if status >= 500:
        return SesUnavailableError(f"SES failed ({code or status}): {message}")
    if code in _REJECTED or 400 <= status < 500:
        return MessageRejectedError(f"SES rejected the message: {message}")
    return SesUnavailableError(f"SES failed ({code or status}): {message}")


class SesSendQuota:
    """The account's maximum send rate (SES v2 GetAccount), read again at most every ``refresh_seconds``.

    One read per Lambda container per refresh, never one per message: a raised quota is followed
    within minutes, without a redeploy.  A failed read keeps the last rate known (None before any).
    """

    def __init__(
        self,
        refresh_seconds: float,
        client: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client or boto3.client("sesv2")
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._rate: float | None = None
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def max_send_rate(self) -> float | None:
        with self._lock:
            now = self._clock()
            if self._read_at is not None and now - self._read_at < self._refresh_seconds:
                return self._rate
            self._read_at = now  # a failing read is not retried for every message either
            try:
                quota = self._client.get_account().get("SendQuota", {})
                self._rate = float(quota["MaxSendRate"]) if quota.get("MaxSendRate") else self._rate
            except (ClientError, *NETWORK_ERRORS) as error:
                log.warning("could not read the SES quota: %s", type(error).__name__)
            return self._rate
