"""Synthesizing the stack for the infrastructure tests, and reading the template."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii warns on every start under Node 20 unless told not to; set before aws_cdk is imported.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from app import build_app
from infra.config import StepmailConfig, repo_context
from infra.constants import REPO_ROOT
from infra.stack import StepmailStack

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}

FULL_CONFIG: dict[str, Any] = {
    "stack_name": "StepmailFull",
    "region": "eu-west-1",
    "account": "123456789012",
    "sender_identities": ["example.com", "Alerts@Example.org"],
    "default_sender": "no-reply@example.com",
    "configuration_sets": ["stepmail-events"],
    "default_configuration_set": "stepmail-events",
    "workflow_timeout_seconds": 100,
    "lease_seconds": 150,
    "sender_timeout_seconds": 40,
    "batch_size": 5,
    "batching_window_seconds": 3,
    "max_concurrency": 7,
    "max_receive_count": 4,
    "message_retention_days": 6,
    "dead_letter_retention_days": 10,
    "attachments_expiry_days": 3,
    "point_in_time_recovery": False,
    "starter_memory_mb": 384,
    "sender_memory_mb": 1024,
    "log_level": "WARNING",
    "log_email_content": True,
    "execution_log_level": "ERROR",
    "alarm_email": "ops@example.com",
    "slack_workspace_id": "T0123ABCD",
    "slack_channel_id": "C0123ABCD",
    "queue_age_alarm_seconds": 600,
    "lambda_errors_alarm_threshold": 3,
    "lambda_throttles_alarm_threshold": 2,
    "retried_later_alarm_per_minute": 12,
    "retried_later_alarm_minutes": 8,
    "bounce_rate_alarm_threshold": 0.03,
    "complaint_rate_alarm_threshold": 0.0005,
    "suppression": "bounces-and-complaints",
    "ses_sandbox": True,
    "sandbox_recipients": ["Ops@Example.net", "Team.Example.net"],
    "sending_domain": "example.com",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
    "hosted_zone_name": "example.com",
    "mail_from_subdomain": "bounce",
    "dmarc_policy": "quarantine",
    "dmarc_report_email": "dmarc-reports@example.com",
    "delivery_tracking": True,
}

#: A sending domain without a hosted zone (its DNS records become outputs) and without a DMARC record.
DNS_OUTPUTS_CONFIG: dict[str, Any] = {
    "stack_name": "StepmailDnsOutputs",
    "region": "eu-central-1",
    "sender_identities": ["mail.example.org"],
    "default_sender": "news@mail.example.org",
    "sending_domain": "Mail.Example.org.",
    "dmarc_policy": "off",
}


@dataclass(frozen=True)
class Synthesized:
    """A synthesized app: the stack object, its config, its template and the cloud assembly directory."""

    app: App
    stack: StepmailStack
    config: StepmailConfig
    template: Template
    outdir: Path

    @property
    def resources(self) -> dict[str, Any]:
        return self.template.to_json()["Resources"]

    def logical_id(self, construct: IConstruct) -> str:
        """The logical id of an L2 construct's CloudFormation resource."""
        resource = construct.node.default_child or construct
        return Stack.of(construct).get_logical_id(resource)  # type: ignore[arg-type]

    def resource(self, construct: IConstruct) -> dict[str, Any]:
        return self.resources[self.logical_id(construct)]

    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text(encoding="utf-8"))


def cdk_context(config: dict[str, Any] | None = None, *, bundle: bool = False) -> dict[str, Any]:
    """cdk.json's context (feature flags, default config), optionally with another ``stepmail`` config."""
    context = repo_context(REPO_ROOT)
    if config is not None:
        context["stepmail"] = config
    return context if bundle else {**context, **SKIP_BUNDLING}


def synthesize(context: dict[str, Any], outdir: Path) -> Synthesized:
    """Build the app exactly as app.py does (config, stack, cdk-nag) and synthesize it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("STEPMAIL_CONFIG", raising=False)  # the context, not the developer's shell, decides
        app = App(context=context, outdir=str(outdir))
        stack = build_app(app)
        app.synth()
    return Synthesized(app, stack, stack.config, Template.from_stack(stack), outdir)


# ---------------------------------------------------------------- template helpers
def role_statements(synth: Synthesized, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy attached to the role."""
    statements = []
    for resource in synth.template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def statements_allowing(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [statement for statement in statements if action in actions_of(statement)]


def role_of_function(synth: Synthesized, function: IConstruct) -> str:
    """The logical id of the function's execution role (from ``Role: Fn::GetAtt [role, Arn]``)."""
    return synth.resource(function)["Properties"]["Role"]["Fn::GetAtt"][0]


def as_text(value: Any) -> str:
    """A template value as text: ``Ref`` -> ``${Id}``, ``GetAtt`` -> ``${Id.Attr}``, ``Fn::Join`` joined."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(as_text(part) for part in parts)
    raise ValueError(f"cannot render {value!r}")
