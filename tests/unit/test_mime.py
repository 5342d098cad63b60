"""MIME rendering: what SES receives, parsed back with the standard library as a mail reader would."""

from __future__ import annotations

import email
import email.policy
import random
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stepmail.core import mime
from stepmail.core.errors import InvalidMessageError, MessageTooLargeError
from stepmail.core.message import MailMessage
from stepmail.core.mime import (
    MAX_EMAIL_BYTES,
    Attachment,
    attachment_media_type,
    base64_encoded_size,
    check_estimated_size,
    estimate_email_size,
    render_email,
)

DASH = "\u2013"  # an en dash, as in the file name below
UNICODE_FILENAME = f"Résumé {DASH} 東京.pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _message(**fields: Any) -> MailMessage:
    document = {
        "mailKey": "order-1001",
        "toAddress": "jane@example.org",
        "from": "Stepmail <noreply@example.com>",
        "subject": "Your invoice",
        "body": "Hello Jane,\nyour invoice is attached.\n",
    }
    return MailMessage.model_validate(document | fields)


def _unicode_message(attached: list[str]) -> MailMessage:
    """Non-ASCII in every place it can be, long enough to need folding."""
    return _message(
        to=["Dupont, Jérôme <jerome@example.fr>", "東京 太郎 <taro@例え.jp>"],
        cc=["Zoë Ørsted <zoe@example.dk>"],
        replyTo=[f"Support {DASH} Équipe <support@example.com>"],
        **{"from": "Stepmail Über Straße <noreply@example.com>"},
        subject=f"Résumé {DASH} 東京 " * 12,
        body=f"Grüße aus Zürich {DASH} 東京\n" * 40,
        html=f"<p>Grüße {DASH} 東京</p>\n" * 40,
        headers={
            "X-Note": "naïve café " * 20,
            "List-Unsubscribe": "<https://example.com/u?t=" + "a" * 200 + ">",
        },
        attachedFileKeys=attached,
    )


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _mailboxes(raw: bytes, field: str) -> list[tuple[str, str]]:
    """An address field read as RFC 2047 section 6.2 says: white space between adjacent encoded words
    is dropped.  (Python's modern address parser keeps it, so it reads a folded name with an extra
    space where mail clients do not; its unstructured parser, used for Subject, follows the RFC.)
    """
    value = email.message_from_bytes(raw, policy=email.policy.compat32)[field]
    unfolded = str(value).replace("\r\n", "")
    return [(str(make_header(decode_header(name))), address) for name, address in getaddresses([unfolded])]


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _text(part: Any) -> str:
    """A text part's content with the wire's CRLF line endings read as "\\n" (as a mail reader shows it)."""
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def _lines(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\r\n")
    return raw[:-2].split(b"\r\n")


# ---------------------------------------------------------------------------------------- structure
def test_text_only_is_a_single_text_plain_part() -> None:
    # Given a message with a plain-text body and nothing else
    raw = render_email(_message(body="Hello Jane,\nbye"), [])
    # When a reader parses it
    parsed = _parse(raw)
    # Then it is one text/plain part in UTF-8 holding the body
    assert not parsed.is_multipart()
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert _text(parsed) == "Hello Jane,\nbye\n"


def test_text_and_html_form_multipart_alternative_with_text_first() -> None:
    # Given a message with a text body and an HTML part
    raw = render_email(_message(body="Hello Jane", html="<p>Hello <b>Jane</b></p>"), [])
    # When parsed
    parsed = _parse(raw)
    # Then it is multipart/alternative: text first (least preferred), HTML last
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert _text(text) == "Hello Jane\n"
    assert _text(html) == "<p>Hello <b>Jane</b></p>\n"
    assert parsed.get_body(preferencelist=("html",)) is html


def test_html_without_text_is_a_single_text_html_part() -> None:
    parsed = _parse(render_email(_message(body="", html="<p>Only HTML</p>"), []))
    assert parsed.get_content_type() == "text/html"
    assert _text(parsed) == "<p>Only HTML</p>\n"


def test_an_empty_body_is_an_empty_text_part() -> None:
    parsed = _parse(render_email(_message(body=""), []))
    assert parsed.get_content_type() == "text/plain"
    assert _text(parsed).strip() == ""


def test_attachments_make_multipart_mixed_with_the_body_first_and_bytes_exact() -> None:
    # Given attachments of random binary data (every byte value), an exact base64 line, and an empty file
    every_byte = bytes(range(256)) * 4
    files = {
        "report.pdf": _random_bytes(100_003, seed=1),
        "every-byte.bin": every_byte,
        "one-line.bin": _random_bytes(57, seed=2),
        "empty.txt": b"",
        "crlf.txt": b"line one\r\nline two\n\rthree\r",
    }
    attachments = [Attachment(name, "", data) for name, data in files.items()]
    message = _message(html="<p>Hi</p>", attachedFileKeys=list(files))
    # When rendered and parsed back
    parsed = _parse(render_email(message, attachments))
    # Then the body (text + HTML) comes first, then one part per attachment, in order
    assert parsed.get_content_type() == "multipart/mixed"
    body, *parts = parsed.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [part.get_filename() for part in parts] == ["report.pdf", *list(files)[1:]]
    # And each is an attachment whose decoded bytes are exactly the original bytes
    for part, data in zip(parts, files.values(), strict=True):
        assert part.get_content_disposition() == "attachment"
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.get_payload(decode=True) == data


def test_text_only_with_attachment_puts_text_plain_first() -> None:
    message = _message(attachedFileKeys=["a.pdf"])
    parsed = _parse(render_email(message, [Attachment("a.pdf", "application/pdf", b"%PDF-1.7")]))
    body, attachment = parsed.iter_parts()
    assert body.get_content_type() == "text/plain"
    assert _text(body) == message.body
    assert attachment.get_content_type() == "application/pdf"


# ---------------------------------------------------------------------------------------- headers
def test_headers_come_in_order_with_the_producer_headers_after_mime_version() -> None:
    # Given a message with every address field and two producer headers
    message = _message(
        to=["bob@example.org"],
        cc=["carol@example.org"],
        bcc=["audit@example.org"],
        replyTo=["support@example.com"],
        headers={"List-Unsubscribe": "<mailto:unsubscribe@example.com>", "X-Campaign": "spring"},
    )
    # When rendered
    parsed = _parse(render_email(message, []))
    # Then the headers are in the documented order, and the producer's keep theirs
    assert list(parsed.keys()) == [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "MIME-Version",
        "List-Unsubscribe",
        "X-Campaign",
        "Content-Type",
        "Content-Transfer-Encoding",
    ]
    assert parsed["To"].addresses[0].addr_spec == "jane@example.org"  # toAddress first
    assert [address.addr_spec for address in parsed["To"].addresses] == [
        "jane@example.org",
        "bob@example.org",
    ]
    assert parsed["X-Campaign"] == "spring"
    assert parsed["MIME-Version"] == "1.0"


def test_there_is_never_a_bcc_header() -> None:
    # Given blind-copy recipients
    message = _message(bcc=["audit@example.org", "Hidden Person <hidden@example.org>"])
    for attachments in ([], [Attachment("a.bin", "", b"x")]):
        # When rendered (with and without attachments)
        raw = render_email(
            message.model_copy(update={"attached_file_keys": ["a.bin"] * len(attachments)}), attachments
        )
        # Then no Bcc header exists and the addresses appear nowhere in the bytes
        assert _parse(raw)["Bcc"] is None
        assert b"bcc" not in raw.lower()
        assert b"audit@example.org" not in raw
        assert b"hidden" not in raw.lower()


def test_the_date_header_is_the_given_date() -> None:
    date = datetime(2026, 11, 28, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    parsed = _parse(render_email(_message(), [], date=date))
    assert parsed["Date"].datetime == date


def test_the_date_defaults_to_now() -> None:
    parsed = _parse(render_email(_message(), []))
    assert abs(parsed["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=1)


def test_unicode_subject_display_names_and_filename_round_trip() -> None:
    # Given non-ASCII text in the subject, the display names and an attachment's file name
    message = _unicode_message([UNICODE_FILENAME])
    data = _random_bytes(5_000, seed=3)
    # When rendered and parsed back
    raw = render_email(message, [Attachment(UNICODE_FILENAME, "application/pdf", data)])
    parsed = _parse(raw)
    # Then a reader sees exactly the original text
    assert parsed["Subject"] == message.subject
    assert parsed["From"].addresses[0].display_name == "Stepmail Über Straße"
    to = parsed["To"].addresses
    assert [(address.display_name, address.addr_spec) for address in to] == [
        ("", "jane@example.org"),
        ("Dupont, Jérôme", "jerome@example.fr"),
        ("東京 太郎", "taro@xn--r8jz45g.jp"),
    ]
    assert parsed["Cc"].addresses[0].display_name == "Zoë Ørsted"
    assert parsed["Reply-To"].addresses[0].display_name == f"Support {DASH} Équipe"
    assert parsed["X-Note"] == message.headers["X-Note"]
    _body, attachment = parsed.iter_parts()
    assert attachment.get_filename() == UNICODE_FILENAME
    assert attachment.get_payload(decode=True) == data
    assert _text(parsed.get_body(preferencelist=("plain",))) == message.body
    # And it was encoded the standard ways: RFC 2047 in headers, RFC 2231 in the file name
    assert b"Subject: =?utf-8?" in raw
    assert b"filename*=utf-8''R%C3%A9sum%C3%A9%20%E2%80%93%20%E6%9D%B1%E4%BA%AC.pdf" in raw


@pytest.mark.parametrize(
    "name",
    [
        "naïve café naïve café naïve café naïve café naïve café naïve café naïve café",
        "東京 太郎 " * 14 + "東京",
        "Dupont, Jérôme " * 7 + "Dupont",
        "a" * 100 + " é " + "b" * 90,
        "J. Doe (HR), Payroll",
        "Jane " * 39 + "Doe",
        "=?utf-8?q?caf=C3=A9?=",
    ],
    ids=[
        "latin-words",
        "cjk-words",
        "comma-words",
        "long-words",
        "ascii-specials",
        "ascii-long",
        "pre-encoded",
    ],
)
def test_long_display_names_round_trip_with_their_spaces(name: str) -> None:
    # Given display names that need several encoded words (the email package's own folder drops the
    # spaces between such words, CPython gh-144156)
    message = _message(to=[f"{name} <jane@example.org>", f"{name} <bob@example.org>"], toAddress=None)
    # When rendered and read back as RFC 2047 says (and mail clients do)
    raw = render_email(message, [])
    # Then each name reads exactly as written, spaces included
    expected = "café" if name.startswith("=?") else name
    assert _mailboxes(raw, "To") == [(expected, "jane@example.org"), (expected, "bob@example.org")]
    assert max(len(line) for line in _lines(raw)) <= 998


@pytest.mark.parametrize(
    "subject",
    [
        "naïve café " * 20 + "end",
        f"Résumé {DASH} 東京 " * 12 + "end",
        "s" * 998,
        "x" * 500 + " " + "y" * 497,
        "é" * 998,
        "Grüße   mit   Leerzeichen",
        "Ünïcödé_with_underscores=and?questions",
        "",
    ],
    ids=[
        "latin",
        "mixed",
        "ascii-998",
        "ascii-two-words",
        "latin-998",
        "inner-spaces",
        "q-specials",
        "empty",
    ],
)
def test_subjects_round_trip_exactly(subject: str) -> None:
    raw = render_email(_message(subject=subject), [])
    assert _parse(raw)["Subject"] == subject
    assert max(len(line) for line in _lines(raw)) <= 998


def test_a_long_unicode_filename_round_trips_through_rfc2231_continuations() -> None:
    # Given a 300-character non-ASCII file name with a long media type (xlsx)
    name = f"Jahresabschluss {DASH} Übersicht {DASH} 東京支社 " * 8 + ".xlsx"
    raw = render_email(_message(attachedFileKeys=[name]), [Attachment(name, "", b"PK")])
    # Then a reader gets the name and the media type back
    _body, attachment = _parse(raw).iter_parts()
    assert attachment.get_filename() == name
    assert attachment.get_content_type() == XLSX
    # And the name is split into RFC 2231 continuations that fit 78 columns
    continuations = [line for line in _lines(raw) if line.startswith((b" filename*", b" name*"))]
    assert continuations[0].startswith(b" name*0*=utf-8''")
    assert len(continuations) > 2
    assert max(len(line) for line in continuations) <= 78


def test_an_ascii_filename_too_long_for_a_line_round_trips() -> None:
    name = "report-" + "x" * 900 + ".csv"
    raw = render_email(_message(attachedFileKeys=[name]), [Attachment(name, "", b"a,b")])
    _body, attachment = _parse(raw).iter_parts()
    assert attachment.get_filename() == name
    assert attachment.get_content_type() == "text/csv"
    assert max(len(line) for line in _lines(raw)) <= 78


def test_a_quote_and_semicolon_in_a_filename_round_trip() -> None:
    name = 'quarterly "final"; v2.pdf'
    raw = render_email(_message(attachedFileKeys=[name]), [Attachment(name, "", b"%PDF")])
    _body, attachment = _parse(raw).iter_parts()
    assert attachment.get_filename() == name
    assert attachment.get_content_type() == "application/pdf"


def test_a_pre_encoded_subject_reads_as_what_it_encodes() -> None:
    parsed = _parse(render_email(_message(subject="=?utf-8?q?caf=C3=A9?= is ready"), []))
    assert parsed["Subject"] == "café is ready"


def test_a_long_ascii_producer_header_stays_on_one_line() -> None:
    # Given a List-Unsubscribe URL far longer than 78 characters
    url = "<https://example.com/unsubscribe?token=" + "a1b2" * 100 + ">"
    raw = render_email(_message(headers={"List-Unsubscribe": url}), [])
    # Then it is written verbatim on one line (an RFC 2047-wrapped URL would not work)
    assert b"\r\nList-Unsubscribe: " + url.encode() + b"\r\n" in raw
    assert _parse(raw)["List-Unsubscribe"] == url


# ---------------------------------------------------------------------------------------- wire format
@pytest.mark.parametrize("with_attachments", [False, True], ids=["simple", "mixed"])
def test_output_is_7bit_crlf_with_no_line_over_998(with_attachments: bool) -> None:
    # Given text that needs encoding and folding everywhere: long Unicode, long ASCII without spaces,
    # a 10,000-character body line, lone CRs and LFs in the body
    names = [f"{'長い名前' * 60}.bin", "plain.bin"] if with_attachments else []
    message = _unicode_message(names).model_copy(
        update={"body": "x" * 10_000 + "\rlone CR\nlone LF\r\n" + "é" * 3_000, "subject": "s" * 998}
    )
    attachments = [Attachment(name, "", _random_bytes(3_000, seed=4)) for name in names]
    # When rendered
    raw = render_email(message, attachments)
    # Then every byte is 7-bit, every line ends in CRLF (no bare CR or LF), no line exceeds 998 octets
    assert raw.isascii()
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in _lines(raw)) <= 998
    # And the body survives the encoding
    assert _text(_parse(raw).get_body(preferencelist=("plain",))) == (
        "x" * 10_000 + "\nlone CR\nlone LF\n" + "é" * 3_000 + "\n"
    )


def test_a_body_line_that_looks_like_a_boundary_does_not_split_the_message() -> None:
    body = "--=_stepmail_\n--===============\n--\n"
    message = _message(body=body, html="<p>--=_stepmail_</p>", attachedFileKeys=["a.bin"])
    parsed = _parse(render_email(message, [Attachment("a.bin", "", b"data")]))
    body_part, attachment = parsed.iter_parts()
    assert _text(body_part.get_body(preferencelist=("plain",))) == body
    assert attachment.get_payload(decode=True) == b"data"


# ---------------------------------------------------------------------------------------- safety
def test_an_injection_that_bypassed_validation_still_cannot_add_a_header() -> None:
    # Given a message built without validation whose subject decodes to a line break and a Bcc header
    message = _message().model_copy(update={"subject": "=?utf-8?q?Hi=0D=0ABcc:_evil@attacker.example?="})
    # When rendered (the email package's folder would decode the word and, before Python 3.11.10,
    # write the CR LF raw; the renderer writes header text without decoding it)
    raw = render_email(message, [])
    # Then the bytes hold no Bcc header: the word stays one line of the Subject field
    assert _parse(raw)["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in _lines(raw))
    assert b"\r\nSubject: =?utf-8?q?Hi=0D=0ABcc:_evil@attacker.example?=\r\n" in raw


@pytest.mark.parametrize(
    "update",
    [
        {"to": ["Jane\r\nBcc: evil@attacker.example <jane@example.org>"]},
        {"cc": ["evil@attacker.example\r\nX-Injected: 1"]},
        {"from_address": None},
    ],
    ids=["display-name", "address", "no-sender"],
)
def test_rendering_refuses_unvalidated_unsafe_fields(update: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessageError):
        render_email(_message().model_copy(update=update), [])


def test_attachment_repr_does_not_show_its_bytes() -> None:
    assert "secret" not in repr(Attachment("a.bin", "", b"secret" * 1000))


# ---------------------------------------------------------------------------------------- content type
@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("invoice.pdf", "", "application/pdf"),
        ("invoice.pdf", "binary/octet-stream", "application/pdf"),
        ("invoice.pdf", "application/octet-stream", "application/pdf"),
        ("invoice.pdf", "Application/Octet-Stream", "application/pdf"),
        ("INVOICE.PDF", "", "application/pdf"),
        ("photo.jpg", "image/png", "image/png"),  # a specific declared type wins over the name
        ("photo", "image/png", "image/png"),
        ("q3.docx", "", DOCX),
        ("export.csv.gz", "", "application/gzip"),  # compressed: the archive's type, not CSV's
        ("backup.tar.bz2", "binary/octet-stream", "application/x-bzip2"),
        ("notes.txt", "text/plain; charset=ISO-8859-1", "text/plain; charset=ISO-8859-1"),
        ("notes.txt", "TEXT/PLAIN", "text/plain; charset=utf-8"),  # no charset: the bytes are UTF-8
        ("image.png", 'image/png; name="x"', "image/png"),  # other parameters are dropped
        ("README", "", "application/octet-stream"),  # no extension: nothing to guess from
        ("data.unknownext", "", "application/octet-stream"),
        ("forwarded.eml", "", "application/octet-stream"),
        ("forwarded.eml", "message/rfc822", "application/octet-stream"),  # base64 is not allowed for it
        ("parts.bin", "multipart/mixed; boundary=x", "application/octet-stream"),
        ("invoice.pdf", "text/plain\r\nBcc: evil@attacker.example", "application/pdf"),  # malformed: guessed
        ("invoice.pdf", "not a media type", "application/pdf"),
    ],
)
def test_attachment_media_type_uses_the_declared_type_or_guesses_from_the_name(
    name: str, declared: str, expected: str
) -> None:
    # When the media type is resolved (for ASCII bytes)
    media_type = attachment_media_type(name, declared, b"data")
    # Then it is as expected, and a rendered part declares it
    assert media_type == expected
    raw = render_email(_message(attachedFileKeys=[name]), [Attachment(name, declared, b"data")])
    _body, part = _parse(raw).iter_parts()
    assert part.get_content_type() == expected.partition(";")[0].lower()
    assert part.get_payload(decode=True) == b"data"


# ---------------------------------------------------------------------------------------- text charset
INVOICE_JA = "請求書\n株式会社サンプル 御中\n合計: 12,000円\n"
UTF8_CHUNK = 1 << 16  # the chunk size of the UTF-8 check, to put a sequence across a chunk boundary
TEXT_SETTINGS = settings(max_examples=150, deadline=None, database=None)


def _attachment_part(name: str, content_type: str, data: bytes) -> EmailMessage:
    """The attachment's part, as a reader parses it from the rendered email."""
    raw = render_email(_message(attachedFileKeys=[name]), [Attachment(name, content_type, data)])
    _body, part = _parse(raw).iter_parts()
    assert isinstance(part, EmailMessage)
    return part


@pytest.mark.parametrize("store_type", ["", "binary/octet-stream", "application/octet-stream", "text/plain"])
def test_a_utf8_japanese_text_without_a_charset_is_declared_utf8(store_type: str) -> None:
    # Given 請求書.txt in UTF-8 stored without a charset (the Node SDK v3 sends no ContentType)
    data = INVOICE_JA.encode("utf-8")
    # When it is attached
    part = _attachment_part("請求書.txt", store_type, data)
    # Then it is text/plain in UTF-8, so a reader shows the Japanese text, not mojibake
    assert part.get_content_type() == "text/plain"
    assert part.get_content_charset() == "utf-8"
    assert part.get_content() == INVOICE_JA
    # And it is still the same file: its name and its bytes
    assert part.get_filename() == "請求書.txt"
    assert part.get_payload(decode=True) == data


@pytest.mark.parametrize(
    ("name", "store_type", "data"),
    [
        ("請求書.txt", "", INVOICE_JA.encode("shift_jis")),
        ("請求書.txt", "text/plain", INVOICE_JA.encode("shift_jis")),
        ("grüße.txt", "binary/octet-stream", "Grüße aus Zürich\n".encode("latin-1")),
        ("export.csv", "text/csv", "Müller;12,50 €\n".encode("cp1252")),
        ("page.html", "", "<p>café</p>".encode("latin-1")),  # a guessed text/html
    ],
    ids=["shift-jis-guessed", "shift-jis-text-plain", "latin-1", "cp1252-csv", "latin-1-html"],
)
def test_text_that_is_not_utf8_and_has_no_charset_is_sent_as_octet_stream(
    name: str, store_type: str, data: bytes
) -> None:
    # When a text file in another encoding, stored without a charset, is attached
    part = _attachment_part(name, store_type, data)
    # Then it is declared application/octet-stream with no charset (a wrong charset would garble it)
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_param("charset") is None
    # And it arrives byte for byte under its name
    assert part.get_filename() == name
    assert part.get_payload(decode=True) == data


@pytest.mark.parametrize(
    ("store_type", "data", "expected"),
    [
        ("text/plain; charset=shift_jis", INVOICE_JA.encode("shift_jis"), "text/plain; charset=shift_jis"),
        ('text/plain; charset="ISO-8859-1"', "Grüße\n".encode("latin-1"), "text/plain; charset=ISO-8859-1"),
        ("text/csv; charset=utf-8", "名前,金額\n".encode(), "text/csv; charset=utf-8"),
        # The store's word is kept even when the bytes disagree: the producer said what they are.
        ("text/plain; charset=utf-8", INVOICE_JA.encode("shift_jis"), "text/plain; charset=utf-8"),
    ],
    ids=["shift-jis", "latin-1-quoted", "utf-8", "utf-8-over-shift-jis"],
)
def test_a_charset_the_store_gives_is_kept(store_type: str, data: bytes, expected: str) -> None:
    # When a text file is stored with a charset
    media_type = attachment_media_type("notes.txt", store_type, data)
    # Then that charset is declared
    assert media_type == expected
    part = _attachment_part("notes.txt", store_type, data)
    assert part.get_content_charset() == expected.rpartition("=")[2].lower()
    assert part.get_payload(decode=True) == data


def test_a_store_charset_that_is_not_well_formed_counts_as_none() -> None:
    # Given a charset parameter that is not a charset name (as today, it is not copied into the header)
    store_type = "text/plain; charset=???"
    # When / Then the bytes decide, as for no charset at all
    assert attachment_media_type("a.txt", store_type, "é".encode()) == "text/plain; charset=utf-8"
    assert attachment_media_type("a.txt", store_type, "é".encode("latin-1")) == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty.txt", b"", "text/plain; charset=utf-8"),  # no bytes: trivially UTF-8
        ("export.csv", "名前,金額\n山田,1200\n".encode(), "text/csv; charset=utf-8"),
        ("export.csv", b"name,amount\r\nJane,12\r\n", "text/csv; charset=utf-8"),  # ASCII is UTF-8
        ("export.csv", "Jérôme,12\n".encode("latin-1"), "application/octet-stream"),
        ("invite.ics", "SUMMARY:Réunion\r\n".encode(), "text/calendar; charset=utf-8"),
        ("notes.md", "# Überblick\n".encode(), "text/markdown; charset=utf-8"),
        ("bom.txt", b"\xef\xbb\xbfhello", "text/plain; charset=utf-8"),  # a UTF-8 BOM is UTF-8
        ("utf16.txt", "hello".encode("utf-16"), "application/octet-stream"),
        ("report.pdf", b"\xff\xfe not text", "application/pdf"),  # only text/* is looked at
        ("data.csv.gz", b"\x1f\x8b\x08\x00", "application/gzip"),
    ],
)
def test_a_type_guessed_from_the_name_gets_a_charset_from_the_bytes(
    name: str, data: bytes, expected: str
) -> None:
    # When the store gives no type and the name says text
    media_type = attachment_media_type(name, "", data)
    # Then a text type is UTF-8 when its bytes are, and octet-stream otherwise; other types are as guessed
    assert media_type == expected
    part = _attachment_part(name, "", data)
    assert part.get_content_type() == expected.partition(";")[0]
    assert part.get_payload(decode=True) == data


