"""The Express state machine: type, logging, tracing, and the definition deployed from the ASL file."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from infra.constants import REPO_ROOT
from infra.definition import RESOURCE_PLACEHOLDERS, apply_numbers, read_definition, render_definition
from tests.infrastructure.synth import Synthesized

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _state_machine(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.resource(synthesized.stack.workflow.state_machine)["Properties"]


def test_state_machine_is_express_and_traced(synthesized: Synthesized) -> None:
    # Given the state machine
    state_machine = _state_machine(synthesized)

    # Then it is an Express workflow with X-Ray tracing
    assert state_machine["StateMachineType"] == "EXPRESS"
    assert state_machine["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_logs_at_the_configured_level_and_execution_data(synthesized: Synthesized) -> None:
    # Given the configuration
    config = synthesized.config

    # When we read the logging configuration
    logging = _state_machine(synthesized)["LoggingConfiguration"]

    # Then the level and execution data follow the configuration, into the workflow's log group
    assert logging["Level"] == config.execution_log_level
    assert logging["IncludeExecutionData"] is config.log_email_content
    log_group_id = synthesized.logical_id(synthesized.stack.workflow.log_group)
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group_id, "Arn"]}}}
    ]


def test_workflow_log_group_is_a_vended_logs_group_with_retention(synthesized: Synthesized) -> None:
    # Given the workflow's log group
    log_group = synthesized.resource(synthesized.stack.workflow.log_group)["Properties"]

    # Then its name avoids the CloudWatch Logs resource-policy limit and it has a retention
    assert log_group["LogGroupName"] == f"/aws/vendedlogs/states/{synthesized.config.stack_name}"
    assert log_group["RetentionInDays"] == 30


def _as_text(value: Any, placeholder_of: dict[str, str]) -> str:
    """A template string value (plain, or Fn::Join of Ref/GetAtt) with each reference as ``${Name}``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_as_text(part, placeholder_of) for part in parts)
    return "${" + placeholder_of[json.dumps(value, sort_keys=True)] + "}"


def _expected_substitutions(synthesized: Synthesized) -> dict[str, Any]:
    stack = synthesized.stack
    return {
        "LockTableName": {"Ref": synthesized.logical_id(stack.storage.lock_table)},
        "AttachmentsBucketName": {"Ref": synthesized.logical_id(stack.storage.attachments_bucket)},
        "SenderFunctionArn": {"Fn::GetAtt": [synthesized.logical_id(stack.sender.function), "Arn"]},
        "DeadLetterQueueUrl": {"Ref": synthesized.logical_id(stack.queueing.dead_letter_queue)},
    }


def _deployed_definition(synthesized: Synthesized) -> str:
    """The deployed definition with every resource written as its ``${Placeholder}`` again.

    CDK keeps the placeholders in DefinitionString and maps them in DefinitionSubstitutions; should it
    ever inline them (an Fn::Join of Ref/GetAtt), the references are turned back into placeholders.
    """
    state_machine = _state_machine(synthesized)
    expected = _expected_substitutions(synthesized)
    placeholder_of = {json.dumps(reference, sort_keys=True): name for name, reference in expected.items()}
    text = _as_text(state_machine["DefinitionString"], placeholder_of)
    substitutions = state_machine.get("DefinitionSubstitutions", {})
    assert substitutions == {name: expected[name] for name in substitutions}, "a placeholder maps elsewhere"
    return text


def test_deployed_definition_is_the_asl_file_with_the_configured_numbers(synthesized: Synthesized) -> None:
    # Given the ASL file with the configuration's numbers filled in
    expected = json.loads(apply_numbers(read_definition(), synthesized.config))

    # When we read the definition from the template
    deployed = _deployed_definition(synthesized)

    # Then it is the same document, and every resource placeholder maps to the right resource
    assert json.loads(deployed) == expected
    assert set(_PLACEHOLDER.findall(deployed)) == set(RESOURCE_PLACEHOLDERS)
    assert _state_machine(synthesized)["DefinitionSubstitutions"] == _expected_substitutions(synthesized)


def test_deployed_definition_has_the_workflow_timeout_in_the_asl(synthesized: Synthesized) -> None:
    # When we parse the deployed definition
    definition = json.loads(_deployed_definition(synthesized))

    # Then the run's budget is the configured workflow timeout (CDK ignores `timeout` for strings)
    assert definition["TimeoutSeconds"] == synthesized.config.workflow_timeout_seconds


def test_rendered_definition_passes_asl_validator(full: Synthesized, tmp_path: Path) -> None:
    # Given the definition rendered as the twin and CDK fill it, with realistic resource names
    resources = {
        "LockTableName": "stepmail-locks",
        "AttachmentsBucketName": "stepmail-attachments",
        "SenderFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:stepmail-sender",
        "DeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/stepmail-dlq",
    }
    definition = tmp_path / "stepmail.asl.json"
    definition.write_text(render_definition(full.config, resources), encoding="utf-8")

    # When asl-validator checks it (states, transitions to missing states, paths, ARNs)
    result = subprocess.run(
        [str(REPO_ROOT / "node_modules/.bin/asl-validator"), "--json-path", str(definition)],
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it is valid
    assert result.returncode == 0, result.stdout + result.stderr
