"""Least privilege: each role can do its job and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from infra.constructs.functions import SES_SEND_ACTIONS, from_address_patterns, recipient_identity_patterns
from tests.infrastructure.synth import (
    Synthesized,
    actions_of,
    as_text,
    resources_of,
    role_of_function,
    role_statements,
    statements_allowing,
)

_LOGGING_AND_TRACING = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def _all_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in actions_of(statement)}


def _only_resource(statements: list[dict[str, Any]]) -> str:
    [statement] = statements
    [resource] = resources_of(statement)
    return as_text(resource)


def _account(synthesized: Synthesized) -> str:
    return synthesized.config.account or "${AWS::AccountId}"


def _sender_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    return role_statements(synthesized, role_of_function(synthesized, synthesized.stack.sender.function))


def _starter_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    return role_statements(synthesized, role_of_function(synthesized, synthesized.stack.starter.function))


def _state_machine_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    role_arn = synthesized.resource(synthesized.stack.workflow.state_machine)["Properties"]["RoleArn"]
    return role_statements(synthesized, role_arn["Fn::GetAtt"][0])


# ---------------------------------------------------------------- the sender
def test_sender_may_only_log_trace_read_attachments_and_send_email(synthesized: Synthesized) -> None:
    # When we collect every action the sender's role allows
    actions = _all_actions(_sender_statements(synthesized))

    # Then nothing beyond its job is there: no s3:PutObject, no s3:DeleteObject, no wildcard action
    assert actions == _LOGGING_AND_TRACING | {"s3:GetObject", "ses:SendEmail", "ses:SendRawEmail"}


def test_sender_reads_objects_of_the_attachments_bucket_only(synthesized: Synthesized) -> None:
    # Given the attachments bucket's logical id
    bucket_id = synthesized.logical_id(synthesized.stack.storage.attachments_bucket)

    # Then s3:GetObject is granted on that bucket's objects and nowhere else
    statements = statements_allowing(_sender_statements(synthesized), "s3:GetObject")
    assert _only_resource(statements) == "${" + bucket_id + ".Arn}/*"


def _ses_statements(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """The sender's statements that allow an SES send, by Sid."""
    return {
        statement["Sid"]: statement
        for statement in _sender_statements(synthesized)
        if set(SES_SEND_ACTIONS) & set(actions_of(statement))
    }


def _arn_prefix(synthesized: Synthesized) -> str:
    return f"arn:aws:ses:{synthesized.config.region}:{_account(synthesized)}"


def _resources(statement: dict[str, Any]) -> set[str]:
    return {as_text(resource) for resource in resources_of(statement)}


def test_sender_sends_only_from_the_configured_identities(synthesized: Synthesized) -> None:
    # Given the configured identities, configuration sets, region and account
    config = synthesized.config
    arn_prefix = _arn_prefix(synthesized)
    expected_resources = {f"{arn_prefix}:identity/{identity}" for identity in config.sender_identities} | {
        f"{arn_prefix}:configuration-set/{name}" for name in config.sendable_configuration_sets
    }

    # When we read the statement that allows sending from the identities
    statement = _ses_statements(synthesized)["SendFromConfiguredIdentities"]

    # Then it allows both send actions on exactly those ARNs, for From addresses the identities cover
    assert set(actions_of(statement)) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert _resources(statement) == expected_resources
    assert statement["Condition"] == {
        "StringLikeIfExists": {"ses:FromAddress": _from_patterns(config.sender_identities)}
    }


def test_no_send_statement_can_deny_every_send_when_from_address_is_absent(synthesized: Synthesized) -> None:
    # Given every statement that allows an SES send
    statements = _ses_statements(synthesized).values()

    # Then each one's only condition is ses:FromAddress with ...IfExists: if SES leaves the key out of a
    # raw send's request context, the statement still matches (a plain StringLike would not)
    assert statements
    for statement in statements:
        assert list(statement["Condition"]) == ["StringLikeIfExists"]
        assert list(statement["Condition"]["StringLikeIfExists"]) == ["ses:FromAddress"]


def test_out_of_the_sandbox_the_sender_has_no_recipient_resources(minimal: Synthesized) -> None:
    # Given the default configuration (production access: ses_sandbox is false)
    assert not minimal.config.ses_sandbox

    # When we read the statements that allow an SES send
    statements = _ses_statements(minimal)

    # Then there is only the one for the sender identities: no recipient identity, no wildcard
    assert list(statements) == ["SendFromConfiguredIdentities"]
    assert not any("*" in resource for resource in _resources(statements["SendFromConfiguredIdentities"]))


