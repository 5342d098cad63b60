"""The run's size budget: every payload a run can carry, at its largest, measured as Step Functions does.

Step Functions refuses a state's input or output, a task's parameters or a task's result larger than
256 KiB "of data as a UTF-8 encoded string" (AWS Step Functions service quotas, read December 2026).
Crossing it fails the run with ``States.DataLimitExceeded``, which no ``Catch`` (not even
``States.ALL``) sees: no lock release, no dead letter.  So before a run starts, the starter computes
the worst case of every payload the run can carry and refuses a message whose run could cross the
limit, naming the payload, its size and the limit; every other message is accepted.

Sizes are the UTF-8 bytes of compact JSON (no spaces, non-ASCII written as itself, not as ``\\uXXXX``
escapes): how the starter writes the run's input and how Step Functions counts.  The limit is taken
as exclusive (a payload must be *under* 262,144 bytes): the stricter of the two readings of "256 KiB",
and the one moto's interpreter enforces.

The payloads, after ``statemachine/stepmail.asl.json`` (each larger than the one it grows from):

==================  ======================================================================================
run input           ``{"message", "lock", "pacing", "delivery"}``: exact, but for what changes between
                    deliveries of one message or during its run (see :func:`at_its_largest`)
lock read           run input + ``existing``: the projected lock item and the SDK's response metadata
attachments         run input + ``attachments``: one ``{"size", "etag"}`` per file, each at its largest
sender input        Render And Send's parameters: the message, the attachments, lock key, execution id,
                    when the send slot begins
sender result       the Lambda invoke's result (the message id and the SDK's metadata): a constant
send window         attachments + ``window``: the pacing step's counters, rooms and times (largest form)
after the send      send window + ``sent``: ``{"messageId"}``
failure             the largest state above + ``error``: ``{"Error", "Cause"}`` at their bounds
dead letter         the envelope: the message, the error and its cause, where and when
==================  ======================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stepmail.core.errors import InvalidMessageError
from stepmail.core.pacing import UNLIMITED_ROOM

MAX_PAYLOAD_BYTES = 262_144
"""Step Functions' limit for any state input/output, task parameters or task result (exclusive)."""

#: The bounds of what AWS adds to a run's state; each is larger than anything AWS documents or sends.
MAX_OBJECT_SIZE = 5 * 1024**4  # S3's largest object (5 TiB): 13 digits
#: A multipart ETag (the MD5 of the parts' MD5s, then the part count, at most 10,000), quoted.
WORST_ETAG = '"' + "f" * 32 + '-10000"'
MAX_ARN_CHARS = 256  # an execution or function ARN
MAX_SES_MESSAGE_ID_CHARS = 128
MAX_ERROR_NAME_CHARS = 256  # Step Functions' limit for an error name
#: The largest error cause a run carries, as it sits in the state (its JSON escapes counted).  Our
#: own errors are bounded so that this holds: the sender raises at most :data:`MAX_REASON_CHARS`
#: characters with a one-frame stack trace (14 bytes a character once the Lambda runtime and Step
#: Functions have escaped a 4-byte one), and the causes AWS writes are a few hundred bytes.
MAX_CAUSE_BYTES = 16_384
MAX_REASON_CHARS = 1_000
#: The SDK's response metadata an optimized integration adds to a task's result (HTTP status, headers,
#: request id): under 1 KB in practice.
MAX_RESPONSE_METADATA_BYTES = 4_096
MAX_TIMESTAMP_CHARS = 40
MAX_QUEUE_MESSAGE_ID_CHARS = 128
#: A receive count larger than any queue's (SQS's maxReceiveCount is at most 1,000).
WORST_RECEIVE_COUNT = 10**9


