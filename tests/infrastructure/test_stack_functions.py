"""The starter and sender functions: runtime, logging, timeouts, memory, environment, shared code."""

from __future__ import annotations

import pytest

from infra import constants
from tests.infrastructure.synth import Synthesized

_LAMBDA_LOG_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR"}


def _function(synthesized: Synthesized, name: str) -> dict:
    return synthesized.resource(getattr(synthesized.stack, name).function)["Properties"]


@pytest.mark.parametrize("name", ["starter", "sender"])
def test_functions_run_python_313_on_arm64_with_json_logs_and_tracing(
    synthesized: Synthesized, name: str
) -> None:
    # Given a function of the stack
    function = _function(synthesized, name)

    # Then it runs on Graviton with Python 3.13, logs JSON at the configured level and is traced
    assert function["Architectures"] == ["arm64"]
    assert function["Runtime"] == "python3.13"
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert (
        function["LoggingConfig"]["ApplicationLogLevel"] == _LAMBDA_LOG_LEVELS[synthesized.config.log_level]
    )
    assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "stepmail"
    assert function["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == synthesized.config.log_level


@pytest.mark.parametrize("name", ["starter", "sender"])
def test_functions_log_to_their_own_group_with_retention(synthesized: Synthesized, name: str) -> None:
    # Given a function and its log group
    function = _function(synthesized, name)
    log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]

    # Then the group keeps logs for a bounded time
    log_group = synthesized.resources[log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_timeouts_nest_starter_outlives_the_workflow_and_sender_fits_in_it(synthesized: Synthesized) -> None:
    # Given the configuration and both functions
    config = synthesized.config
    starter, sender = _function(synthesized, "starter"), _function(synthesized, "sender")

    # Then the timeouts come from the configuration and nest as infra.config requires
    assert starter["Timeout"] == config.starter_timeout_seconds
    assert sender["Timeout"] == config.sender_timeout_seconds
    assert sender["Timeout"] < config.workflow_timeout_seconds < starter["Timeout"]


def test_memory_comes_from_the_configuration(synthesized: Synthesized) -> None:
    # Given the configuration
    config = synthesized.config

    # Then each function has its configured memory
    assert _function(synthesized, "starter")["MemorySize"] == config.starter_memory_mb
    assert _function(synthesized, "sender")["MemorySize"] == config.sender_memory_mb


def test_handlers_are_the_two_stepmail_entry_points(synthesized: Synthesized) -> None:
    # Then each function runs its handler of the stepmail package
    assert _function(synthesized, "starter")["Handler"] == "stepmail.handlers.starter.handler"
    assert _function(synthesized, "sender")["Handler"] == "stepmail.handlers.sender.handler"


def test_both_functions_share_one_code_asset(synthesized: Synthesized) -> None:
    # Given both functions' code locations
    starter_code = _function(synthesized, "starter")["Code"]
    sender_code = _function(synthesized, "sender")["Code"]

    # Then they are the same asset, so it is bundled (and uploaded) once
    assert starter_code == sender_code


def test_environment_is_the_settings_models_plus_powertools(synthesized: Synthesized) -> None:
    # Given the settings models built from the same configuration
    config, stack = synthesized.config, synthesized.stack
    starter_settings = config.starter_settings(
        state_machine_arn="arn", dead_letter_queue_url="url", lock_table="table", mail_queue_url="q"
    )
    sender_settings = config.sender_settings(attachments_bucket="bucket")
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}

    # When we read the functions' environments
    starter_env = _function(synthesized, "starter")["Environment"]["Variables"]
    sender_env = _function(synthesized, "sender")["Environment"]["Variables"]

    # Then each has exactly the settings' names (one name per concept) and the resources they point at
    assert set(starter_env) == set(starter_settings.to_environment()) | powertools
    assert set(sender_env) == set(sender_settings.to_environment()) | powertools
    assert starter_env["STATE_MACHINE_ARN"] == {"Ref": synthesized.logical_id(stack.workflow.state_machine)}
    assert starter_env["DEAD_LETTER_QUEUE_URL"] == {
        "Ref": synthesized.logical_id(stack.queueing.dead_letter_queue)
    }
    assert starter_env["SENDER_IDENTITIES"] == ",".join(config.sender_identities)
    assert starter_env["DEFAULT_SENDER"] == config.default_sender
    assert sender_env["ATTACHMENTS_BUCKET"] == {
        "Ref": synthesized.logical_id(stack.storage.attachments_bucket)
    }
    assert sender_env["DEFAULT_CONFIGURATION_SET"] == config.sending_configuration_set


def test_runtime_constants_agree_with_each_other() -> None:
    # Given the runtime facts the bundler relies on
    # Then the pip target matches the Lambda runtime and architecture
    assert constants.LAMBDA_RUNTIME.name == f"python{constants.PYTHON_VERSION}"
    assert constants.LAMBDA_ARCHITECTURE.name == "arm64"
    assert all(platform.endswith("_aarch64") for platform in constants.PIP_PLATFORMS)
