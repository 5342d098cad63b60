"""Delivery tracking on the twin: SES's mailbox simulator -> events -> the tracker -> the email's record."""

from __future__ import annotations

from collections.abc import Callable

from producer.render import render_status
from producer.status import email_status
from stepmail.core.lock import lock_key
from stepmail.core.tracking import index_key
from tests.integration.conftest import Harness

SIMULATOR = "simulator.amazonses.com"

#: mail key -> (recipients, expected status, expected event types)
MAILBOXES = {
    "track-success": ([f"success+label@{SIMULATOR}"], "delivered", ["delivered", "sent"]),
    "track-bounce": ([f"bounce@{SIMULATOR}"], "bounced", ["bounced", "sent"]),
    "track-complaint": ([f"complaint@{SIMULATOR}"], "complained", ["complained", "delivered", "sent"]),
    "track-suppressed": ([f"suppressionlist@{SIMULATOR}"], "bounced", ["bounced", "sent"]),
    # SES publishes per recipient, in any order: the bounce must win over the other's delivery
    "track-mixed": (
        [f"success@{SIMULATOR}", f"bounce@{SIMULATOR}"],
        "bounced",
        ["bounced", "delivered", "sent"],
    ),
}


def _delivery(harness: Harness, key: str) -> tuple[str | None, list[dict[str, str]]]:
    item = harness.lock(key) or {}
    status = item.get("deliveryStatus", {}).get("S")
    events = [
        {name: value["S"] for name, value in element["M"].items()}
        for element in item.get("deliveryEvents", {}).get("L", [])
    ]
    return status, events


def _send_all(harness: Harness, emails: dict[str, list[str]]) -> None:
    ids = [
        harness.send({"mailKey": key, "to": to, "subject": "s", "body": "b"}) for key, to in emails.items()
    ]
    reports = harness.wait_for(*ids)
    assert all(report.message_id for report in reports)
    assert harness.twin.simulator is not None
    assert harness.twin.simulator.wait_until_idle(), "the simulator's events did not settle"


def test_each_simulator_mailbox_ends_in_its_status_on_the_record(make_twin: Callable[..., Harness]) -> None:
    # Given a twin with delivery tracking (opt-in)
    harness = make_twin(delivery_tracking=True)

    # When one email goes to each simulator mailbox (and one to two of them) and SES's events settle
    _send_all(harness, {key: to for key, (to, _, _) in MAILBOXES.items()})

    # Then each email's record has its status and every event, with no address in the details
    for key, (to, status, types) in MAILBOXES.items():
        lock = lock_key(key, to)
        recorded_status, events = _delivery(harness, lock)
        assert recorded_status == status, key
        assert sorted(event["type"] for event in events) == types, key
        assert all(event["at"].endswith("Z") and "@" not in event["detail"] for event in events)
        # And its SES message id finds the record through the index item
        item = harness.lock(lock)
        assert item is not None
        index = harness.lock(index_key(item["messageId"]["S"]))
        assert index is not None and index["lockKey"]["S"] == lock
    # And a suppressed address's bounce says why (SES's account-level suppression list)
    _, events = _delivery(harness, lock_key("track-suppressed", MAILBOXES["track-suppressed"][0]))
    [bounce] = [event for event in events if event["type"] == "bounced"]
    assert bounce["detail"].startswith("Permanent OnAccountSuppressionList")


def test_status_shows_what_ses_said(make_twin: Callable[..., Harness]) -> None:
    # Given an email to the complaint mailbox, tracked to the end
    harness = make_twin(delivery_tracking=True)
    to = [f"complaint@{SIMULATOR}"]
    _send_all(harness, {"track-status": to})

    # When an operator asks for its status (what `stepmail status track-status --to ...` prints)
    [record] = email_status(
        harness.dynamodb,
        harness.sqs,
        table=harness.info.table,
        dlq_url=harness.info.dlq_url,
        mail_key="track-status",
        recipients=to,
    )

    # Then it says complained, with each event SES published
    assert record.delivery_status == "complained"
    assert sorted(event.type for event in record.delivery_events) == ["complained", "delivered", "sent"]
    assert "complained" in render_status([record])
    # And nothing else was published than this email's three events, each recorded at once or after retries
    assert harness.twin.simulator is not None
    assert sorted(str(result.outcome) for result in harness.twin.simulator.results) == ["recorded"] * 3


def test_other_configuration_sets_publish_nothing(make_twin: Callable[..., Harness]) -> None:
    # Given a twin whose messages go through a configuration set of their own (not the tracked one)
    harness = make_twin(
        delivery_tracking=True, configuration_sets=("other",), default_configuration_set="other"
    )

    # When an email is sent
    _send_all(harness, {"track-untracked": [f"success@{SIMULATOR}"]})

    # Then nothing was published and its record carries no delivery fields
    assert harness.twin.simulator is not None and harness.twin.simulator.results == []
    assert _delivery(harness, lock_key("track-untracked", [f"success@{SIMULATOR}"])) == (None, [])
    assert [email.configuration_set for email in harness.emails] == ["other"]


def test_tracking_off_means_no_simulator_and_no_configuration_set(make_twin: Callable[..., Harness]) -> None:
    # Given a twin with delivery tracking off (the default)
    harness = make_twin()

    # When an email is sent
    [report] = harness.wait_for(harness.send({"mailKey": "untracked", "to": ["a@example.net"], "body": "b"}))

    # Then it went without a configuration set, and no simulator runs
    assert report.message_id
    assert harness.twin.simulator is None
    assert [email.configuration_set for email in harness.emails] == [None]
