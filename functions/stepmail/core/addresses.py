"""Email addresses as SES accepts them, and as nothing can smuggle a header or a recipient through.

SES does not support SMTPUTF8: the local part must be 7-bit ASCII, and an internationalized domain
must go out in its IDNA (punycode) form.  Anything that could end a header (CR, LF), hide text
(bidirectional overrides, zero-width characters) or confuse a parser (NUL, other controls) is refused
outright rather than cleaned, so what is sent is exactly what the producer wrote.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 200

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TOP_LEVEL = re.compile(r"^([A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")
_NAME_AND_ADDRESS = re.compile(r"^(?P<name>[^<>]*)<(?P<address>[^<>]+)>$")
#: An RFC 2047 encoded word, found as leniently as the ``email`` package finds them (anywhere in a text).
_ENCODED_WORD = re.compile(r"=\?(?P<charset>[^?\s]*)\?(?P<encoding>[BbQq])\?(?P<payload>[^?\s]*)\?=")
#: RFC 5322 specials: a display name holding one of these must be quoted.
_SPECIALS = frozenset('()<>[]:;@\\,."')


class AddressError(ValueError):
    """An address that SES would refuse or that could be used for header injection."""


@dataclass(frozen=True)
class Mailbox:
    """An address with an optional display name, both validated."""

    address: str
    display_name: str = ""

    def __str__(self) -> str:
        if not self.display_name:
            return self.address
        name = self.display_name
        if not _SPECIALS.isdisjoint(name):
            name = f'"{name}"'  # parse_mailbox refuses quotes and backslashes inside names: nothing to escape
        return f"{name} <{self.address}>"


#: Zero-width (non-)joiners are part of writing, not tricks: emoji sequences (👩‍💻) and Persian or
#: Indic text need them.  Allowed in subjects and header values, never in addresses (IDNA would
#: silently drop them from a domain).
JOINERS = frozenset({"\u200c", "\u200d"})


def refuse_unsafe_characters(text: str, what: str, *, allow_joiners: bool = False) -> None:
    """Raise if ``text`` holds control, format (bidi, zero-width) or line-breaking characters.

    The check also covers what every RFC 2047 encoded word in ``text`` decodes to: the ``email``
    package decodes such words when it builds a header (``=?utf-8?q?=0D=0A?=`` is a CR LF), and
    Python before 3.11.10/3.12.5 writes them back unencoded, which would inject a header.

    Raises
    ------
    AddressError
        Naming the first forbidden character (never echoing the text).
    """
    allowed = JOINERS if allow_joiners else frozenset()
    _refuse_characters(text, what, allowed)
    for decoded in _encoded_word_texts(text):
        _refuse_characters(decoded, f"{what} (in an RFC 2047 encoded word)", allowed)


def _refuse_characters(text: str, what: str, allowed: frozenset[str]) -> None:
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Zl", "Zp") and char not in allowed:
            raise AddressError(f"{what} contains a forbidden character U+{ord(char):04X}")


def _encoded_word_texts(text: str) -> Iterator[str]:
    """Every text the encoded words in ``text`` may decode to (each plausible decoding, to be safe)."""
    for match in _ENCODED_WORD.finditer(text):
        charset = match.group("charset").partition("*")[0]  # RFC 2231 language suffix: utf-8*en
        for data in _encoded_word_payloads(match.group("encoding"), match.group("payload")):
            try:
                yield data.decode(charset, "replace")
            except LookupError:  # unknown charset: the email package keeps the raw bytes
                yield data.decode("latin-1")


def _encoded_word_payloads(encoding: str, payload: str) -> Iterator[bytes]:
    raw = payload.encode("utf-8")
    if encoding in "Qq":
        yield binascii.a2b_qp(raw, header=True)
        return
    for padding in (b"", b"=", b"==", b"==="):  # the email package repairs bad padding the same ways
        try:
            yield base64.b64decode(raw + padding)
        except binascii.Error:
            continue


def _ascii_domain(domain: str) -> str:
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as error:
        raise AddressError(f"domain {domain!r} is not a valid internationalized domain name") from error
    labels = ascii_domain.lower().split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise AddressError(f"domain {domain!r} is not a valid domain name")
    if not _TOP_LEVEL.match(labels[-1]):
        raise AddressError(f"domain {domain!r} has no valid top-level domain")
    return ".".join(labels)


def normalize_address(text: str) -> str:
    """Validate a bare address and return it with its domain lower-cased and in IDNA form."""
    if not isinstance(text, str):
        raise AddressError("an address must be a string")
    refuse_unsafe_characters(text, "address")
    address = text.strip()
    if address.count("@") != 1:
        raise AddressError(f"{address!r} is not an email address (exactly one '@' is required)")
    local, domain = address.split("@")
    if not local.isascii():
        raise AddressError(f"{address!r}: SES requires an ASCII local part")
    if "=?" in local:
        raise AddressError(f"{address!r}: a local part may not look like an RFC 2047 encoded word")
    if len(local) > MAX_LOCAL_PART_LENGTH or not _LOCAL_PART.match(local):
        raise AddressError(f"{address!r} has an invalid local part")
    normalized = f"{local}@{_ascii_domain(domain)}"
    if len(normalized) > MAX_ADDRESS_LENGTH:
        raise AddressError("address is longer than 254 characters")
    return normalized


def parse_mailbox(text: str) -> Mailbox:
    """Parse ``addr`` or ``Display Name <addr>``."""
    if not isinstance(text, str):
        raise AddressError("an address must be a string")
    refuse_unsafe_characters(text, "address")
    match = _NAME_AND_ADDRESS.match(text.strip())
    if not match:
        return Mailbox(normalize_address(text))
    name = match.group("name").strip().strip('"').strip()
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise AddressError("display name is too long")
    if '"' in name or "\\" in name:
        raise AddressError("display name may not contain quotes or backslashes")
    return Mailbox(normalize_address(match.group("address")), name)


def recipient_key(address: str) -> str:
    """The form of an address used for de-duplication: case-insensitive."""
    return address.lower()


def address_allowed(address: str, identities: Iterable[str]) -> bool:
    """True when ``address`` is one of the identities, or its domain is a domain identity."""
    address = address.lower()
    domain = address.rsplit("@", 1)[-1]
    for identity in identities:
        identity = identity.lower()
        if identity == address or ("@" not in identity and identity == domain):
            return True
    return False


_ANY_ADDRESS = re.compile(r"[^\s<>@,;:\"'()\[\]]+@[^\s<>@,;:\"'()\[\]]+")


def redact_addresses(text: str) -> str:
    """``text`` with every email address replaced: for logs and errors that must not carry one."""
    return _ANY_ADDRESS.sub("<address>", text)