@pytest.mark.parametrize(
    ("text", "width"),
    [("é", 2), ("ß", 2), ("€", 3), ("東", 3), ("😀", 4), ("𠮷", 4)],
    ids=["e-acute", "sharp-s", "euro", "cjk", "emoji", "cjk-ext-b"],
)
def test_utf8_of_every_sequence_length_is_utf8_and_one_byte_short_is_not(text: str, width: int) -> None:
    # Given text whose last character takes 2, 3 or 4 bytes in UTF-8
    data = f"total {text}".encode()
    assert len(text.encode()) == width
    # When / Then the whole text is UTF-8
    assert attachment_media_type("a.txt", "", data) == "text/plain; charset=utf-8"
    # And the same bytes with the final sequence cut short (a truncated file) are not
    for cut in range(1, width):
        assert attachment_media_type("a.txt", "", data[:-cut]) == "application/octet-stream"


@pytest.mark.parametrize(
    "data",
    [
        b"\xc0\xaf",  # an overlong "/" (RFC 3629 forbids it)
        b"\xe0\x80\xaf",  # an overlong 3-byte "/"
        b"\xed\xa0\x80",  # a UTF-16 surrogate (U+D800)
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b"\x80",  # a lone continuation byte
        b"ok \xff",  # a byte that never occurs in UTF-8
    ],
    ids=["overlong-2", "overlong-3", "surrogate", "past-max", "continuation", "ff"],
)
def test_ill_formed_utf8_is_not_utf8(data: bytes) -> None:
    assert attachment_media_type("a.txt", "", data) == "application/octet-stream"


