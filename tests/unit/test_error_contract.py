"""The error contract: every error name in the ASL exists, and each family is handled as documented."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepmail.core import errors
from stepmail.core.errors import AWS_ERROR_NAMES, PERMANENT_ERRORS, TRANSIENT_ERRORS, WorkflowOutcome

ASL_PATH = Path(__file__).resolve().parents[2] / "statemachine" / "stepmail.asl.json"
RENDER_AND_SEND = "Render And Send"
DECIDE = "Dead-Letter Or Retry?"
FAILURE_PATH = "Has A Cause?"
ASL_DEFAULT_MAX_ATTEMPTS = 3  # what Step Functions uses when a retrier omits MaxAttempts

State = dict[str, Any]


def _load_states() -> dict[str, State]:
    """Every state of the definition by name, at any depth (Map item processors, Parallel branches)."""
    definition = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return dict(_walk(definition["States"]))


def _walk(states: dict[str, State]) -> Iterator[tuple[str, State]]:
    for name, state in states.items():
        yield name, state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from _walk(nested["States"])


STATES = _load_states()
ERROR_CLASSES = {
    name: value
    for name, value in vars(errors).items()
    if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == errors.__name__
}


def _error_names(states: dict[str, State]) -> Iterator[tuple[str, str]]:
    """(state, error name) for every ErrorEquals entry and every Fail state's Error."""
    for state_name, state in states.items():
        for handler in [*state.get("Retry", []), *state.get("Catch", [])]:
            for error_name in handler["ErrorEquals"]:
                yield state_name, error_name
        if state["Type"] == "Fail":
            yield state_name, state["Error"]


def _max_attempts(retrier: dict[str, Any]) -> int | str:
    attempts: int | str = retrier.get("MaxAttempts", ASL_DEFAULT_MAX_ATTEMPTS)
    return attempts


def _is_retried(retrier: dict[str, Any]) -> bool:
    """Literal 0 means never; the ``${RetryMaxAttempts}`` placeholder is the configured retry policy."""
    attempts = _max_attempts(retrier)
    if isinstance(attempts, str):
        assert attempts == "${RetryMaxAttempts}", f"unexpected MaxAttempts {attempts!r}"
        return True
    return attempts > 0


def _first_matching(handlers: list[dict[str, Any]], error_name: str) -> dict[str, Any] | None:
    """The handler Step Functions uses for ``error_name``: the first whose ErrorEquals matches it."""
    for handler in handlers:
        if error_name in handler["ErrorEquals"] or "States.ALL" in handler["ErrorEquals"]:
            return handler
    return None


def test_the_definition_was_loaded_with_nested_states() -> None:
    # Guards the walk itself: the Map's item processor must be part of what the other tests check
    assert {"Acquire Lock", RENDER_AND_SEND, "Head Attachment", "Dead-Lettered"} <= set(STATES)


def _routed_by_the_decision(error_name: str) -> str:
    """Where "Dead-Letter Or Retry?" sends a failure with this error name."""
    for choice in STATES[DECIDE]["Choices"]:
        if {"Variable": "$.error.Error", "StringEquals": error_name} in choice["Or"]:
            return str(choice["Next"])
    return str(STATES[DECIDE]["Default"])


@pytest.mark.parametrize(("state", "error_name"), sorted(set(_error_names(STATES))))
def test_every_error_name_in_the_asl_is_a_class_or_an_aws_name(state: str, error_name: str) -> None:
    # Given a name the ASL matches on (or fails with)
    # Then it is one of our exception classes or a documented AWS error name
    assert error_name in ERROR_CLASSES or error_name in AWS_ERROR_NAMES, (
        f"{state}: {error_name!r} is neither a class in stepmail.core.errors nor in AWS_ERROR_NAMES"
    )


def test_aws_error_names_do_not_shadow_our_classes() -> None:
    assert not set(ERROR_CLASSES) & AWS_ERROR_NAMES


