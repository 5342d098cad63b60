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
DEAD_LETTER_PATH = "Release Lock Before Dead-Letter"
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
    # And the first catcher matching it (by name) leads to the dead-letter path
    catcher = _first_matching(state["Catch"], error.__name__)
    assert catcher is not None
    assert error.__name__ in catcher["ErrorEquals"]
    assert catcher["Next"].startswith(DEAD_LETTER_PATH)


@pytest.mark.parametrize("error", TRANSIENT_ERRORS, ids=lambda error: error.__name__)
def test_transient_errors_are_retried_by_render_and_send(error: type[Exception]) -> None:
    retrier = _first_matching(STATES[RENDER_AND_SEND]["Retry"], error.__name__)
    assert retrier is not None
    assert error.__name__ in retrier["ErrorEquals"]
    assert _is_retried(retrier)


def test_transient_errors_that_outlast_the_retries_go_back_to_the_queue() -> None:
    catcher = _first_matching(STATES[RENDER_AND_SEND]["Catch"], TRANSIENT_ERRORS[0].__name__)
    assert catcher is not None
    assert not catcher["Next"].startswith(DEAD_LETTER_PATH)


def test_an_attachment_that_changed_is_not_retried_inside_the_run() -> None:
    # The pinned ETag would fail again: the next delivery resolves the new version instead
    retrier = _first_matching(STATES[RENDER_AND_SEND]["Retry"], "AttachmentChangedError")
    assert retrier is not None
    assert _max_attempts(retrier) == 0


@pytest.mark.parametrize("outcome", WorkflowOutcome.__subclasses__(), ids=lambda outcome: outcome.__name__)
def test_every_workflow_outcome_is_the_end_of_a_path(outcome: type[Exception]) -> None:
    # A failed run names it in a Fail state; a busy lock is not a failed run: it ends in "Lock Busy"
    fail_errors = {state["Error"] for state in STATES.values() if state["Type"] == "Fail"}
    if outcome.__name__ == "LockBusyError":
        assert STATES["Lock Busy"]["Type"] == "Pass"
        assert STATES["Lock Busy"]["Parameters"]["outcome"] == "busy"
    else:
        assert outcome.__name__ in fail_errors


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
