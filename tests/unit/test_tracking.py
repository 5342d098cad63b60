"""Delivery tracking's core and the tracker handler, and the metrics the handlers count: fakes, no AWS."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from stepmail.adapters import metrics
from stepmail.core.errors import SesThrottledError
from stepmail.core.message import SenderPolicy
from stepmail.core.starting import Ports, StartPolicy
from stepmail.core.tracking import (
    RECORD_WAIT_SECONDS,
    STATUS_RANK,
    DeliveryEvent,
    DeliveryRecordNotFoundError,
    DeliveryStatus,
    RecordOutcome,
    RecordWait,
    UnknownDeliveryEventError,
    parse_ses_event,
    track_event,
)
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler
from stepmail.handlers import tracker as tracker_handler

EVENTS = Path(__file__).resolve().parent.parent / "events"


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def ses_event(
    event_type: str, body_key: str, body: dict[str, Any], message_id: str = "ses-1"
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "mail": {"messageId": message_id, "timestamp": "2026-11-28T00:00:00.000Z", "destination": ["x@y.z"]},
        body_key: {"timestamp": "2026-11-28T00:00:01.000Z", **body},
    }


class FakeRecords:
    """The lock table in memory: records by lock key (with their message id), the id -> key index."""

    def __init__(self, records: dict[str, str]) -> None:
        self.message_ids = records  # lock key -> SES message id
        self.status: dict[str, DeliveryStatus] = {}
        self.events: dict[str, list[dict[str, str]]] = {}

    def lock_key_for(self, message_id: str) -> str | None:
        return next((key for key, mid in self.message_ids.items() if mid == message_id), None)

    def record(self, lock_key: str, event: DeliveryEvent) -> RecordOutcome:
        if self.message_ids.get(lock_key) != event.message_id:
            return RecordOutcome.STALE
        self.events.setdefault(lock_key, []).append(event.as_item())
        current = self.status.get(lock_key)
        if current is not None and event.rank < STATUS_RANK[current]:
            return RecordOutcome.RECORDED_WITHOUT_STATUS
        self.status[lock_key] = event.status
        return RecordOutcome.RECORDED


class FakeTime:
    """A clock that only moves when the code under test sleeps: waits are instant and exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class LateRecords(FakeRecords):
    """Mark Sent writes the message id at ``marked_at`` (fake seconds); every look is counted."""

    def __init__(self, time: FakeTime, *, marked_at: float, lock_key: str = "k", message_id: str = "ses-1"):
        super().__init__({})
        self.time, self.marked_at, self.pending = time, marked_at, (lock_key, message_id)
        self.looks: list[float] = []

    def lock_key_for(self, message_id: str) -> str | None:
        self.looks.append(self.time.now)
        if self.time.now >= self.marked_at:
            self.message_ids.setdefault(*self.pending)
        return super().lock_key_for(message_id)


def _track_late(marked_at: float, wait: RecordWait) -> tuple[LateRecords, FakeTime, RecordOutcome | None]:
    time = FakeTime()
    records = LateRecords(time, marked_at=marked_at)
    try:
        outcome = track_event(
            ses_event("Send", "send", {}), records=records, wait=wait, clock=time.clock, sleep=time.sleep
        )
    except DeliveryRecordNotFoundError:
        outcome = None
    return records, time, outcome


class FakeMetrics:
    def __init__(self) -> None:
        self.points: list[tuple[str, float, dict[str, str]]] = []

    def count(self, name: str, value: float = 1, *, dimensions: Mapping[str, str] | None = None) -> None:
        self.points.append((name, value, dict(dimensions or {})))

    def size(self, name: str, value: float, *, dimensions: Mapping[str, str] | None = None) -> None:
        self.points.append((name, value, dict(dimensions or {})))

    def totals(self) -> Counter[tuple[str, str]]:
        totals: Counter[tuple[str, str]] = Counter()
        for name, value, dimensions in self.points:
            totals[(name, ",".join(dimensions.values()))] += int(value)
        return totals