@pytest.mark.parametrize("error", PERMANENT_ERRORS, ids=lambda error: error.__name__)
def test_permanent_errors_are_dead_lettered_at_once_by_render_and_send(error: type[Exception]) -> None:
    state = STATES[RENDER_AND_SEND]
    # Then the first retrier matching it does not retry
    retrier = _first_matching(state["Retry"], error.__name__)
    assert retrier is not None
    assert error.__name__ in retrier["ErrorEquals"], "matched only by a catch-all"
    assert _max_attempts(retrier) == 0
    # And the failure path sends it to the dead-letter queue
    catcher = _first_matching(state["Catch"], error.__name__)
    assert catcher is not None and catcher["Next"] == FAILURE_PATH
    assert _routed_by_the_decision(error.__name__) == "Send To Dead-Letter Queue"


def test_the_decision_dead_letters_exactly_the_permanent_errors() -> None:
    names = {rule["StringEquals"] for choice in STATES[DECIDE]["Choices"] for rule in choice["Or"]}
    assert names == {error.__name__ for error in PERMANENT_ERRORS}


#: A throttled send goes back to pacing (Take A Send Slot) instead of a blind retry.
RETRIED_BLIND = [error for error in TRANSIENT_ERRORS if error is not errors.SesThrottledError]


@pytest.mark.parametrize("error", RETRIED_BLIND, ids=lambda error: error.__name__)
def test_transient_errors_are_retried_by_render_and_send(error: type[Exception]) -> None:
    retrier = _first_matching(STATES[RENDER_AND_SEND]["Retry"], error.__name__)
    assert retrier is not None
    assert error.__name__ in retrier["ErrorEquals"]
    assert _is_retried(retrier)


@pytest.mark.parametrize("error", RETRIED_BLIND, ids=lambda error: error.__name__)
def test_transient_errors_that_outlast_the_retries_go_back_to_the_queue(error: type[Exception]) -> None:
    catcher = _first_matching(STATES[RENDER_AND_SEND]["Catch"], error.__name__)
    assert catcher is not None and catcher["Next"] == FAILURE_PATH
    assert _routed_by_the_decision(error.__name__) == "Retry Later"


def test_a_throttled_send_takes_a_send_slot_again_until_the_runs_waits_run_out() -> None:
    catcher = _first_matching(STATES[RENDER_AND_SEND]["Catch"], "SesThrottledError")
    assert catcher is not None and catcher["Next"] == "Count A Wait" and catcher["ResultPath"] is None
    assert _first_matching(STATES[RENDER_AND_SEND]["Retry"], "SesThrottledError") is None
    assert STATES["Count A Wait"]["Next"] == "Wait Or Give Back?"
    choice = STATES["Wait Or Give Back?"]
    assert choice["Choices"][0]["Next"] == "Which Wait?" and choice["Default"] == "Send Rate Full"
    wait = STATES["Which Wait?"]
    assert wait["Choices"][0]["Next"] == "Find The Next Second" and wait["Default"] == "Wait For A Send Slot"
    assert STATES["Find The Next Second"]["Next"] == "Wait For The Next Second"
    assert STATES["Wait For The Next Second"]["Next"] == "Find A Send Window"
    assert STATES["Wait For A Send Slot"]["Next"] == "Find A Send Window"
    # and when the waits run out, the message goes back to the queue through the failure path
    assert STATES["Send Rate Full"]["Result"]["Error"] == "SendRateFullError"
    assert _routed_by_the_decision("SendRateFullError") == "Retry Later"


@pytest.mark.parametrize("state", ["Acquire Lock", "Read Lock", "Resolve Attachments", RENDER_AND_SEND])
def test_every_failure_goes_through_the_one_failure_path(state: str) -> None:
    # Every catch-all leads to the path that fills a missing cause, releases the lock and decides
    catcher = _first_matching(STATES[state]["Catch"], "States.TaskFailed")
    assert catcher is not None and catcher["Next"] == FAILURE_PATH
    assert STATES[FAILURE_PATH]["Default"] == "Add A Cause"
    assert STATES["Add A Cause"]["Next"] == STATES[FAILURE_PATH]["Choices"][0]["Next"] == "Release Lock"
    assert STATES["Release Lock"]["Next"] == DECIDE


