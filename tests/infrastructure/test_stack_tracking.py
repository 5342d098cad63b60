"""Delivery tracking in the template: configuration set -> EventBridge -> tracker Lambda -> lock table."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import StepmailConfig, repo_context
from infra.constants import REPO_ROOT
from infra.constructs.tracking import TRACKED_DETAIL_TYPES
from stepmail.core.tracking import MESSAGE_ID_INDEX
from tests.infrastructure.synth import (
    FULL_CONFIG,
    Synthesized,
    actions_of,
    as_text,
    cdk_context,
    role_of_function,
    role_statements,
    synthesize,
)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default configuration with delivery tracking turned on (it is opt-in)."""
    config = {**repo_context(REPO_ROOT)["stepmail"], "delivery_tracking": True}
    return synthesize(cdk_context(config), tmp_path_factory.mktemp("cdk-tracked"))


@pytest.fixture(params=["full", "tracked"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    """Each test here runs against both configurations that turn delivery tracking on."""
    return request.getfixturevalue(request.param)


def _tracking(synthesized: Synthesized) -> Any:
    tracking = synthesized.stack.tracking
    assert tracking is not None, "delivery tracking is on in these configurations"
    return tracking


def test_configuration_set_publishes_the_six_delivery_events_to_the_default_bus(
    synthesized: Synthesized,
) -> None:
    # Given the stack's configuration set
    tracking = _tracking(synthesized)
    configuration_set = synthesized.resource(tracking.configuration_set)["Properties"]

    # When we read its event destination
    [destination] = synthesized.template.find_resources("AWS::SES::ConfigurationSetEventDestination").values()
    properties = destination["Properties"]

    # Then it is the set the sender uses by default, with reputation metrics, and it sends send,
    # delivery, bounce, complaint, reject and delay events to the default event bus
    assert configuration_set["Name"] == synthesized.config.tracking_configuration_set
    assert configuration_set["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert properties["ConfigurationSetName"] == {"Ref": synthesized.logical_id(tracking.configuration_set)}
    assert set(properties["EventDestination"]["MatchingEventTypes"]) == {
        "send",
        "delivery",
        "bounce",
        "complaint",
        "reject",
        "deliveryDelay",
    }
    assert as_text(properties["EventDestination"]["EventBridgeDestination"]["EventBusArn"]).endswith(
        ":event-bus/default"
    )
    sender_env = synthesized.resource(synthesized.stack.sender.function)["Properties"]["Environment"]
    assert (
        sender_env["Variables"]["DEFAULT_CONFIGURATION_SET"] == synthesized.config.sending_configuration_set
    )


def test_suppression_is_the_accounts_unless_configured(full: Synthesized, tracked: Synthesized) -> None:
    # Given the default configuration and one that asks for the set's own suppression list
    assert FULL_CONFIG["suppression"] == "bounces-and-complaints"

    # When we read each configuration set
    default = tracked.resource(_tracking(tracked).configuration_set)["Properties"]
    overridden = full.resource(_tracking(full).configuration_set)["Properties"]

    # Then the default leaves SES's account-level list in charge; the override names both reasons
    assert "SuppressionOptions" not in default
    assert sorted(overridden["SuppressionOptions"]["SuppressedReasons"]) == ["BOUNCE", "COMPLAINT"]


def test_rule_sends_only_this_sets_delivery_events_to_the_tracker(synthesized: Synthesized) -> None:
    # Given the rule
    tracking = _tracking(synthesized)
    rule = synthesized.resource(tracking.rule)["Properties"]

    # Then it matches SES's six delivery detail-types of this configuration set, and targets the tracker
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.ses"]
    assert set(pattern["detail-type"]) == set(TRACKED_DETAIL_TYPES)
    assert pattern["detail"] == {
        "mail": {"tags": {"ses:configuration-set": [synthesized.config.tracking_configuration_set]}}
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synthesized.logical_id(tracking.function), "Arn"]}
    # And only this rule may invoke the tracker
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [synthesized.logical_id(tracking.function), "Arn"]},
            "SourceArn": {"Fn::GetAtt": [synthesized.logical_id(tracking.rule), "Arn"]},
        },
    )


