"""Delivery tracking in the template: configuration set -> EventBridge -> tracker Lambda -> lock table."""

from __future__ import annotations

from typing import Any

import pytest

from infra import resources
from infra.config import StepmailConfig, repo_context
from infra.constants import REPO_ROOT
from infra.constructs.tracking import TRACKED_DETAIL_TYPES, TRACKER_TIMEOUT_SECONDS
from infra.resources import MAIL_KEY_INDEX
from stepmail.core.tracking import MESSAGE_ID_INDEX, RECORD_WAIT_SECONDS
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


def _arn(synthesized: Synthesized, construct: Any) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [synthesized.logical_id(construct), "Arn"]}


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


def test_an_event_the_tracker_cannot_record_is_retried_then_sent_to_its_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    # Given the tracker's asynchronous invoke configuration
    tracking = _tracking(synthesized)
    [invoke_config] = synthesized.template.find_resources("AWS::Lambda::EventInvokeConfig").values()
    properties = invoke_config["Properties"]

    # Then a failed event (no record even after the wait) is retried twice within an hour, and then
    # goes to the tracker's dead-letter queue instead of being dropped
    assert properties["FunctionName"] == {"Ref": synthesized.logical_id(tracking.function)}
    assert properties["MaximumRetryAttempts"] == 2
    assert properties["MaximumEventAgeInSeconds"] == 3600
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": _arn(synthesized, tracking.dead_letter_queue)}
    }


def test_an_event_eventbridge_cannot_deliver_goes_to_the_same_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    # Given the rule's one target (the tracker)
    tracking = _tracking(synthesized)
    [target] = synthesized.resource(tracking.rule)["Properties"]["Targets"]

    # Then EventBridge retries a failed delivery within the hour, then dead-letters it to the queue
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 8}
    assert target["DeadLetterConfig"] == {"Arn": _arn(synthesized, tracking.dead_letter_queue)}


def test_tracker_dead_letter_queue_is_encrypted_keeps_letters_and_refuses_plain_http(
    synthesized: Synthesized,
) -> None:
    # Given the tracker's dead-letter queue
    queue = _tracking(synthesized).dead_letter_queue
    properties = synthesized.resource(queue)["Properties"]

    # When we read its policy
    [policy] = [
        resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in synthesized.template.find_resources("AWS::SQS::QueuePolicy").values()
        if resource["Properties"]["Queues"] == [{"Ref": synthesized.logical_id(queue)}]
    ]

    # Then it is encrypted, keeps letters as long as the mail DLQ, takes a whole failure record, and
    # denies every request over plain HTTP
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == synthesized.config.dead_letter_retention_days * 86_400
    assert properties["MaximumMessageSize"] == resources.DEAD_LETTER_MAX_MESSAGE_BYTES
    assert "RedrivePolicy" not in properties
    [deny] = [statement for statement in policy if statement["Effect"] == "Deny"]
    assert deny["Action"] == "sqs:*" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_rule_and_the_tracker_may_send_to_its_dead_letter_queue(synthesized: Synthesized) -> None:
    # Given the tracker's dead-letter queue, its policy and the tracker's role
    tracking = _tracking(synthesized)
    queue_id = synthesized.logical_id(tracking.dead_letter_queue)
    [policy] = [
        resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in synthesized.template.find_resources("AWS::SQS::QueuePolicy").values()
        if resource["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    statements = role_statements(synthesized, role_of_function(synthesized, tracking.function))

    # When we collect what each may do with the queue
    allowed = [
        {key: value for key, value in statement.items() if key != "Sid"}
        for statement in policy
        if statement["Effect"] == "Allow"
    ]
    role_sqs = [
        statement for statement in statements if any(a.startswith("sqs:") for a in actions_of(statement))
    ]

    # Then the queue lets EventBridge send for this one rule, and the tracker's role may only send to it
    assert allowed == [
        {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": _arn(synthesized, tracking.rule)}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]
    assert [(actions_of(s), s["Resource"]) for s in role_sqs] == [
        (["sqs:SendMessage"], {"Fn::GetAtt": [queue_id, "Arn"]})
    ]


def test_cdk_nag_finding_on_the_tracker_dead_letter_queue_is_acknowledged_with_its_reason(
    synthesized: Synthesized,
) -> None:
    # Given the findings cdk-nag suppressed
    path = _tracking(synthesized).dead_letter_queue.node.path
    suppressed = [
        finding
        for report in synthesized.validation_report()["pluginReports"]
        for finding in report["suppressedViolations"]
        if finding["acknowledgedAt"] == path
    ]

    # Then the queue's only one is SQS3 (a DLQ without a DLQ of its own, which cdk-nag cannot see is a
    # DLQ), acknowledged with a reason
    assert [finding["ruleName"] for finding in suppressed] == ["AwsSolutions-SQS3"]
    assert "dead-letter queue" in suppressed[0]["reason"]


def test_tracker_times_out_only_after_its_wait_for_mark_sent(synthesized: Synthesized) -> None:
    # Given the tracker function
    function = synthesized.resource(_tracking(synthesized).function)["Properties"]

    # Then its timeout leaves room after the longest wait, so the wait (not a timeout) ends an event
    assert function["Timeout"] == TRACKER_TIMEOUT_SECONDS
    assert function["Timeout"] >= RECORD_WAIT_SECONDS + 5


def test_lock_table_has_a_keys_only_index_on_the_ses_message_id(synthesized: Synthesized) -> None:
    # Given the lock table
    table = synthesized.resource(synthesized.stack.storage.lock_table)["Properties"]

    # Then the message id Mark Sent writes is indexed, projecting only the key (the lock key)
    indexes = [index for index in table["GlobalSecondaryIndexes"] if index["IndexName"] == MESSAGE_ID_INDEX]
    assert indexes == [
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

    # Then there is no configuration set, rule, tracker, tracker DLQ or index; the sender names no
    # set; two functions are watched (and cdk-nag, run by the synth, found nothing)
    for resource_type in (
        "AWS::SES::ConfigurationSet",
        "AWS::Events::Rule",
        "AWS::Lambda::EventInvokeConfig",
    ):
        template.resource_count_is(resource_type, 0)
    template.resource_count_is("AWS::Lambda::Function", 2)
    template.resource_count_is("AWS::SQS::Queue", 2)
    table = untracked.resource(untracked.stack.storage.lock_table)["Properties"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == [MAIL_KEY_INDEX]
    sender_env = untracked.resource(untracked.stack.sender.function)["Properties"]["Environment"]
    assert sender_env["Variables"]["DEFAULT_CONFIGURATION_SET"] == ""
    monitoring = untracked.stack.monitoring
    assert set(monitoring.error_alarms) == {"Starter"}
    assert set(monitoring.throttle_alarms) == {"Starter", "Sender"}
    assert monitoring.tracker_dead_letter_alarm is None
    outputs = template.to_json()["Outputs"]
    assert "ConfigurationSetName" not in outputs and "TrackerDeadLetterQueueUrl" not in outputs
