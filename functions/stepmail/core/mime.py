"""The email's bytes: RFC 5322 / MIME built with the standard library's ``email`` package.

What comes out is what any SMTP hop accepts: CRLF line endings, no line over 998 octets, 7-bit only.
Non-ASCII text is encoded (RFC 2047 in headers, RFC 2231 in file names, quoted-printable or base64
in bodies), and there is never a ``Bcc`` header: blind copies exist only in the SES envelope.

Layout::

    text only               text/plain
    text and HTML           multipart/alternative (text first, then HTML)
    with attachments        multipart/mixed (the part above, then one base64 part per attachment)

Who writes what, all with the standard library's ``email`` package:

* the text/HTML part: the package's content manager and generator (it picks 7bit, quoted-printable
  or base64 per part);
* header fields: written here, encoding with ``email.header`` (RFC 2047) and ``email.utils``
  (RFC 2231, dates).  The package's modern folder is not used for them: it drops the spaces
  between encoded words (CPython gh-144156), can turn a long media type into an encoded word, and
  before Python 3.11.10 it decoded ``=?...?=`` words and wrote their CR LF back raw (CVE-2024-6923).
  Header text is never decoded here, and every field is checked before it is written;
* attachments (up to 40 MB): base64-encoded straight into the output buffer, chunk by chunk.  The
  package's generator would hold several full copies of each (its base64 text, its line list, one
  buffer per nesting level); here the peak is the attachments' bytes plus the output.

The size limit is SES v2's 40 MB for the whole encoded message.  :data:`MAX_EMAIL_BYTES` reads it as
40,000,000 bytes, not 40 MiB (41,943,040): AWS does not say which, and the smaller figure cannot be
refused by SES for being too large.
"""

from __future__ import annotations

import base64
import codecs
import io
import mimetypes
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.header import Header
from email.message import MIMEPart
from email.utils import encode_rfc2231, format_datetime
from functools import cache

from stepmail.core.addresses import AddressError, Mailbox, parse_mailbox
from stepmail.core.errors import InvalidMessageError, MessageTooLargeError
from stepmail.core.message import MailMessage

MAX_EMAIL_BYTES = 40_000_000
"""SES v2's limit for one message after encoding (decimal MB: the safe reading of "40 MB")."""

MAX_LINE_OCTETS = 998
"""RFC 5322: no line may be longer than this, CRLF excluded."""

#: The wire format for the body and attachment parts: CRLF, 78 columns, never 8-bit.
_WIRE = email_policy.SMTP.clone(cte_type="7bit")

_CRLF = b"\r\n"
_CRLF_TEXT = "\r\n"
_FOLD_WIDTH = 78
#: A display name written as is: atoms (RFC 5322 atext) separated by single spaces.
_PLAIN_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+( [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_BASE64_LINE_BYTES = 57  # 57 bytes -> one 76-character base64 line
_BASE64_CHUNK_BYTES = _BASE64_LINE_BYTES * 1024  # ~58 KB read at a time
_BOUNDARY_PREFIX = "=_stepmail_"  # "=_" never occurs in base64 or quoted-printable text
_HEADER_SLACK = 128  # the package's multipart/alternative boundary may grow by a few bytes
#: Room for the longest media type an attachment may declare (127/127 characters plus a charset).
_MEDIA_TYPE_ALLOWANCE = 2 * 127 + 64
_GENERIC_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})
_FALLBACK_TYPE = "application/octet-stream"
_UTF8_DECODER = codecs.getincrementaldecoder("utf-8")
_UTF8_CHUNK_BYTES = 1 << 16
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?(?P<charset>[A-Za-z0-9._+-]{1,40})\"?", re.IGNORECASE)
_UNSAFE_HEADER_OCTET = re.compile(rb"[^\t\x20-\x7e]")
#: Common types the standard table lacks before Python 3.13 (so 3.11 and 3.13 guess the same).
_EXTRA_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".ics": "text/calendar",
    ".md": "text/markdown",
    ".webp": "image/webp",
    ".7z": "application/x-7z-compressed",
}
#: A compressed file is sent as its compression format (report.csv.gz is gzip, not CSV).
_COMPRESSED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