# ---------------------------------------------------------------- parsing SES events
@pytest.mark.parametrize(
    ("event", "status", "detail"),
    [
        (ses_event("Send", "send", {}), DeliveryStatus.SENT, ""),
        (
            ses_event("Delivery", "delivery", {"smtpResponse": "250 ok", "recipients": ["x@y.z"]}),
            DeliveryStatus.DELIVERED,
            "250 ok",
        ),
        (
            ses_event(
                "Bounce",
                "bounce",
                {
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [{"emailAddress": "x@y.z", "status": "5.1.1"}],
                },
            ),
            DeliveryStatus.BOUNCED,
            "Permanent General 5.1.1",
        ),
        (
            ses_event("Complaint", "complaint", {"complaintFeedbackType": "abuse"}),
            DeliveryStatus.COMPLAINED,
            "abuse",
        ),
        (ses_event("Reject", "reject", {"reason": "Bad content"}), DeliveryStatus.REJECTED, "Bad content"),
        (
            ses_event("DeliveryDelay", "deliveryDelay", {"delayType": "MailboxFull"}),
            DeliveryStatus.DELIVERY_DELAYED,
            "MailboxFull",
        ),
    ],
)
def test_each_tracked_event_type_becomes_a_status_with_a_short_address_free_detail(
    event: dict[str, Any], status: DeliveryStatus, detail: str
) -> None:
    # When an SES event is parsed
    parsed = parse_ses_event(event)

    # Then it has its status, its own timestamp and a detail without addresses
    assert parsed is not None
    assert (parsed.message_id, parsed.status, parsed.detail) == ("ses-1", status, detail)
    assert parsed.at == "2026-11-28T00:00:01.000Z"
    assert parsed.as_item() == {"type": str(status), "at": parsed.at, "detail": detail}


def test_untracked_types_are_ignored_and_non_ses_events_refused() -> None:
    # Given an open event and something that is not an SES event
    records = FakeRecords({"k": "ses-1"})

    # Then the first is ignored without touching the record, the second refused
    assert track_event(ses_event("Open", "open", {}), records=records) is RecordOutcome.IGNORED
    assert records.events == {}
    with pytest.raises(UnknownDeliveryEventError):
        track_event({"detail-type": "Scheduled Event"}, records=records)


def test_an_event_before_mark_sent_is_recorded_after_the_wait() -> None:
    # Given an event that overtook Mark Sent, which writes the message id 1.5 s later
    wait = RecordWait(deadline_seconds=10, first_pause_seconds=0.1, backoff_rate=2, max_pause_seconds=2)

    # When the tracker handles it
    records, time, outcome = _track_late(1.5, wait)

    # Then it looked again after growing pauses and recorded the event once the id was there, no error
    assert outcome is RecordOutcome.RECORDED
    assert time.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert records.looks == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5])
    assert records.status["k"] is DeliveryStatus.SENT


def test_an_event_whose_record_never_comes_fails_at_the_deadline() -> None:
    # Given an event no record will ever carry (its run died before Mark Sent, or a foreign email)
    wait = RecordWait(deadline_seconds=5, first_pause_seconds=0.5, backoff_rate=2, max_pause_seconds=2)

    # When the tracker handles it
    records, time, outcome = _track_late(float("inf"), wait)

    # Then it waited exactly until the deadline (pauses capped at 2 s, the last one cut short), looked
    # a last time at the deadline, and failed: the error sends the event to the failure path
    assert outcome is None
    assert time.sleeps == pytest.approx([0.5, 1.0, 2.0, 1.5])
    assert records.looks[-1] == pytest.approx(5.0)
    assert records.events == {}


@pytest.mark.parametrize(("marked_at", "recorded"), [(5.0, True), (5.001, False)])
def test_a_record_written_at_the_deadline_is_found_and_just_past_it_is_not(
    marked_at: float, recorded: bool
) -> None:
    # Given Mark Sent writing the id exactly at the wait's deadline, or just after it
    wait = RecordWait(deadline_seconds=5, first_pause_seconds=0.5, backoff_rate=2, max_pause_seconds=2)

    # When the tracker handles the event
    _, time, outcome = _track_late(marked_at, wait)

    # Then the last look (at the deadline) finds the first and misses the second, never looking later
    assert (outcome is RecordOutcome.RECORDED) is recorded
    assert time.now == pytest.approx(5.0)


