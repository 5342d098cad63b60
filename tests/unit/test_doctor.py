"""stepmail doctor: each check and each of its statuses, through botocore Stubbers (no network).

A Stubber checks every request against the service model and every stubbed response too, so a wrong
parameter or field name (``VerifiedForSendingStatus``, ``EventBridgeDestination``...) fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import dns.exception
import dns.resolver
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from infra.config import StepmailConfig
from producer import doctor
from producer.doctor import AwsClients, CheckResult, DnsLookupError, Status

REGION = "us-east-1"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/stepmail-mail"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:stepmail-mail"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/stepmail-dead-letters"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:stepmail-alarms"
OUTPUTS = {
    "QueueUrl": QUEUE_URL,
    "DeadLetterQueueUrl": DLQ_URL,
    "AttachmentsBucketName": "stepmail-attachments",
    "LockTableName": "stepmail-locks",
    "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:stepmail",
    "AlarmTopicArn": TOPIC_ARN,
    "ConfigurationSetName": "Stepmail-tracking",
}
BASE = {
    "sender_identities": ["example.com"],
    "default_sender": "no-reply@example.com",
    "delivery_tracking": True,
}


def _config(**changes: Any) -> StepmailConfig:
    return StepmailConfig.model_validate({**BASE, **changes})


@contextmanager
def _stubbed(service: str) -> Iterator[tuple[Any, Stubber]]:
    """A real botocore client whose calls are answered by the stubs queued on it (each must be used)."""
    client = boto3.client(service, region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _account(
    *,
    production: bool = True,
    sending: bool = True,
    enforcement: str = "HEALTHY",
    rate: float = 14.0,
    day: float = 50_000.0,
    sent: float = 0.0,
) -> dict[str, Any]:
    return {
        "ProductionAccessEnabled": production,
        "SendingEnabled": sending,
        "EnforcementStatus": enforcement,
        "SendQuota": {"MaxSendRate": rate, "Max24HourSend": day, "SentLast24Hours": sent},
        "DedicatedIpAutoWarmupEnabled": False,
    }


def _domain_identity(
    *,
    verified: bool = True,
    dkim: str = "SUCCESS",
    signing: bool = True,
    mail_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "IdentityType": "DOMAIN",
        "VerifiedForSendingStatus": verified,
        "VerificationStatus": "SUCCESS" if verified else "PENDING",
        "DkimAttributes": {"SigningEnabled": signing, "Status": dkim},
    }
    if mail_from is not None:
        response["MailFromAttributes"] = mail_from
    return response


def _statuses(results: list[CheckResult]) -> list[tuple[str, Status]]:
    return [(result.name, result.status) for result in results]


# ---------------------------------------------------------------------------------------------- the stack
def test_stack_with_every_output_is_ok() -> None:
    # When the outputs of a deployed stack of this version are checked
    result = doctor.check_stack_outputs(OUTPUTS, _config())
    # Then they are all there
    assert result.status is Status.OK and "7 outputs present" in result.found


def test_stack_not_deployed_is_a_blocker() -> None:
    # When the stack has no outputs (not deployed in the region)
    result = doctor.check_stack_outputs({}, _config())
    # Then the fix is to deploy it there
    assert result.status is Status.BLOCKER and "npx cdk deploy" in result.fix and REGION in result.fix


def test_stack_older_than_the_code_is_a_blocker_naming_what_is_missing() -> None:
    # Given the outputs of a stack deployed before the alarm topic was an output
    outputs = {key: value for key, value in OUTPUTS.items() if key != "AlarmTopicArn"}
    # When they are checked
    result = doctor.check_stack_outputs(outputs, _config())
    # Then exactly that output is named
    assert result.status is Status.BLOCKER and "missing output(s) AlarmTopicArn:" in result.found


def test_without_tracking_the_configuration_set_output_is_not_required() -> None:
    # Given a configuration without delivery tracking and outputs without the configuration set
    outputs = {key: value for key, value in OUTPUTS.items() if key != "ConfigurationSetName"}
    # Then the outputs are complete for it
    assert doctor.check_stack_outputs(outputs, _config(delivery_tracking=False)).status is Status.OK


def test_dns_record_outputs_are_named_for_the_user_to_publish() -> None:
    # Given a stack whose sending domain has no hosted zone
    outputs = {**OUTPUTS, "DnsRecordDkim1": "a CNAME b", "DnsRecordMailFromMx": "m MX 10 h"}
    # Then the check lists those records
    found = doctor.check_stack_outputs(outputs, _config()).found
    assert "publish by hand: DnsRecordDkim1, DnsRecordMailFromMx" in found


# ---------------------------------------------------------------------------------------------- SES account
@pytest.mark.parametrize(
    ("account", "status"),
    [
        (_account(), Status.OK),
        (_account(sending=False), Status.BLOCKER),
        (_account(enforcement="SHUTDOWN"), Status.BLOCKER),
        (_account(enforcement="PROBATION"), Status.WARNING),
    ],
)
def test_account_sending(account: dict[str, Any], status: Status) -> None:
    # When the account's sending status is judged, then it has the expected status
    assert doctor.account_sending(account).status is status


@pytest.mark.parametrize(
    ("production", "ses_sandbox", "status", "words"),
    [
        (True, False, Status.OK, "any recipient"),
        (True, True, Status.WARNING, "set ses_sandbox: false"),
        (False, True, Status.WARNING, "request production access"),
        (False, False, Status.BLOCKER, "set ses_sandbox: true"),
    ],
)
def test_account_sandbox_against_the_configuration(
    production: bool, ses_sandbox: bool, status: Status, words: str
) -> None:
    # Given an account in or out of the sandbox and a configuration that says either
    config = _config(ses_sandbox=ses_sandbox)
    # When they are compared
    result = doctor.account_sandbox(_account(production=production), config)
    # Then a sandbox account with a production configuration is the blocker (sends denied)
    assert result.status is status and words in result.found + result.fix


def test_a_pending_production_access_request_is_reported() -> None:
    # Given a sandbox account whose request for production access is pending
    account = {
        **_account(production=False),
        "Details": {"ReviewDetails": {"Status": "PENDING", "CaseId": "1"}},
    }
    # Then the check says so
    assert (
        "production access request: PENDING"
        in doctor.account_sandbox(account, _config(ses_sandbox=True)).found
    )


@pytest.mark.parametrize(
    ("configured", "allowed", "status"),
    [
        (None, 14.0, Status.OK),  # the runs pace to the live quota
        (14.0, 14.0, Status.OK),  # capped at the quota
        (14.5, 14.0, Status.WARNING),  # just past it: paced to the quota, sized for more
        (1.0, 14.0, Status.OK),
    ],
)
def test_send_rate_against_the_configured_rate(
    configured: float | None, allowed: float, status: Status
) -> None:
    # Given a configured rate and the account's MaxSendRate
    config = _config(ses_max_send_rate=configured) if configured else _config()
    # When they are compared, then the status follows
    result = doctor.send_rate({"MaxSendRate": allowed}, config)
    assert result.status is status
    if status is not Status.OK:
        assert f"ses_max_send_rate: {allowed:g}" in result.fix


@pytest.mark.parametrize(
    ("maximum", "sent", "status"),
    [
        (-1.0, 1_000_000.0, Status.OK),  # -1: unlimited
        (200.0, 159.0, Status.OK),  # just below 80 %
        (200.0, 160.0, Status.WARNING),  # at 80 %
        (200.0, 199.0, Status.WARNING),
        (200.0, 200.0, Status.BLOCKER),  # at the quota
    ],
)
def test_daily_quota(maximum: float, sent: float, status: Status) -> None:
    # When the last 24 hours are compared with the quota, then the status follows
    assert doctor.daily_quota({"Max24HourSend": maximum, "SentLast24Hours": sent}).status is status


def test_ses_account_check_reads_the_account_once() -> None:
    # Given SES answering one GetAccount
    with _stubbed("sesv2") as (ses, stubber):
        stubber.add_response("get_account", _account(rate=10.0))
        # When the account is checked
        results = doctor.check_ses_account(ses, _config(ses_max_send_rate=10))
    # Then the four account checks come from that one answer
    assert _statuses(results) == [
        ("SES sending", Status.OK),
        ("SES sandbox", Status.OK),
        ("SES send rate", Status.OK),
        ("SES 24-hour quota", Status.OK),
    ]


# ---------------------------------------------------------------------------------------------- identities
def _identity_results(
    identity: str, response: dict[str, Any] | None, config: StepmailConfig
) -> list[CheckResult]:
    with _stubbed("sesv2") as (ses, stubber):
        if response is None:
            stubber.add_client_error("get_email_identity", "NotFoundException", http_status_code=404)
        else:
            stubber.add_response("get_email_identity", response, {"EmailIdentity": identity})
        return doctor.check_sender_identity(ses, identity, config)


def test_a_verified_domain_with_dkim_and_mail_from_is_all_ok() -> None:
    # Given a verified domain, DKIM SUCCESS, MAIL FROM SUCCESS
    mail_from = {"MailFromDomain": "mail.example.com", "MailFromDomainStatus": "SUCCESS"}
    mail_from["BehaviorOnMxFailure"] = "USE_DEFAULT_VALUE"
    # When it is checked
    results = _identity_results("example.com", _domain_identity(mail_from=mail_from), _config())
    # Then its three checks pass
    assert _statuses(results) == [
        ("sender identity example.com", Status.OK),
        ("DKIM of example.com", Status.OK),
        ("MAIL FROM of example.com", Status.OK),
    ]


def test_a_verified_address_has_no_dkim_or_mail_from_check_of_its_own() -> None:
    # Given a verified address identity
    response = {"IdentityType": "EMAIL_ADDRESS", "VerifiedForSendingStatus": True}
    config = _config(sender_identities=["alerts@example.org"], default_sender="alerts@example.org")
    # When it is checked, then only its verification is (DKIM and MAIL FROM belong to its domain)
    assert _statuses(_identity_results("alerts@example.org", response, config)) == [
        ("sender identity alerts@example.org", Status.OK)
    ]


@pytest.mark.parametrize(
    ("identity", "config", "fix"),
    [
        ("example.com", _config(), "set sending_domain: example.com"),
        ("example.com", _config(sending_domain="example.com"), "deploy the stack"),
        ("a@example.com", _config(), "click the link"),
    ],
)
def test_a_missing_identity_is_a_blocker_with_the_way_to_create_it(
    identity: str, config: StepmailConfig, fix: str
) -> None:
    # When SES has no such identity
    [result] = _identity_results(identity, None, config)
    # Then it is a blocker, and the fix depends on its kind and on whether the stack makes it
    assert result.status is Status.BLOCKER and "not an SES identity in us-east-1" in result.found
    assert fix in result.fix


def test_an_unverified_domain_is_a_blocker_pointing_at_its_dkim_records() -> None:
    # When the domain is not verified yet
    results = _identity_results("example.com", _domain_identity(verified=False, dkim="PENDING"), _config())
    # Then verification is the blocker, DKIM a warning
    assert _statuses(results)[:2] == [
        ("sender identity example.com", Status.BLOCKER),
        ("DKIM of example.com", Status.WARNING),
    ]
    assert "(PENDING)" in results[0].found and "DnsRecordDkim" in results[0].fix


@pytest.mark.parametrize(
    ("dkim", "signing", "status"),
    [
        ("SUCCESS", True, Status.OK),
        ("PENDING", True, Status.WARNING),
        ("FAILED", True, Status.WARNING),
        ("TEMPORARY_FAILURE", True, Status.WARNING),
        ("NOT_STARTED", True, Status.WARNING),
        ("SUCCESS", False, Status.WARNING),  # records fine, signing switched off
    ],
)
def test_dkim_status(dkim: str, signing: bool, status: Status) -> None:
    # When DKIM is judged, then only SUCCESS with signing on is ok
    result = doctor.dkim_status("example.com", _domain_identity(dkim=dkim, signing=signing))
    assert result.status is status


@pytest.mark.parametrize(
    ("attributes", "status"),
    [
        (None, Status.OK),  # not set: SES's own MAIL FROM
        ({"MailFromDomain": "mail.example.com", "MailFromDomainStatus": "SUCCESS"}, Status.OK),
        ({"MailFromDomain": "mail.example.com", "MailFromDomainStatus": "PENDING"}, Status.WARNING),
        (
            {"MailFromDomain": "mail.example.com", "MailFromDomainStatus": "FAILED"}
            | {"BehaviorOnMxFailure": "USE_DEFAULT_VALUE"},
            Status.WARNING,
        ),
        (
            {"MailFromDomain": "mail.example.com", "MailFromDomainStatus": "FAILED"}
            | {"BehaviorOnMxFailure": "REJECT_MESSAGE"},
            Status.BLOCKER,  # SES rejects the mail
        ),
    ],
)
def test_mail_from_status(attributes: dict[str, Any] | None, status: Status) -> None:
    # When the MAIL FROM domain is judged, then a missing MX only blocks when SES is set to reject
    assert doctor.mail_from_status("example.com", _domain_identity(mail_from=attributes)).status is status


@pytest.mark.parametrize(
    ("answers", "status"),
    [
        (
            [("me@example.org", {"IdentityType": "EMAIL_ADDRESS", "VerifiedForSendingStatus": True})],
            Status.OK,
        ),
        (
            [("me@example.org", None), ("example.org", _domain_identity())],
            Status.OK,
        ),  # its domain is verified
        ([("me@example.org", None), ("example.org", None)], Status.WARNING),
        (
            [
                ("me@example.org", {"IdentityType": "EMAIL_ADDRESS", "VerifiedForSendingStatus": False}),
                ("example.org", _domain_identity(verified=False)),
            ],
            Status.WARNING,
        ),
    ],
)
def test_sandbox_recipient_is_verified_by_itself_or_its_domain(
    answers: list[tuple[str, dict[str, Any] | None]], status: Status
) -> None:
    # Given a sandbox configuration with one recipient address, and SES's answers for it and its domain
    config = _config(ses_sandbox=True, sandbox_recipients=["me@example.org"])
    with _stubbed("sesv2") as (ses, stubber):
        for identity, response in answers:
            if response is None:
                stubber.add_client_error("get_email_identity", "NotFoundException", http_status_code=404)
            else:
                stubber.add_response("get_email_identity", response, {"EmailIdentity": identity})
        # When the recipients are checked
        [result] = doctor.check_sandbox_recipients(ses, config)
    # Then the recipient is ok if it or its domain is verified
    assert result.status is status


# ---------------------------------------------------------------------------------------------- DMARC
class _FakeDns:
    """TXT records by name; records every lookup; raises for names set to an exception."""

    def __init__(self, records: dict[str, list[str] | Exception]) -> None:
        self.records = records
        self.lookups: list[str] = []

    def __call__(self, name: str) -> list[str]:
        self.lookups.append(name)
        answer = self.records.get(name, [])
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_one_dmarc_record_is_ok_and_spf_records_are_not_mistaken_for_one() -> None:
    # Given a domain with a DMARC record, and an SPF record at the same name
    dns_ = _FakeDns({"_dmarc.example.com": ["v=spf1 -all", "v=DMARC1; p=none"]})
    # When DMARC is checked
    result = doctor.check_dmarc("example.com", dns_, _config())
    # Then the one DMARC record is found, looked up at _dmarc.<domain>
    assert result.status is Status.OK and result.found == "v=DMARC1; p=none"
    assert dns_.lookups == ["_dmarc.example.com"]


def test_no_dmarc_record_is_a_warning_whose_fix_depends_on_the_stack() -> None:
    # Given no DMARC record anywhere
    dns_ = _FakeDns({})
    # When the stack's own sending domain is checked, the fix is to deploy; for another, to publish one
    own = doctor.check_dmarc("example.com", dns_, _config(sending_domain="example.com"))
    other = doctor.check_dmarc("example.com", dns_, _config())
    assert own.status is other.status is Status.WARNING
    assert "deploy the stack" in own.fix and "publish a TXT record at _dmarc.example.com" in other.fix


def test_two_dmarc_records_are_a_warning() -> None:
    # Given two DMARC records (receivers ignore both)
    dns_ = _FakeDns({"_dmarc.example.com": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]})
    # Then the check says to keep one
    result = doctor.check_dmarc("example.com", dns_, _config())
    assert result.status is Status.WARNING and "2 DMARC records" in result.found


def test_a_subdomain_is_covered_by_its_parents_record_down_to_two_labels() -> None:
    # Given a record only at the organizational domain
    dns_ = _FakeDns({"_dmarc.example.org": ["v=DMARC1; p=quarantine"]})
    # When a subdomain two levels down is checked
    result = doctor.check_dmarc("a.mail.example.org", dns_, _config())
    # Then the parent's record is found, after looking at each level, and said to be inherited
    assert result.status is Status.OK and "at _dmarc.example.org" in result.found
    assert dns_.lookups == ["_dmarc.a.mail.example.org", "_dmarc.mail.example.org", "_dmarc.example.org"]


def test_the_lookup_stops_at_two_labels() -> None:
    # Given no record at all
    dns_ = _FakeDns({})
    # When a two-label domain is checked, then no top-level domain is looked up
    doctor.check_dmarc("example.org", dns_, _config())
    assert dns_.lookups == ["_dmarc.example.org"]


def test_a_failed_dns_lookup_is_a_warning_not_a_crash() -> None:
    # Given a resolver that cannot answer
    dns_ = _FakeDns({"_dmarc.example.com": DnsLookupError("LifetimeTimeout")})
    # Then the check says it could not look
    result = doctor.check_dmarc("example.com", dns_, _config())
    assert (
        result.status is Status.WARNING
        and "could not look up _dmarc.example.com: LifetimeTimeout" in result.found
    )


def test_sending_domains_are_each_identitys_domain_once() -> None:
    # Then a domain identity and addresses at it and elsewhere give each domain once, in order
    assert doctor.sending_domains(["Example.com", "a@example.com", "b@Other.org"]) == [
        "example.com",
        "other.org",
    ]


class _TxtAnswer:
    def __init__(self, *strings: bytes) -> None:
        self.strings = strings


def test_default_resolver_joins_each_records_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given dnspython answering two records, the first split into 255-byte strings as DNS stores them
    answers = [_TxtAnswer(b"v=DMARC1; p=none; ", b"rua=mailto:d@example.com"), _TxtAnswer(b"other")]
    monkeypatch.setattr(dns.resolver, "resolve", lambda name, kind, lifetime: answers)
    # When the default resolver reads them, then each record is one string
    assert doctor.dns_txt_records("_dmarc.example.com") == [
        "v=DMARC1; p=none; rua=mailto:d@example.com",
        "other",
    ]


@pytest.mark.parametrize(
    ("error", "expected"),
    [(dns.resolver.NXDOMAIN(), []), (dns.resolver.NoAnswer(), []), (dns.exception.Timeout(), DnsLookupError)],
)
def test_default_resolver_tells_no_record_from_no_answer(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: Any
) -> None:
    # Given dnspython raising: the name does not exist / has no TXT / no server answered
    def resolve(name: str, kind: str, lifetime: float) -> list[Any]:
        raise error

    monkeypatch.setattr(dns.resolver, "resolve", resolve)
    # Then "no record" is an empty list and "no answer" is a DnsLookupError
    if expected is DnsLookupError:
        with pytest.raises(DnsLookupError, match="Timeout"):
            doctor.dns_txt_records("_dmarc.example.com")
    else:
        assert doctor.dns_txt_records("_dmarc.example.com") == expected


# ------------------------------------------------------------------------------------ configuration sets
def _event_destination(enabled: bool) -> dict[str, Any]:
    return {
        "Name": "ToEventBridge",
        "Enabled": enabled,
        "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE"],
        "EventBridgeDestination": {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"},
    }


@pytest.mark.parametrize(
    ("destinations", "status"),
    [
        ([_event_destination(True)], Status.OK),
        ([_event_destination(False)], Status.WARNING),
        ([], Status.WARNING),
    ],
)
def test_the_tracked_set_needs_its_eventbridge_destination_enabled(
    destinations: list[dict[str, Any]], status: Status
) -> None:
    # Given the stack's tracked set, existing and sending, with its destination enabled, disabled, or none
    with _stubbed("sesv2") as (ses, stubber):
        stubber.add_response("get_configuration_set", {"ConfigurationSetName": "Stepmail-tracking"})
        stubber.add_response("get_configuration_set_event_destinations", {"EventDestinations": destinations})
        # When it is checked
        results = doctor.check_configuration_set(ses, "Stepmail-tracking", tracked=True)
    # Then the set is fine and its destination has the status
    assert _statuses(results) == [
        ("configuration set Stepmail-tracking", Status.OK),
        ("delivery events of Stepmail-tracking", status),
    ]


def test_a_missing_configuration_set_is_a_blocker() -> None:
    # Given SES without the set a message may name
    with _stubbed("sesv2") as (ses, stubber):
        stubber.add_client_error("get_configuration_set", "NotFoundException", http_status_code=404)
        [result] = doctor.check_configuration_set(ses, "stepmail-events", tracked=False)
    # Then every send naming it would be rejected
    assert result.status is Status.BLOCKER and "create it in SES" in result.fix


def test_a_set_with_sending_disabled_is_a_blocker_and_an_untracked_set_has_no_destination_check() -> None:
    # Given a set of the operator's (not tracked by the stack) with sending disabled
    with _stubbed("sesv2") as (ses, stubber):
        response = {"ConfigurationSetName": "stepmail-events", "SendingOptions": {"SendingEnabled": False}}
        stubber.add_response("get_configuration_set", response)
        # When it is checked (no event destination call is stubbed: none may be made)
        [result] = doctor.check_configuration_set(ses, "stepmail-events", tracked=False)
    # Then it is a blocker with the command that enables it
    assert result.status is Status.BLOCKER and "--sending-enabled" in result.fix


# ------------------------------------------------------------------------------------ the event source
@pytest.mark.parametrize(
    ("states", "status"),
    [
        ([], Status.BLOCKER),
        (["Enabled"], Status.OK),
        (["Disabled"], Status.BLOCKER),
        (["Creating"], Status.WARNING),
    ],
)
def test_event_source_mapping_of_the_mail_queue(states: list[str], status: Status) -> None:
    # Given the mail queue's ARN and the mappings Lambda lists for it
    mappings = [
        {"UUID": f"00000000-0000-0000-0000-00000000000{n}", "State": state, "EventSourceArn": QUEUE_ARN}
        for n, state in enumerate(states)
    ]
    with _stubbed("sqs") as (sqs, sqs_stub), _stubbed("lambda") as (lambda_, lambda_stub):
        sqs_stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": QUEUE_ARN}},
            {"QueueUrl": QUEUE_URL, "AttributeNames": ["QueueArn"]},
        )
        lambda_stub.add_response(
            "list_event_source_mappings", {"EventSourceMappings": mappings}, {"EventSourceArn": QUEUE_ARN}
        )
        # When the mapping is checked
        result = doctor.check_event_source_mapping(lambda_, sqs, QUEUE_URL)
    # Then it has the status, and a disabled one gets the command that enables it
    assert result.status is status
    if states == ["Disabled"]:
        assert "--uuid 00000000-0000-0000-0000-000000000000 --enabled" in result.fix


# ---------------------------------------------------------------------------------------------- alarms
def _subscription(arn: str, protocol: str = "email") -> dict[str, Any]:
    return {
        "SubscriptionArn": arn,
        "Protocol": protocol,
        "Endpoint": "ops@example.com",
        "TopicArn": TOPIC_ARN,
    }


@pytest.mark.parametrize(
    ("pages", "status", "found"),
    [
        ([[]], Status.WARNING, "none: alarms reach no one"),
        ([[_subscription(f"{TOPIC_ARN}:1")]], Status.OK, "1 confirmed"),
        ([[_subscription("PendingConfirmation")]], Status.WARNING, "1 of 1 pending confirmation (email)"),
        # a pending one on the second page is still found
        (
            [[_subscription(f"{TOPIC_ARN}:1")], [_subscription("PendingConfirmation")]],
            Status.WARNING,
            "1 of 2",
        ),
    ],
)
def test_alarm_subscriptions(pages: list[list[dict[str, Any]]], status: Status, found: str) -> None:
    # Given the topic's subscriptions, page by page
    with _stubbed("sns") as (sns, stubber):
        for number, page in enumerate(pages):
            response: dict[str, Any] = {"Subscriptions": page}
            expected: dict[str, Any] = {"TopicArn": TOPIC_ARN}
            if number + 1 < len(pages):
                response["NextToken"] = f"page-{number + 1}"
            if number:
                expected["NextToken"] = f"page-{number}"
            stubber.add_response("list_subscriptions_by_topic", response, expected)
        # When they are checked
        result = doctor.check_alarm_subscriptions(sns, TOPIC_ARN)
    # Then the status and what was found follow, without printing the subscriber's address
    assert result.status is status and found in result.found
    assert "ops@example.com" not in result.found + result.fix


def test_no_subscription_though_alarm_email_is_set_means_sns_deleted_it() -> None:
    # Given a stack with alarm_email whose topic has no subscription left (unconfirmed for 48 hours)
    with _stubbed("sns") as (sns, stubber):
        stubber.add_response("list_subscriptions_by_topic", {"Subscriptions": []}, {"TopicArn": TOPIC_ARN})
        result = doctor.check_alarm_subscriptions(sns, TOPIC_ARN, alarm_email="ops@example.com")
    # Then the fix is to subscribe again by hand (a redeploy would not: CloudFormation still sees it)
    assert result.status is Status.WARNING and "SNS deleted the subscription" in result.found
    assert f"aws sns subscribe --topic-arn {TOPIC_ARN} --protocol email" in result.fix
    assert "ops@example.com" not in result.found + result.fix


# ---------------------------------------------------------------------------------------------- the DLQ
@pytest.mark.parametrize(
    ("visible", "in_flight", "status"),
    [("0", "0", Status.OK), ("0", "1", Status.WARNING), ("3", "1", Status.WARNING)],
)
def test_dead_letter_queue(visible: str, in_flight: str, status: Status) -> None:
    # Given the DLQ's approximate counts
    attributes = {"ApproximateNumberOfMessages": visible, "ApproximateNumberOfMessagesNotVisible": in_flight}
    with _stubbed("sqs") as (sqs, stubber):
        stubber.add_response("get_queue_attributes", {"Attributes": attributes})
        result = doctor.check_dead_letters(sqs, DLQ_URL)
    # Then an empty DLQ is ok; anything in it (even in flight) is a warning with the commands to use
    assert result.status is status
    if status is Status.WARNING:
        assert f"about {int(visible) + int(in_flight)}" in result.found and "stepmail dlq list" in result.fix


# ---------------------------------------------------------------------------------------------- the whole run
def _run(
    config: StepmailConfig, account: dict[str, Any], *, ses_error: str | None = None
) -> list[CheckResult]:
    """run_doctor over stubbed clients answering a healthy stack (the account as given)."""
    dns_ = _FakeDns({"_dmarc.example.com": ["v=DMARC1; p=none"]})
    with (
        _stubbed("sesv2") as (ses, ses_stub),
        _stubbed("lambda") as (lambda_, lambda_stub),
        _stubbed("sns") as (sns, sns_stub),
        _stubbed("sqs") as (sqs, sqs_stub),
    ):
        if ses_error:
            ses_stub.add_client_error(
                "get_account", ses_error, "User is not authorized", http_status_code=403
            )
        else:
            ses_stub.add_response("get_account", account)
        ses_stub.add_response("get_email_identity", _domain_identity(), {"EmailIdentity": "example.com"})
        ses_stub.add_response("get_configuration_set", {"ConfigurationSetName": "Stepmail-tracking"})
        ses_stub.add_response(
            "get_configuration_set_event_destinations", {"EventDestinations": [_event_destination(True)]}
        )
        sqs_stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": QUEUE_ARN}})
        lambda_stub.add_response(
            "list_event_source_mappings", {"EventSourceMappings": [{"State": "Enabled"}]}
        )
        sns_stub.add_response(
            "list_subscriptions_by_topic", {"Subscriptions": [_subscription(f"{TOPIC_ARN}:1")]}
        )
        sqs_stub.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "0"}})
        return doctor.run_doctor(AwsClients(ses, lambda_, sns, sqs), config, OUTPUTS, dns_)


def test_a_healthy_deployment_passes_every_check_and_exits_zero() -> None:
    # When the doctor runs against a healthy stack and account
    results = _run(_config(ses_max_send_rate=14), _account())
    # Then every check is ok, in the order a user fixes things, and the exit code is 0
    assert [name for name, _ in _statuses(results)] == [
        "stack Stepmail",
        "SES sending",
        "SES sandbox",
        "SES send rate",
        "SES 24-hour quota",
        "sender identity example.com",
        "DKIM of example.com",
        "MAIL FROM of example.com",
        "DMARC of example.com",
        "configuration set Stepmail-tracking",
        "delivery events of Stepmail-tracking",
        "event source mapping",
        "alarm subscriptions",
        "dead-letter queue",
    ]
    assert {status for _, status in _statuses(results)} == {Status.OK}
    assert doctor.exit_code(results) == 0


def test_a_sandbox_account_with_a_production_configuration_exits_non_zero() -> None:
    # When the account is in the sandbox but the stack was deployed for production
    results = _run(_config(ses_max_send_rate=1), _account(production=False, rate=1.0, day=200.0))
    # Then the sandbox check is the one blocker and the exit code says so
    assert [(r.name, r.status) for r in results if r.status is not Status.OK] == [
        ("SES sandbox", Status.BLOCKER)
    ]
    assert doctor.exit_code(results) == 1


def test_a_refused_call_becomes_a_warning_and_the_other_checks_still_run() -> None:
    # When GetAccount is refused (the doctor's credentials lack ses:GetAccount)
    results = _run(_config(ses_max_send_rate=14), _account(), ses_error="AccessDeniedException")
    # Then that check is a warning naming the action, and every other check ran and passed
    [refused] = [result for result in results if result.status is not Status.OK]
    assert refused.name == "SES account" and refused.status is Status.WARNING
    assert "AccessDeniedException" in refused.found and "ses:GetAccount" in refused.fix
    assert len(results) == 11  # the four account checks are one warning; the ten others ran


def test_without_its_output_a_resource_is_not_checked() -> None:
    # Given a stack without outputs, and no clients at all (any call would fail)
    clients = AwsClients(sesv2=None, lambda_=None, sns=None, sqs=None)
    # When the stack's resources are checked
    results = doctor.check_stack_resources(clients, {}, _config())
    # Then each is a warning that points at the outputs check, and nothing was called
    assert _statuses(results) == [
        ("event source mapping", Status.WARNING),
        ("alarm subscriptions", Status.WARNING),
        ("dead-letter queue", Status.WARNING),
    ]
    assert all("not checked: the stack has no" in result.found for result in results)


def test_without_dns_the_dmarc_lookups_are_one_line_saying_so() -> None:
    # Given a resolver that fails the test if it is ever asked
    def no_dns(name: str) -> list[str]:
        raise AssertionError(f"looked up {name}")

    # When the doctor runs without DNS (a local twin)
    with (
        _stubbed("sesv2") as (ses, ses_stub),
        _stubbed("lambda") as (lambda_, _),
        _stubbed("sns") as (sns, _),
        _stubbed("sqs") as (sqs, _),
    ):
        ses_stub.add_response("get_account", _account())
        ses_stub.add_response("get_email_identity", _domain_identity(), {"EmailIdentity": "example.com"})
        config = _config(delivery_tracking=False, ses_max_send_rate=14)
        results = doctor.run_doctor(AwsClients(ses, lambda_, sns, sqs), config, {}, no_dns, check_dns=False)

    # Then no name was looked up and one ok line names the domains not checked
    (dmarc,) = [result for result in results if result.name.startswith("DMARC")]
    assert dmarc.status is Status.OK and dmarc.found == "not checked on the local twin (no DNS): example.com"


def test_the_stack_checked_is_the_one_named() -> None:
    # When the doctor is pointed at another stack than the configuration's, and it has no outputs
    result = doctor.check_stack_outputs({}, _config(), "Elsewhere")
    # Then the check and its fix name that stack
    assert result.name == "stack Elsewhere" and "(stack Elsewhere, region us-east-1)" in result.fix


def test_stack_outputs_are_read_by_key_and_a_missing_stack_has_none() -> None:
    # Given CloudFormation answering one stack with two outputs, then "does not exist" for another
    with _stubbed("cloudformation") as (cloudformation, stubber):
        outputs = [
            {"OutputKey": "QueueUrl", "OutputValue": QUEUE_URL},
            {"OutputKey": "A", "OutputValue": "b"},
        ]
        stack = {
            "StackName": "Stepmail",
            "CreationTime": "2026-12-03T00:00:00Z",
            "StackStatus": "CREATE_COMPLETE",
        }
        stubber.add_response(
            "describe_stacks", {"Stacks": [{**stack, "Outputs": outputs}]}, {"StackName": "Stepmail"}
        )
        stubber.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id Nope does not exist", http_status_code=400
        )
        stubber.add_client_error("describe_stacks", "AccessDenied", "not authorized", http_status_code=403)

        # Then the outputs come back by key, a missing stack has none, and a refusal is raised
        assert doctor.stack_outputs(cloudformation, "Stepmail") == {"QueueUrl": QUEUE_URL, "A": "b"}
        assert doctor.stack_outputs(cloudformation, "Nope") == {}
        with pytest.raises(ClientError):
            doctor.stack_outputs(cloudformation, "Stepmail")


# ---------------------------------------------------------------------------------------------- output
_RESULTS = [
    CheckResult("SES sending", Status.OK, "enabled, enforcement HEALTHY", "never shown"),
    CheckResult("SES sandbox", Status.BLOCKER, "in the sandbox", "set ses_sandbox: true"),
    CheckResult("dead-letter queue", Status.WARNING, "about 2 message(s)", "`stepmail dlq list`"),
]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [([], 0), ([Status.OK, Status.WARNING], 0), ([Status.OK, Status.BLOCKER], 1), ([Status.BLOCKER] * 2, 1)],
)
def test_exit_code_is_non_zero_iff_a_blocker(statuses: list[Status], code: int) -> None:
    # Then warnings never fail the command; one blocker does
    assert doctor.exit_code(CheckResult("c", status, "f") for status in statuses) == code


def test_render_checklist_shows_counts_marks_and_fixes_of_what_is_not_ok() -> None:
    # When the checklist is rendered
    text = doctor.render_checklist(_RESULTS)
    lines = text.splitlines()
    # Then the header counts, each check is one line with its mark, and a fix follows what is not ok
    assert lines[0] == "stepmail doctor: 3 checks, 1 blocker(s), 1 warning(s)"
    assert lines[2] == "  [ok]      SES sending: enabled, enforcement HEALTHY"
    assert lines[3] == "  [BLOCKER] SES sandbox: in the sandbox"
    assert lines[4] == "              fix: set ses_sandbox: true"
    assert lines[5] == "  [warning] dead-letter queue: about 2 message(s)"
    assert "never shown" not in text


def test_checklist_json_has_the_exit_code_counts_and_checks() -> None:
    # When the checklist is written as JSON
    document = json.loads(doctor.checklist_json(_RESULTS))
    # Then a script can read the outcome without parsing text
    assert document["exitCode"] == 1
    assert document["counts"] == {"ok": 1, "warning": 1, "blocker": 1}
    assert document["checks"][1] == {
        "name": "SES sandbox",
        "status": "blocker",
        "found": "in the sandbox",
        "fix": "set ses_sandbox: true",
    }