@pytest.mark.parametrize("offset", [-3, -2, -1, 0])
def test_a_sequence_across_a_chunk_boundary_of_the_check_is_read_whole(offset: int) -> None:
    # Given a 4-byte character that starts just before, or exactly at, the check's 64 KiB chunk boundary
    data = b"a" * (UTF8_CHUNK + offset) + "😀".encode() + b"a" * 10
    # When / Then it is UTF-8 (the check is not fooled by the chunking)
    assert attachment_media_type("a.txt", "", data) == "text/plain; charset=utf-8"
    # And one bad byte after the first chunk still makes the file octet-stream
    assert attachment_media_type("a.txt", "", data + b"\xff") == "application/octet-stream"


_SUBTYPES = st.from_regex(r"\A[a-z0-9][a-z0-9!#$&^_.+-]{0,20}\Z")
_TEXT_STORE_TYPES = st.one_of(
    st.sampled_from(["text/plain", "TEXT/Plain", "text/csv; header=present", "text/html;format=flowed"]),
    _SUBTYPES.map(lambda subtype: f"text/{subtype}"),
)
_ANY_BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda text: text.encode("utf-8")),
    st.text(st.characters(max_codepoint=0xFF), max_size=100).map(lambda text: text.encode("latin-1")),
)


@TEXT_SETTINGS
@given(store_type=_TEXT_STORE_TYPES, data=_ANY_BYTES)
@example(store_type="text/plain", data=b"\xc3")  # a truncated 2-byte sequence
@example(store_type="text/plain", data=b"\xed\xbf\xbf")  # an encoded surrogate
@example(store_type="text/plain", data=b"")
def test_a_text_type_without_a_charset_is_utf8_exactly_when_the_bytes_are(
    store_type: str, data: bytes
) -> None:
    # Given any bytes stored as any text/* type without a charset
    try:
        data.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError:
        is_utf8 = False
    # When attached and parsed back
    part = _attachment_part("file", store_type, data)
    # Then the charset is utf-8 if and only if the bytes decode as UTF-8 (octet-stream otherwise)
    assert (part.get_content_charset() == "utf-8") is is_utf8
    if is_utf8:
        assert part.get_content_type() == store_type.partition(";")[0].strip().lower()
    else:
        assert part.get_content_type() == "application/octet-stream"
        assert part.get_param("charset") is None
    # And the part carries the bytes exactly
    assert part.get_payload(decode=True) == data