@dataclass(frozen=True)
class Attachment:
    """One attachment's bytes, as read from the store.

    ``name`` is the entry of ``attachedFileKeys`` (it may contain ``/``; the file name is its last
    segment); ``content_type`` is the store's (S3) content type, possibly empty or generic.
    """

    name: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def filename(self) -> str:
        return attachment_filename(self.name)

    @property
    def media_type(self) -> str:
        return attachment_media_type(self.name, self.content_type, self.data)


def attachment_filename(name: str) -> str:
    """The file name a recipient sees: the last segment of the attachment's key."""
    return name.rsplit("/", 1)[-1]


def attachment_media_type(name: str, content_type: str, data: bytes) -> str:
    """The media type to declare (``type/subtype``, and ``charset`` for text).

    The store's type is used when it is specific and well formed; a generic, empty or malformed one
    is replaced by a guess from the file name (``application/octet-stream`` when there is none).
    ``multipart/*`` and ``message/*`` become ``application/octet-stream``: RFC 2046 forbids base64
    for them, and their bytes are not known to be 7-bit.

    Text keeps the charset the store gives.  Without one (a bare ``text/csv``, or a type guessed
    from the name: an upload without ``ContentType``, the Node SDK v3's default, is stored with a
    generic type), readers assume US-ASCII (RFC 2046 section 4.1.2) and show UTF-8 as mojibake,
    so the bytes decide: ``charset=utf-8`` when they are valid UTF-8, else
    ``application/octet-stream`` (no other charset can be told from the bytes reliably; the file
    still arrives byte for byte, for an application that knows its encoding).
    """
    declared = content_type.partition(";")[0].strip().lower()
    if declared in _GENERIC_TYPES or not _MEDIA_TYPE.match(declared):
        return _with_text_charset(_guess_media_type(attachment_filename(name)), data)
    if declared.partition("/")[0] in ("multipart", "message"):
        return _FALLBACK_TYPE
    charset = _CHARSET.search(content_type)
    if declared.startswith("text/") and charset:
        return f"{declared}; charset={charset.group('charset')}"
    return _with_text_charset(declared, data)


def _with_text_charset(media_type: str, data: bytes) -> str:
    """A ``text/*`` type without a charset: declared UTF-8 when ``data`` is UTF-8, else octet-stream."""
    if not media_type.startswith("text/"):
        return media_type
    return f"{media_type}; charset=utf-8" if _is_utf8(data) else _FALLBACK_TYPE