def test_an_event_that_overtakes_mark_sent_is_retried(synthesized: Synthesized) -> None:
    # Given the tracker's asynchronous invoke configuration
    tracking = _tracking(synthesized)
    [invoke_config] = synthesized.template.find_resources("AWS::Lambda::EventInvokeConfig").values()

    # Then a failed event (no record has its message id yet) is retried, within an hour
    assert invoke_config["Properties"]["FunctionName"] == {"Ref": synthesized.logical_id(tracking.function)}
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 2
    assert invoke_config["Properties"]["MaximumEventAgeInSeconds"] == 3600


def test_lock_table_has_a_keys_only_index_on_the_ses_message_id(synthesized: Synthesized) -> None:
    # Given the lock table
    table = synthesized.resource(synthesized.stack.storage.lock_table)["Properties"]

    # Then the message id Mark Sent writes is indexed, projecting only the key (the lock key)
    assert table["GlobalSecondaryIndexes"] == [
        {
            "IndexName": MESSAGE_ID_INDEX,
            "KeySchema": [{"AttributeName": "messageId", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert {"AttributeName": "messageId", "AttributeType": "S"} in table["AttributeDefinitions"]


def test_tracker_may_touch_only_the_lock_table_and_its_message_id_index(synthesized: Synthesized) -> None:
    # Given the tracker's role
    tracking = _tracking(synthesized)
    table_id = synthesized.logical_id(synthesized.stack.storage.lock_table)
    statements = role_statements(synthesized, role_of_function(synthesized, tracking.function))

    # When we collect its DynamoDB statements
    dynamodb = {
        as_text(statement["Resource"]): sorted(actions_of(statement))
        for statement in statements
        if any(action.startswith("dynamodb:") for action in actions_of(statement))
    }

    # Then it reads and writes items of the table and queries the one index: no scans, no wildcards
    assert dynamodb == {
        "${" + table_id + ".Arn}": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        "${" + table_id + ".Arn}/index/" + MESSAGE_ID_INDEX: ["dynamodb:Query"],
    }


def test_tracker_environment_is_its_settings_model(synthesized: Synthesized) -> None:
    # Given the tracker function
    tracking = _tracking(synthesized)
    variables = synthesized.resource(tracking.function)["Properties"]["Environment"]["Variables"]

    # Then it names the lock table and keeps index items as long as the dedup window
    assert variables["LOCK_TABLE"] == {"Ref": synthesized.logical_id(synthesized.stack.storage.lock_table)}
    assert variables["INDEX_TTL_SECONDS"] == str(synthesized.config.dedup_window_seconds)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ""),  # delivery tracking is opt-in
        ({"delivery_tracking": True}, "Stepmail-tracking"),
        ({"delivery_tracking": False}, ""),
        ({"configuration_sets": ["mine"], "default_configuration_set": "mine"}, "mine"),
    ],
)
def test_sending_configuration_set_is_the_tracked_one_unless_told(
    overrides: dict[str, Any], expected: str
) -> None:
    # Given a configuration
    config = StepmailConfig(sender_identities=["example.com"], default_sender="a@example.com", **overrides)

    # Then a message naming no set goes through the tracked set, unless tracking is off or another is set
    assert config.sending_configuration_set == expected
    assert ("Stepmail-tracking" in config.sendable_configuration_sets) is config.delivery_tracking


def test_tracking_off_removes_the_set_the_tracker_and_the_index(minimal: Synthesized) -> None:
    # Given the default stack (delivery tracking is opt-in)
    untracked = minimal
    assert not untracked.config.delivery_tracking
    template = untracked.template

    # Then there is no configuration set, rule, tracker or index; the sender names no set; two
    # functions are watched (and cdk-nag, run by the synth, found nothing)
    for resource_type in ("AWS::SES::ConfigurationSet", "AWS::Events::Rule"):
        template.resource_count_is(resource_type, 0)
    template.resource_count_is("AWS::Lambda::Function", 2)
    table = untracked.resource(untracked.stack.storage.lock_table)["Properties"]
    assert "GlobalSecondaryIndexes" not in table
    sender_env = untracked.resource(untracked.stack.sender.function)["Properties"]["Environment"]
    assert sender_env["Variables"]["DEFAULT_CONFIGURATION_SET"] == ""
    assert set(untracked.stack.monitoring.function_alarms) == {"Starter", "Sender"}
    assert "ConfigurationSetName" not in template.to_json()["Outputs"]