def test_in_the_sandbox_the_sender_may_also_send_to_the_sandbox_recipients(full: Synthesized) -> None:
    # Given the full configuration: in the sandbox, with an address and a domain as recipients
    assert full.config.ses_sandbox
    assert full.config.sandbox_recipients == ("Ops@Example.net", "Team.Example.net")
    arn_prefix = _arn_prefix(full)

    # When we read the sandbox statement
    statement = _ses_statements(full)["SendToSandboxRecipients"]

    # Then it names the address's identity (as sent, and all lower-case), the domain's identity and every
    # address at it, and the mailbox simulator's, under the same From condition as the senders
    assert _resources(statement) == {
        f"{arn_prefix}:identity/Ops@example.net",
        f"{arn_prefix}:identity/ops@example.net",
        f"{arn_prefix}:identity/team.example.net",
        f"{arn_prefix}:identity/*@team.example.net",
        f"{arn_prefix}:identity/simulator.amazonses.com",
        f"{arn_prefix}:identity/*@simulator.amazonses.com",
    }
    assert statement["Condition"] == _ses_statements(full)["SendFromConfiguredIdentities"]["Condition"]


def test_the_sending_domain_is_a_sender_identity_of_the_role(
    full: Synthesized, dns_outputs: Synthesized
) -> None:
    for synthesized in (full, dns_outputs):
        # Given a configuration with a sending domain made by the stack
        domain = synthesized.config.sending_domain

        # Then the sender may send from that domain's identity
        resources = _resources(_ses_statements(synthesized)["SendFromConfiguredIdentities"])
        assert f"{_arn_prefix(synthesized)}:identity/{domain}" in resources


def _from_patterns(identities: tuple[str, ...]) -> list[str]:
    """Addresses as sent (domain lower-cased) and all lower-case; domain identities as ``*@domain``."""
    patterns: list[str] = []
    for identity in identities:
        if "@" in identity:
            local, domain = identity.split("@")
            candidates = [f"{local}@{domain.lower()}", f"{local.lower()}@{domain.lower()}"]
        else:
            candidates = [f"*@{identity.lower()}"]
        patterns.extend(candidate for candidate in candidates if candidate not in patterns)
    return patterns


def test_full_configuration_covers_both_kinds_of_identity(full: Synthesized) -> None:
    # Given the full configuration (an address identity with upper-case letters, and a domain)
    # Then the condition allows the address as the functions send it and all lower-case, and anything
    # at the domain
    assert _from_patterns(full.config.sender_identities) == [
        "*@example.com",
        "Alerts@example.org",
        "alerts@example.org",
    ]


@pytest.mark.parametrize(
    ("identities", "patterns"),
    [
        (("a@b.org",), ["a@b.org"]),  # already lower-case: one pattern, not two
        (("A@B.org",), ["A@b.org", "a@b.org"]),
        (("B.org",), ["*@b.org"]),
        (("a@b.org", "A@b.org"), ["a@b.org", "A@b.org"]),  # no duplicate
    ],
)
def test_from_address_patterns(identities: tuple[str, ...], patterns: list[str]) -> None:
    # When the patterns are made, then they are exactly the expected ones, in order
    assert from_address_patterns(identities) == patterns


@pytest.mark.parametrize(
    ("recipient", "patterns"),
    [
        ("Me@Example.ORG", ["Me@example.org", "me@example.org"]),
        ("me@example.org", ["me@example.org"]),  # already lower-case: one name, not two
        ("Example.ORG", ["example.org", "*@example.org"]),
    ],
)
def test_recipient_identity_patterns(recipient: str, patterns: list[str]) -> None:
    # When the recipient's identity names are made, then an address is its own identity and a domain
    # is both its identity and any address at it
    assert recipient_identity_patterns(recipient) == patterns


