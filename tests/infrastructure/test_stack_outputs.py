"""The stack outputs the producer CLI reads."""

from __future__ import annotations

from tests.infrastructure.synth import Synthesized


def test_outputs_name_the_resources_producers_and_operators_need(synthesized: Synthesized) -> None:
    # Given the stack's resources
    stack = synthesized.stack

    # When we read the outputs
    outputs = {key: output["Value"] for key, output in synthesized.template.to_json()["Outputs"].items()}

    # Then each exact key the producer CLI reads points at its resource (the configuration set's only
    # with delivery tracking, which is opt-in)
    expected = {
        "QueueUrl": {"Ref": synthesized.logical_id(stack.queueing.queue)},
        "DeadLetterQueueUrl": {"Ref": synthesized.logical_id(stack.queueing.dead_letter_queue)},
        "AttachmentsBucketName": {"Ref": synthesized.logical_id(stack.storage.attachments_bucket)},
        "LockTableName": {"Ref": synthesized.logical_id(stack.storage.lock_table)},
        "StateMachineArn": {"Ref": synthesized.logical_id(stack.workflow.state_machine)},
        "AlarmTopicArn": {"Ref": synthesized.logical_id(stack.monitoring.topic)},
    }
    if stack.tracking is not None:
        expected["ConfigurationSetName"] = {"Ref": synthesized.logical_id(stack.tracking.configuration_set)}
        expected["TrackerDeadLetterQueueUrl"] = {
            "Ref": synthesized.logical_id(stack.tracking.dead_letter_queue)
        }
    assert outputs == expected


def test_stack_is_named_and_placed_by_the_configuration(synthesized: Synthesized) -> None:
    # Then the stack's name and region are the configured ones (the producer finds it by name)
    assert synthesized.stack.stack_name == synthesized.config.stack_name
    assert synthesized.stack.region == synthesized.config.region