def test_an_event_already_matching_is_recorded_without_waiting() -> None:
    # Given a record that carries the id already (the usual case)
    records, time, outcome = _track_late(0.0, RecordWait())

    # Then the first look finds it: no pause at all
    assert outcome is RecordOutcome.RECORDED
    assert time.sleeps == [] and records.looks == [0.0]


def test_the_default_wait_grows_to_its_cap_and_fits_the_record_wait() -> None:
    # Given the tracker's default wait
    wait = RecordWait()

    # When we take its first pauses
    pauses = [pause for pause, _ in zip(wait.pauses(), range(8), strict=False)]

    # Then they double from 0.1 s up to the cap, and the deadline is the one the infra sizes for
    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
    assert wait.deadline_seconds == RECORD_WAIT_SECONDS


def test_status_only_moves_forward_but_every_event_is_kept() -> None:
    # Given a record, and its events arriving out of order (delivery first, then a late delay and send)
    records = FakeRecords({"k": "ses-1"})
    arrivals = [
        ses_event("Delivery", "delivery", {}),
        ses_event("DeliveryDelay", "deliveryDelay", {"delayType": "TransientCommunicationFailure"}),
        ses_event("Send", "send", {}),
        ses_event("Complaint", "complaint", {}),
    ]

    # When they are tracked
    outcomes = [track_event(event, records=records) for event in arrivals]

    # Then the status ends at the complaint, the weaker late ones did not overwrite it, all are listed
    assert outcomes == [
        RecordOutcome.RECORDED,
        RecordOutcome.RECORDED_WITHOUT_STATUS,
        RecordOutcome.RECORDED_WITHOUT_STATUS,
        RecordOutcome.RECORDED,
    ]
    assert records.status["k"] is DeliveryStatus.COMPLAINED
    assert [event["type"] for event in records.events["k"]] == [
        "delivered",
        "delivery-delayed",
        "sent",
        "complained",
    ]


# ---------------------------------------------------------------- the tracker handler
def test_tracker_handler_unwraps_eventbridge_and_counts_the_event_type() -> None:
    # Given the tracker with fakes, and an EventBridge event as the rule delivers it
    fake_metrics, records = FakeMetrics(), FakeRecords({"k": "ses-9"})
    tracker = tracker_handler.Tracker(records=records, metrics=fake_metrics)
    event = {
        "source": "aws.ses",
        "detail-type": "Email Bounced",
        "detail": ses_event("Bounce", "bounce", {"bounceType": "Transient"}, "ses-9"),
    }

    # When the handler runs
    answer = tracker_handler.handler(event, None, tracker=tracker)

    # Then the record has the bounce and the DeliveryEvents metric counts it by type
    assert answer == {"outcome": "recorded"}
    assert records.status["k"] is DeliveryStatus.BOUNCED
    assert fake_metrics.points == [(metrics.DELIVERY_EVENTS, 1, {metrics.EVENT_TYPE: "bounced"})]


def test_tracker_handler_raises_an_event_it_cannot_record_and_counts_nothing() -> None:
    # Given the tracker with a short fake wait, and an event no record carries
    fake_metrics, time = FakeMetrics(), FakeTime()
    tracker = tracker_handler.Tracker(
        records=FakeRecords({}),
        metrics=fake_metrics,
        wait=RecordWait(deadline_seconds=1),
        clock=time.clock,
        sleep=time.sleep,
    )
    event = {"source": "aws.ses", "detail": ses_event("Delivery", "delivery", {}, "ses-unknown")}

    # When / Then the handler fails after the wait (Lambda retries it, then sends it to the tracker's
    # DLQ), and counts no delivery event
    with pytest.raises(DeliveryRecordNotFoundError, match="ses-unknown"):
        tracker_handler.handler(event, None, tracker=tracker)
    assert time.now == pytest.approx(1.0)
    assert fake_metrics.points == []


