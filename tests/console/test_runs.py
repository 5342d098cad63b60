"""How the console reads a run's history (pure: hand-written history events, no twin)."""

from __future__ import annotations

from typing import Any

from twin.console.graph import END, START
from twin.console.runs import path, run_status, visits

TOP_LEVEL = {"Resolve Attachments", "Render And Send"}


def event(event_id: int, previous: int, kind: str, second: int, **details: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "previousEventId": previous,
        "type": kind,
        "timestamp": f"2026-11-28T00:00:{second:02d}.000Z",
        **details,
    }


def entered(name: str) -> dict[str, Any]:
    return {"stateEnteredEventDetails": {"name": name, "input": '{"n": 1}'}}


def exited(name: str) -> dict[str, Any]:
    return {"stateExitedEventDetails": {"name": name, "output": '{"ok": true}'}}


def iteration(kind: str, index: int) -> dict[str, Any]:
    return {f"mapIteration{kind}EventDetails": {"name": "Resolve Attachments", "index": index}}


# Two parallel iterations whose events interleave; iteration 1 is retried once.
HISTORY = [
    event(1, 0, "MapStateEntered", 0, **entered("Resolve Attachments")),
    event(2, 1, "MapIterationStarted", 0, **iteration("Started", 0)),
    event(3, 1, "MapIterationStarted", 0, **iteration("Started", 1)),
    event(4, 2, "TaskStateEntered", 1, **entered("Head Attachment")),
    event(5, 3, "TaskStateEntered", 1, **entered("Head Attachment")),
    event(6, 5, "TaskScheduled", 1),
    event(7, 4, "TaskScheduled", 1),
    event(8, 6, "TaskFailed", 2, taskFailedEventDetails={"error": "S3.S3Exception", "cause": "slow down"}),
    event(9, 7, "TaskSucceeded", 2),
    event(10, 9, "TaskStateExited", 3, **exited("Head Attachment")),
    event(11, 8, "TaskScheduled", 4),
    event(12, 11, "TaskSucceeded", 5),
    event(13, 12, "TaskStateExited", 6, **exited("Head Attachment")),
    event(14, 13, "MapStateExited", 7, **exited("Resolve Attachments")),
    event(15, 14, "TaskStateEntered", 8, **entered("Render And Send")),
    event(16, 15, "TaskScheduled", 8),
    event(17, 16, "TaskSucceeded", 9),
    event(18, 17, "TaskStateExited", 9, **exited("Render And Send")),
]


def test_interleaved_iterations_are_told_apart_by_their_event_chains() -> None:
    # Given a history where two Map iterations run at once and one is retried
    # When it is read into state visits
    found = visits(HISTORY, TOP_LEVEL)

    # Then each event counts for its own iteration: attempts, errors and time
    heads = sorted((v for v in found if v["name"] == "Head Attachment"), key=lambda v: v["iteration"])
    assert [(v["map"], v["iteration"]) for v in heads] == [
        ("Resolve Attachments", 0),
        ("Resolve Attachments", 1),
    ]
    assert [v["attempts"] for v in heads] == [1, 2]
    assert heads[0]["errors"] == []
    assert [e["error"] for e in heads[1]["errors"]] == ["S3.S3Exception"]
    assert [v["durationMs"] for v in heads] == [2000, 5000]
    assert heads[1]["input"] == {"n": 1} and heads[1]["output"] == {"ok": True}
    # And the top-level states are outside any iteration
    send = next(v for v in found if v["name"] == "Render And Send")
    assert (send["map"], send["iteration"], send["attempts"]) == (None, None, 1)


def test_path_chains_top_level_states_and_leads_the_map_into_its_iterations() -> None:
    # Given the visits of a finished run and of one still running
    found = visits(HISTORY, TOP_LEVEL)

    # Then the path is start -> map -> send -> end, plus the Map's edge into its iterations
    assert {tuple(pair) for pair in path(found, finished=True)} == {
        (START, "Resolve Attachments"),
        ("Resolve Attachments", "Head Attachment"),
        ("Resolve Attachments", "Render And Send"),
        ("Render And Send", END),
    }
    assert (("Render And Send", END)) not in {tuple(pair) for pair in path(found, finished=False)}


def test_statuses_follow_the_workflows_outcome() -> None:
    # Given how Step Functions ended a run and what the workflow said
    # Then the console names it as the starter would
    assert run_status("SUCCEEDED", "sent") == "succeeded"
    assert run_status("SUCCEEDED", "sent-unrecorded") == "succeeded"
    assert run_status("SUCCEEDED", "duplicate") == "duplicate"
    assert run_status("SUCCEEDED", "busy") == "busy"
    assert run_status("SUCCEEDED", "dead-lettered") == "dead-lettered"
    assert run_status("SUCCEEDED", "retry-later") == "retry-later"
    # a real failure: an error no Catch saw, a timeout, or an output outside the contract
    assert run_status("FAILED", None) == "failed"
    assert run_status("TIMED_OUT", None) == "failed"
    assert run_status("SUCCEEDED", "something-else") == "failed"
    assert run_status("RUNNING", None) == "running"
