"""The configuration is validated when the app is built: an invalid one never reaches a template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from pydantic import ValidationError

from app import build_app
from tests.infrastructure.synth import SKIP_BUNDLING

_VALID = {"sender_identities": ["example.com"], "default_sender": "no-reply@example.com"}
_DOMAIN = {"sending_domain": "example.com"}
_ZONE = {"hosted_zone_id": "Z0123456789ABC", "hosted_zone_name": "example.com"}


def _build(config: dict[str, Any]) -> None:
    build_app(App(context={"stepmail": config, **SKIP_BUNDLING}))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"lease_seconds": 120, "workflow_timeout_seconds": 120}, "lease_seconds must exceed"),
        ({"default_sender": "someone@elsewhere.org"}, "not covered by sender_identities"),
        ({"sender_timeout_seconds": 120, "workflow_timeout_seconds": 120}, "sender_timeout_seconds"),
        ({"slack_workspace_id": "T0123ABCD"}, "go together"),
        ({"default_configuration_set": "missing"}, "default_configuration_set"),
        ({"visibility_timeout_seconds": 60}, "visibility_timeout_seconds"),
        ({"max_concurrency": 1}, "max_concurrency"),
        ({"batchSize": 5}, "batchSize"),  # a typo is an error, not a silently ignored key
        # The SES sandbox
        ({"sandbox_recipients": ["me@example.org"]}, "only with ses_sandbox"),
        ({"ses_sandbox": True, "sandbox_recipients": ["not an address"]}, "neither an email address"),
        ({"ses_sandbox": True, "sandbox_recipients": ["a\u200b@example.org"]}, "forbidden character"),
        # The sending domain
        ({"sending_domain": "other.org"}, "must also be one of sender_identities"),
        ({"sending_domain": "example..com"}, "not a domain name"),
        ({**_DOMAIN, "hosted_zone_id": "Z0123456789ABC"}, "go together"),
        ({**_DOMAIN, "hosted_zone_name": "example.com"}, "go together"),
        ({**_DOMAIN, "hosted_zone_id": "not-a-zone", "hosted_zone_name": "example.com"}, "hosted_zone_id"),
        # "badexample.com" ends with "example.com" but is not in its zone
        (
            {**_DOMAIN, **_ZONE, "sending_domain": "example.com", "hosted_zone_name": "badexample.com"},
            "not in",
        ),
        ({**_DOMAIN, "mail_from_subdomain": "-mail"}, "mail_from_subdomain"),
        ({**_DOMAIN, "mail_from_subdomain": "a" * 64}, "mail_from_subdomain"),  # one past a label's 63
        ({**_DOMAIN, "dmarc_policy": "monitor"}, "dmarc_policy"),
        ({**_DOMAIN, "dmarc_report_email": "not-an-address"}, "exactly one '@'"),
        ({**_DOMAIN, "dmarc_policy": "off", "dmarc_report_email": "d@example.com"}, "needs a DMARC record"),
        ({**_ZONE}, "need sending_domain"),
        ({"dmarc_report_email": "d@example.com"}, "need sending_domain"),
    ],
)
def test_invalid_configuration_is_rejected_at_synth(change: dict[str, Any], complaint: str) -> None:
    # Given a configuration that breaks one rule
    config = {**_VALID, **change}

    # When the app is built from it, then it fails, saying what is wrong
    with pytest.raises(ValidationError, match=complaint):
        _build(config)


def test_missing_configuration_is_rejected_at_synth(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no stepmail context and no config file
    monkeypatch.delenv("STEPMAIL_CONFIG", raising=False)

    # When the app is built, then it says where the configuration should be
    with pytest.raises(ValueError, match="no configuration"):
        build_app(App(context=SKIP_BUNDLING))


def test_config_file_context_takes_precedence_over_the_inline_config(tmp_path: Path) -> None:
    # Given a config file, and an inline config that names another stack
    config_file = tmp_path / "prod.json"
    config_file.write_text(json.dumps({**_VALID, "stack_name": "StepmailProd", "region": "eu-central-1"}))
    context = {"stepmail": {**_VALID, "stack_name": "Inline"}, "stepmailConfigFile": str(config_file)}

    # When the app is built
    stack = build_app(App(context={**context, **SKIP_BUNDLING}))

    # Then the file decides
    assert (stack.stack_name, stack.region) == ("StepmailProd", "eu-central-1")


def test_inline_config_may_be_a_json_string(tmp_path: Path) -> None:
    # Given the config as `cdk synth -c stepmail='{...}'` passes it: a JSON string
    context = {"stepmail": json.dumps({**_VALID, "stack_name": "FromCommandLine"}), **SKIP_BUNDLING}

    # When the app is built, then the string is parsed and validated like an object
    assert build_app(App(context=context)).stack_name == "FromCommandLine"


@pytest.mark.parametrize(
    ("change", "domain", "zone"),
    [
        ({**_DOMAIN, **_ZONE}, "example.com", "example.com"),  # the zone's apex
        ({**_ZONE, "sending_domain": "Mail.Example.com."}, "mail.example.com", "example.com"),  # below it
        ({**_DOMAIN, **_ZONE, "hosted_zone_name": "EXAMPLE.com."}, "example.com", "example.com"),
    ],
)
def test_sending_domain_and_zone_are_normalized(change: dict[str, Any], domain: str, zone: str) -> None:
    # Given a sending domain at or below its hosted zone, written with capitals or the root's dot
    config = {**_VALID, "sender_identities": ["example.com", "mail.example.com"], **change}

    # When the app is built from it
    stack = build_app(App(context={"stepmail": config, **SKIP_BUNDLING}))

    # Then both names are lower-case without the dot, as CDK and SES take them
    assert (stack.config.sending_domain, stack.config.hosted_zone_name) == (domain, zone)


def test_mail_from_subdomain_at_a_labels_limit_is_accepted() -> None:
    # Given a MAIL FROM subdomain of exactly 63 characters (one label's maximum)
    config = {**_VALID, **_DOMAIN, "mail_from_subdomain": "a" * 63}

    # When the app is built, then the MAIL FROM domain is that label under the sending domain
    assert build_app(App(context={"stepmail": config, **SKIP_BUNDLING})).config.mail_from_domain == (
        "a" * 63 + ".example.com"
    )
