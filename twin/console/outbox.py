"""Sent emails as the console shows them, parsed from the exact bytes SES received."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from twin.ses import SentEmail

_SHOWN_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


def listing(email: SentEmail) -> dict[str, Any]:
    """One line of the outbox: envelope, subject and attachment count."""
    parsed = parse(email)
    return {
        "messageId": email.message_id,
        "from": email.sender,
        "recipients": email.recipients,
        "subject": parsed["Subject"] or "",
        "sentAt": email.sent_at.isoformat(),
        "size": len(email.raw),
        "attachments": len(list(parsed.iter_attachments())),
    }


def rendered(email: SentEmail) -> dict[str, Any]:
    """One email: its headers, text part, whether it has HTML, and its attachments with sizes."""
    parsed = parse(email)
    text = parsed.get_body(preferencelist=("plain",))
    return {
        **listing(email),
        "bcc": email.bcc,
        "headers": [[name, str(parsed[name])] for name in _SHOWN_HEADERS if parsed[name] is not None],
        "allHeaders": [[name, str(value)] for name, value in parsed.items()],
        "text": text.get_content() if text is not None else None,
        "hasHtml": parsed.get_body(preferencelist=("html",)) is not None,
        "attachmentList": [
            {
                "index": index,
                "filename": part.get_filename() or f"attachment-{index}",
                "contentType": part.get_content_type(),
                "size": len(part.get_payload(decode=True) or b""),
            }
            for index, part in enumerate(parsed.iter_attachments())
        ],
    }


def html_part(email: SentEmail) -> str | None:
    part = parse(email).get_body(preferencelist=("html",))
    return part.get_content() if part is not None else None


def attachment(email: SentEmail, index: int) -> tuple[str, str, bytes] | None:
    """``(filename, content type, bytes)`` of the attachment at ``index``, or None."""
    for position, part in enumerate(parse(email).iter_attachments()):
        if position == index:
            payload = part.get_payload(decode=True)  # bytes for a leaf part, as attachments are
            return (
                part.get_filename() or f"attachment-{index}",
                part.get_content_type(),
                payload if isinstance(payload, bytes) else b"",
            )
    return None


def parse(email: SentEmail) -> EmailMessage:
    parsed = message_from_bytes(email.raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