# ---------------------------------------------------------------------------------------- size
@pytest.mark.parametrize("size", [0, 1, 2, 3, 56, 57, 58, 114, 1_000, 100_003])
def test_base64_encoded_size_is_exact(size: int) -> None:
    import base64

    assert base64_encoded_size(size) == len(base64.encodebytes(bytes(size)).replace(b"\n", b"\r\n"))


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [1], [56], [57], [58], [1_000, 2], [100_003], [3, 70_001, 5, 0], [250_000] * 3],
)
def test_the_estimate_is_an_upper_bound_of_the_real_size(sizes: list[int]) -> None:
    # Given a message with non-ASCII everywhere and attachments of these sizes
    names = [f"{index}-{UNICODE_FILENAME}" for index in range(len(sizes))]
    message = _unicode_message(names)
    attachments = [
        Attachment(name, "", _random_bytes(size, seed=size)) for name, size in zip(names, sizes, strict=True)
    ]
    # When the size is estimated from the sizes alone, and the email rendered
    estimate = estimate_email_size(message, sizes)
    actual = len(render_email(message, attachments))
    # Then the estimate is never below the real size, and close to it (at most ~1 KB per part)
    assert actual <= estimate <= actual + 1_024 * (len(sizes) + 1)


def test_the_estimate_covers_the_longest_declared_media_type() -> None:
    declared = "text/" + "x" * 126 + "; charset=" + "y" * 40
    message = _message(attachedFileKeys=["a.txt"])
    raw = render_email(message, [Attachment("a.txt", declared, b"abc")])
    assert len(raw) <= estimate_email_size(message, [3])


