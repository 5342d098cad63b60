"""checkov's findings that this design answers differently, with the reason, on every matching resource.

Each reason is written into the resource's ``Metadata.checkov.skip`` (checkov's own mechanism), so the
template says why next to what, as cdk-nag's acknowledgments do.  tests/infrastructure/test_checkov.py
runs checkov on the synthesized template: no failed check, and a reason for every skipped one.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect
from aws_cdk import aws_dynamodb as dynamodb
from constructs import IConstruct

#: CloudFormation type -> [(check id, reason)].
SKIPS: dict[str, list[tuple[str, str]]] = {
    "AWS::Lambda::Function": [
        (
            "CKV_AWS_116",
            "The starter's failures go back to the SQS queue (and its DLQ), the sender's to the workflow's "
            "Catch; the tracker (EventBridge, async) records delivery events only: an event that fails its "
            "retries loses tracking data, never an email.",
        ),
        (
            "CKV_AWS_117",
            "The functions only call AWS APIs (SQS, Step Functions, S3, SES, DynamoDB); a VPC would "
            "add NAT or endpoint costs and cold-start latency without isolating anything.",
        ),
        (
            "CKV_AWS_115",
            "Concurrency is bounded where it matters: the SQS event source's maxConcurrency (rate control "
            "against the SES quota) and the workflow; reserving it would take from the account's pool.",
        ),
        (
            "CKV_AWS_173",
            "The environment holds resource names, ARNs and numbers, no secrets; Lambda encrypts it at "
            "rest with an AWS-managed key.",
        ),
    ],
    "AWS::Logs::LogGroup": [
        (
            "CKV_AWS_158",
            "CloudWatch Logs encrypts log data at rest by default; the logs carry no email content "
            "unless log_email_content is switched on for debugging.",
        ),
    ],
    "AWS::SQS::Queue": [
        (
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled); a KMS key would add per-"
            "request KMS calls, throttling limits and cost to every send and receive.",
        ),
    ],
    "AWS::DynamoDB::Table": [
        (
            "CKV_AWS_119",
            "Encrypted at rest with the AWS-owned key; the table holds lock records (hashed recipients, "
            "message ids), no email content, so a customer-managed key adds cost, not protection.",
        ),
    ],
    "AWS::S3::Bucket": [
        (
            "CKV_AWS_21",
            "Attachments are transient and expire by lifecycle; versioning would keep deleted attachments "
            "(personal data) longer. Integrity is kept by pinning each read to the resolved ETag.",
        ),
        (
            "CKV_AWS_18",
            "The attachments bucket logs to the access-logs bucket; the access-logs bucket itself is "
            "not logged (logging it to itself would loop, to another bucket would only move the question).",
        ),
    ],
}


@jsii.implements(IAspect)
class CheckovSkips:
    """Adds :data:`SKIPS` to every resource of the listed types."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type in SKIPS:
            skips = [{"id": check, "comment": reason} for check, reason in SKIPS[node.cfn_resource_type]]
            if isinstance(node, dynamodb.CfnTable) and not _point_in_time_recovery(node):
                skips.append({"id": "CKV_AWS_28", "comment": _NO_PITR})
            node.add_metadata("checkov", {"skip": skips})


def _point_in_time_recovery(table: dynamodb.CfnTable) -> bool:
    spec = table.point_in_time_recovery_specification
    if isinstance(spec, dict):
        return bool(spec.get("pointInTimeRecoveryEnabled"))
    return bool(getattr(spec, "point_in_time_recovery_enabled", False))


_NO_PITR = (
    "point_in_time_recovery is switched off in this configuration (the operator's choice): the lock "
    "table can be rebuilt, losing only the dedup history of the window."
)
