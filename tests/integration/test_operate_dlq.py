"""Operating on the twin: `dlq list`, `dlq redrive` and `status` against the real pipeline.

Every dead-letter shape is produced by the pipeline itself: the starter's (invalid message), the
workflow's (a permanent error) and the queue's redrive policy (a run that kept failing).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from producer.cli import EXIT_LETTERS_UNSEEN, main
from producer.dead_letters import DeadLetter, DeliveryHistory, list_dead_letters, read_dead_letter_queue
from producer.redrive import RedriveReport, redrive
from producer.status import email_status
from stepmail.core.errors import SesUnavailableError
from stepmail.core.lock import lock_key
from stepmail.core.starting import Outcome

TO = "jane@customer.example"


def _message(mail_key: str, **fields: Any) -> dict[str, Any]:
    return {"mailKey": mail_key, "to": [TO], "subject": "Hello", "body": "Hi", **fields}


def _history(twin) -> DeliveryHistory:
    """What the CLI reads beside the letters: the queue's redrive policy and the starter's notes."""
    return DeliveryHistory.of(twin.sqs, twin.dynamodb, queue_url=twin.info.queue_url, table=twin.info.table)


def _info_file(twin, tmp_path: Path) -> list[str]:
    info_file = tmp_path / "twin.json"
    info_file.write_text(twin.info.to_json(), encoding="utf-8")
    return ["--info-file", str(info_file)]


def _note_written(twin, queue_message_id: str, timeout: float = 30.0) -> None:
    """Wait for the starter's note on the message's failed delivery."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _history(twin).note(queue_message_id) is not None:
            return
        time.sleep(0.01)
    raise AssertionError(f"no failed-delivery note for {queue_message_id} after {timeout}s")


