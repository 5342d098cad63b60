"""The sending domain: SES domain identity, Easy DKIM, custom MAIL FROM, DMARC; records or outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from infra.config import StepmailConfig
from tests.infrastructure.synth import Synthesized

_DKIM_ATTRIBUTES = ("DkimDNSTokenName", "DkimDNSTokenValue")


def _identities(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.template.find_resources("AWS::SES::EmailIdentity")


def _the_identity(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    [(logical_id, identity)] = _identities(synthesized).items()
    return logical_id, identity["Properties"]


def _record_sets(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [r["Properties"] for r in synthesized.template.find_resources("AWS::Route53::RecordSet").values()]


def _outputs(synthesized: Synthesized) -> dict[str, Any]:
    return {key: output["Value"] for key, output in synthesized.template.to_json()["Outputs"].items()}


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)


def _dkim(identity_id: str, attribute: str, number: int) -> dict[str, Any]:
    return {"Fn::GetAtt": [identity_id, f"{attribute}{number}"]}


# ---------------------------------------------------------------- without a sending domain
def test_without_a_sending_domain_the_stack_makes_no_identity_record_or_dns_output(
    minimal: Synthesized,
) -> None:
    # Given the default configuration (identities verified by hand)
    assert minimal.config.sending_domain is None

    # Then the stack makes no SES identity, no DNS record and prints no record to publish
    assert _identities(minimal) == {}
    assert _record_sets(minimal) == []
    assert not [key for key in _outputs(minimal) if key.startswith("DnsRecord")]


# ---------------------------------------------------------------- the identity
@pytest.mark.parametrize(
    ("fixture", "domain", "mail_from"),
    [
        ("full", "example.com", "bounce.example.com"),
        ("dns_outputs", "mail.example.org", "mail.mail.example.org"),
    ],
)
def test_the_identity_signs_with_easy_dkim_and_uses_the_mail_from_subdomain(
    request: pytest.FixtureRequest, fixture: str, domain: str, mail_from: str
) -> None:
    # Given a configuration with a sending domain (the second written "Mail.Example.org." in the config)
    synthesized: Synthesized = request.getfixturevalue(fixture)

    # When we read the stack's one SES identity
    _, identity = _the_identity(synthesized)

    # Then it is the domain (lower-case, no trailing dot), signed with Easy DKIM (2048-bit keys SES
    # makes: no private key of ours), with the MAIL FROM domain as a full name, and SES falls back to
    # its own MAIL FROM while the MX record is missing instead of rejecting the email
    assert identity["EmailIdentity"] == domain
    assert identity["DkimAttributes"] == {"SigningEnabled": True}
    assert identity["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    assert identity["MailFromAttributes"] == {
        "MailFromDomain": mail_from,
        "BehaviorOnMxFailure": "USE_DEFAULT_VALUE",
    }


# ---------------------------------------------------------------- with a hosted zone: the records
def test_with_a_hosted_zone_every_record_is_written_under_its_full_name(full: Synthesized) -> None:
    # Given the full configuration: example.com in its hosted zone, MAIL FROM "bounce", DMARC quarantine
    config = full.config
    identity_id, _ = _the_identity(full)

    # When we read the record sets
    records = _record_sets(full)

    # Then they are the three DKIM CNAMEs (the identity's own names and values), the MAIL FROM MX and
    # SPF, and the DMARC policy with its report address, each in the configured zone
    zone = config.hosted_zone_id
    dkim = [
        {
            "HostedZoneId": zone,
            "Name": _dkim(identity_id, "DkimDNSTokenName", n),
            "Type": "CNAME",
            "ResourceRecords": [_dkim(identity_id, "DkimDNSTokenValue", n)],
            "TTL": "1800",
        }
        for n in (1, 2, 3)
    ]
    assert sorted(records, key=_canonical) == sorted(
        [
            *dkim,
            {
                "HostedZoneId": zone,
                "Name": "bounce.example.com.",
                "Type": "MX",
                "ResourceRecords": ["10 feedback-smtp.eu-west-1.amazonses.com"],
                "TTL": "1800",
            },
            {
                "HostedZoneId": zone,
                "Name": "bounce.example.com.",
                "Type": "TXT",
                "ResourceRecords": ['"v=spf1 include:amazonses.com ~all"'],
                "TTL": "1800",
            },
            {
                "HostedZoneId": zone,
                "Name": "_dmarc.example.com.",
                "Type": "TXT",
                "ResourceRecords": ['"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com"'],
                "TTL": "1800",
            },
        ],
        key=_canonical,
    )


def test_no_record_name_repeats_the_zone(full: Synthesized) -> None:
    # Given the names of the written records that are plain strings (DKIM names are attributes)
    names = [record["Name"] for record in _record_sets(full) if isinstance(record["Name"], str)]

    # Then each ends with the root's dot and none carries the zone's name twice (the public
    # "mail.example.com.example.com" bug of relative names)
    assert names
    zone = full.config.hosted_zone_name
    assert all(name.endswith(f"{zone}.") and name.count(zone) == 1 for name in names)


def test_with_a_hosted_zone_no_record_is_printed_as_an_output(full: Synthesized) -> None:
    # Then the stack prints no record to publish by hand: they are in the zone already
    assert not [key for key in _outputs(full) if key.startswith("DnsRecord")]


# ---------------------------------------------------------------- without a hosted zone: the outputs
def test_without_a_hosted_zone_each_record_is_an_output_and_none_is_written(dns_outputs: Synthesized) -> None:
    # Given a sending domain without a hosted zone and without a DMARC record (dmarc_policy "off")
    identity_id, _ = _the_identity(dns_outputs)

    # When we read the outputs that name DNS records
    records = {key: value for key, value in _outputs(dns_outputs).items() if key.startswith("DnsRecord")}

    # Then each record to publish reads like a zone file line, and no record set is written
    dkim = {
        f"DnsRecordDkim{n}": {
            "Fn::Join": [
                " ",
                [
                    _dkim(identity_id, "DkimDNSTokenName", n),
                    "CNAME",
                    _dkim(identity_id, "DkimDNSTokenValue", n),
                ],
            ]
        }
        for n in (1, 2, 3)
    }
    assert records == {
        **dkim,
        "DnsRecordMailFromMx": "mail.mail.example.org MX 10 feedback-smtp.eu-central-1.amazonses.com",
        "DnsRecordMailFromSpf": 'mail.mail.example.org TXT "v=spf1 include:amazonses.com ~all"',
    }
    assert _record_sets(dns_outputs) == []


def test_dns_outputs_stack_passes_cdk_nag_and_cfn_lint(dns_outputs: Synthesized) -> None:
    # Given the variant the two shared configurations leave out
    reports = {report["pluginName"]: report for report in dns_outputs.validation_report()["pluginReports"]}
    template = Path(dns_outputs.outdir) / f"{dns_outputs.stack.artifact_id}.template.json"

    # When cdk-nag (at synth) and cfn-lint have checked it
    matches = lint_file(template, ManualArgs(regions=[dns_outputs.config.region]))

    # Then neither reports anything beyond the redundant DependsOn warning the other tests accept
    assert reports["AwsSolutions"]["violations"] == []
    assert [m.rule.id for m in matches if m.rule.id != "W3005"] == []


# ---------------------------------------------------------------- the DMARC record's value
_DOMAIN_CONFIG = {
    "sender_identities": ["example.com"],
    "default_sender": "no-reply@example.com",
    "sending_domain": "example.com",
}


@pytest.mark.parametrize(
    ("change", "record"),
    [
        ({}, "v=DMARC1; p=none"),  # the default policy: monitor only
        ({"dmarc_policy": "reject"}, "v=DMARC1; p=reject"),
        ({"dmarc_report_email": "Reports@Example.com"}, "v=DMARC1; p=none; rua=mailto:Reports@example.com"),
        ({"dmarc_policy": "off"}, None),  # no record: the operator publishes their own
    ],
)
def test_dmarc_record(change: dict[str, Any], record: str | None) -> None:
    # When the configuration is validated, then its DMARC record is the expected one
    assert StepmailConfig.model_validate({**_DOMAIN_CONFIG, **change}).dmarc_record == record


def test_without_a_sending_domain_there_is_no_dmarc_record() -> None:
    # Given no sending domain, then the stack publishes no DMARC record (the policy's default is moot)
    config = StepmailConfig.model_validate({**_DOMAIN_CONFIG, "sending_domain": None})
    assert config.dmarc_record is None