def test_tracker_handler_refuses_an_event_that_is_not_from_ses() -> None:
    # Given the tracker, and an event that is not an SES event
    tracker = tracker_handler.Tracker(records=FakeRecords({}), metrics=FakeMetrics())

    # When / Then it fails at once, without waiting (it can never match): the failure path keeps it
    with pytest.raises(UnknownDeliveryEventError):
        tracker_handler.handler({"detail": {"hello": "world"}}, None, tracker=tracker)


# ---------------------------------------------------------------- the metrics of the other handlers
def test_starter_counts_duplicates_dead_letters_by_reason_and_retries() -> None:
    # Given the starter with a fake workflow that ends runs as the mailKey says, and a fake sink
    from tests.unit.test_handlers import FakeLocks, FakeQueue, FakeQuota, FakeWorkflow

    fake_metrics = FakeMetrics()
    policy = StartPolicy(
        SenderPolicy(("example.com",), "no-reply@example.com"), lease_seconds=60, dedup_window_seconds=3600
    )
    ports = Ports(workflow=FakeWorkflow(), dead_letters=FakeQueue(), locks=FakeLocks(), quota=FakeQuota())
    starter = starter_handler.Starter(policy=policy, ports=ports, metrics=fake_metrics)

    # When it handles the batch (sent, duplicate, busy, dead-lettered, retry-later, invalid)
    starter_handler.handler(_event("sqs_batch.json"), None, starter=starter)

    # Then each outcome that needs watching was counted once
    assert fake_metrics.totals() == Counter(
        {
            (metrics.DUPLICATES_SKIPPED, ""): 1,
            (metrics.DEAD_LETTERED, "workflow"): 1,
            (metrics.DEAD_LETTERED, "invalid-message"): 1,
            (metrics.RETRIED_LATER, ""): 2,
        }
    )


def test_sender_counts_sent_emails_attachment_bytes_and_throttles() -> None:
    # Given the sender with fakes, once working and once throttled
    from tests.unit.test_handlers import FakeStore, FakeTransport

    ok, throttled = FakeMetrics(), FakeMetrics()
    store = FakeStore({"inv-1/invoice.pdf": b"%PDF-1.4\n"})
    working = sender_handler.Sender(store=store, transport=FakeTransport(), metrics=ok)
    slow = sender_handler.Sender(
        store=store, transport=FakeTransport(SesThrottledError("x")), metrics=throttled
    )

    # When each sends the same payload
    sender_handler.handler(_event("sender_payload.json"), None, sender=working)
    with pytest.raises(SesThrottledError):
        sender_handler.handler(_event("sender_payload.json"), None, sender=slow)

    # Then one email and its attachment bytes were counted, and the throttled send as a throttle
    assert ok.points == [(metrics.EMAILS_SENT, 1, {}), (metrics.ATTACHMENT_BYTES, 9, {})]
    assert throttled.points == [(metrics.THROTTLED, 1, {})]


def test_emf_lines_carry_the_namespace_service_and_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given metrics switched on (the twin switches them off for the process)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    # When a dead letter is counted
    metrics.EmfMetrics().count(metrics.DEAD_LETTERED, dimensions={metrics.REASON: "invalid-message"})

    # Then one EMF line says so, in the namespace and with the dimensions the alarms and dashboard read
    [line] = capsys.readouterr().out.strip().splitlines()
    emf = json.loads(line)
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == metrics.NAMESPACE
    assert directive["Dimensions"] == [["service", metrics.REASON]]
    assert directive["Metrics"] == [{"Name": metrics.DEAD_LETTERED, "Unit": "Count"}]
    assert (emf["service"], emf[metrics.REASON], emf[metrics.DEAD_LETTERED]) == (
        "stepmail",
        "invalid-message",
        [1.0],
    )
