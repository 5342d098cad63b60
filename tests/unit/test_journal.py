"""The twin's journal: a message's outcome is its first handled one, and it is done once off the queue."""

from __future__ import annotations

from stepmail.core.errors import LockBusyError
from stepmail.core.starting import Outcome, StartReport
from twin.journal import Journal


def test_a_result_that_finishes_after_the_handled_outcome_does_not_replace_it() -> None:
    # Given a message sent by one delivery, whose concurrent twin found the lock busy and finished last
    journal = Journal()
    sent = StartReport(Outcome.SENT, "k", "k#1")
    journal.record("m-1", sent)
    journal.record("m-1", LockBusyError("busy"))

    # When the poller deletes it (the first delivery's answer)
    assert not journal.done("m-1")
    journal.deleted("m-1")

    # Then it is done, with the send as its outcome, and its history keeps both results in order
    assert journal.done("m-1")
    assert journal.outcome("m-1") is sent
    assert [type(result) for result in journal.history("m-1")] == [StartReport, LockBusyError]


def test_a_message_deleted_without_a_handled_outcome_is_not_done() -> None:
    # Given a message whose only delivery failed (it stays on the queue) and one never seen
    journal = Journal()
    journal.record("m-2", LockBusyError("busy"))
    journal.deleted("m-3")

    # Then neither is done, and neither has an outcome
    assert not journal.done("m-2") and journal.outcome("m-2") is None
    assert not journal.done("m-3") and journal.history("m-3") == []
