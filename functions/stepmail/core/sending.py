"""Render And Send: the email's bytes, built from the message and its attachments, handed to SES.

Attachment bytes never pass through the workflow: the run gives their metadata (resolved by the
Map state), and this module streams each one from the store pinned to that exact version (ETag), so
what is sent is what was resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from stepmail.core.addresses import parse_mailbox
from stepmail.core.message import MailMessage
from stepmail.core.mime import Attachment, check_estimated_size, render_email
from stepmail.core.templates import TemplateSource, apply_template


class StoredObject(BaseModel):
    """S3 HeadObject's answer, as the Map state selects it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    size: int = Field(ge=0)
    content_type: str = Field(default="", alias="contentType")
    etag: str


class ResolvedAttachment(BaseModel):
    """One item of the Resolve Attachments Map's output."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    mail_key: str = Field(alias="mailKey")
    name: str
    object: StoredObject

    @property
    def key(self) -> str:
        return f"{self.mail_key}/{self.name}"


class SendRequest(BaseModel):
    """The sender Lambda's payload (see "Render And Send" in the ASL)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message: MailMessage
    attachments: list[ResolvedAttachment] = Field(default_factory=list)
    lock_key: str = Field(alias="lockKey")
    execution_id: str = Field(default="", alias="executionId")


class SendResult(BaseModel):
    message_id: str = Field(serialization_alias="messageId")


class AttachmentStore(Protocol):
    def read(self, key: str, etag: str) -> bytes:
        """The object's bytes at exactly this ETag.

        Raises AttachmentMissingError, AttachmentChangedError or AttachmentUnavailableError.
        """
        ...


class MailTransport(Protocol):
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
        """Send the MIME bytes; return the provider's message id.

        Raises SesThrottledError, SesUnavailableError, MessageRejectedError, SenderNotVerifiedError,
        SendingPausedError.
        """
        ...


def _addresses(mailboxes: Sequence[str]) -> list[str]:
    return [parse_mailbox(mailbox).address for mailbox in mailboxes]


def send_email(
    request: SendRequest,
    *,
    store: AttachmentStore,
    transport: MailTransport,
    default_configuration_set: str = "",
    templates: TemplateSource | None = None,
) -> SendResult:
    """Render the email (its template first, when it names one) and send it once.

    Raises
    ------
    TemplateError
        The template is missing, lacks a variable or renders an invalid message.
    MessageTooLargeError
        Before downloading anything when the estimate is over the limit, or after rendering.
    AttachmentMissingError, AttachmentChangedError, AttachmentUnavailableError
        From the store.
    SesThrottledError, SesUnavailableError, MessageRejectedError, SenderNotVerifiedError, SendingPausedError
        From the transport.
    """
    message = apply_template(request.message, templates)
    check_estimated_size(message, [item.object.size for item in request.attachments])
    attachments = [
        Attachment(item.name, item.object.content_type, store.read(item.key, item.object.etag))
        for item in request.attachments
    ]
    raw = render_email(message, attachments)
    del attachments  # the MIME bytes hold everything now; free the originals before the upload
    message_id = transport.send_raw(
        # The bare address: SES wants a non-ASCII display name encoded here, and the From header of
        # the raw message already carries the name.
        sender=parse_mailbox(message.from_address or "").address,
        to=_addresses(message.to_mailboxes()),
        cc=_addresses(message.cc),
        bcc=_addresses(message.bcc),
        raw=raw,
        configuration_set=message.configuration_set or default_configuration_set or None,
        tags=message.tags,
    )
    return SendResult(message_id=message_id)
