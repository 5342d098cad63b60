"""The run's contract: every end state and the dead letter the ASL writes match the core's models.

The ASL writes these shapes itself (Pass outputs, the DLQ MessageBody) and the starter, the operations
and the console read them through ``stepmail.core.contract``: a field renamed on one side only fails
here, not in a deployed pipeline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stepmail.core.contract import DeadLetterEnvelope, Delivery, LetterSource, RunOutcome, RunOutput

ASL = json.loads(
    (Path(__file__).resolve().parents[2] / "statemachine" / "stepmail.asl.json").read_text(encoding="utf-8")
)
STATES: dict[str, dict[str, Any]] = ASL["States"]
END_STATES = {name: state for name, state in STATES.items() if state.get("End")}


def _aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _sample(parameters: dict[str, Any]) -> dict[str, Any]:
    """A document shaped like ``parameters`` once evaluated: each ``.$`` path replaced by a string."""
    return {
        key.removesuffix(".$"): (f"<{value}>" if key.endswith(".$") else value)
        for key, value in parameters.items()
    }


def test_every_end_of_a_run_is_a_pass_state_naming_its_outcome() -> None:
    assert {state["Type"] for state in END_STATES.values()} == {"Pass"}
    outcomes = [state["Parameters"]["outcome"] for state in END_STATES.values()]
    assert sorted(outcomes) == sorted(outcome.value for outcome in RunOutcome)  # each once


@pytest.mark.parametrize("name", sorted(END_STATES))
def test_each_end_state_writes_a_run_output(name: str) -> None:
    # Given the state's output as the ASL shapes it
    parameters = END_STATES[name]["Parameters"]
    # Then it names only fields of RunOutput, and validates as one
    assert set(_sample(parameters)) <= _aliases(RunOutput)
    output = RunOutput.model_validate(_sample(parameters))
    assert output.outcome.value == parameters["outcome"]


def test_the_dead_letter_the_workflow_writes_is_an_envelope() -> None:
    body = STATES["Send To Dead-Letter Queue"]["Parameters"]["MessageBody"]
    sample = _sample(body) | {"receiveCount": 2, "message": {"mailKey": "k"}}
    assert set(sample) <= _aliases(DeadLetterEnvelope)
    letter = DeadLetterEnvelope.model_validate(sample)
    assert letter.source is LetterSource.WORKFLOW and letter.kind == "stepmail.dead-letter"


def test_the_run_reads_the_delivery_fields_the_starter_writes() -> None:
    # The ASL's $.delivery paths are exactly the fields of Delivery
    used = set(re.findall(r"\$\.delivery\.([A-Za-z]+)", json.dumps(ASL)))
    assert used == _aliases(Delivery)
