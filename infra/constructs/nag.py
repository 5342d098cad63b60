"""Acknowledging cdk-nag findings: one finding at a time, each with the reason it does not apply.

cdk-nag 3 reports through CDK's ``Validations``; a finding is acknowledged on the construct that owns
it (or a parent) with the id ``AwsSolutions::<rule>[<finding>]``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge ``finding`` (e.g. ``"SQS2"`` or ``"IAM5[Resource::*]"``) below ``scope``."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{finding}", reason=reason))


def arn_reference(resource: IConstruct) -> str:
    """How cdk-nag prints ``Fn::GetAtt [<resource>, Arn]`` in a finding: ``<LogicalId.Arn>``."""
    default_child = resource.node.default_child
    if default_child is None:
        raise ValueError(f"{resource.node.path} has no CloudFormation resource")
    return f"<{Stack.of(resource).get_logical_id(default_child)}.Arn>"  # type: ignore[arg-type]


def format_arn_finding(stack: Stack, arn: str) -> str:
    """How cdk-nag prints an ARN made by ``Stack.format_arn``: each ``Ref`` as ``<AWS::AccountId>``.

    Raises
    ------
    ValueError
        If the ARN holds an intrinsic other than ``Fn::Join`` and ``Ref``.
    """
    return _as_finding_text(stack.resolve(arn))


def _as_finding_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_as_finding_text(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as cdk-nag does")
