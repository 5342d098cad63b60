"""Where the system is: one model of a deployment, whether a stack on AWS or a local twin.

A :class:`Deployment` is read from the deployed stack's CloudFormation outputs
(:meth:`Deployment.from_stack`), from a running twin's info file (:meth:`Deployment.from_info_file`),
or derived from a twin's endpoint (:meth:`Deployment.for_twin`, which is also how the twin names what
it creates).  Its :meth:`Deployment.client` is the one place a boto3 client for either is built.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from infra.resources import (
    ATTACHMENTS_BUCKET_OUTPUT,
    DEAD_LETTER_QUEUE_URL_OUTPUT,
    LOCK_TABLE_OUTPUT,
    QUEUE_URL_OUTPUT,
    STATE_MACHINE_ARN_OUTPUT,
    ResourceNames,
)

#: The account moto serves by default: every ARN and queue URL of the twin carries it.
TWIN_ACCOUNT_ID = "123456789012"
#: The twin accepts any credentials; these spare a user without AWS credentials a failed signature.
_TWIN_CREDENTIALS = {"aws_access_key_id": "twin", "aws_secret_access_key": "twin"}

_STACK_OUTPUTS = {
    "queue_url": QUEUE_URL_OUTPUT,
    "dlq_url": DEAD_LETTER_QUEUE_URL_OUTPUT,
    "bucket": ATTACHMENTS_BUCKET_OUTPUT,
    "table": LOCK_TABLE_OUTPUT,
    "state_machine_arn": STATE_MACHINE_ARN_OUTPUT,
}


def aws_client(
    service: str, region: str, endpoint_url: str | None = None, config: Config | None = None
) -> Any:
    """A boto3 client for a deployed stack, or for a twin when ``endpoint_url`` is given."""
    if endpoint_url:
        return boto3.client(
            service, region_name=region, endpoint_url=endpoint_url, config=config, **_TWIN_CREDENTIALS
        )
    return boto3.client(service, region_name=region, config=config)


@dataclass(frozen=True)
class Deployment:
    """The queue, the dead-letter queue, the bucket, the lock table and the state machine of one system.

    ``endpoint_url`` is set for a twin (every AWS call goes there), and ``outbox`` when that twin
    writes the emails it sends to a directory.
    """

    queue_url: str
    dlq_url: str
    bucket: str
    table: str
    state_machine_arn: str
    region: str
    endpoint_url: str | None = None
    outbox: str | None = None

    @classmethod
    def from_stack(cls, stack_name: str, *, region: str | None = None) -> Deployment:
        """Read the deployed stack's outputs (needs ``cloudformation:DescribeStacks``).

        Raises
        ------
        ValueError
            The stack lacks one of the outputs.
        botocore.exceptions.NoCredentialsError, botocore.exceptions.ClientError
            From CloudFormation: no credentials, or no such stack in the region.
        """
        cloudformation = boto3.client("cloudformation", region_name=region)
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        missing = [key for key in _STACK_OUTPUTS.values() if key not in outputs]
        if missing:
            raise ValueError(f"stack {stack_name} has no output {', '.join(missing)}")
        values = {field: outputs[key] for field, key in _STACK_OUTPUTS.items()}
        return cls(**values, region=cloudformation.meta.region_name)

    @classmethod
    def from_info_file(cls, path: Path) -> Deployment:
        """What a running twin wrote to its ``--info-file``.

        Raises
        ------
        FileNotFoundError
            No twin wrote that file.
        ValueError
            The file is not a twin's info file.
        """
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a twin's info file: {error}") from None

    @classmethod
    def for_twin(
        cls, stack_name: str, region: str, endpoint_url: str, outbox: str | None = None
    ) -> Deployment:
        """Where a twin serving ``stack_name`` at ``endpoint_url`` keeps everything."""
        names, endpoint_url = ResourceNames.for_stack(stack_name), endpoint_url.rstrip("/")
        return cls(
            queue_url=f"{endpoint_url}/{TWIN_ACCOUNT_ID}/{names.queue}",
            dlq_url=f"{endpoint_url}/{TWIN_ACCOUNT_ID}/{names.dead_letter_queue}",
            bucket=names.bucket,
            table=names.lock_table,
            state_machine_arn=twin_arn("states", region, f"stateMachine:{names.state_machine}"),
            region=region,
            endpoint_url=endpoint_url,
            outbox=outbox,
        )

    def to_json(self) -> str:
        """The info file's content."""
        return json.dumps(asdict(self), indent=2)

    def client(self, service: str, config: Config | None = None) -> Any:
        """A boto3 client for this deployment (the twin's endpoint and credentials when it is one)."""
        return aws_client(service, self.region, self.endpoint_url, config)


def twin_arn(service: str, region: str, resource: str) -> str:
    """The ARN of a twin's resource (``resource`` as the service writes it, e.g. ``function:name``)."""
    return f"arn:aws:{service}:{region}:{TWIN_ACCOUNT_ID}:{resource}"
