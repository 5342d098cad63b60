"""Addresses as SES accepts them: normalization, display names, sender identities."""

from __future__ import annotations

import re

import pytest

from stepmail.core.addresses import (
    AddressError,
    Mailbox,
    address_allowed,
    normalize_address,
    parse_mailbox,
    recipient_key,
    refuse_unsafe_characters,
)


# ---------------------------------------------------------------------------------------- normalize
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jane@example.org", "jane@example.org"),
        (
            "Jane.Doe@Example.ORG",
            "Jane.Doe@example.org",
        ),  # the domain is case-insensitive, the local part kept
        ("  jane@example.org ", "jane@example.org"),
        ("jane+tag@example.org", "jane+tag@example.org"),
        ("o'neil@example.org", "o'neil@example.org"),
        ("jane@bücher.example", "jane@xn--bcher-kva.example"),
        ("jane@BÜCHER.example", "jane@xn--bcher-kva.example"),
        ("jane@例え.jp", "jane@xn--r8jz45g.jp"),
        ("jane@xn--bcher-kva.example", "jane@xn--bcher-kva.example"),
        ("success@simulator.amazonses.com", "success@simulator.amazonses.com"),
    ],
)
def test_addresses_are_normalized(text: str, expected: str) -> None:
    assert normalize_address(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jane", "exactly one '@'"),
        ("jane@example@org", "exactly one '@'"),
        ("jané@example.org", "ASCII local part"),
        ("jane.@example.org", "invalid local part"),
        ("j" * 65 + "@example.org", "invalid local part"),
        ("jane@localhost", "not a valid domain name"),
        ("jane@example..org", "not a valid domain name"),
        ("jane@example.o", "no valid top-level domain"),
        ("jane@" + ("a" * 60 + ".") * 5 + "org", "longer than 254"),
        ("jane@exa\u200bmple.org", "U+200B"),
        ("jane@example.org\x00", "U+0000"),
        ("jane@example.org\n", "U+000A"),
        ("jane=?x@example.org", "encoded word"),
    ],
)
def test_invalid_addresses_raise_with_a_reason(text: str, expected: str) -> None:
    with pytest.raises(AddressError, match=re.escape(expected)):
        normalize_address(text)


def test_a_non_string_address_is_refused() -> None:
    with pytest.raises(AddressError, match="must be a string"):
        normalize_address(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- mailboxes
@pytest.mark.parametrize(
    ("text", "address", "name"),
    [
        ("jane@example.org", "jane@example.org", ""),
        ("Jane Doe <jane@Example.org>", "jane@example.org", "Jane Doe"),
        ('"Doe, Jane" <jane@example.org>', "jane@example.org", "Doe, Jane"),
        ("Jérôme Dupont <jerome@example.fr>", "jerome@example.fr", "Jérôme Dupont"),
        ("東京 <tokyo@例え.jp>", "tokyo@xn--r8jz45g.jp", "東京"),
        ("  <jane@example.org>", "jane@example.org", ""),
    ],
)
def test_mailboxes_are_parsed_into_address_and_display_name(text: str, address: str, name: str) -> None:
    assert parse_mailbox(text) == Mailbox(address, name)


@pytest.mark.parametrize(
    ("mailbox", "text"),
    [
        (Mailbox("jane@example.org"), "jane@example.org"),
        (Mailbox("jane@example.org", "Jane Doe"), "Jane Doe <jane@example.org>"),
        (Mailbox("jane@example.org", "Doe, Jane"), '"Doe, Jane" <jane@example.org>'),
        (Mailbox("jane@example.org", "J. Doe (HR)"), '"J. Doe (HR)" <jane@example.org>'),
    ],
)
def test_mailboxes_print_as_rfc5322_and_parse_back(mailbox: Mailbox, text: str) -> None:
    # Given a mailbox, When printed, Then specials in the name are quoted and it parses back the same
    assert str(mailbox) == text
    assert parse_mailbox(str(mailbox)) == mailbox


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Jane "JD" Doe <jane@example.org>', "quotes or backslashes"),
        ("Jane\\Doe <jane@example.org>", "quotes or backslashes"),
        ("J" * 201 + " <jane@example.org>", "display name is too long"),
        ("\u202eenaJ <jane@example.org>", "U+202E"),
        ("Jane\r\nBcc: x@evil.example <jane@example.org>", "U+000D"),
        ("=?utf-8?q?Jane=0D=0ABcc=3A_x?= <jane@example.org>", "RFC 2047"),
        ("Jane <jane@example>", "not a valid domain name"),
    ],
)
def test_unsafe_mailboxes_are_refused(text: str, expected: str) -> None:
    with pytest.raises(AddressError, match=re.escape(expected)):
        parse_mailbox(text)


def test_safe_encoded_words_pass_the_character_check() -> None:
    # Given a pre-encoded text that decodes to "café"
    # Then it is not refused
    refuse_unsafe_characters("=?utf-8?q?caf=C3=A9?=", "subject")
    refuse_unsafe_characters("=?iso-8859-1?b?Y2Fm6Q==?=", "subject")


@pytest.mark.parametrize(
    "text",
    [
        "=?utf-8?q?=0D=0A?=",
        "=?UTF-8?Q?a=0Ab?=",
        "=?utf-8?b?DQo=?=",
        "=?utf-8?b?DQo?=",  # missing padding: repaired by the email package, so checked too
        "=?x-unknown?q?=0A?=",  # unknown charset: the raw bytes are what a reader would get
        "=?utf-8*en?q?=0A?=",  # RFC 2231 language suffix
        "=?utf-16-le?b?DQAKAA==?=",
    ],
)
def test_encoded_words_decoding_to_line_breaks_are_refused(text: str) -> None:
    with pytest.raises(AddressError, match="in an RFC 2047 encoded word"):
        refuse_unsafe_characters(f"Hello {text} world", "subject")


# ---------------------------------------------------------------------------------------- identities
@pytest.mark.parametrize(
    ("address", "identities", "allowed"),
    [
        ("noreply@example.com", ["noreply@example.com"], True),
        ("NoReply@Example.com", ["noreply@example.com"], True),
        ("noreply@example.com", ["NOREPLY@EXAMPLE.COM"], True),
        ("anyone@example.com", ["example.com"], True),
        ("anyone@example.com", ["Example.COM"], True),
        ("other@example.com", ["noreply@example.com"], False),  # an address identity covers one address
        ("anyone@mail.example.com", ["example.com"], False),  # a subdomain is NOT covered
        ("anyone@notexample.com", ["example.com"], False),
        ("anyone@example.com.evil.example", ["example.com"], False),
        ("anyone@example.org", ["example.com", "noreply@example.com"], False),
        ("anyone@example.org", [], False),
        ("x@b.example", ["a.example", "b.example"], True),
    ],
)
def test_address_allowed_by_address_and_domain_identities(
    address: str, identities: list[str], allowed: bool
) -> None:
    assert address_allowed(address, identities) is allowed


def test_recipient_key_is_case_insensitive() -> None:
    assert (
        recipient_key("Jane.Doe@Example.org")
        == recipient_key("jane.doe@EXAMPLE.ORG")
        == "jane.doe@example.org"
    )