def compact_json(document: Any) -> str:
    """``document`` as Step Functions counts it and as the starter writes it: compact, UTF-8 as is."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_bytes(document: Any) -> int:
    return len(compact_json(document).encode("utf-8"))


@dataclass(frozen=True)
class Payload:
    """One payload of a run, at its largest."""

    name: str
    what: str  # what it holds, for the reason a message is refused
    size: int

    @property
    def fits(self) -> bool:
        return self.size < MAX_PAYLOAD_BYTES


def _with_message(template: Mapping[str, Any], message_bytes: int) -> int:
    """The size of ``template`` with its ``None`` message replaced by a message of ``message_bytes``
    (compact JSON is context-free: the message's bytes are the same wherever it sits)."""
    return json_bytes(template) - len("null") + message_bytes


def at_its_largest(run_input: Mapping[str, Any]) -> dict[str, Any]:
    """``run_input`` with what varies at its largest, so that a message is accepted or refused on
    every delivery alike: the receive count grows with each delivery, the room of the send rate
    follows the live quota (unknown: :data:`UNLIMITED_ROOM`), and the run counts its waits for a send
    slot in ``$.pacing.waited`` (up to ``maxWaits`` + 1)."""
    largest = dict(run_input)
    if "delivery" in largest:
        largest["delivery"] = {**largest["delivery"], "receiveCount": WORST_RECEIVE_COUNT}
    if "pacing" in largest:
        pacing = largest["pacing"]
        windows = {
            half: {"suffix": ".0", "room": max(str(pacing[half]["room"]), str(UNLIMITED_ROOM), key=len)}
            for half in ("first", "second")
        }
        largest["pacing"] = {**pacing, **windows, "waited": int(pacing["maxWaits"]) + 1}
    return largest


#: The longest time the pacing step writes (``$$.State.EnteredTime`` or a second's middle), and the
#: longest counter key (``rate#`` + a second + ``.0``).
_WINDOW_TIME = "t" * (MAX_TIMESTAMP_CHARS + 5)
_COUNTER_KEY = "k" * (MAX_TIMESTAMP_CHARS + 7)
#: ``$.window``, which the run keeps from Find A Send Window on, at its largest (First Half's: the
#: second and the state's time, the counter, the room, when the slot begins, and the later half's counter,
#: room and start).
WORST_WINDOW = {
    "second": "t" * MAX_TIMESTAMP_CHARS,
    "now": _WINDOW_TIME,
    "key": _COUNTER_KEY,
    "room": str(UNLIMITED_ROOM),
    "notBefore": _WINDOW_TIME,
    "laterKey": _COUNTER_KEY,
    "laterRoom": str(UNLIMITED_ROOM),
    "laterAt": _WINDOW_TIME,
}


def run_payloads(run_input: Mapping[str, Any]) -> list[Payload]:
    """Every payload of the run started with ``run_input``, each at its worst case.

    Parameters
    ----------
    run_input
        ``{"message": ..., "lock": {"key": ...}, "pacing": ..., "delivery": ...}``, as the starter
        starts the run.
    """
    run_input = at_its_largest(run_input)
    message = run_input["message"]
    message_bytes = json_bytes(message)
    files = len(message.get("attachedFileKeys") or ())
    attachments = [{"size": MAX_OBJECT_SIZE, "etag": WORST_ETAG}] * files
    base = _with_message({**run_input, "message": None}, message_bytes)
    lock_read = base + len(',"existing":') + MAX_RESPONSE_METADATA_BYTES
    resolved = base + len(',"attachments":') + json_bytes(attachments)
    paced = resolved + len(',"window":') + json_bytes(WORST_WINDOW)
    message_id = "m" * MAX_SES_MESSAGE_ID_CHARS
    after_send = paced + len(',"sent":') + json_bytes({"messageId": message_id})
    error = {"Error": "E" * MAX_ERROR_NAME_CHARS, "Cause": ""}
    failure = max(lock_read, after_send) + len(',"error":') + json_bytes(error) + MAX_CAUSE_BYTES
    sender_input = _with_message(
        {
            "FunctionName": "a" * MAX_ARN_CHARS,
            "Payload": {
                "message": None,
                "attachments": attachments,
                "lockKey": run_input["lock"]["key"],
                "executionId": "a" * MAX_ARN_CHARS,
                "notBefore": _WINDOW_TIME,
            },
        },
        message_bytes,
    )
    sender_result = json_bytes({"Payload": {"messageId": message_id}}) + MAX_RESPONSE_METADATA_BYTES
    dead_letter = (
        _with_message(
            {
                "kind": "stepmail.dead-letter",
                "source": "workflow",
                "error": error["Error"],
                "cause": "",
                "executionArn": "a" * MAX_ARN_CHARS,
                "failedAt": "t" * MAX_TIMESTAMP_CHARS,
                "queueMessageId": "q" * MAX_QUEUE_MESSAGE_ID_CHARS,
                "receiveCount": WORST_RECEIVE_COUNT,
                "message": None,
            },
            message_bytes,
        )
        + MAX_CAUSE_BYTES
    )
    return [
        Payload("run input", "the message, its lock and its delivery", json_bytes(run_input)),
        Payload("lock read", "the run input and the lock record", lock_read),
        Payload("attachments", f"the run input and {files} attachments' metadata", resolved),
        Payload("send window", "the attachments' state and the pacing step's window", paced),
        Payload("sender input", f"the message and {files} attachments' metadata", sender_input),
        Payload("sender result", "the SES message id", sender_result),
        Payload("after the send", "the attachments' state and the SES message id", after_send),
        Payload("failure", "the largest state and an error with its cause", failure),
        Payload("dead letter", "the message and an error with its cause", dead_letter),
    ]


def largest_payload(run_input: Mapping[str, Any]) -> Payload:
    return max(run_payloads(run_input), key=lambda payload: payload.size)


def check_run_fits(run_input: Mapping[str, Any]) -> None:
    """Refuse a run that could carry a payload over Step Functions' limit.

    Raises
    ------
    InvalidMessageError
        Naming the payload, its worst-case size, the limit and by how much it is over.
    """
    largest = largest_payload(run_input)
    if largest.fits:
        return
    over = largest.size - MAX_PAYLOAD_BYTES + 1
    raise InvalidMessageError(
        f"the message is too large for a run: its {largest.name} ({largest.what}) could reach "
        f"{largest.size:,} bytes, and Step Functions accepts under {MAX_PAYLOAD_BYTES:,} "
        f"({over:,} bytes too many; shorten the body or html, or send fewer attachments)"
    )