def _letters_when(twin, count: int, timeout: float = 30.0) -> list[DeadLetter]:
    """The dead letters, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        letters = list_dead_letters(twin.sqs, twin.info.dlq_url, history=_history(twin))
        if len(letters) >= count:
            return letters
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} dead letters after {timeout}s")


def _emails_when(twin, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(twin.emails) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(twin.emails) >= count, f"{len(twin.emails)} emails after {timeout}s, expected {count}"


@pytest.fixture
def failing(make_twin):
    """A twin whose queue dead-letters after two failed deliveries, and a switch that makes SES fail."""
    twin = make_twin(max_receive_count=2, visibility_timeout_seconds=1)
    down = threading.Event()

    def sender(real, payload):
        if down.is_set():
            raise SesUnavailableError("SES is down")
        return real(payload)

    twin.wrap_sender(sender)
    return twin, down


def test_every_dead_letter_shape_is_listed_and_the_repaired_ones_are_redriven(failing) -> None:
    twin, down = failing
    # Given every shape in the DLQ: an invalid message and a message still failing on its last
    # delivery (both written by the starter), a missing attachment (the workflow), and a message the
    # queue's redrive policy moved because the starter died on its last delivery (its first failed
    # with SES down, and the starter noted why)
    twin.wait_for(twin.send_raw("{not json"))
    twin.wait_for(twin.send_raw(json.dumps(_message("inv-1", attachedFileKeys=["a.pdf"]))))
    down.set()
    twin.wait_for(twin.send(_message("outage-1")), timeout=30)
    armed: list[bool] = []

    def die_from_the_next_delivery(real, payload):
        # Within outage-2's first delivery (its starter already running), so only later ones die
        if payload["message"]["mailKey"] == "outage-2" and not armed:
            armed.append(True)
            twin.twin.faults.add("starter:die:match=outage-2")
        return real(payload)

    twin.wrap_sender(die_from_the_next_delivery)
    outage_2 = twin.send(_message("outage-2"))
    _note_written(twin, outage_2)
    by_key = {letter.mail_key: letter for letter in _letters_when(twin, 4)}
    twin.twin.faults.clear()

    # Then each is listed with its mail key, recipients and a readable reason
    assert {key: letter.source for key, letter in by_key.items()} == {
        None: "starter",
        "inv-1": "workflow",
        "outage-1": "starter",
        "outage-2": "queue",
    }
    assert "not valid JSON" in by_key[None].reason
    assert by_key["inv-1"].reason.startswith(
        "AttachmentMissingError: attachment a.pdf was not found at s3://"
    )
    assert by_key["inv-1"].recipients == (TO,)
    assert by_key["outage-1"].reason.startswith("RetryLaterError: not sent after 2 deliveries")
    assert "SesUnavailableError" in by_key["outage-1"].reason
    assert by_key["outage-2"].reason.startswith(
        "failed 2 deliveries (moved by the queue's redrive policy); the last error noted (delivery 1): "
    )
    assert "SesUnavailableError" in by_key["outage-2"].reason
    assert by_key["outage-2"].redrive_count == 0
    assert by_key["outage-2"].original_message_id == outage_2
    assert {key: letter.deliveries for key, letter in by_key.items()} == {
        None: 1,
        "inv-1": 1,
        "outage-1": 2,
        "outage-2": 2,
    }

    # And reading them again (as the console and `dlq list` do, over and over) changes nothing shown
    for _ in range(3):
        again = {
            letter.mail_key: letter
            for letter in list_dead_letters(twin.sqs, twin.info.dlq_url, history=_history(twin))
        }
        assert {key: (letter.reason, letter.deliveries) for key, letter in again.items()} == {
            key: (letter.reason, letter.deliveries) for key, letter in by_key.items()
        }

    # When the causes are repaired and a dry run is asked for
    down.clear()
    twin.s3.put_object(Bucket=twin.info.bucket, Key="inv-1/a.pdf", Body=b"%PDF-1.7")
    dry = redrive(twin.sqs, dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, all=True, dry_run=True)

    # Then it says what it would do and changes nothing
    assert sorted(item.letter.mail_key for item in dry.redriven) == ["inv-1", "outage-1", "outage-2"]
    assert [item.letter.source for item in dry.kept] == ["starter"]
    assert "not valid JSON" in dry.kept[0].reason
    assert len(list_dead_letters(twin.sqs, twin.info.dlq_url)) == 4

    # When they are redriven for real
    report = redrive(twin.sqs, dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, all=True)

    # Then the three repaired emails are sent once each and only the invalid message stays, with its reason
    outcomes = twin.wait_for(*[item.queue_message_id for item in report.redriven if item.queue_message_id])
    assert [outcome.outcome for outcome in outcomes] == [Outcome.SENT] * 3
    assert len(twin.emails) == 3
    (left,) = list_dead_letters(twin.sqs, twin.info.dlq_url)
    assert left.source == "starter"


def test_a_redriven_message_that_fails_again_carries_its_redrive_count(twin) -> None:
    # Given two dead-lettered messages whose attachment is still missing
    for mail_key in ("miss-1", "miss-2"):
        twin.wait_for(twin.send(_message(mail_key, attachedFileKeys=["a.pdf"])))

    # When one mail key is redriven twice without repairing it
    for expected in (1, 2):
        report = redrive(
            twin.sqs, dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, mail_key="miss-1"
        )
        assert [item.letter.mail_key for item in report.redriven] == ["miss-1"]
        (outcome,) = twin.wait_for(report.redriven[0].queue_message_id or "")
        assert outcome.outcome is Outcome.DEAD_LETTERED

        # Then it is back in the DLQ with its count; the other message was not touched
        letters = {letter.mail_key: letter for letter in list_dead_letters(twin.sqs, twin.info.dlq_url)}
        assert letters["miss-1"].redrive_count == expected
        assert letters["miss-2"].redrive_count == 0
        assert set(letters) == {"miss-1", "miss-2"}


def test_an_interrupted_redrive_loses_nothing_and_sends_once(twin) -> None:
    # Given a dead letter that becomes sendable (its attachment is uploaded afterwards)
    twin.wait_for(twin.send_raw(json.dumps(_message("crash-9", attachedFileKeys=["a.pdf"]))))
    twin.s3.put_object(Bucket=twin.info.bucket, Key="crash-9/a.pdf", Body=b"data")

    # When redrive dies between sending to the queue and deleting from the DLQ
    class Dying:
        def __init__(self, sqs: Any) -> None:
            self._sqs = sqs

        def __getattr__(self, name: str) -> Any:
            if name == "delete_message":
                raise KeyboardInterrupt("killed")
            return getattr(self._sqs, name)

    with pytest.raises(KeyboardInterrupt):
        redrive(Dying(twin.sqs), dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, all=True)

    # Then the message is in the DLQ still (made visible again) and was sent from the queue
    _emails_when(twin, 1)
    (letter,) = list_dead_letters(twin.sqs, twin.info.dlq_url)
    assert letter.mail_key == "crash-9"

    # And redriving the leftover copy is skipped as a duplicate: one email in all
    report = redrive(twin.sqs, dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, mail_key="crash-9")
    (outcome,) = twin.wait_for(report.redriven[0].queue_message_id or "")
    assert outcome.outcome is Outcome.DUPLICATE
    assert len(twin.emails) == 1 and list_dead_letters(twin.sqs, twin.info.dlq_url) == []


def test_status_shows_sent_delivered_and_dead_lettered_emails(twin, tmp_path: Path, capsys) -> None:
    # Given one email sent and later delivered (the tracker's fields), and one dead-lettered
    (sent,) = twin.wait_for(twin.send(_message("st-1", cc=["bob@customer.example"])))
    twin.wait_for(twin.send(_message("st-2", attachedFileKeys=["missing.pdf"])))
    twin.dynamodb.update_item(
        TableName=twin.info.table,
        Key={"pk": {"S": sent.lock_key}},
        UpdateExpression="SET deliveryStatus = :status, deliveryEvents = :events",
        ExpressionAttributeValues={
            ":status": {"S": "delivered"},
            ":events": {
                "L": [
                    {
                        "M": {
                            "type": {"S": "delivered"},
                            "at": {"S": "2026-11-28T01:00:00Z"},
                            "detail": {"S": "250 ok"},
                        }
                    }
                ]
            },
        },
    )

    # When the status of each is asked for
    (delivered,) = email_status(
        twin.dynamodb, twin.sqs, table=twin.info.table, dlq_url=twin.info.dlq_url, mail_key="st-1"
    )
    (dead,) = email_status(
        twin.dynamodb,
        twin.sqs,
        table=twin.info.table,
        dlq_url=twin.info.dlq_url,
        mail_key="st-2",
        recipients=[TO],
    )

    # Then the sent one shows its lock record, SES message id and delivery; the other its reason
    assert delivered.state == "delivered" and delivered.lock_status == "SENT"
    assert delivered.message_id == sent.message_id and delivered.sent_at
    assert [event.type for event in delivered.delivery_events] == ["delivered"]
    assert dead.state == "dead-lettered" and dead.lock_key == lock_key("st-2", [TO])
    assert dead.dead_letters[0].reason.startswith("AttachmentMissingError: attachment missing.pdf")

    # And the CLI shows the same, as JSON and as a table, given the exact recipients
    info_file = tmp_path / "twin.json"
    info_file.write_text(twin.info.to_json(), encoding="utf-8")
    target = ["--info-file", str(info_file)]
    assert main(["status", "st-1", "--to", TO, "--to", "Bob <bob@customer.example>", "--json", *target]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["state"] == "delivered" and record["messageId"] == sent.message_id
    assert main(["status", "st-2", *target]) == 0
    assert "dead-lettered" in capsys.readouterr().out
    assert main(["status", "nobody", "--to", TO, *target]) == 0
    assert "unknown" in capsys.readouterr().out


def test_dlq_commands_work_from_the_cli(twin, tmp_path: Path, capsys) -> None:
    # Given a dead-lettered message whose cause is then repaired
    twin.wait_for(twin.send(_message("cli-1", attachedFileKeys=["a.pdf"])))
    twin.s3.put_object(Bucket=twin.info.bucket, Key="cli-1/a.pdf", Body=b"data")
    target = _info_file(twin, tmp_path)

    # When it is listed, then redriven by mail key
    assert main(["dlq", "list", *target]) == 0
    listing = capsys.readouterr().out
    assert main(["dlq", "redrive", "--mail-key", "cli-1", "--json", *target]) == 0
    report = json.loads(capsys.readouterr().out)

    # Then the table names it with its reason and the redrive sends it with its count as an SES tag
    assert "cli-1" in listing and "attachment a.pdf was not found" in listing
    assert "1 letter(s) at the start, 1 seen by this command, 0 unseen: every letter accounted for" in listing
    ((redriven,),) = [report["redriven"]]
    (outcome,) = twin.wait_for(redriven["queueMessageId"])
    assert outcome.outcome is Outcome.SENT
    assert main(["dlq", "list", *target]) == 0
    assert "empty" in capsys.readouterr().out
    assert len(twin.emails) == 1


def test_a_body_the_starter_refused_for_a_duplicated_key_stays_after_a_redrive(
    twin, tmp_path: Path, capsys
) -> None:
    # Given a body naming "mailKey" twice: a lenient JSON reader would keep the last one and pass it
    body = (
        '{"mailKey": "dup-1", "mailKey": "dup-2", "to": ["jane@customer.example"], '
        '"subject": "S", "body": "B"}'
    )
    (outcome,) = twin.wait_for(twin.send_raw(body))
    assert outcome.outcome is Outcome.REJECTED and "mailKey" in outcome.reason

    # When every letter is redriven from the CLI
    target = _info_file(twin, tmp_path)
    assert main(["dlq", "redrive", "--all", *target]) == 0
    printed = capsys.readouterr().out

    # Then it was not sent back: it stays in the DLQ, and the starter's reason is printed
    assert "redriven: 0, kept in the dead-letter queue: 1" in printed
    (kept_line,) = [line for line in printed.splitlines() if line.startswith("  kept")]
    assert "mailKey" in kept_line and "twice" in kept_line
    (left,) = list_dead_letters(twin.sqs, twin.info.dlq_url)
    assert left.body == body and left.source == "starter"
    twin.idle()
    assert twin.emails == []


def test_a_letter_dead_lettered_twice_is_listed_once_and_redriven_once(make_twin) -> None:
    # Given a message the starter dead-letters and then dies before the queue hears of it, so the
    # queue delivers it again and it is dead-lettered a second time (two copies, one queue message)
    twin = make_twin(visibility_timeout_seconds=1)
    message = _message("twice-1", attachedFileKeys=["a.pdf"])
    twin.twin.faults.add("starter:crash:times=1:match=twice-1")
    queue_message_id = twin.send_raw(json.dumps(message | {"colour": "red"}))
    twin.wait_for(queue_message_id)
    twin.idle()
    history = _history(twin)

    # When the DLQ is listed
    listing = read_dead_letter_queue(twin.sqs, twin.info.dlq_url, history=history)

    # Then the two copies are one letter, with its copies counted
    (letter,) = listing.letters
    assert (letter.original_message_id, letter.copies) == (queue_message_id, 2)
    assert listing.tally.seen == 2 and listing.tally.complete

    # When it is redriven (still invalid, it is kept) the extra copy is deleted
    report = redrive(twin.sqs, dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, all=True)
    assert [item.letter.original_message_id for item in report.kept] == [queue_message_id]
    assert [copy.original_message_id for copy in report.copies] == [queue_message_id]
    (left,) = list_dead_letters(twin.sqs, twin.info.dlq_url, history=history)
    assert left.copies == 1


def test_concurrent_redrives_and_a_listing_account_for_every_letter(twin) -> None:
    # Given 12 letters (their attachment missing), then repaired
    ids = [twin.send(_message(f"many-{index}", attachedFileKeys=["a.pdf"])) for index in range(12)]
    twin.wait_for(*ids)
    for index in range(12):
        twin.s3.put_object(Bucket=twin.info.bucket, Key=f"many-{index}/a.pdf", Body=b"%PDF")

    # When three redrives of everything and a listing run at once
    reports: list[RedriveReport] = []
    listings = []

    def redrive_all() -> None:
        reports.append(redrive(twin.sqs, dlq_url=twin.info.dlq_url, queue_url=twin.info.queue_url, all=True))

    def list_all() -> None:
        listings.append(read_dead_letter_queue(twin.sqs, twin.info.dlq_url))

    threads = [
        threading.Thread(target=target) for target in (redrive_all, redrive_all, list_all, redrive_all)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then each saw every letter it had to (none exited with letters unseen), every letter was
    # redriven exactly once between them, and each email was sent once
    assert [report.tally.unseen for report in reports] == [0, 0, 0]
    assert listings[0].tally.complete
    redriven = [item.letter.original_message_id for report in reports for item in report.redriven]
    assert sorted(redriven) == sorted(ids)
    twin.idle()
    expected = {lock_key(f"many-{index}", [TO]): 1 for index in range(12)}
    assert twin.emails_per_lock_key() == expected
    assert list_dead_letters(twin.sqs, twin.info.dlq_url) == []


def test_a_listing_that_cannot_see_every_letter_says_so_and_fails(twin, tmp_path: Path, capsys) -> None:
    # Given 3 letters, 2 of them held by a reader that does not let go
    ids = [twin.send(_message(f"held-{index}", attachedFileKeys=["a.pdf"])) for index in range(3)]
    twin.wait_for(*ids)
    twin.sqs.receive_message(QueueUrl=twin.info.dlq_url, MaxNumberOfMessages=2, VisibilityTimeout=300)

    # When the DLQ is listed with a short wait
    status = main(["dlq", "list", "--wait-seconds", "1", *_info_file(twin, tmp_path)])

    # Then the one it saw is shown, and it exits non-zero saying how many it could not see
    captured = capsys.readouterr()
    assert status == EXIT_LETTERS_UNSEEN
    assert "3 letter(s) at the start, 1 seen by this command, 2 unseen: 2 letter(s) in flight elsewhere" in (
        captured.out
    )
    assert captured.err.strip() == "stepmail: 2 letter(s) in flight elsewhere: run again"