# ---------------------------------------------------------------- the starter
def test_starter_may_only_consume_the_queue_start_runs_and_dead_letter(synthesized: Synthesized) -> None:
    # When we collect every action the starter's role allows
    actions = _all_actions(_starter_statements(synthesized))

    # Then it is logging, tracing, consuming the queue (and setting a failed message's next delivery),
    # starting sync runs, sending to the DLQ, freeing a failed run's lock / noting a failed delivery
    # (item writes on the lock table), and reading the account's SES quota to pace the runs
    assert actions == _LOGGING_AND_TRACING | {
        "ses:GetAccount",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "states:StartSyncExecution",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_starter_writes_items_of_the_lock_table_only(synthesized: Synthesized) -> None:
    # Given the lock table's logical id
    table_id = synthesized.logical_id(synthesized.stack.storage.lock_table)

    # Then its two item writes are on the table itself: no index, no other table
    for action in ("dynamodb:DeleteItem", "dynamodb:PutItem"):
        statements = statements_allowing(_starter_statements(synthesized), action)
        assert _only_resource(statements) == "${" + table_id + ".Arn}"


def test_starter_starts_sync_runs_of_its_state_machine_only(synthesized: Synthesized) -> None:
    # Given the state machine's logical id
    state_machine_id = synthesized.logical_id(synthesized.stack.workflow.state_machine)

    # Then StartSyncExecution is allowed on that state machine only
    statements = statements_allowing(_starter_statements(synthesized), "states:StartSyncExecution")
    assert _only_resource(statements) == "${" + state_machine_id + "}"


def test_starter_sends_to_the_dead_letter_queue_only(synthesized: Synthesized) -> None:
    # Given the DLQ's logical id
    dead_letter_queue_id = synthesized.logical_id(synthesized.stack.queueing.dead_letter_queue)

    # Then the starter may send messages to the DLQ and to no other queue
    statements = statements_allowing(_starter_statements(synthesized), "sqs:SendMessage")
    assert _only_resource(statements) == "${" + dead_letter_queue_id + ".Arn}"


# ---------------------------------------------------------------- the state machine
def test_state_machine_has_the_four_item_actions_on_its_table_only(synthesized: Synthesized) -> None:
    # Given the state machine's statements and the lock table
    statements = _state_machine_statements(synthesized)
    table_id = synthesized.logical_id(synthesized.stack.storage.lock_table)

    # When we collect its DynamoDB actions
    dynamodb_statements = [s for s in statements if any(a.startswith("dynamodb:") for a in actions_of(s))]

    # Then they are exactly the ASL's four item operations, on the lock table, with no wildcard
    dynamodb_actions = _all_actions(dynamodb_statements)
    assert dynamodb_actions == {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert not any("*" in action for action in dynamodb_actions)
    assert {_only_resource([statement]) for statement in dynamodb_statements} == {"${" + table_id + ".Arn}"}


def test_state_machine_reads_attachment_metadata_invokes_the_sender_and_dead_letters(
    synthesized: Synthesized,
) -> None:
    # Given the state machine's statements and the resources its tasks use
    statements = _state_machine_statements(synthesized)
    stack = synthesized.stack
    bucket_id = synthesized.logical_id(stack.storage.attachments_bucket)
    sender_id = synthesized.logical_id(stack.sender.function)
    dead_letter_queue_id = synthesized.logical_id(stack.queueing.dead_letter_queue)

    # Then each task's action is allowed on its one resource
    assert _only_resource(statements_allowing(statements, "s3:GetObject")) == "${" + bucket_id + ".Arn}/*"
    # ListBucket makes a missing attachment a 404 NoSuchKey (dead-lettered), not a 403 (retried)
    assert _only_resource(statements_allowing(statements, "s3:ListBucket")) == "${" + bucket_id + ".Arn}"
    assert (
        _only_resource(statements_allowing(statements, "lambda:InvokeFunction")) == "${" + sender_id + ".Arn}"
    )
    assert (
        _only_resource(statements_allowing(statements, "sqs:SendMessage"))
        == "${" + dead_letter_queue_id + ".Arn}"
    )


def test_state_machine_wildcards_are_only_log_delivery_and_tracing(synthesized: Synthesized) -> None:
    # When we collect the actions allowed on any resource ("*")
    wildcard_actions = {
        action
        for statement in _state_machine_statements(synthesized)
        if "*" in resources_of(statement)
        for action in actions_of(statement)
    }

    # Then they are the CloudWatch Logs delivery and X-Ray actions, which have no resource-level permissions
    assert wildcard_actions
    assert all(action.startswith(("logs:", "xray:")) for action in wildcard_actions)


def test_no_role_has_a_managed_policy(synthesized: Synthesized) -> None:
    # Given every IAM role of the stack
    roles = synthesized.template.find_resources("AWS::IAM::Role")

    # Then none has a managed policy (AWSLambdaBasicExecutionRole would allow logs on every group)
    assert roles
    assert all("ManagedPolicyArns" not in role["Properties"] for role in roles.values())
