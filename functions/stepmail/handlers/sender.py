"""Sender Lambda (the "Render And Send" state): build the MIME message and send it with SES v2.

Errors are raised as the contract's classes; Step Functions matches them by class name.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from stepmail.adapters.metrics import ATTACHMENT_BYTES, EMAILS_SENT, THROTTLED, EmfMetrics, MetricsSink
from stepmail.adapters.s3 import S3AttachmentStore
from stepmail.adapters.ses import SesMailTransport
from stepmail.adapters.templates import DirectoryTemplates
from stepmail.core.errors import SesThrottledError, StepmailError, bounded_error
from stepmail.core.pacing import seconds_until
from stepmail.core.sending import AttachmentStore, MailTransport, SendRequest, send_email
from stepmail.core.templates import TemplateSource
from stepmail.settings import SenderSettings

logger = Logger(service="stepmail")


@dataclass(frozen=True)
class Sender:
    store: AttachmentStore
    transport: MailTransport
    default_configuration_set: str = ""
    metrics: MetricsSink = field(default_factory=EmfMetrics)
    templates: TemplateSource | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def send(self, request: SendRequest) -> dict[str, Any]:
        wait = seconds_until(request.not_before, self.clock())
        if wait:  # the run's slot is in the half-second about to begin: SES counts it there
            self.sleep(wait)
        try:
            result = send_email(
                request,
                store=self.store,
                transport=self.transport,
                default_configuration_set=self.default_configuration_set,
                templates=self.templates,
            )
        except SesThrottledError:
            self.metrics.count(THROTTLED)  # the workflow retries it: a rising count means the quota binds
            raise
        self.metrics.count(EMAILS_SENT)
        self.metrics.size(ATTACHMENT_BYTES, sum(item.size for item in request.attachments))
        logger.info(
            "email sent",
            extra={
                "mailKey": request.message.mail_key,
                "lockKey": request.lock_key,
                "sesMessageId": result.message_id,
            },
        )
        return result.model_dump(by_alias=True)


def build_sender(settings: SenderSettings, *, s3_client: Any = None, ses_client: Any = None) -> Sender:
    return Sender(
        store=S3AttachmentStore(settings.attachments_bucket, s3_client),
        transport=SesMailTransport(ses_client),
        default_configuration_set=settings.default_configuration_set,
        templates=DirectoryTemplates(),
    )


@lru_cache(maxsize=1)
def _sender_from_environment() -> Sender:
    return build_sender(SenderSettings.from_environ(os.environ))


def handler(event: dict[str, Any], context: Any, sender: Sender | None = None) -> dict[str, Any]:
    sender = sender or _sender_from_environment()
    try:
        return sender.send(SendRequest.model_validate(event))
    except Exception as error:
        if not isinstance(error, StepmailError):  # a bug: keep where it happened (frames, not the text)
            trace = traceback.format_tb(error.__traceback__)
            logger.error("unexpected error", extra={"error": type(error).__name__, "trace": trace})
        # The contract's class with a bounded reason and a one-frame trace: the cause the run carries
        # stays within its size budget (stepmail.core.budget), whatever raised.
        raise bounded_error(error) from None
