"""The hostile corpus through the whole pipeline: nothing crashes, nothing stalls the queue, nothing
is sent, and every message is in the dead-letter queue with the reason it was refused."""

from __future__ import annotations

import json
from pathlib import Path

from stepmail.core.mime import MAX_EMAIL_BYTES
from stepmail.core.starting import Outcome

CORPUS = sorted((Path(__file__).resolve().parent.parent / "bad_input").glob("*.json"))


def test_every_hostile_message_is_dead_lettered_with_its_reason_and_nothing_is_sent(make_twin) -> None:
    # Given the corpus, a body larger than a run can carry, and a valid message among them
    twin = make_twin(configuration_sets=("stepmail-events",))
    specs = [json.loads(path.read_text(encoding="utf-8")) for path in CORPUS]
    specs.append(
        {
            "body": json.dumps({"mailKey": "huge", "toAddress": "a@customer.example", "body": "x" * 250_000}),
            "reason": "too large for a run",
        }
    )
    bodies = [spec["body"] for spec in specs]
    valid = json.dumps({"mailKey": "fine", "to": ["jane@customer.example"], "subject": "Hi", "body": "ok"})

    # When they are all put on the queue, in batches
    ids = [qid for start in range(0, len(bodies), 10) for qid in twin.send_batch(bodies[start : start + 10])]
    valid_id = twin.send_raw(valid)
    reports = twin.wait_for(*ids, valid_id)
    twin.idle()

    # Then the valid one is sent, every hostile one is rejected into the DLQ with its reason
    assert reports[-1].outcome is Outcome.SENT and len(twin.emails) == 1
    assert all(report.outcome is Outcome.REJECTED for report in reports[:-1])
    letters = {letter["queueMessageId"]: letter for letter in twin.dead_letters()}
    for queue_message_id, spec in zip(ids, specs, strict=True):
        letter = letters[queue_message_id]
        assert letter["body"] == spec["body"] and spec["reason"] in letter["cause"]
    # and no record was reported back to the queue, no starter invocation failed
    assert twin.twin._poller.stats.failures == 0 and twin.twin._poller.stats.errors == 0


def test_an_attachment_over_the_ses_limit_is_dead_lettered_before_it_is_downloaded(twin) -> None:
    # Given an attachment whose base64 encoding alone is over 40 MB
    size = MAX_EMAIL_BYTES * 3 // 4 + 1024
    twin.s3.put_object(Bucket=twin.info.bucket, Key="big-1/video.bin", Body=b"\0" * size)
    reads = twin.wrap_sender(lambda real, payload: real(payload))

    # When a message attaching it is processed
    (report,) = twin.wait_for(
        twin.send_raw(
            json.dumps(
                {"mailKey": "big-1", "toAddress": "a@customer.example", "attachedFileKeys": ["video.bin"]}
            )
        )
    )

    # Then it is dead-lettered as too large, after one attempt, and nothing is sent
    assert report.outcome is Outcome.DEAD_LETTERED and twin.emails == []
    (letter,) = twin.dead_letters()
    assert letter["error"] == "MessageTooLargeError" and "40" in letter["cause"]
    assert len(reads) == 1 and twin.retry_waits("Render And Send") == []
