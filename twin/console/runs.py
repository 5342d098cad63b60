"""Executions as the console shows them: one summary per run, and a run's state visits from its history.

The twin keeps every Express run in moto's Step Functions backend (AWS keeps no history for Express
runs; moto does, which is what makes a local viewer possible).  These functions read plain dicts:
``describe`` output and ``GetExecutionHistory`` events, so they are easy to test without a twin.
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import pairwise
from typing import Any

from stepmail.core.contract import RunOutcome

#: What the console calls each way a run can end: the workflow's outcome (every handled end is a Pass
#: state naming it, see stepmail.core.contract), "failed" for a real failure, or "running".
STATUSES = ("succeeded", "duplicate", "busy", "dead-lettered", "retry-later", "failed", "running")
_OUTCOME_STATUS = {
    RunOutcome.SENT: "succeeded",
    RunOutcome.SENT_UNRECORDED: "succeeded",
    RunOutcome.DUPLICATE: "duplicate",
    RunOutcome.BUSY: "busy",
    RunOutcome.DEAD_LETTERED: "dead-lettered",
    RunOutcome.RETRY_LATER: "retry-later",
}
_SCHEDULED = ("TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled")


def summarize(described: dict[str, Any]) -> dict[str, Any]:
    """One run for the executions list: who it was for, how it ended, how long it took.

    Parameters
    ----------
    described
        A ``DescribeExecution`` output (``input``/``output`` as JSON strings, dates as datetimes).
    """
    run_input = json_or_text(described.get("input")) or {}
    message = run_input.get("message", {})
    output = json_or_text(described.get("output")) or {}
    start, stop = described["startDate"], described.get("stopDate")
    return {
        "executionArn": described["executionArn"],
        "name": described["name"],
        "mailKey": message.get("mailKey"),
        "recipients": [*message.get("to", []), *message.get("cc", []), *message.get("bcc", [])],
        "subject": message.get("subject"),
        "status": run_status(described["status"], output.get("outcome")),
        "outcome": output.get("outcome"),
        # A handled failure is in the run's output; a real one in the execution's own error
        "error": described.get("error") or output.get("error"),
        "cause": described.get("cause") or output.get("cause"),
        "startDate": _iso(start),
        "stopDate": _iso(stop),
        "durationMs": round((stop - start).total_seconds() * 1000) if stop else None,
    }


def detail(
    described: dict[str, Any], events: list[dict[str, Any]], top_level_states: set[str]
) -> dict[str, Any]:
    """One run for its page: the summary, its input, each state visit, Map iterations and the path taken."""
    summary = summarize(described)
    found = visits(events, top_level_states)
    return {
        **summary,
        "input": json_or_text(described.get("input")),
        "visits": found,
        "iterations": iterations(events),
        "path": path(found, finished=summary["status"] != "running"),
    }


def run_status(status: str, outcome: str | None) -> str:
    """The console's status of a run from Step Functions' status and the workflow's own outcome."""
    if status == "RUNNING":
        return "running"
    if status == "SUCCEEDED" and outcome in tuple(RunOutcome):
        return _OUTCOME_STATUS[RunOutcome(outcome)]
    return "failed"


def matches(summary: dict[str, Any], *, status: str | None, text: str | None) -> bool:
    """The list's filters: an exact status, and a case-insensitive text in the mail key or recipients."""
    if status and summary["status"] != status:
        return False
    if text:
        haystack = " ".join([summary["mailKey"] or "", *summary["recipients"], summary["name"]]).lower()
        return text.lower() in haystack
    return True


