"""Pacing: the rate a run paces to, the room it needs in a second, and when a message given back to
the queue comes back — and the adapters that read the quota and set the delay."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from stepmail.adapters.ses import SesSendQuota
from stepmail.adapters.sqs import SqsRedeliveries
from stepmail.core.pacing import (
    UNLIMITED_ROOM,
    PacingPolicy,
    least_total_delay,
    pacing_terms,
    redelivery_delay,
    room,
    seconds_until,
    send_rate,
    send_windows,
)
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler
from tests.unit.test_handlers import FakeQuota, FakeStore, FakeTransport, _event, _starter

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "stepmail.asl.json"


# ------------------------------------------------------------------------------------ the rate
@pytest.mark.parametrize(
    ("quota", "cap", "rate"),
    [(14.0, None, 14.0), (14.0, 5.0, 5.0), (2.0, 5.0, 2.0), (None, 5.0, 5.0), (None, None, None)],
)
def test_the_rate_is_the_live_quota_under_the_cap(
    quota: float | None, cap: float | None, rate: float | None
) -> None:
    assert send_rate(quota, cap) == rate


@pytest.mark.parametrize(
    ("rate", "recipients", "expected"),
    [
        (14.0, 1, 13),  # a second may hold 13 for the 14th to fit
        (14.0, 14, 0),  # an email as large as the quota needs an empty second
        (14.0, 50, 0),  # larger than the quota: a second of its own, never an impossible one
        (2.5, 1, 1),  # a fractional quota rounds down
        (0.5, 1, 0),  # under one a second: one email per (empty) second
        (None, 7, UNLIMITED_ROOM),  # no rate known: no pacing
    ],
)
def test_the_room_an_email_needs_in_a_second(rate: float | None, recipients: int, expected: int) -> None:
    assert room(rate, recipients) == expected


@given(rate=st.floats(min_value=1, max_value=10_000), recipients=st.integers(min_value=1, max_value=50))
def test_a_second_never_holds_more_than_the_rate_unless_one_email_does(rate: float, recipients: int) -> None:
    # The condition is "sent <= room" before adding the email's recipients
    most_after = room(rate, recipients) + recipients
    assert most_after <= max(int(rate), recipients)


def test_the_runs_pacing_terms_are_strings_for_dynamodb_and_numbers_for_the_choice() -> None:
    terms = pacing_terms(3, 14.0, now=1_000, policy=PacingPolicy(cap=None, max_waits=30))
    assert terms == {
        "recipients": "3",
        "first": {"suffix": ".0", "room": "4"},
        "second": {"suffix": ".5", "room": "4"},
        "expiresAt": "4600",
        "waited": 0,
        "maxWaits": 30,
    }


@pytest.mark.parametrize(
    ("rate", "first", "second"),
    [
        (14.0, (".0", 6), (".5", 6)),  # 7 + 7 a second, 1 recipient each
        (5.0, (".0", 2), (".5", 1)),  # the odd one in the first half
        (2.0, (".0", 0), (".5", 0)),
        (1.5, ("", 0), ("", 0)),  # under 2 a second: one window, the whole second
        (None, ("", UNLIMITED_ROOM), ("", UNLIMITED_ROOM)),
    ],
)
def test_a_second_is_paced_in_two_halves_sharing_the_quota(
    rate: float | None, first: tuple[str, int], second: tuple[str, int]
) -> None:
    first_window, second_window = send_windows(rate, recipients=1)
    assert (first_window["suffix"], int(first_window["room"])) == first
    assert (second_window["suffix"], int(second_window["room"])) == second


@given(rate=st.floats(min_value=0.1, max_value=10_000), recipients=st.integers(min_value=1, max_value=50))
def test_a_second_never_holds_more_than_the_quota_unless_one_email_does(rate: float, recipients: int) -> None:
    first, second = send_windows(rate, recipients)
    most = [int(window["room"]) + recipients for window in (first, second)]
    if first["suffix"] == second["suffix"]:  # one window for the whole second
        assert most[0] <= max(int(rate), recipients)
    else:  # each half holds its share, or one email alone
        assert sum(most) <= max(int(rate), 2 * recipients)


# ------------------------------------------------------------------------ the retry-later delay
@given(
    receive_count=st.integers(min_value=1, max_value=1_000),
    base=st.integers(min_value=1, max_value=60),
    extra=st.integers(min_value=0, max_value=900),
    seed=st.integers(),
)
def test_a_redelivery_waits_between_half_and_all_of_its_step(
    receive_count: int, base: int, extra: int, seed: int
) -> None:
    most = base + extra
    step = min(most, base * 2 ** min(receive_count - 1, 20))
    delay = redelivery_delay(receive_count, base_seconds=base, max_seconds=most, rng=random.Random(seed))
    assert max(1, step / 2) <= delay <= max(step, 1)


def test_the_delay_grows_with_each_delivery_up_to_its_maximum() -> None:
    lowest = [redelivery_delay(n, base_seconds=2, max_seconds=300, rng=_Lowest()) for n in range(1, 11)]
    highest = [redelivery_delay(n, base_seconds=2, max_seconds=300, rng=_Highest()) for n in range(1, 11)]
    assert lowest == [1, 2, 4, 8, 16, 32, 64, 128, 150, 150]
    assert highest == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_the_least_time_deliveries_span_sums_the_lower_bounds() -> None:
    assert least_total_delay(1, base_seconds=2, max_seconds=300) == 0
    assert least_total_delay(4, base_seconds=2, max_seconds=300) == 1 + 2 + 4
    assert least_total_delay(10, base_seconds=2, max_seconds=300) == 1 + 2 + 4 + 8 + 16 + 32 + 64 + 128 + 150


class _Lowest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


class _Highest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


# ---------------------------------------------------------------- the starter gives back with a delay
class _Redeliveries:
    def __init__(self) -> None:
        self.delays: list[tuple[str, int]] = []

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))


def test_a_message_given_back_comes_back_after_its_delay_not_the_visibility_timeout() -> None:
    # Given a starter whose delays are at their lowest, and a batch with a busy and a retry-later run
    base = _starter()
    redeliveries = _Redeliveries()
    starter = starter_handler.Starter(
        policy=base.policy,
        ports=base.ports,
        redeliveries=redeliveries,
        delays=starter_handler.RetryDelays(2, 300, _Lowest()),
    )
    event = _event("sqs_batch.json")

    # When the handler processes it
    response = starter_handler.handler(event, None, starter=starter)

    # Then each message it gave back was made visible again after the first delivery's delay (1-2 s)
    given_back = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    handles = {record["receiptHandle"] for record in event["Records"] if record["messageId"] in given_back}
    assert {handle for handle, _ in redeliveries.delays} == handles
    assert {seconds for _, seconds in redeliveries.delays} == {1}


def test_the_starter_paces_each_run_to_the_quota_it_reads() -> None:
    # Given SES saying 3 recipients a second
    starter = _starter()
    starter.ports.quota.rate = 3.0  # type: ignore[attr-defined]
    event = _event("sqs_batch.json")
    event["Records"] = event["Records"][:1]

    # When one record is started
    starter_handler.handler(event, None, starter=starter)

    # Then its run may take a slot in a first half-second holding at most 1, or a second half that is
    # empty (3 a second: 2 + 1)
    (text,) = starter.ports.workflow.inputs  # type: ignore[attr-defined]
    pacing = json.loads(text)["pacing"]
    assert (pacing["first"]["room"], pacing["second"]["room"]) == ("1", "0")


# ------------------------------------------------------------------------------- the adapters
class _Ses:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_account(self) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {"SendQuota": {"MaxSendRate": answer}}


def test_the_quota_is_read_once_per_refresh_and_kept_when_a_read_fails() -> None:
    now = [0.0]
    throttled = ClientError({"Error": {"Code": "TooManyRequestsException"}}, "GetAccount")
    ses = _Ses(14.0, throttled, 40.0)
    quota = SesSendQuota(300, ses, clock=lambda: now[0])

    assert quota.max_send_rate() == 14.0
    now[0] = 299
    assert quota.max_send_rate() == 14.0 and ses.calls == 1  # cached
    now[0] = 300
    assert quota.max_send_rate() == 14.0 and ses.calls == 2  # the read failed: the last rate stands
    now[0] = 599
    assert quota.max_send_rate() == 14.0 and ses.calls == 2  # and is not retried for every message
    now[0] = 600
    assert quota.max_send_rate() == 40.0  # a raised quota, without a redeploy


def test_no_quota_known_means_no_pacing_not_a_failure() -> None:
    unreachable = EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com")
    assert SesSendQuota(300, _Ses(unreachable)).max_send_rate() is None
    assert FakeQuota(None).max_send_rate() is None


class _Sqs:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.error:
            raise self.error


def test_the_delay_is_set_on_the_message_and_a_failure_to_set_it_is_not_an_error() -> None:
    sqs = _Sqs()
    SqsRedeliveries("https://queue", sqs).retry_in("handle-1", 7)
    assert sqs.calls == [{"QueueUrl": "https://queue", "ReceiptHandle": "handle-1", "VisibilityTimeout": 7}]

    expired = ClientError({"Error": {"Code": "ReceiptHandleIsInvalid"}}, "ChangeMessageVisibility")
    SqsRedeliveries("https://queue", _Sqs(expired)).retry_in("handle-2", 7)  # does not raise


# ----------------------------------------------------------------- a slot in the later half-second
NOW = datetime(2026, 12, 3, 5, 0, 0, 200_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("not_before", "wait"),
    [
        ("2026-12-03T05:00:00.500Z", 0.3),  # the second half of this second: wait for it
        ("2026-12-03T05:00:00.200000+00:00", 0.0),  # the state's own time (Step Functions' format)
        ("2026-12-03T05:00:00.100Z", 0.0),  # passed
        ("2026-12-03T05:00:09.500Z", 1.0),  # never more than a second, whatever the clock says
        ("", 0.0),  # no slot time (an older run's payload): send now
        ("not a time", 0.0),
        ("2026-12-03T05:00:00.500", 0.0),  # no zone: not one of ours
    ],
)
def test_the_sender_waits_for_its_slots_half_second_only(not_before: str, wait: float) -> None:
    assert seconds_until(not_before, NOW) == pytest.approx(wait)


def test_a_sender_with_a_later_slot_sends_when_its_half_begins() -> None:
    # Given the payload of a run that took its slot in the second half of the current second
    slept: list[float] = []
    transport = FakeTransport()
    sender = sender_handler.Sender(
        store=FakeStore({"inv-1/invoice.pdf": b"%PDF-1.4\n"}),
        transport=transport,
        sleep=slept.append,
        clock=lambda: NOW,
    )
    payload = {**_event("sender_payload.json"), "notBefore": "2026-12-03T05:00:00.500Z"}

    # When the handler runs
    sender_handler.handler(payload, None, sender=sender)

    # Then it waited until that half began, then sent
    assert slept == [pytest.approx(0.3)] and len(transport.sent) == 1


def test_a_full_first_half_tries_the_second_half_once_then_waits() -> None:
    states = json.loads(ASL.read_text())["States"]
    catch = states["Take A Send Slot"]["Catch"][0]
    assert catch["Next"] == "Try The Later Half?"
    choice = states["Try The Later Half?"]
    assert choice["Choices"][0]["Variable"] == "$.window.laterKey" and choice["Default"] == "Count A Wait"
    later = states["The Later Half"]["Parameters"]
    # the later half's window has no later half of its own: a second failure waits a second
    assert "laterKey.$" not in later and later["notBefore.$"] == "$.window.laterAt"
    assert "laterKey.$" not in states["Second Half"]["Parameters"]
    assert states["Render And Send"]["Parameters"]["Payload"]["notBefore.$"] == "$.window.notBefore"
