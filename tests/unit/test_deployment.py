"""Where the system is: one Deployment from a stack's outputs, a twin's info file or a twin's endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra import resources
from producer.deployment import TWIN_ACCOUNT_ID, Deployment

OUTPUTS = {
    resources.QUEUE_URL_OUTPUT: "https://sqs.eu-west-1.amazonaws.com/111122223333/Mail",
    resources.DEAD_LETTER_QUEUE_URL_OUTPUT: "https://sqs.eu-west-1.amazonaws.com/111122223333/Dead",
    resources.ATTACHMENTS_BUCKET_OUTPUT: "mail-attachments",
    resources.LOCK_TABLE_OUTPUT: "mail-locks",
    resources.STATE_MACHINE_ARN_OUTPUT: "arn:aws:states:eu-west-1:111122223333:stateMachine:mail",
}


def _create_stack(name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="eu-west-1").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@mock_aws
def test_a_deployed_stack_is_read_from_its_outputs() -> None:
    # Given a stack publishing the five outputs
    _create_stack("Mailer", OUTPUTS)

    # When it is read
    deployment = Deployment.from_stack("Mailer", region="eu-west-1")

    # Then each output lands in its field, with the region and no twin endpoint
    assert deployment == Deployment(
        queue_url=OUTPUTS["QueueUrl"],
        dlq_url=OUTPUTS["DeadLetterQueueUrl"],
        bucket="mail-attachments",
        table="mail-locks",
        state_machine_arn=OUTPUTS["StateMachineArn"],
        region="eu-west-1",
    )


@mock_aws
def test_a_stack_missing_an_output_is_refused_naming_it() -> None:
    # Given a stack without the lock table's output
    _create_stack("Old", {key: value for key, value in OUTPUTS.items() if key != "LockTableName"})

    # When it is read, Then the error names the stack and the missing output
    with pytest.raises(ValueError, match="stack Old has no output LockTableName"):
        Deployment.from_stack("Old", region="eu-west-1")


def test_a_twins_deployment_is_named_after_the_stack() -> None:
    # When the twin of stack "Stepmail" serves on port 4750
    deployment = Deployment.for_twin("Stepmail", "us-east-1", "http://127.0.0.1:4750/")

    # Then its resources carry the stack's lower-cased name, moto's account and the endpoint
    assert deployment.queue_url == f"http://127.0.0.1:4750/{TWIN_ACCOUNT_ID}/stepmail-mail"
    assert deployment.dlq_url == f"http://127.0.0.1:4750/{TWIN_ACCOUNT_ID}/stepmail-dead-letters"
    assert (deployment.bucket, deployment.table) == ("stepmail-attachments", "stepmail-locks")
    assert (
        deployment.state_machine_arn
        == f"arn:aws:states:us-east-1:{TWIN_ACCOUNT_ID}:stateMachine:stepmail-workflow"
    )
    assert deployment.endpoint_url == "http://127.0.0.1:4750"


def test_an_info_file_round_trips(tmp_path: Path) -> None:
    # Given the info file a twin writes
    written = Deployment.for_twin("Mailer", "eu-west-1", "http://127.0.0.1:9", outbox="/tmp/outbox")
    path = tmp_path / "twin.json"
    path.write_text(written.to_json())

    # When it is read, Then it is the same deployment
    assert Deployment.from_info_file(path) == written


def test_a_file_that_is_not_an_info_file_is_refused(tmp_path: Path) -> None:
    # Given JSON without the deployment's fields, and a file that is not JSON
    for content in ('{"queue_url": "q"}', "not json"):
        path = tmp_path / "twin.json"
        path.write_text(content)

        # Then reading says the file is not a twin's info file
        with pytest.raises(ValueError, match="is not a twin's info file"):
            Deployment.from_info_file(path)


def test_a_twins_clients_carry_the_twins_credentials_and_a_stacks_the_environments() -> None:
    # Given a twin's deployment and a deployed one
    twin = Deployment.for_twin("Stepmail", "us-east-1", "http://127.0.0.1:9")
    deployed = Deployment("q", "d", "b", "t", "arn", "eu-west-1")

    # When clients are made for each
    twin_sqs, deployed_sqs = twin.client("sqs"), deployed.client("sqs")

    # Then the twin's go to its endpoint with its dummy keys; the stack's use the environment's keys
    assert twin_sqs.meta.endpoint_url == "http://127.0.0.1:9"
    assert twin_sqs._request_signer._credentials.access_key == "twin"
    assert deployed_sqs.meta.region_name == "eu-west-1"
    assert deployed_sqs._request_signer._credentials.access_key == "testing"  # tests/conftest.py's
