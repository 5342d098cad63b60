"""The size budget, proven on generated messages at and around every limit (issue 10).

For any message (a body in a 1-, 2-, 3- or 4-byte UTF-8 script near the largest that fits, 0-50
attachments with names up to S3's key length, 1-50 recipients given again in other cases and lists),
the starter's checks (:func:`stepmail.core.starting.prepare_run`) either accept it, and then every
state its run can reach fits Step Functions' 256 KiB counted as compact UTF-8, or refuse it with a
reason that names the limit and the measured size.  The states are built here from the ASL's own
shapes, independently of :mod:`stepmail.core.budget`, each at its largest.

Attachments' content types are not in the run's state (the sender reads them from its GET): only
their names count, and they are generated up to their bound.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stepmail.core.budget import (
    MAX_ERROR_NAME_CHARS,
    MAX_OBJECT_SIZE,
    MAX_PAYLOAD_BYTES,
    MAX_REASON_CHARS,
    WORST_ETAG,
    compact_json,
    json_bytes,
    largest_payload,
)
from stepmail.core.contract import Delivery
from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import MAX_RECIPIENTS, MAX_S3_KEY_BYTES, SenderPolicy, parse_message
from stepmail.core.pacing import UNLIMITED_ROOM, PacingPolicy
from stepmail.core.starting import StartPolicy, build_run_input, prepare_run
from tests.limits import ALPHABETS, SCRIPTS, largest_accepted_body

POLICY = StartPolicy(
    SenderPolicy(("example.com",), "no-reply@example.com"),
    lease_seconds=240,
    dedup_window_seconds=86_400,
    pacing=PacingPolicy(cap=None, max_waits=30),
)
QUEUE_MESSAGE_ID = "5f1c7b8e-0000-4000-8000-000000000001"
NOW = datetime(2026, 12, 3, tzinfo=UTC)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, database=None)

#: What AWS puts in a run's state, each at the longest it takes (an Express execution ARN with a
#: long state machine name, a long region, a Lambda function ARN with a 64-character name).
EXECUTION_ARN = (
    "arn:aws:states:ap-southeast-2:123456789012:express:" + "s" * 80 + ":" + "e" * 80 + ":" + "u" * 36
)
FUNCTION_ARN = "arn:aws:lambda:ap-southeast-2:123456789012:function:" + "f" * 64
QUEUE_URL = "https://sqs.ap-southeast-2.amazonaws.com/123456789012/" + "q" * 80
SES_MESSAGE_ID = "0100018c1f2e3d4a-" + "f" * 8 + "-" + "f" * 4 + "-" + "f" * 4 + "-" + "f" * 12 + "-000000"
REQUEST_ID = "R" * 52
SDK_METADATA = {
    "SdkHttpMetadata": {
        "AllHttpHeaders": {
            "Content-Type": ["application/x-amz-json-1.0"],
            "Content-Length": ["123456"],
            "Date": ["Thu, 03 Dec 2026 05:00:00 GMT"],
            "Connection": ["keep-alive"],
            "x-amz-crc32": ["4294967295"],
            "x-amzn-RequestId": [REQUEST_ID],
        },
        "HttpHeaders": {
            "Content-Type": "application/x-amz-json-1.0",
            "Content-Length": "123456",
            "Date": "Thu, 03 Dec 2026 05:00:00 GMT",
            "Connection": "keep-alive",
            "x-amz-crc32": "4294967295",
            "x-amzn-RequestId": REQUEST_ID,
        },
        "HttpStatusCode": 200,
    },
    "SdkResponseMetadata": {"RequestId": REQUEST_ID},
}
#: The largest cause the sender can give a run: a Lambda error (escaped as the Python runtime writes
#: it) whose message is the longest reason the sender raises, in 4-byte characters.
WORST_LAMBDA_CAUSE = json.dumps(
    {
        "errorMessage": "😀" * MAX_REASON_CHARS,
        "errorType": "SenderFailedError",
        "requestId": "u" * 36,
        "stackTrace": [
            '  File "/var/task/stepmail/handlers/sender.py", line 999, in handler\n    raise error\n'
        ],
    }
)
WORST_ERROR = {"Error": "E" * MAX_ERROR_NAME_CHARS, "Cause": WORST_LAMBDA_CAUSE}


def _delivery(receive_count: int = 1) -> Delivery:
    return Delivery(queue_message_id=QUEUE_MESSAGE_ID, receive_count=receive_count)


def _prepare(body: str, receive_count: int = 1, rate: float | None = None) -> dict[str, Any]:
    return prepare_run(body, delivery=_delivery(receive_count), policy=POLICY, now=NOW, rate=rate)


def _body(message: dict[str, Any]) -> str:
    """As a producer with our client writes it: compact, UTF-8 as is."""
    return json.dumps(message, ensure_ascii=False)


# ---------------------------------------------------------------------------------------- the run's states
def reachable_states(run_input: dict[str, Any]) -> dict[str, Any]:
    """Every state, task parameters and task result the run of ``run_input`` can carry, at its largest,
    built from the shapes of ``statemachine/stepmail.asl.json`` (not from the budget)."""
    # On any delivery (the receive count grows), with any live quota (no quota: the largest room in each
    # half-second), after every wait for a send slot (Count A Wait adds one to $.pacing.waited, up to
    # maxWaits + 1).
    pacing = run_input["pacing"]
    unknown_quota = {"suffix": ".0", "room": str(UNLIMITED_ROOM)}
    state = {
        **run_input,
        "delivery": {**run_input["delivery"], "receiveCount": 1000},
        "pacing": {
            **pacing,
            "first": unknown_quota,
            "second": unknown_quota,
            "waited": pacing["maxWaits"] + 1,
        },
    }
    lock_error = {
        "Error": "DynamoDB.ConditionalCheckFailedException",
        "Cause": "The conditional request failed "
        f"(Service: DynamoDb, Status Code: 400, Request ID: {REQUEST_ID})",
    }
    existing = {"Item": {"status": {"S": "IN_PROGRESS"}, "messageId": {"S": SES_MESSAGE_ID}}, **SDK_METADATA}
    lock_read = {**state, "error": lock_error, "existing": existing}
    names = state["message"]["attachedFileKeys"]
    attachments = [{"size": MAX_OBJECT_SIZE, "etag": WORST_ETAG} for _ in names]
    resolved = {**state, "attachments": attachments}
    # First Half's window (the largest the pacing step writes), with Step Functions' times
    second, entered = "2026-12-03T05:00:07", "2026-12-03T05:00:07.123456789+00:00"
    window = {
        "key": f"rate#{second}.0",
        "room": str(UNLIMITED_ROOM),
        "notBefore": entered,
        "laterKey": f"rate#{second}.5",
        "laterRoom": str(UNLIMITED_ROOM),
        "laterAt": f"{second}.500Z",
        "second": second,
        "now": entered,
    }
    paced = {**resolved, "window": window}
    sender_input = {
        "FunctionName": FUNCTION_ARN,
        "Payload": {
            "message": state["message"],
            "attachments": attachments,
            "lockKey": state["lock"]["key"],
            "executionId": EXECUTION_ARN,
            "notBefore": entered,
        },
    }
    sender_result = {
        "ExecutedVersion": "$LATEST",
        "Payload": {"messageId": SES_MESSAGE_ID},
        "StatusCode": 200,
        **SDK_METADATA,
    }
    after_send = {**paced, "sent": {"messageId": SES_MESSAGE_ID}}
    dead_letter = {
        "QueueUrl": QUEUE_URL,
        "MessageBody": {
            "kind": "stepmail.dead-letter",
            "source": "workflow",
            "error": WORST_ERROR["Error"],
            "cause": WORST_ERROR["Cause"],
            "executionArn": EXECUTION_ARN,
            "failedAt": "2026-12-03T05:00:00.123456789Z",
            "queueMessageId": state["delivery"]["queueMessageId"],
            "receiveCount": state["delivery"]["receiveCount"],
            "message": state["message"],
        },
    }
    return {
        "run input": state,
        "lock read": lock_read,
        "lock busy": {"outcome": "busy", "lockKey": state["lock"]["key"]},
        "head attachment": {"name": names[0], "key": f"{state['message']['mailKey']}/{names[0]}"}
        if names
        else {},
        "attachments": resolved,
        "send window": paced,
        "sender input": sender_input,
        "sender result": sender_result,
        "after the send": after_send,
        "failed before the send": {**lock_read, "error": WORST_ERROR},
        "failed at the send": {**paced, "error": WORST_ERROR},
        "failed after the send": {**after_send, "error": WORST_ERROR},
        "dead letter": dead_letter,
    }


# ---------------------------------------------------------------------------------------- generators
@st.composite
def recipient_lists(draw: st.DrawFn, distinct: st.SearchStrategy[int]) -> dict[str, Any]:
    """``distinct`` mailboxes, each given 1-3 times in to/cc/bcc (toAddress too), in any case and order."""
    count = draw(distinct)
    occurrences: list[tuple[str, str]] = []
    for index in range(count):
        address = f"r{index}@customer.example"
        for _ in range(draw(st.integers(1, 3))):
            spelled = draw(st.sampled_from([str.lower, str.upper, str.title, str.swapcase]))(address)
            named = draw(st.booleans())
            mailbox = f"Reader {index} <{spelled}>" if named else spelled
            occurrences.append((draw(st.sampled_from(["to", "cc", "bcc"])), mailbox))
    occurrences = draw(st.permutations(occurrences))
    lists: dict[str, Any] = {"to": [], "cc": [], "bcc": []}
    for where, mailbox in occurrences:
        lists[where].append(mailbox)
    if lists["to"] and draw(st.booleans()):  # the original format's single recipient, first of all
        lists["toAddress"] = lists["to"].pop(0)
    # SES's 50 are per list as well as in total: a list of more than 50 is refused by its own rule
    for where in ("to", "cc", "bcc"):
        lists[where] = lists[where][:MAX_RECIPIENTS]
    return lists


def _attachment_names(mail_key: str, letter: str, lengths: list[int]) -> list[str]:
    """Distinct names of ``lengths`` characters (a number, then ``letter``), each under S3's key bound."""
    room = MAX_S3_KEY_BYTES - len(f"{mail_key}/".encode())
    names = []
    for index, length in enumerate(lengths):
        prefix = f"{index}-"
        fill = max(length - len(prefix), 0)
        fill = min(fill, (room - len(prefix)) // len(letter.encode()))
        names.append(prefix + letter * fill)
    return names


@st.composite
def messages_near_the_limit(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A message whose body, in one script, is at, just under or just over the largest that fits (or
    anywhere below it); returns it and its script."""
    script = draw(st.sampled_from(sorted(ALPHABETS)))
    alphabet = ALPHABETS[script]
    mail_key = draw(st.sampled_from(["k", "invoice-2026-12-0001", "tenant/2026/12/03/" + "m" * 60]))
    letter = draw(st.sampled_from(alphabet))
    lengths = draw(st.lists(st.sampled_from([1, 8, 200, 1024]) | st.integers(1, 1024), max_size=50))
    message = {
        "mailKey": mail_key,
        **draw(recipient_lists(st.integers(1, MAX_RECIPIENTS))),
        "subject": draw(st.sampled_from(["", "Hi", letter * 998])),
        "attachedFileKeys": _attachment_names(mail_key, letter, lengths),
    }
    if draw(st.booleans()):
        message["html"] = "<p>" + letter * draw(st.integers(0, 2000)) + "</p>"
    # Where the limit is for this message: the bytes left for the body when it is empty
    empty = json.loads(json.dumps(message))
    empty["body"] = ""
    room = MAX_PAYLOAD_BYTES - 1 - largest_payload(_prepare(_body(empty))).size
    width = len(letter.encode())
    target = draw(
        st.sampled_from([room, room + 1, room - 1, room + width, room - width])
        | st.integers(max(room - 4 * width, 0), room + 4 * width)
        | st.integers(0, room)
    )
    seed = draw(st.text(alphabet, min_size=1, max_size=8))
    count = max(target, 0) // width
    message["body"] = (seed * (count // len(seed) + 1))[:count]
    return message, script


# ---------------------------------------------------------------------------------------- properties
def _check_accepted(run_input: dict[str, Any]) -> None:
    assert len(compact_json(run_input).encode("utf-8")) < MAX_PAYLOAD_BYTES
    worst = largest_payload(run_input).size
    for name, state in reachable_states(run_input).items():
        size = json_bytes(state)
        assert size < MAX_PAYLOAD_BYTES, f"{name}: {size:,} bytes"
        assert size <= worst, f"{name}: {size:,} bytes, over the budget's worst case {worst:,}"


def _check_refused(body: str, reason: str) -> None:
    run_input = build_run_input(parse_message(body, POLICY.senders), _delivery(), POLICY, NOW)
    measured = largest_payload(run_input)
    assert measured.size >= MAX_PAYLOAD_BYTES
    assert "too large for a run" in reason and measured.name in reason
    assert f"{measured.size:,} bytes" in reason and f"under {MAX_PAYLOAD_BYTES:,}" in reason
    assert f"({measured.size - MAX_PAYLOAD_BYTES + 1:,} bytes too many" in reason


@PROPERTY_SETTINGS
@given(messages_near_the_limit())
def test_the_starter_accepts_what_fits_and_refuses_what_could_not_naming_the_limit(
    generated: tuple[dict[str, Any], str],
) -> None:
    message, _script = generated
    body = _body(message)
    try:
        run_input = _prepare(body)
    except InvalidMessageError as refused:
        _check_refused(body, refused.reason)
        accepted = False
    else:
        _check_accepted(run_input)
        accepted = True
    # The same message is accepted or refused alike on any delivery and with any live send quota
    for receive_count, rate in ((10, None), (1000, 14.0), (3, 1e6)):
        try:
            _prepare(body, receive_count, rate)
        except InvalidMessageError:
            assert not accepted, f"accepted on delivery 1, refused on delivery {receive_count} at {rate}"
        else:
            assert accepted, f"refused on delivery 1, accepted on delivery {receive_count} at {rate}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize("attachments", [0, 50])
def test_one_more_letter_than_the_largest_accepted_body_is_refused(script: str, attachments: int) -> None:
    # Given a message with the largest body the starter accepts in this script
    letter = SCRIPTS[script]
    names = _attachment_names("k", letter, [1024] * attachments)
    message = {"mailKey": "k", "to": ["a@customer.example"], "attachedFileKeys": names}
    largest = largest_accepted_body(_prepare, message, letter)
    run_input = _prepare(_body({**message, "body": letter * largest}))

    # Then its run fits, byte for byte up to the limit (less than a letter short of it)
    _check_accepted(run_input)
    assert MAX_PAYLOAD_BYTES - len(letter.encode()) <= largest_payload(run_input).size + 1
    # and one letter more is refused, naming the limit and the size
    body = _body({**message, "body": letter * (largest + 1)})
    with pytest.raises(InvalidMessageError) as refused:
        _prepare(body)
    _check_refused(body, refused.value.reason)


def test_more_than_fifty_different_recipients_are_refused_naming_the_count() -> None:
    to = [f"r{index}@customer.example" for index in range(MAX_RECIPIENTS)]
    body = _body(
        {"mailKey": "k", "to": to, "cc": [address.upper() for address in to], "bcc": ["x@b.example"]}
    )
    with pytest.raises(InvalidMessageError, match="51 different recipients: SES allows at most 50"):
        _prepare(body)


@PROPERTY_SETTINGS
@given(recipient_lists(st.integers(MAX_RECIPIENTS + 1, MAX_RECIPIENTS + 5)))
def test_over_fifty_different_recipients_are_refused_whatever_the_case_and_order(
    lists: dict[str, Any],
) -> None:
    distinct = {
        address.split("<")[-1].rstrip(">").lower() for key in ("to", "cc", "bcc") for address in lists[key]
    }
    distinct |= {lists["toAddress"].split("<")[-1].rstrip(">").lower()} if "toAddress" in lists else set()
    body = _body({"mailKey": "k", **lists})
    if len(distinct) <= MAX_RECIPIENTS:  # the per-list cut above left 50 or fewer
        _prepare(body)
        return
    with pytest.raises(InvalidMessageError, match=f"{len(distinct)} different recipients"):
        _prepare(body)


@example(receive_count=10, rate=None)  # one digit more in $.delivery.receiveCount (found by the property)
@example(receive_count=1, rate=14.0)  # "13" in $.pacing.room instead of "1000000000"
@given(receive_count=st.integers(1, 1000), rate=st.none() | st.floats(1, 1e6))
@PROPERTY_SETTINGS
def test_a_message_at_the_limit_is_accepted_on_every_delivery_and_at_every_quota(
    receive_count: int, rate: float | None
) -> None:
    # Given the largest body accepted on the first delivery, with no quota known
    message = {"mailKey": "k", "to": ["a@customer.example"]}
    body = _body({**message, "body": "a" * _largest_ascii_body()})

    # Then it is accepted on any later delivery, at any live quota (the budget counts their largest)
    _prepare(body, receive_count, rate)


@functools.cache
def _largest_ascii_body() -> int:
    return largest_accepted_body(_prepare, {"mailKey": "k", "to": ["a@customer.example"]}, "a")
