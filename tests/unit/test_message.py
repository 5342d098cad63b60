"""The message contract: what producers may put on the queue, and the reasons for what they may not."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest

from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import (
    MAX_MESSAGE_BYTES,
    MAX_RECIPIENTS,
    MailMessage,
    SenderPolicy,
    message_json_schema,
    parse_message,
)

POLICY = SenderPolicy(
    sender_identities=("example.com", "alerts@stepmail.dev"),
    default_sender="Stepmail <noreply@example.com>",
    configuration_sets=("marketing",),
)

#: A message exactly as producers of the original system write it.
ORIGINAL = {
    "mailKey": "order-1001",
    "toAddress": "jane@example.org",
    "subject": "Your invoice",
    "body": "Hello Jane,\nyour invoice is attached.\n",
    "attachedFileKeys": ["invoice-1001.pdf"],
}

INJECTION = "\r\nBcc: evil@attacker.example"


def _parse(document: dict[str, Any]) -> MailMessage:
    return parse_message(json.dumps(document), POLICY)


def _reason(body: str | bytes | dict[str, Any]) -> str:
    """Parse something invalid and return the reason the dead-letter queue would get."""
    raw = json.dumps(body) if isinstance(body, dict) else body
    with pytest.raises(InvalidMessageError) as caught:
        parse_message(raw, POLICY)
    return caught.value.reason


def _with(**fields: Any) -> dict[str, Any]:
    """The original message with some fields changed (a value of None removes the field)."""
    document = {**ORIGINAL, **fields}
    return {key: value for key, value in document.items() if value is not None}


def _addresses(count: int, domain: str = "example.org") -> list[str]:
    return [f"user{index}@{domain}" for index in range(count)]


# ---------------------------------------------------------------------------------------- accepted
def test_original_producer_format_is_accepted_unchanged() -> None:
    # Given a message in the original producer format
    # When it is parsed
    message = _parse(ORIGINAL)
    # Then every original field keeps its value and the configured sender is filled in
    assert message.mail_key == "order-1001"
    assert message.to_address == "jane@example.org"
    assert message.subject == "Your invoice"
    assert message.body == ORIGINAL["body"]
    assert message.attached_file_keys == ["invoice-1001.pdf"]
    assert message.recipients() == ["jane@example.org"]
    assert message.from_address == "Stepmail <noreply@example.com>"
    # And the JSON view gives the producer's fields back under their names
    assert {key: message.to_json_dict()[key] for key in ORIGINAL} == ORIGINAL


def test_original_format_as_bytes_is_accepted() -> None:
    # Given the original message as the raw bytes of an SQS body
    # When it is parsed
    message = parse_message(json.dumps(ORIGINAL).encode(), POLICY)
    # Then it is the same message
    assert message == _parse(ORIGINAL)


def test_every_new_field_is_accepted_and_kept() -> None:
    # Given a message using every field of the extended format
    document = _with(
        to=["Ann Lee <ann@example.org>", "bob@example.org"],
        cc=["carol@example.org"],
        bcc=["audit@example.org"],
        replyTo=["support@example.com"],
        **{"from": "Alerts <alerts@stepmail.dev>"},
        html="<p>Hello Jane</p>",
        headers={"List-Unsubscribe": "<https://example.com/u/1>", "X-Campaign": "spring"},
        tags={"campaign": "spring-2026"},
        configurationSet="marketing",
    )
    # When it is parsed
    message = _parse(document)
    # Then every field is kept, and the recipients are the envelope (to, cc, bcc) in order
    assert message.to_mailboxes() == ["jane@example.org", "Ann Lee <ann@example.org>", "bob@example.org"]
    assert message.cc == ["carol@example.org"]
    assert message.bcc == ["audit@example.org"]
    assert message.reply_to == ["support@example.com"]
    assert message.from_address == "Alerts <alerts@stepmail.dev>"
    assert message.html == "<p>Hello Jane</p>"
    assert message.headers == {"List-Unsubscribe": "<https://example.com/u/1>", "X-Campaign": "spring"}
    assert message.tags == {"campaign": "spring-2026"}
    assert message.configuration_set == "marketing"
    assert message.recipients() == [
        "jane@example.org",
        "ann@example.org",
        "bob@example.org",
        "carol@example.org",
        "audit@example.org",
    ]


def test_json_view_round_trips_through_the_parser() -> None:
    # Given a parsed message with every field
    message = _parse(
        _with(
            to=['"Doe, John" <john@example.org>'], cc=["c@example.org"], headers={"X-A": "1"}, tags={"t": "v"}
        )
    )
    # When its JSON view is parsed again (as the sender Lambda does with the run's input)
    again = parse_message(json.dumps(message.to_json_dict()), POLICY)
    # Then nothing changed
    assert again == message


def test_domain_case_and_idna_are_normalized() -> None:
    # Given recipients with an upper-case domain and an internationalized domain
    message = _parse(_with(toAddress="Jane@Example.ORG", to=["José <jose@bücher.example>"]))
    # Then the domains are lower-case and in IDNA form, the local part and display name untouched
    assert message.to_mailboxes() == ["Jane@example.org", "José <jose@xn--bcher-kva.example>"]


def test_display_name_with_a_comma_is_quoted() -> None:
    # Given a display name with a comma (a special character in RFC 5322)
    message = _parse(_with(to=['"Doe, John" <john@example.org>']))
    # Then the normalized mailbox quotes it, so no reader takes it for two addresses
    assert message.to == ['"Doe, John" <john@example.org>']


def test_recipients_are_deduplicated_across_fields_case_insensitively() -> None:
    # Given 50 distinct addresses listed in to, again (upper-cased) in cc, and again in bcc
    addresses = _addresses(MAX_RECIPIENTS)
    document = _with(
        toAddress=None, to=addresses, cc=[address.upper() for address in addresses], bcc=addresses[:10]
    )
    # When it is parsed
    message = _parse(document)
    # Then each recipient counts once and the message is accepted
    assert len(message.recipients()) == MAX_RECIPIENTS


def test_a_safe_rfc2047_subject_is_accepted() -> None:
    # Given a producer that pre-encodes its subject (as some SES v1 clients did)
    message = _parse(_with(subject="=?utf-8?q?caf=C3=A9?= ready"))
    # Then it is accepted as is (the renderer writes it as what it decodes to)
    assert message.subject == "=?utf-8?q?caf=C3=A9?= ready"


# ---------------------------------------------------------------------------------------- schema
def test_json_schema_is_valid_and_describes_the_contract() -> None:
    # Given the published schema
    schema = message_json_schema()
    # Then it is a valid JSON Schema (draft 2020-12) that survives JSON serialization
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(json.dumps(schema)) == schema
    # And it names every field of the contract, camelCase, with mailKey the only required one
    assert set(schema["properties"]) == {
        "mailKey",
        "toAddress",
        "to",
        "cc",
        "bcc",
        "replyTo",
        "from",
        "subject",
        "body",
        "html",
        "template",
        "templateData",
        "attachedFileKeys",
        "headers",
        "tags",
        "configurationSet",
    }
    assert schema["required"] == ["mailKey"]
    assert schema["additionalProperties"] is False


def test_json_schema_accepts_the_original_format_and_refuses_a_missing_mail_key() -> None:
    # Given the published schema and a validator
    validator = jsonschema.Draft202012Validator(message_json_schema())
    # Then the original message is valid, and one without mailKey or with a wrong type is not
    assert list(validator.iter_errors(ORIGINAL)) == []
    assert list(validator.iter_errors(_with(mailKey=None)))
    assert list(validator.iter_errors(_with(to="jane@example.org")))


# ---------------------------------------------------------------------------------------- rejected
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"mailKey": "a", ', "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"just a string"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"mailKey": "a", "mailKey": "b", "toAddress": "x@example.org"}', "key 'mailKey' twice"),
    ],
    ids=["truncated", "empty", "not-utf8", "nested-too-deep", "array", "string", "null", "duplicate-key"],
)
def test_bodies_that_are_not_a_json_object_are_refused(body: str | bytes, expected: str) -> None:
    # When a body that is not one JSON object is parsed
    # Then it is refused with a reason saying so
    assert expected in _reason(body)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"mailKey": 5}, "mailKey"),
        ({"mailKey": ""}, "mailKey"),
        ({"to": "jane@example.org"}, "to"),
        ({"cc": [1, 2]}, "cc.0"),
        ({"subject": 3}, "subject"),
        ({"body": ["text"]}, "body"),
        ({"attachedFileKeys": "invoice.pdf"}, "attachedFileKeys"),
        ({"headers": ["X-A: 1"]}, "headers"),
        ({"headers": {"X-A": 1}}, "headers.X-A"),
        ({"tags": {"campaign": True}}, "tags.campaign"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_wrong_types_and_unknown_fields_are_refused_naming_the_field(
    fields: dict[str, Any], where: str
) -> None:
    # When a field has the wrong type (or is not part of the contract)
    reason = _reason(_with(**fields))
    # Then the reason names the field
    assert reason.startswith("invalid message: ")
    assert f"{where}:" in reason


def test_missing_mail_key_is_refused() -> None:
    assert "mailKey: Field required" in _reason(_with(mailKey=None))


def test_no_recipient_is_refused() -> None:
    assert "no recipient" in _reason(_with(toAddress=None))


def test_51_distinct_recipients_are_refused() -> None:
    # Given 25 + 25 + 1 distinct recipients over to, cc and bcc (each list well under its own cap)
    addresses = _addresses(MAX_RECIPIENTS + 1)
    document = _with(toAddress=None, to=addresses[:25], cc=addresses[25:50], bcc=addresses[50:])
    # Then the message is refused with the count
    assert "51 different recipients" in _reason(document) and "1 too many" in _reason(document)


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "jane@",
        "@example.org",
        "jane@@example.org",
        "jane@example",
        "jane@-example.org",
        "jane@example.123",
        "jane doe@example.org",
        "jane..doe@example.org",
        "jane@example.org.",
        "j" * 65 + "@example.org",
        "jane@" + "a" * 250 + ".org",
        "jane@exa_mple.org",
    ],
)
def test_invalid_addresses_are_refused(address: str) -> None:
    assert "toAddress:" in _reason(_with(toAddress=address))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("jane\u202e@example.org", "U+202E"),  # right-to-left override
        ("ja\u200bne@example.org", "U+200B"),  # zero-width space
        ("jane@exa\u200dmple.org", "U+200D"),  # zero-width joiner in the domain (IDNA would drop it)
        ("\u2066Jane\u2069 <jane@example.org>", "U+2066"),  # bidi isolate in a display name
        ("jane\uff20example.org", "exactly one '@'"),  # fullwidth commercial at
        ("jos\u00e9@example.org", "ASCII local part"),
        ("=?utf-8?q?jane?=@example.org", "encoded word"),
    ],
    ids=[
        "bidi-override",
        "zero-width-space",
        "zero-width-joiner",
        "bidi-isolate",
        "fullwidth-at",
        "non-ascii",
        "encoded-word",
    ],
)
def test_unicode_trick_addresses_are_refused(address: str, expected: str) -> None:
    assert expected in _reason(_with(toAddress=address))


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": f"Hello{INJECTION}"},
        {"subject": "Hello\nWorld"},
        {"subject": "Hello\rWorld"},
        {"subject": "Hello\u2028World"},  # Unicode line separator
        {"toAddress": f"jane@example.org{INJECTION}"},
        {"to": [f"jane@example.org{INJECTION}"]},
        {"cc": [f"jane@example.org{INJECTION}"]},
        {"bcc": [f"jane@example.org{INJECTION}"]},
        {"replyTo": [f"jane@example.org{INJECTION}"]},
        {"from": f"noreply@example.com{INJECTION}"},
        {"to": [f"Jane{INJECTION} <jane@example.org>"]},
        {"from": f"Stepmail{INJECTION} <noreply@example.com>"},
        {"headers": {"X-Campaign": f"spring{INJECTION}"}},
        {"headers": {"X-Campaign": "spring\n continued"}},
        {"attachedFileKeys": [f"invoice.pdf{INJECTION}"]},
    ],
    ids=lambda fields: next(iter(fields)),
)
def test_line_breaks_in_header_bearing_fields_are_refused(fields: dict[str, Any]) -> None:
    # When a field that ends up in a header holds a CR, an LF or a Unicode line break
    reason = _reason(_with(**fields))
    # Then the message is refused naming the character
    assert "forbidden character U+" in reason


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "=?utf-8?q?Hi=0D=0ABcc:_evil@attacker.example?="},
        {"subject": "x=?utf-8?b?SGkNCkJjYzogZXZpbEBhdHRhY2tlci5leGFtcGxl?= y"},
        {"subject": "=?utf-8?q?invoice=E2=80=AEfdp.exe?="},  # a hidden right-to-left override
        {"headers": {"X-Campaign": "=?utf-8?q?a=0ABcc:_evil@attacker.example?="}},
        {"to": ["=?utf-8?q?Jane=0D=0ABcc:_evil@attacker.example?= <jane@example.org>"]},
        {"attachedFileKeys": ["=?utf-8?q?a=0D=0ABcc:_x?=.pdf"]},
    ],
    ids=["subject-q", "subject-b-inside-word", "subject-bidi", "header", "display-name", "file-name"],
)
def test_line_breaks_hidden_in_rfc2047_encoded_words_are_refused(fields: dict[str, Any]) -> None:
    # Given a field whose encoded word decodes to a line break (the email package decodes such words,
    # and Python < 3.11.10 writes them back raw: a header injection)
    # Then the message is refused
    assert "in an RFC 2047 encoded word" in _reason(_with(**fields))


@pytest.mark.parametrize(
    "name", ["X Campaign", "X:Campaign", "X-Camp\u00e4ign", "", "X-" + "a" * 80, "X\r\nBcc"]
)
def test_header_names_that_are_not_field_names_are_refused(name: str) -> None:
    assert "not an RFC 5322 field name" in _reason(_with(headers={name: "1"}))


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "bcc",
        "BCC",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "content-transfer-encoding",
        "Content-Disposition",
        "Return-Path",
        "DKIM-Signature",
        "X-SES-CONFIGURATION-SET",
        "Sender",
    ],
)
def test_reserved_headers_are_refused(name: str) -> None:
    assert "is set by stepmail" in _reason(_with(headers={name: "value"}))


def test_the_same_header_twice_in_another_case_is_refused() -> None:
    assert "given twice" in _reason(_with(headers={"X-Campaign": "a", "x-campaign": "b"}))


def test_a_header_line_longer_than_998_characters_is_refused() -> None:
    # Given a header whose "Name: value" line would be 999 characters
    value = "a" * (998 - len("X-Long: ") + 1)
    # Then it is refused (ASCII values are written unfolded, so they must fit one line)
    assert "must fit 998" in _reason(_with(headers={"X-Long": value}))
    # And one character less is accepted
    assert _parse(_with(headers={"X-Long": value[:-1]})).headers["X-Long"] == value[:-1]


@pytest.mark.parametrize(
    "name",
    [
        "../secret.pdf",
        "a/../../b.pdf",
        "..",
        ".",
        "./a.pdf",
        "/etc/passwd",
        "a\\b.pdf",
        "..\\..\\b",
        "a//b.pdf",
        "a/",
        "",
        "a/./b",
    ],
)
def test_attachment_keys_that_could_escape_the_mail_key_are_refused(name: str) -> None:
    assert "attachedFileKeys" in _reason(_with(attachedFileKeys=[name]))


@pytest.mark.parametrize(
    "mail_key",
    ["../other", "a/../b", "/absolute", "a\\b", "..", ".", "a//b", "a/", "a/./b", "a#b", "a b", "k\x00"],
)
def test_mail_keys_that_are_not_a_safe_prefix_are_refused(mail_key: str) -> None:
    assert "mailKey:" in _reason(_with(mailKey=mail_key))


def test_the_same_attachment_twice_is_refused() -> None:
    assert "same file twice" in _reason(_with(attachedFileKeys=["a.pdf", "a.pdf"]))


@pytest.mark.parametrize("field", ["body", "html"])
def test_nul_bytes_in_the_body_are_refused(field: str) -> None:
    assert "control character U+0000" in _reason(_with(**{field: "Hello\x00World"}))


def test_tabs_and_line_breaks_in_the_body_are_accepted() -> None:
    message = _parse(_with(body="a\tb\r\nc\nd", html="<p>\n</p>"))
    assert message.body == "a\tb\r\nc\nd"


@pytest.mark.parametrize(
    "sender",
    ["ceo@attacker.example", "noreply@sub.example.com", "someone@stepmail.dev", "x@notexample.com"],
    ids=["other-domain", "subdomain", "other-user-of-address-identity", "suffix-trick"],
)
def test_a_sender_that_is_not_a_configured_identity_is_refused(sender: str) -> None:
    assert "not one of the configured sender identities" in _reason(_with(**{"from": sender}))


def test_a_configured_sender_identity_is_accepted() -> None:
    assert _parse(_with(**{"from": "ALERTS@Stepmail.dev"})).from_address == "ALERTS@stepmail.dev"


def test_a_configuration_set_that_is_not_allowed_is_refused() -> None:
    assert "configurationSet 'transactional' is not allowed" in _reason(
        _with(configurationSet="transactional")
    )


def test_a_message_larger_than_a_workflow_run_can_hold_is_refused() -> None:
    # Given a message over the size a Step Functions run's input can hold at all
    document = _with(body="a" * MAX_MESSAGE_BYTES)
    # Then it is refused with its size and the limit, before any validation
    reason = _reason(document)
    assert f"at most {MAX_MESSAGE_BYTES:,}" in reason and "bytes too many" in reason


def test_a_huge_subject_is_refused() -> None:
    reason = _reason(_with(subject="s" * 999))
    assert "subject:" in reason
    assert "998" in reason


@pytest.mark.parametrize(
    "document",
    [
        '{"mailKey": "a", "toAddress": "x@example.org", "body": "SECRET-BODY-TEXT" ',
        json.dumps(_with(body="SECRET-BODY-TEXT\x00")),
        json.dumps(_with(body=["SECRET-BODY-TEXT"])),
        json.dumps(_with(html={"SECRET": "SECRET-BODY-TEXT"})),
        json.dumps(_with(toAddress=None, body="SECRET-BODY-TEXT")),
        json.dumps(_with(body="SECRET-BODY-TEXT " * 20_000)),
    ],
    ids=["bad-json", "nul", "wrong-type", "wrong-type-html", "no-recipient", "too-large"],
)
def test_the_reason_never_echoes_the_body(document: str) -> None:
    # When a message carrying a body is refused for any reason
    reason = _reason(document)
    # Then the reason does not contain the body text (it goes to logs and the DLQ)
    assert "SECRET" not in reason


def test_random_garbage_only_ever_raises_invalid_message_error() -> None:
    # Given random bytes and random JSON-ish text (seeded, so a failure is reproducible)
    generator = random.Random(20261128)
    alphabet = '{}[]":,0123456789abcdeftrunl\\ \n\x00\u00e9'
    samples: list[str | bytes] = [
        bytes(generator.randrange(256) for _ in range(generator.randrange(40))) for _ in range(200)
    ]
    samples += [
        "".join(generator.choice(alphabet) for _ in range(generator.randrange(60))) for _ in range(200)
    ]
    # When each is parsed, Then the only exception is InvalidMessageError (never a crash of the starter)
    for sample in samples:
        with pytest.raises(InvalidMessageError):
            parse_message(sample, POLICY)


def test_joiners_are_writing_in_subjects_but_tricks_in_addresses() -> None:
    # Given an emoji ZWJ sequence and Persian text with a zero-width non-joiner in the subject
    policy = SenderPolicy(("example.com",), "no-reply@example.com")
    subject = "\U0001f469\u200d\U0001f4bb \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    body = json.dumps({"mailKey": "k", "toAddress": "a@example.org", "subject": subject})

    # When / Then the subject is accepted as written
    assert parse_message(body, policy).subject == subject

    # But a joiner hidden in an address is refused (IDNA would silently drop it from the domain)
    with pytest.raises(InvalidMessageError, match="U\\+200D"):
        parse_message(json.dumps({"mailKey": "k", "toAddress": "a@exa\u200dmple.org"}), policy)
