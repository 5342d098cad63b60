"""Render And Send: the email's bytes, built from the message and its attachments, handed to SES.

Attachment bytes never pass through the workflow: the run gives their metadata (resolved by the
Map state), and this module streams each one from the store pinned to that exact version (ETag), so
what is sent is what was resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stepmail.core.addresses import parse_mailbox
from stepmail.core.message import MailMessage
from stepmail.core.mime import Attachment, check_estimated_size, render_email
from stepmail.core.templates import TemplateSource, apply_template


class StoredObject(BaseModel):
    """One attachment as Resolve Attachments found it (S3 HeadObject's size and ETag)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    size: int = Field(ge=0)
    etag: str


class SendRequest(BaseModel):
    """The sender Lambda's payload (see "Render And Send" in the ASL).

    ``attachments`` holds one :class:`StoredObject` per entry of the message's ``attachedFileKeys``,
    in the same order: the Map keeps names out of the run's state (they are in the message).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    message: MailMessage
    attachments: list[StoredObject] = Field(default_factory=list)
    lock_key: str = Field(alias="lockKey")
    execution_id: str = Field(default="", alias="executionId")
    #: When the run's send slot begins (an ISO time): a run that took the later half of a second waits
    #: for it (see :func:`stepmail.core.pacing.seconds_until`).  Empty: send now.
    not_before: str = Field(default="", alias="notBefore")

    @model_validator(mode="after")
    def _one_object_per_attachment(self) -> SendRequest:
        if len(self.attachments) != len(self.message.attached_file_keys):
            raise ValueError(
                f"{len(self.attachments)} resolved attachments for "
                f"{len(self.message.attached_file_keys)} names in attachedFileKeys"
            )
        return self

    def resolved(self) -> list[tuple[str, StoredObject]]:
        """Each attachment's name with what Resolve Attachments found."""
        return list(zip(self.message.attached_file_keys, self.attachments, strict=True))


class SendResult(BaseModel):
    message_id: str = Field(serialization_alias="messageId")


@dataclass(frozen=True)
class StoredFile:
    """An attachment's bytes and the content type the store keeps with them (possibly empty)."""

    data: bytes = field(repr=False)
    content_type: str = ""


class AttachmentStore(Protocol):
    def read(self, key: str, etag: str) -> StoredFile:
        """The object at exactly this ETag.

        Raises AttachmentMissingError, AttachmentChangedError or AttachmentUnavailableError, each
        naming the key and where it was looked for.
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


def _read(store: AttachmentStore, mail_key: str, name: str, stored: StoredObject) -> Attachment:
    file = store.read(f"{mail_key}/{name}", stored.etag)
    return Attachment(name, file.content_type, file.data)


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
    resolved = request.resolved()
    check_estimated_size(message, [stored.size for _, stored in resolved])
    attachments = [_read(store, message.mail_key, name, stored) for name, stored in resolved]
    raw = render_email(message, attachments)
    del attachments  # the MIME bytes hold everything now; free the originals before the upload
    to, cc, bcc = message.destinations()
    message_id = transport.send_raw(
        # The bare address: SES wants a non-ASCII display name encoded here, and the From header of
        # the raw message already carries the name.
        sender=parse_mailbox(message.from_address or "").address,
        to=_addresses(to),
        cc=_addresses(cc),
        bcc=_addresses(bcc),
        raw=raw,
        configuration_set=message.configuration_set or default_configuration_set or None,
        tags=message.tags,
    )
    return SendResult(message_id=message_id)