def test_the_largest_email_that_fits_is_rendered_and_one_byte_more_is_refused_early() -> None:
    # Given the largest attachment whose estimate fits the SES limit
    message = _message(attachedFileKeys=["big.bin"])
    size = (MAX_EMAIL_BYTES * 57) // 78
    while estimate_email_size(message, [size]) > MAX_EMAIL_BYTES:
        size -= 57
    # When checked and rendered, Then it passes and really is within the limit
    check_estimated_size(message, [size])
    raw = render_email(message, [Attachment("big.bin", "", bytes(size))])
    assert len(raw) <= MAX_EMAIL_BYTES
    # And a whole base64 line more is refused before any download, with the numbers
    with pytest.raises(MessageTooLargeError, match=r"SES accepts at most 40,000,000 bytes"):
        check_estimated_size(message, [size + 57])


def test_check_estimated_size_refuses_30_mb_of_attachments_with_a_clear_reason() -> None:
    message = _message(attachedFileKeys=["a.bin", "b.bin"])
    with pytest.raises(MessageTooLargeError) as caught:
        check_estimated_size(message, iter([20_000_000, 10_000_000]))  # any iterable, even a generator
    reason = caught.value.reason
    assert "2 attachments" in reason
    assert "30,000,000 bytes before base64" in reason
    assert "at most 40,000,000" in reason


def test_rendering_over_the_limit_raises_message_too_large() -> None:
    # Given an attachment that only the real rendering finds too large (29.3 MB -> ~40.1 MB encoded)
    message = _message(attachedFileKeys=["big.bin"])
    with pytest.raises(MessageTooLargeError, match="40,000,000"):
        render_email(message, [Attachment("big.bin", "", bytes(29_300_000))])


@pytest.mark.parametrize("with_attachment", [False, True], ids=["text-only", "mixed"])
def test_rendering_checks_the_limit_with_or_without_attachments(
    monkeypatch: pytest.MonkeyPatch, with_attachment: bool
) -> None:
    # Given a lowered limit (the check reads the module's constant)
    monkeypatch.setattr(mime, "MAX_EMAIL_BYTES", 3_000)
    message = _message(body="b" * 4_000, attachedFileKeys=["a.bin"] if with_attachment else [])
    attachments = [Attachment("a.bin", "", b"a" * 10)] if with_attachment else []
    # Then rendering refuses the email
    with pytest.raises(MessageTooLargeError):
        render_email(message, attachments)
