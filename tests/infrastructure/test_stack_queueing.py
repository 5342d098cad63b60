"""The mail queue, its dead-letter queue and the starter's event source."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra import resources
from tests.infrastructure.synth import Synthesized


def test_queue_is_encrypted_capped_and_redrives_to_the_dead_letter_queue(synthesized: Synthesized) -> None:
    # Given the synthesized stack and its configuration
    config, queueing = synthesized.config, synthesized.stack.queueing

    # When we read the mail queue
    queue = synthesized.resource(queueing.queue)["Properties"]

    # Then it is encrypted, capped at what Step Functions accepts, kept as configured and redriven
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MaximumMessageSize"] == 262_144
    assert queue["MessageRetentionPeriod"] == config.message_retention_days * 86_400
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synthesized.logical_id(queueing.dead_letter_queue), "Arn"]},
        "maxReceiveCount": config.max_receive_count,
    }


def test_queue_visibility_is_at_least_six_starter_timeouts(synthesized: Synthesized) -> None:
    # Given the starter's timeout from the template
    starter = synthesized.resource(synthesized.stack.starter.function)["Properties"]

    # When we read the queue's visibility timeout
    visibility = synthesized.resource(synthesized.stack.queueing.queue)["Properties"]["VisibilityTimeout"]

    # Then a batch still in progress can never become visible again
    assert starter["Timeout"] == synthesized.config.starter_timeout_seconds
    assert visibility == synthesized.config.queue_visibility_timeout_seconds
    assert visibility >= 6 * starter["Timeout"]


def test_dead_letter_queue_is_encrypted_and_keeps_messages_as_configured(synthesized: Synthesized) -> None:
    # Given the dead-letter queue
    dead_letter_queue = synthesized.resource(synthesized.stack.queueing.dead_letter_queue)["Properties"]

    # Then it is encrypted, keeps messages as configured and takes a full message plus its reason
    assert dead_letter_queue["SqsManagedSseEnabled"] is True
    assert (
        dead_letter_queue["MessageRetentionPeriod"] == synthesized.config.dead_letter_retention_days * 86_400
    )
    assert dead_letter_queue["MaximumMessageSize"] == resources.DEAD_LETTER_MAX_MESSAGE_BYTES


def test_both_queues_refuse_requests_without_tls(synthesized: Synthesized) -> None:
    # Given both queues
    queues = [synthesized.stack.queueing.queue, synthesized.stack.queueing.dead_letter_queue]

    for queue in queues:
        # Then each has a policy that denies any request over plain HTTP
        synthesized.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": synthesized.logical_id(queue)}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_event_source_batches_bounds_concurrency_and_reports_item_failures(synthesized: Synthesized) -> None:
    # Given the configuration
    config, stack = synthesized.config, synthesized.stack

    # Then the starter consumes the mail queue with the configured batching and concurrency
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synthesized.logical_id(stack.queueing.queue), "Arn"]},
            "FunctionName": {"Ref": synthesized.logical_id(stack.starter.function)},
            "BatchSize": config.batch_size,
            "MaximumBatchingWindowInSeconds": config.batching_window_seconds,
            "ScalingConfig": {"MaximumConcurrency": config.max_concurrency},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    synthesized.template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
