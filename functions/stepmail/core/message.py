"""The message contract: the JSON body a producer puts on the queue.

Compatible with producers of the system stepmail grew from (``mailKey``, ``subject``, ``body``,
``toAddress``, ``attachedFileKeys``) and extended with HTML, cc/bcc/reply-to, headers, tags and a
configuration set.  Validation is strict and its messages are written for the dead-letter queue:
whatever a producer writes cannot add a header or a recipient, nor reach outside ``<mailKey>/``.

Two rules keep every accepted message to itself:

* **one recipient, one destination**: the same mailbox given twice (in any case, in to, cc or bcc) is
  one recipient; :meth:`MailMessage.destinations` keeps its first occurrence (to, then cc, then bcc),
  and the count, the lock key, the headers and SES's destinations all use that one list;
* **keys that cannot overlap**: an attachment is a file directly under ``<mailKey>/`` (its name has
  no ``/``), so no message can name a file under another mail key's prefix (mail key ``t-1`` with
  ``b/secret.txt`` would read the file of mail key ``t-1/b``).

One parser reads every body (:func:`parse_document`): the starter, the producer client, a redrive and
the console all accept and refuse exactly the same JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stepmail.core.addresses import (
    AddressError,
    address_allowed,
    parse_mailbox,
    recipient_key,
    refuse_unsafe_characters,
)
from stepmail.core.budget import MAX_PAYLOAD_BYTES
from stepmail.core.errors import InvalidMessageError

MAX_RECIPIENTS = 50  # SES v2: to + cc + bcc
MAX_ATTACHMENTS = 50
MAX_SUBJECT_LENGTH = 998
MAX_HEADER_VALUE_LENGTH = 998
MAX_HEADER_LINE_LENGTH = 998  # RFC 5322: "Name: value" on one line, CRLF excluded
MAX_HEADERS = 50
MAX_S3_KEY_BYTES = 1024
#: No body larger than this can start a run: it is both the mail queue's maximum message size and Step
#: Functions' limit for a run's input.  Whether a smaller one fits every payload of its run is decided
#: by :mod:`stepmail.core.budget`.
MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES

_MAIL_KEY = re.compile(r"^[A-Za-z0-9!_.*'()@=+-]+(/[A-Za-z0-9!_.*'()@=+-]+)*$")
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 field name: printable ASCII except ':'
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TEMPLATE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # a directory name under templates/

#: Headers that define the message's structure or routing: set only by stepmail, never by a producer.
# fmt: off
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Subject", "Date", "Message-ID",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
        "Content-ID", "Return-Path", "Received", "DKIM-Signature", "Resent-From", "Resent-To",
        "Resent-Cc", "Resent-Bcc", "Resent-Sender", "Resent-Date", "Resent-Message-ID",
        "X-SES-CONFIGURATION-SET", "X-SES-MESSAGE-TAGS", "X-SES-SOURCE-ARN", "X-SES-FROM-ARN",
        "X-SES-RETURN-PATH-ARN",
    )
)
# fmt: on

AddressList = Annotated[list[str], Field(default_factory=list, max_length=MAX_RECIPIENTS)]


def _refuse_controls(text: str, what: str, *, allow_newlines: bool) -> None:
    for char in text:
        code = ord(char)
        if char in "\t" or (allow_newlines and char in "\r\n"):
            continue
        if code < 0x20 or code == 0x7F:
            raise ValueError(f"{what} contains a control character U+{code:04X}")


def check_attachment_name(name: str) -> str:
    """A file directly under ``<mailKey>/``: not empty, not ``.``/``..``, no ``/``, backslash or controls.

    A ``/`` would reach into another mail key's files: mail key ``t-1`` listing ``b/secret.txt`` reads
    ``t-1/b/secret.txt``, a file of mail key ``t-1/b``.
    """
    if not name:
        raise ValueError("attachment name is empty")
    refuse_unsafe_characters(name, "attachment name")
    if "/" in name or "\\" in name:
        raise ValueError(
            f"attachment name {name!r} contains '/' or '\\': an attachment is a file directly under "
            "<mailKey>/ (a path could reach the files of another mail key)"
        )
    if name in (".", ".."):
        raise ValueError(f"attachment name {name!r} is not a file name")
    return name


class MailMessage(BaseModel):
    """One email, as a producer writes it (JSON field names in camelCase)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True, strict=True)

    mail_key: str = Field(
        alias="mailKey",
        min_length=1,
        max_length=512,
        description="Identifies one email (with its recipients); attachments live under <mailKey>/.",
    )
    to_address: str | None = Field(
        default=None, alias="toAddress", description="The original single recipient."
    )
    to: AddressList
    cc: AddressList
    bcc: AddressList
    reply_to: Annotated[list[str], Field(default_factory=list, alias="replyTo", max_length=10)]
    from_address: str | None = Field(
        default=None,
        alias="from",
        description="One of the configured sender identities; default: the configured sender.",
    )
    subject: str = Field(default="", max_length=MAX_SUBJECT_LENGTH)
    body: str = Field(default="", description="Plain-text part.")
    html: str | None = Field(default=None, description="HTML part; with body it forms multipart/alternative.")
    template: str | None = Field(
        default=None,
        description="A template (templates/<name>/) rendered with templateData, instead of subject/body/html",
    )
    template_data: dict[str, Any] | None = Field(
        default=None, alias="templateData", description="The template's variables."
    )
    attached_file_keys: Annotated[
        list[str], Field(default_factory=list, alias="attachedFileKeys", max_length=MAX_ATTACHMENTS)
    ]
    headers: Annotated[dict[str, str], Field(default_factory=dict, max_length=MAX_HEADERS)]
    tags: Annotated[dict[str, str], Field(default_factory=dict, max_length=50)]
    configuration_set: str | None = Field(default=None, alias="configurationSet")

    # ------------------------------------------------------------------ field rules
    @field_validator("mail_key")
    @classmethod
    def _mail_key_is_a_safe_prefix(cls, value: str) -> str:
        if not _MAIL_KEY.match(value) or any(part in (".", "..") for part in value.split("/")):
            raise ValueError(
                "mailKey may use letters, digits and !_.*'()@=+- with '/' between non-empty segments"
            )
        return value

    @field_validator("to_address", "from_address")
    @classmethod
    def _single_mailbox(cls, value: str | None) -> str | None:
        return None if value is None else str(_mailbox(value))

    @field_validator("to", "cc", "bcc", "reply_to")
    @classmethod
    def _mailboxes(cls, values: list[str]) -> list[str]:
        return [str(_mailbox(value)) for value in values]

    @field_validator("subject")
    @classmethod
    def _subject_is_one_line(cls, value: str) -> str:
        refuse_unsafe_characters(value, "subject", allow_joiners=True)
        return value

    @field_validator("body", "html")
    @classmethod
    def _text_has_no_controls(cls, value: str | None) -> str | None:
        if value is not None:
            _refuse_controls(value, "body", allow_newlines=True)
        return value

    @field_validator("attached_file_keys")
    @classmethod
    def _attachment_names(cls, names: list[str]) -> list[str]:
        for name in names:
            check_attachment_name(name)
        if len({name for name in names}) != len(names):
            raise ValueError("attachedFileKeys lists the same file twice")
        return names

    @field_validator("headers")
    @classmethod
    def _extra_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not an RFC 5322 field name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by stepmail and cannot be given")
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is given twice")
            seen.add(name.lower())
            refuse_unsafe_characters(value, f"header {name!r}", allow_joiners=True)
            if len(value) > MAX_HEADER_VALUE_LENGTH:
                raise ValueError(f"header {name!r} is longer than {MAX_HEADER_VALUE_LENGTH} characters")
            if len(f"{name}: {value}") > MAX_HEADER_LINE_LENGTH:
                # An ASCII value is written unfolded (a folded URL would break), so it must fit one line.
                raise ValueError(
                    f"header {name!r}: name and value must fit {MAX_HEADER_LINE_LENGTH} characters"
                )
        return headers

    @field_validator("tags")
    @classmethod
    def _ses_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for name, value in tags.items():
            if not _TAG.match(name) or not _TAG.match(value):
                raise ValueError(f"tag {name!r}: names and values use letters, digits, '_' and '-' (1-256)")
        return tags

    @field_validator("configuration_set")
    @classmethod
    def _configuration_set_name(cls, value: str | None) -> str | None:
        if value is not None and not _CONFIGURATION_SET.match(value):
            raise ValueError("configurationSet must be 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("template")
    @classmethod
    def _template_name(cls, value: str | None) -> str | None:
        if value is not None and not _TEMPLATE.match(value):
            raise ValueError("template: 1-64 letters, digits, '_' or '-', not starting with '_' or '-'")
        return value

    @model_validator(mode="after")
    def _template_or_content(self) -> MailMessage:
        if self.template is not None and (self.subject or self.body or self.html is not None):
            raise ValueError("give either template (with templateData) or subject/body/html, not both")
        if self.template_data is not None and self.template is None:
            raise ValueError("templateData needs a template")
        return self

    @model_validator(mode="after")
    def _recipients(self) -> MailMessage:
        recipients = self.recipients()
        if not recipients:
            raise ValueError("no recipient: give toAddress, to, cc or bcc")
        if len(recipients) > MAX_RECIPIENTS:
            raise ValueError(
                f"{len(recipients)} different recipients: SES allows at most {MAX_RECIPIENTS} across "
                f"to/cc/bcc ({len(recipients) - MAX_RECIPIENTS} too many; the same address given twice, "
                "in any case, counts once)"
            )
        for name in self.attached_file_keys:
            if len(f"{self.mail_key}/{name}".encode()) > MAX_S3_KEY_BYTES:
                raise ValueError(f"attachment key for {name!r} is longer than S3's 1024 bytes")
        return self

    # ------------------------------------------------------------------ derived views
    def destinations(self) -> Destinations:
        """Each recipient once, where it first appears: ``toAddress``, ``to``, then ``cc``, then ``bcc``.

        The one list the headers, SES's envelope, the count and the lock key are made from: the same
        address in another case, or again in a later list, is dropped (a mailbox first given in
        ``to`` and again in ``bcc`` is a visible recipient, once).
        """
        seen: set[str] = set()
        lists: list[list[str]] = []
        for mailboxes in (([self.to_address] if self.to_address else []) + self.to, self.cc, self.bcc):
            kept = []
            for mailbox in mailboxes:
                key = recipient_key(parse_mailbox(mailbox).address)
                if key not in seen:
                    seen.add(key)
                    kept.append(mailbox)
            lists.append(kept)
        return Destinations(*lists)

    def to_mailboxes(self) -> list[str]:
        """The ``To`` recipients, each once (see :meth:`destinations`)."""
        return self.destinations().to

    def recipients(self) -> list[str]:
        """The envelope recipients (to, cc, bcc), bare addresses, each once (case-insensitive)."""
        to, cc, bcc = self.destinations()
        return [parse_mailbox(mailbox).address for mailbox in to + cc + bcc]

    def to_json_dict(self) -> dict[str, Any]:
        """The message as JSON (camelCase), without empty optional fields."""
        document = self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
        return document | {"mailKey": self.mail_key}


class Destinations(NamedTuple):
    """The recipients of one email, each once, as mailboxes (``Name <addr>`` or ``addr``)."""

    to: list[str]
    cc: list[str]
    bcc: list[str]


def _mailbox(text: str) -> str:
    try:
        return str(parse_mailbox(text))
    except AddressError as error:
        raise ValueError(str(error)) from error


@dataclass(frozen=True)
class SenderPolicy:
    """What the deployment allows: who may send and through which configuration sets."""

    sender_identities: tuple[str, ...]
    default_sender: str
    configuration_sets: tuple[str, ...] = ()

    def resolve(self, message: MailMessage) -> MailMessage:
        """Fill the default sender and refuse a sender or configuration set the deployment does not allow.

        Raises
        ------
        InvalidMessageError
            When ``from`` is not one of the sender identities or the configuration set is not allowed.
        """
        sender = parse_mailbox(message.from_address or self.default_sender)
        if not address_allowed(sender.address, self.sender_identities):
            domain = sender.address.split("@")[-1]
            raise InvalidMessageError(f"from: {domain!r} is not one of the configured sender identities")
        if message.configuration_set and message.configuration_set not in self.configuration_sets:
            raise InvalidMessageError(f"configurationSet {message.configuration_set!r} is not allowed")
        return message.model_copy(update={"from_address": str(sender)})


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidMessageError(f"the JSON object has the key {key!r} twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidMessageError(f"the body is not valid JSON: {name} is not a JSON number")


def _refuse_surrogates(document: dict[str, Any]) -> None:
    """Refuse a lone UTF-16 surrogate (``"\\ud800"``) anywhere: it is not Unicode text, and no UTF-8
    payload (a run's state, an email) can carry it."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidMessageError(
            f"the body holds an unpaired UTF-16 surrogate U+{ord(error.object[error.start]):04X}: "
            "it is not valid text"
        ) from None


def parse_document(body: str | bytes) -> dict[str, Any]:
    """The one strict JSON reading of a message body, shared by every component that reads one.

    Raises
    ------
    InvalidMessageError
        Larger than a run can hold, not UTF-8, not JSON, a key given twice, ``NaN`` or ``Infinity``,
        an unpaired surrogate, nested too deeply, or not a JSON object.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidMessageError(
            f"the message is {len(raw):,} bytes: a run's input holds at most {MAX_MESSAGE_BYTES:,} "
            f"(Step Functions' limit; {len(raw) - MAX_MESSAGE_BYTES:,} bytes too many)"
        )
    try:
        document = json.loads(raw, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except ValueError as error:  # includes JSONDecodeError and UnicodeDecodeError
        raise InvalidMessageError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidMessageError("the body is not valid JSON: it is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidMessageError("the body must be a JSON object")
    _refuse_surrogates(document)
    return document


def validate_message(document: Mapping[str, Any]) -> MailMessage:
    """Validate a parsed body against the contract (the deployment's sender rules aside).

    Raises
    ------
    InvalidMessageError
        With one readable line per problem.
    """
    try:
        return MailMessage.model_validate(dict(document))
    except ValidationError as error:
        raise InvalidMessageError(describe_validation_error(error)) from None


def parse_message(body: str | bytes, policy: SenderPolicy) -> MailMessage:
    """Parse and validate a queue message body, as the starter does.

    Raises
    ------
    InvalidMessageError
        With a readable reason: see :func:`parse_document`, :func:`validate_message` and
        :meth:`SenderPolicy.resolve`.
    """
    return policy.resolve(validate_message(parse_document(body)))


def message_body(document: Mapping[str, Any]) -> str:
    """A message as the body to put on the queue: compact JSON, UTF-8 text unescaped.

    Raises
    ------
    InvalidMessageError
        When the document holds a value JSON cannot carry (NaN, Infinity).
    """
    try:
        return json.dumps(dict(document), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as error:
        raise InvalidMessageError(f"the message cannot be written as JSON: {error}") from None


def describe_validation_error(error: ValidationError) -> str:
    """Pydantic's errors as one line per problem, naming the JSON fields (never echoing values)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "message"
        problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "invalid message: " + "; ".join(problems)


def message_json_schema() -> dict[str, Any]:
    """The message format as JSON Schema, for producers in other languages."""
    schema = MailMessage.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "stepmail message"
    schema["description"] = (
        "The JSON body of an SQS message for stepmail. At least one recipient across toAddress/to/cc/bcc, "
        f"at most {MAX_RECIPIENTS}; attachments are uploaded to s3://<bucket>/<mailKey>/<name> first."
    )
    return schema