def _is_utf8(data: bytes) -> bool:
    """Whether ``data`` is well-formed UTF-8 (no overlong forms, surrogates or truncated sequence).

    Decoded chunk by chunk, so an attachment of tens of MB is checked without a decoded copy of it.
    """
    decoder = _UTF8_DECODER()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _UTF8_CHUNK_BYTES):
            decoder.decode(view[start : start + _UTF8_CHUNK_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _guess_media_type(filename: str) -> str:
    suffix = "." + filename.rpartition(".")[2].lower() if "." in filename else ""
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    guessed, compression = _standard_types().guess_type(filename, strict=True)
    if compression:
        return _COMPRESSED_TYPES.get(compression, _FALLBACK_TYPE)
    if guessed is None or guessed.partition("/")[0] in ("multipart", "message"):
        return _FALLBACK_TYPE
    return guessed


@cache
def _standard_types() -> mimetypes.MimeTypes:
    """Python's built-in table only: the machine's /etc/mime.types must not change what is sent."""
    return mimetypes.MimeTypes()


# ---------------------------------------------------------------------------------------- size
def base64_encoded_size(size: int) -> int:
    """Octets of ``size`` bytes in base64: 4 characters per 3 bytes, CRLF after every 76 characters."""
    lines = -(-size // _BASE64_LINE_BYTES)
    return 4 * -(-size // 3) + len(_CRLF) * lines


def estimate_email_size(message: MailMessage, attachment_sizes: Iterable[int]) -> int:
    """An upper bound of the rendered email's size, known before any attachment is downloaded.

    The headers and the text/HTML part are rendered for real (they are small); each attachment adds
    its base64 size, an upper bound of its part's headers and its boundary line.

    Parameters
    ----------
    message
        The validated message (its ``from`` filled in).
    attachment_sizes
        The attachments' sizes in bytes, in the order of ``attachedFileKeys``.

    Raises
    ------
    InvalidMessageError
        When a header cannot be rendered safely.
    """
    sizes = list(attachment_sizes)
    names = message.attached_file_keys
    boundary = _BOUNDARY_PREFIX + "0" * 32
    size = len(_head(message, datetime.now(UTC), boundary if sizes else None)) + _HEADER_SLACK
    size += len(_body_part(message))
    if not sizes:
        return size
    for index, attachment_size in enumerate(sizes):
        name = names[index] if index < len(names) else "\u00e9" * 512  # a worst-case 1024-byte name
        size += len(_delimiter(boundary)) + _attachment_headers_bound(name)
        size += base64_encoded_size(attachment_size)
    return size + len(_close_delimiter(boundary))


def check_estimated_size(message: MailMessage, attachment_sizes: Iterable[int]) -> None:
    """Refuse, before downloading anything, an email that would exceed SES's limit once encoded.

    Raises
    ------
    MessageTooLargeError
        With the estimate, the attachments' total and the limit.
    InvalidMessageError
        When a header cannot be rendered safely.
    """
    sizes = list(attachment_sizes)
    estimate = estimate_email_size(message, sizes)
    if estimate > MAX_EMAIL_BYTES:
        raise MessageTooLargeError(
            f"the email would be about {estimate:,} bytes once encoded ({len(sizes)} attachments, "
            f"{sum(sizes):,} bytes before base64); SES accepts at most {MAX_EMAIL_BYTES:,} bytes"
        )


def _attachment_headers_bound(name: str) -> int:
    return len(_attachment_headers(attachment_filename(name), _FALLBACK_TYPE)) + _MEDIA_TYPE_ALLOWANCE


def _refuse_too_large(size: int) -> None:
    if size > MAX_EMAIL_BYTES:
        raise MessageTooLargeError(
            f"the encoded email is {size:,} bytes (or more); SES accepts at most {MAX_EMAIL_BYTES:,} bytes"
        )


# ---------------------------------------------------------------------------------------- render
def render_email(
    message: MailMessage, attachments: Sequence[Attachment], *, date: datetime | None = None
) -> bytes:
    """The email as RFC 5322 bytes, ready for SES v2 raw content.

    Parameters
    ----------
    message
        The validated message; ``from_address`` must be filled (the starter does it).
    attachments
        The attachments in order, with their bytes.
    date
        The ``Date`` header; now (UTC) by default.

    Raises
    ------
    MessageTooLargeError
        When the encoded email exceeds :data:`MAX_EMAIL_BYTES` (checked after each attachment).
    InvalidMessageError
        When there is no sender or a header cannot be written as one well-formed field (defence in
        depth: the message model already refuses what could cause this).
    """
    date = date or datetime.now(UTC)
    body = _body_part(message)
    if not attachments:
        raw = _head(message, date, None) + body
        _refuse_too_large(len(raw))
        return raw
    boundary = _unused_boundary(body)
    out = io.BytesIO()
    out.write(_head(message, date, boundary))
    out.write(_CRLF + b"--" + boundary.encode("ascii") + _CRLF)
    out.write(body)
    del body
    for attachment in attachments:
        out.write(_delimiter(boundary))
        out.write(_attachment_headers(attachment.filename, attachment.media_type))
        _write_base64(out, attachment.data)
        _refuse_too_large(out.tell())
    out.write(_close_delimiter(boundary))
    _refuse_too_large(out.tell())
    return out.getvalue()  # shares BytesIO's buffer: no copy


def _delimiter(boundary: str) -> bytes:
    return _CRLF + b"--" + boundary.encode("ascii") + _CRLF


def _close_delimiter(boundary: str) -> bytes:
    return _CRLF + b"--" + boundary.encode("ascii") + b"--" + _CRLF


def _unused_boundary(body: bytes) -> str:
    """A random boundary absent from the body part (attachments are base64: they cannot hold one)."""
    while True:
        boundary = _BOUNDARY_PREFIX + secrets.token_hex(16)
        if boundary.encode("ascii") not in body:
            return boundary


def _write_base64(out: io.BytesIO, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _BASE64_CHUNK_BYTES):
        chunk = view[start : start + _BASE64_CHUNK_BYTES]
        out.write(base64.encodebytes(chunk).replace(b"\n", _CRLF))


# ---------------------------------------------------------------------------------------- parts
def _body_part(message: MailMessage) -> bytes:
    """The text part, the HTML part, or both as multipart/alternative (text first), with its headers."""
    part = MIMEPart(policy=_WIRE)
    if message.html and not message.body:
        part.set_content(message.html, subtype="html", charset="utf-8")
    else:
        part.set_content(message.body, subtype="plain", charset="utf-8")
        if message.html:
            part.add_alternative(message.html, subtype="html", charset="utf-8")
    return part.as_bytes(policy=_WIRE)


def _attachment_headers(filename: str, media_type: str) -> bytes:
    """An attachment part's header fields and the blank line after them (the base64 body follows).

    The file name goes in Content-Disposition (RFC 2183) and, for readers that only look there, in
    Content-Type's ``name``.  Written here rather than by the ``email`` package's folder, which
    turns a media type longer than a line into an RFC 2047 encoded word (a broken Content-Type).
    """
    fields = (
        _with_parameter(f"Content-Type: {media_type}", "name", filename),
        "Content-Transfer-Encoding: base64",
        _with_parameter("Content-Disposition: attachment", "filename", filename),
    )
    return b"".join(_checked_field(field) for field in fields) + _CRLF


def _with_parameter(field: str, name: str, value: str) -> str:
    """``field`` followed by the parameter on continuation lines (``;`` CRLF SP between them)."""
    return f";{_CRLF_TEXT} ".join([field, *_parameter_segments(name, value)])


def _parameter_segments(name: str, value: str) -> list[str]:
    """A MIME parameter: a quoted string when short ASCII, else RFC 2231 UTF-8, split into numbered
    continuations (``name*0*=utf-8''...``) that never cut a ``%XX`` escape.
    """
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value.isascii() and len(f" {name}={quoted};") <= _FOLD_WIDTH:
        return [f"{name}={quoted}"]
    encoded = encode_rfc2231(value, "utf-8")
    if len(f" {name}*={encoded};") <= _FOLD_WIDTH:
        return [f"{name}*={encoded}"]
    room = _FOLD_WIDTH - len(f" {name}*999*=;")
    segments: list[str] = []
    while encoded:
        cut = min(room, len(encoded))
        escape = encoded.rfind("%", cut - 2, cut)
        if escape != -1 and cut < len(encoded):
            cut = escape
        segments.append(f"{name}*{len(segments)}*={encoded[:cut]}")
        encoded = encoded[cut:]
    return segments


def _head(message: MailMessage, date: datetime, boundary: str | None) -> bytes:
    """The top-level header fields, in order; with a ``boundary``, the multipart/mixed Content-Type.

    Without a boundary the body part's own Content-* fields follow and complete the header.
    """
    if not message.from_address:
        raise InvalidMessageError("the message has no sender: the starter fills 'from' before a run")
    try:
        fields = [_address_field("From", [message.from_address])]
        to, cc, _bcc = message.destinations()  # each recipient once; bcc only in the envelope
        recipients = (("To", to), ("Cc", cc), ("Reply-To", message.reply_to))
        fields += [_address_field(name, mailboxes) for name, mailboxes in recipients if mailboxes]
    except AddressError as error:
        raise InvalidMessageError(f"an address cannot be rendered: {error}") from None
    fields.append(_unstructured_field("Subject", message.subject))
    fields.append(f"Date: {format_datetime(date)}")
    fields.append("MIME-Version: 1.0")
    fields += [_unstructured_field(name, value) for name, value in message.headers.items()]
    if boundary:
        fields.append(_with_parameter("Content-Type: multipart/mixed", "boundary", boundary))
    return b"".join(_checked_field(field) for field in fields)


def _unstructured_field(name: str, text: str) -> str:
    """``Name: text``.  ASCII that fits is written as is, on one line, so tokens and URLs stay intact
    (RFC 5322 allows 998 octets; 78 is a "should"); anything else becomes RFC 2047 encoded words.
    """
    field = f"{name}: {text}"
    if text.isascii() and len(field) <= MAX_LINE_OCTETS:
        return field
    return f"{name}: {_encoded_words(text, header_name=name)}"


def _address_field(name: str, mailboxes: Sequence[str]) -> str:
    """An address list, one mailbox per line, display names quoted or RFC 2047-encoded as needed."""
    items = [
        _mailbox_text(parse_mailbox(text), header_name=name if index == 0 else None)
        for index, text in enumerate(mailboxes)
    ]
    return f"{name}: " + f",{_CRLF_TEXT} ".join(items)


def _mailbox_text(mailbox: Mailbox, *, header_name: str | None) -> str:
    """``addr`` or ``phrase <addr>``; ``header_name`` is set for the mailbox that follows ``Name: ``."""
    if not mailbox.display_name:
        return mailbox.address
    name = mailbox.display_name
    if not name.isascii():
        phrase = _encoded_words(name, header_name=header_name)
    elif _PLAIN_PHRASE.match(name):
        phrase = name
    else:
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    start = len(header_name) + 2 if header_name else 1
    last_line = phrase.rsplit(_CRLF_TEXT, 1)[-1]
    used = len(last_line) + (start if _CRLF_TEXT not in phrase else 0)
    separator = " " if used + len(mailbox.address) + 3 <= _FOLD_WIDTH else _CRLF_TEXT + " "
    return f"{phrase}{separator}<{mailbox.address}>"


def _encoded_words(text: str, *, header_name: str | None) -> str:
    """``text`` as RFC 2047 UTF-8 encoded words folded at 78 columns.

    The spaces of ``text`` travel inside the encoded words: the ``email`` package's modern folder
    puts them between words instead, where RFC 2047 says readers drop them (CPython gh-144156),
    which turned "naïve café" into "naïvecafé".  A continuation line starts with one space, so
    without a ``header_name`` the first line is one column shorter.
    """
    width = _FOLD_WIDTH if header_name else _FOLD_WIDTH - 1
    return Header(text, "utf-8", maxlinelen=width, header_name=header_name).encode(linesep=_CRLF_TEXT)


def _checked_field(field: str) -> bytes:
    """A header field's wire bytes, refused unless it is exactly one safe field.

    Mirrors Python 3.13's ``verify_generated_headers`` (absent from older releases): 7-bit printable,
    every continuation line starts with white space, no line over 998 octets.

    Raises
    ------
    InvalidMessageError
        Naming the field (the model refuses whatever could cause this; this is defence in depth).
    """
    name = field.partition(":")[0]
    lines = field.encode("ascii", "replace").split(_CRLF)
    if (
        not field.isascii()
        or any(_UNSAFE_HEADER_OCTET.search(line) or len(line) > MAX_LINE_OCTETS for line in lines)
        or any(line[:1] not in (b" ", b"\t") or not line.strip() for line in lines[1:])
    ):
        raise InvalidMessageError(f"the {name[:80]!r} header cannot be written as one well-formed field")
    return field.encode("ascii") + _CRLF