def visits(events: list[dict[str, Any]], top_level_states: set[str]) -> list[dict[str, Any]]:
    """Each state a run entered, in order: input, output, attempts, errors and time.

    Parallel Map iterations interleave their events, so an event is attributed to a visit by following
    ``previousEventId`` back to the state it was entered from, not by its position in the list.

    Parameters
    ----------
    events
        ``GetExecutionHistory`` events, oldest first.
    top_level_states
        Names of the definition's top-level states (any other state runs inside a Map iteration).
    """
    by_id = {event["id"]: event for event in events}
    found: list[dict[str, Any]] = []
    owner: dict[int, int] = {}
    for event in events:
        kind, previous = event["type"], event.get("previousEventId", 0)
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            name = details["name"]
            owner[event["id"]] = len(found)
            map_state, index = (None, None) if name in top_level_states else _iteration(by_id, previous)
            found.append(
                {
                    "name": name,
                    "map": map_state,
                    "iteration": index,
                    "enteredAt": _iso(_moment(event["timestamp"])),
                    "exitedAt": None,
                    "durationMs": None,
                    "input": json_or_text(details.get("input")),
                    "output": None,
                    "attempts": 0,
                    "errors": [],
                    "_entered": _moment(event["timestamp"]),
                }
            )
            continue
        visit_index = owner.get(previous)
        if kind.endswith("StateExited"):
            _exit(found, event, visit_index)
            continue
        if visit_index is None or kind.startswith("Execution"):
            continue
        owner[event["id"]] = visit_index
        visit = found[visit_index]
        if kind in _SCHEDULED:
            visit["attempts"] += 1
        error = _error_of(event)
        if error:
            visit["errors"].append({**error, "at": _iso(_moment(event["timestamp"]))})
    for visit in found:
        visit.pop("_entered")
    return found


def iterations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Map iteration (map state, index) and how it ended."""
    ended: dict[tuple[str, int], dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind.startswith("MapIteration"):
            details = next(value for key, value in event.items() if key.endswith("EventDetails"))
            status = kind.removeprefix("MapIteration").lower()
            ended[(details["name"], details["index"])] = {
                "map": details["name"],
                "index": details["index"],
                "status": status,
            }
    return list(ended.values())


def path(found: list[dict[str, Any]], *, finished: bool) -> list[list[str]]:
    """The transitions a run took, as ``[source, target]`` pairs of graph node ids.

    Top-level states chain in the order they were entered; each Map iteration chains its own states
    inside the Map node.
    """
    from twin.console.graph import END, START

    chains: dict[tuple[str | None, int | None], list[str]] = {}
    for visit in found:
        chains.setdefault((visit["map"], visit["iteration"]), []).append(visit["name"])
    taken: set[tuple[str, str]] = set()
    for (map_state, _), names in chains.items():
        # A Map leads into each iteration's first state (the graph's `iterate` edge).
        sequence = [START, *names, *([END] if finished else [])] if map_state is None else [map_state, *names]
        taken.update(pairwise(sequence))
    return [list(pair) for pair in sorted(taken)]


def _exit(found: list[dict[str, Any]], event: dict[str, Any], chained: int | None) -> None:
    """Close the visit the exit belongs to: the one its event chain leads back to (parallel iterations
    exit in any order), else the latest open visit of that state (a Map's exit follows its iterations)."""
    details = event["stateExitedEventDetails"]
    candidates = [found[chained]] if chained is not None else []
    candidates += [visit for visit in reversed(found) if visit["exitedAt"] is None]
    for visit in candidates:
        if visit["name"] == details["name"] and visit["exitedAt"] is None:
            exited = _moment(event["timestamp"])
            visit["exitedAt"] = _iso(exited)
            visit["durationMs"] = round((exited - visit["_entered"]).total_seconds() * 1000)
            visit["output"] = json_or_text(details.get("output"))
            return


def _iteration(by_id: dict[int, dict[str, Any]], event_id: int) -> tuple[str | None, int | None]:
    """The Map state and iteration index an event ran in, found by walking back its event chain."""
    while event_id:
        event = by_id.get(event_id)
        if event is None:
            break
        if event["type"] == "MapIterationStarted":
            details = event["mapIterationStartedEventDetails"]
            return details["name"], int(details["index"])
        event_id = event.get("previousEventId", 0)
    return None, None


def _error_of(event: dict[str, Any]) -> dict[str, Any] | None:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
            return {"error": details["error"], "cause": details.get("cause")}
    return None


def json_or_text(text: Any) -> Any:
    """``text`` parsed when it is JSON, else as it is (states' inputs and messages may be either)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _moment(value: datetime | str) -> datetime:
    """History timestamps: datetimes from boto3, ISO 8601 strings in moto's backend."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