def test_an_attachment_that_changed_is_not_retried_inside_the_run() -> None:
    # The pinned ETag would fail again: the next delivery resolves the new version instead
    retrier = _first_matching(STATES[RENDER_AND_SEND]["Retry"], "AttachmentChangedError")
    assert retrier is not None
    assert _max_attempts(retrier) == 0


#: The Pass state each outcome the starter raises comes from (the run did not fail: it ended there).
OUTCOME_STATES = {"LockBusyError": ("Lock Busy", "busy"), "RetryLaterError": ("Retry Later", "retry-later")}


@pytest.mark.parametrize("outcome", WorkflowOutcome.__subclasses__(), ids=lambda outcome: outcome.__name__)
def test_every_outcome_the_starter_raises_ends_a_path_in_a_pass_state(outcome: type[Exception]) -> None:
    state_name, value = OUTCOME_STATES[outcome.__name__]
    assert STATES[state_name]["Type"] == "Pass" and STATES[state_name]["End"] is True
    assert STATES[state_name]["Parameters"]["outcome"] == value


def test_no_top_level_state_fails_the_run() -> None:
    # A Fail state would count a handled outcome in ExecutionsFailed (the failed-runs alarm)
    definition = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    assert [name for name, state in definition["States"].items() if state["Type"] == "Fail"] == []


def test_a_missing_attachment_is_told_apart_from_an_unavailable_one_under_either_name() -> None:
    # Whichever way AWS names an S3 HEAD 404, the lookup's choices send it to "Attachment Not Found"
    for choice_name in ("Missing Or Unavailable?", "Missing After All?"):
        choices = STATES[choice_name]["Choices"]
        assert {
            "Variable": "$.error.Error",
            "StringEquals": "S3.NoSuchKeyException",
            "Next": "Attachment Not Found",
        } in choices
        by_cause = [choice for choice in choices if "And" in choice]
        assert by_cause and by_cause[0]["Next"] == "Attachment Not Found"
        assert by_cause[0]["And"][0] == {"Variable": "$.error.Cause", "IsPresent": True}
    assert STATES["Attachment Not Found"]["Error"] == "AttachmentMissingError"
    assert STATES["Attachment Unavailable"]["Error"] == "AttachmentUnavailableError"
    # and the first lookup is never retried: a 404 named S3.S3Exception must not wait out the backoff
    assert "Retry" not in STATES["Head Attachment"]


@pytest.mark.parametrize(
    ("state", "index"),
    [(name, index) for name, state in STATES.items() for index, _ in enumerate(state.get("Retry", []))],
)
def test_every_retrier_that_retries_uses_full_jitter(state: str, index: int) -> None:
    retrier = STATES[state]["Retry"][index]
    if _is_retried(retrier):
        assert retrier.get("JitterStrategy") == "FULL", f"{state}: retrier {index} has no full jitter"
    # And States.ALL, when used, is the only name of the last retrier (an ASL rule)
    if "States.ALL" in retrier["ErrorEquals"]:
        assert retrier["ErrorEquals"] == ["States.ALL"]
        assert index == len(STATES[state]["Retry"]) - 1


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_state_has_a_comment(state: str) -> None:
    assert STATES[state].get("Comment", "").strip(), f"{state} has no Comment"


@pytest.mark.parametrize(
    ("state", "index"),
    [(name, index) for name, state in STATES.items() for index, _ in enumerate(state.get("Catch", []))],
)
def test_every_catch_keeps_the_input(state: str, index: int) -> None:
    # A Catch without ResultPath (or with "$") replaces the input with the error: the message is lost
    catcher = STATES[state]["Catch"][index]
    assert "ResultPath" in catcher, f"{state}: catcher {index} has no ResultPath (defaults to '$')"
    assert catcher["ResultPath"] != "$"
    assert catcher["Next"] in STATES
