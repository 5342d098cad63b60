"""SES v2 as the mail transport: raw MIME content (40 MB limit; the v1 API allows only 10 MB)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from stepmail.adapters.aws_errors import NETWORK_ERRORS, error_code, error_message, status_code
from stepmail.core.errors import (
    MessageRejectedError,
    SenderNotVerifiedError,
    SendingPausedError,
    SesThrottledError,
    SesUnavailableError,
)

_THROTTLED = {"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"}
_NOT_VERIFIED = {"MailFromDomainNotVerifiedException", "NotFoundException", "AccessDeniedException"}
_PAUSED = {"AccountSuspendedException", "SendingPausedException"}
_REJECTED = {"MessageRejected", "BadRequestException", "InvalidParameterValue"}


#: No SDK retries: SES has no idempotency token, so a retry after a timeout could send the email twice,
#: and throttling is retried by the workflow with backoff and jitter (visible in the execution).
SES_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60
)


class SesMailTransport:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client or boto3.client("sesv2", config=SES_CLIENT_CONFIG)

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
            "Content": {"Raw": {"Data": raw}},
        }
        if configuration_set:
            request["ConfigurationSetName"] = configuration_set
        if tags:
            request["EmailTags"] = [{"Name": name, "Value": value} for name, value in tags.items()]
        try:
            return str(self._client.send_email(**request)["MessageId"])
        except ClientError as error:
            raise ses_error(error) from error
        except NETWORK_ERRORS as error:
            raise SesUnavailableError(f"SES unreachable: {type(error).__name__}") from error


def ses_error(error: ClientError) -> Exception:
    """Map an SES v2 error to the contract's class (permanent or transient)."""
    code, status, message = error_code(error), status_code(error), error_message(error)
    if code in _THROTTLED or status == 429:
        return SesThrottledError(f"SES throttled: {message}")
    if code in _PAUSED:
        return SendingPausedError(f"SES sending is paused: {message}")
    if code in _NOT_VERIFIED:
        return SenderNotVerifiedError(f"SES refused the sender: {message}")
    if status >= 500:
        return SesUnavailableError(f"SES failed ({code or status}): {message}")
    if code in _REJECTED or 400 <= status < 500:
        return MessageRejectedError(f"SES rejected the message: {message}")
    return SesUnavailableError(f"SES failed ({code or status}): {message}")
