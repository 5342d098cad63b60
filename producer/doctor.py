"""``stepmail doctor``: a preflight of the deployed stack and its SES account, as a checklist.

Each check reads what it needs through the boto3 clients it is given (and the configuration, the
stack's outputs, a DNS resolver) and returns one or more :class:`CheckResult`: a name, a status (ok,
warning, blocker), what it found and the fix to apply.  A *blocker* means mail will not go out (or will
be dead-lettered) as deployed; a *warning* means it goes out, but something is degraded or not done yet.
The command exits non-zero if and only if a check found a blocker (:func:`exit_code`).

Nothing here reaches AWS or DNS on its own: the clients are passed in (tests give botocore Stubbers) and
DNS goes through a resolver function (tests give a fake; :func:`dns_txt_records` is the real one).  A
check whose call is refused (a missing permission, throttling) becomes a warning saying what could not
be read, never a crash of the whole checklist.

Which assumption about AWS each check settles: docs/aws-assumptions.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import dns.exception
import dns.resolver
from botocore.exceptions import BotoCoreError, ClientError

from infra import resources
from infra.config import MAILBOX_SIMULATOR_DOMAIN, StepmailConfig, dmarc_name


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BLOCKER = "blocker"


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist: what was checked, its status, what was found and how to fix it."""

    name: str
    status: Status
    found: str
    fix: str = ""


def _ok(name: str, found: str) -> CheckResult:
    return CheckResult(name, Status.OK, found)


def _warning(name: str, found: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARNING, found, fix)


def _blocker(name: str, found: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.BLOCKER, found, fix)


class DnsLookupError(Exception):
    """The resolver could not tell whether a name has TXT records (timeout, no name server answered)."""


#: A DNS TXT lookup: the TXT strings of a name ([] when it has none); raises DnsLookupError when unsure.
TxtResolver = Callable[[str], list[str]]


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the doctor reads through, all in the stack's region."""

    sesv2: Any
    lambda_: Any
    sns: Any
    sqs: Any


# ---------------------------------------------------------------------------------------------- running
def run_doctor(
    clients: AwsClients,
    config: StepmailConfig,
    outputs: Mapping[str, str],
    resolver: TxtResolver | None = None,
    *,
    check_dns: bool = True,
    stack_name: str | None = None,
) -> list[CheckResult]:
    """Every check, in the order a user fixes things: the stack, the account, identities, the plumbing.

    ``check_dns`` false (a local twin, which has no DNS) replaces the DMARC lookups by one line saying so;
    ``stack_name`` is the stack the outputs were read from (default: the configuration's).
    """
    return [
        check_stack_outputs(outputs, config, stack_name),
        *_ses_checks(clients.sesv2, config, resolver or dns_txt_records, check_dns=check_dns),
        *check_stack_resources(clients, outputs, config),
    ]


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The stack's outputs, or {} when there is no such stack in the client's region.

    Raises
    ------
    botocore.exceptions.ClientError
        Any other refusal (no permission to describe stacks, throttling).
    """
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") == "ValidationError" and "does not exist" in details.get("Message", ""):
            return {}
        raise
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


def _ses_checks(
    ses: Any, config: StepmailConfig, resolver: TxtResolver, *, check_dns: bool = True
) -> list[CheckResult]:
    """The account, each sender identity (and sandbox recipient), DMARC, the configuration sets."""
    results = _guarded("SES account", "ses:GetAccount", partial(check_ses_account, ses, config))
    for identity in config.sender_identities:
        check = partial(check_sender_identity, ses, identity, config)
        results += _guarded(f"sender identity {identity}", "ses:GetEmailIdentity", check)
    if config.ses_sandbox:
        results += check_sandbox_recipients(ses, config)
    domains = sending_domains(config.sender_identities)
    if check_dns:
        results += [check_dmarc(domain, resolver, config) for domain in domains]
    else:
        results.append(_ok("DMARC", f"not checked on the local twin (no DNS): {', '.join(domains)}"))
    for name in config.sendable_configuration_sets:
        tracked = name == config.tracking_configuration_set
        check = partial(check_configuration_set, ses, name, tracked=tracked)
        results += _guarded(f"configuration set {name}", "ses:GetConfigurationSet", check)
    return results


def check_stack_resources(
    clients: AwsClients, outputs: Mapping[str, str], config: StepmailConfig
) -> list[CheckResult]:
    """The stack's resources named by its outputs: the event source, the alarm topic, the DLQ."""
    checks: list[tuple[str, str, str, Callable[[str], CheckResult]]] = [
        (
            resources.QUEUE_URL_OUTPUT,
            "event source mapping",
            "lambda:ListEventSourceMappings and sqs:GetQueueAttributes",
            partial(check_event_source_mapping, clients.lambda_, clients.sqs),
        ),
        (
            resources.ALARM_TOPIC_OUTPUT,
            "alarm subscriptions",
            "sns:ListSubscriptionsByTopic",
            partial(check_alarm_subscriptions, clients.sns, alarm_email=config.alarm_email),
        ),
        (
            resources.DEAD_LETTER_QUEUE_URL_OUTPUT,
            "dead-letter queue",
            "sqs:GetQueueAttributes",
            partial(check_dead_letters, clients.sqs),
        ),
    ]
    results: list[CheckResult] = []
    for key, name, action, check in checks:
        results += _with_output(outputs, key, name, action, check)
    return results


def _guarded(name: str, action: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run ``check``; a refused or failed AWS call becomes a warning naming what could not be read."""
    try:
        return check()
    except ClientError as error:
        details = error.response.get("Error", {})
        found = f"could not check: {details.get('Code', 'error')} {details.get('Message', '')}".rstrip()
        return [
            _warning(name, found, f"give the doctor's credentials {action} (read-only), then run it again")
        ]
    except BotoCoreError as error:
        return [
            _warning(name, f"could not check: {error}", "check the network and the region, then run it again")
        ]


def _with_output(
    outputs: Mapping[str, str], key: str, name: str, action: str, check: Callable[[str], CheckResult]
) -> list[CheckResult]:
    """Check a resource the stack names in an output (a missing output is the outputs check's blocker)."""
    value = outputs.get(key)
    if not value:
        return [_warning(name, f"not checked: the stack has no {key} output", "see the outputs check")]
    return _guarded(name, action, lambda: [check(value)])


# ---------------------------------------------------------------------------------------------- the stack
def required_outputs(config: StepmailConfig) -> tuple[str, ...]:
    """The outputs this version of the stack publishes and the CLI or the doctor reads."""
    keys = (
        resources.QUEUE_URL_OUTPUT,
        resources.DEAD_LETTER_QUEUE_URL_OUTPUT,
        resources.ATTACHMENTS_BUCKET_OUTPUT,
        resources.LOCK_TABLE_OUTPUT,
        resources.STATE_MACHINE_ARN_OUTPUT,
        resources.ALARM_TOPIC_OUTPUT,
    )
    return (*keys, resources.CONFIGURATION_SET_OUTPUT) if config.delivery_tracking else keys


def check_stack_outputs(
    outputs: Mapping[str, str], config: StepmailConfig, stack_name: str | None = None
) -> CheckResult:
    stack_name = stack_name or config.stack_name
    name = f"stack {stack_name}"
    if not outputs:
        return _blocker(
            name,
            f"no outputs: the stack is not deployed in {config.region}",
            f"deploy it: `npx cdk deploy` (stack {stack_name}, region {config.region})",
        )
    missing = [key for key in required_outputs(config) if not outputs.get(key)]
    if missing:
        return _blocker(
            name,
            f"missing output(s) {', '.join(missing)}: the stack is older than this code",
            "deploy this version: `npx cdk deploy`",
        )
    found = f"deployed, its {len(required_outputs(config))} outputs present"
    dns_records = sorted(key for key in outputs if key.startswith(resources.DNS_RECORD_OUTPUT_PREFIX))
    if dns_records:
        found += f"; DNS records to publish by hand: {', '.join(dns_records)}"
    return _ok(name, found)


# ---------------------------------------------------------------------------------------------- SES account
def check_ses_account(sesv2: Any, config: StepmailConfig) -> list[CheckResult]:
    """Sending enabled, sandbox or production, the send rate and the 24-hour quota (one GetAccount)."""
    account = sesv2.get_account()
    quota = account.get("SendQuota", {})
    return [
        account_sending(account),
        account_sandbox(account, config),
        send_rate(quota, config),
        daily_quota(quota),
    ]


def account_sending(account: Mapping[str, Any]) -> CheckResult:
    name = "SES sending"
    enforcement = account.get("EnforcementStatus", "HEALTHY")
    if not account.get("SendingEnabled", False):
        return _blocker(
            name,
            f"sending is disabled for the account (enforcement {enforcement})",
            "if you paused it: `aws sesv2 put-account-sending-attributes --sending-enabled`; if AWS did, "
            "answer its case from the SES console's reputation metrics page",
        )
    if enforcement == "SHUTDOWN":
        return _blocker(
            name,
            "AWS has shut down sending for the account (SHUTDOWN)",
            "answer AWS's case from the SES console's reputation metrics page",
        )
    if enforcement == "PROBATION":
        return _warning(
            name,
            "the account is under review (PROBATION): its bounce or complaint rate was too high",
            "fix the cause (the reputation alarms say which rate) before volume grows",
        )
    return _ok(name, f"enabled, enforcement {enforcement}")


def account_sandbox(account: Mapping[str, Any], config: StepmailConfig) -> CheckResult:
    """Production access against ``ses_sandbox``: the sender's IAM differs between the two."""
    name = "SES sandbox"
    production = bool(account.get("ProductionAccessEnabled", False))
    review = account.get("Details", {}).get("ReviewDetails", {}).get("Status")
    request = f" (production access request: {review})" if review else ""
    if production and not config.ses_sandbox:
        return _ok(name, "production access: any recipient")
    if production:
        return _warning(
            name,
            "production access, but ses_sandbox is true: the sender's role also allows the sandbox "
            "recipients' identities, which production does not need",
            "set ses_sandbox: false (and drop sandbox_recipients), then `npx cdk deploy`",
        )
    if config.ses_sandbox:
        return _warning(
            name,
            f"in the sandbox in {config.region}{request}: mail goes only to verified recipients and the "
            "mailbox simulator, at most 200 emails per 24 h and 1 per second",
            "request production access (SES console, Account dashboard); until then send to "
            "sandbox_recipients only",
        )
    return _blocker(
        name,
        f"in the sandbox in {config.region}{request}, and ses_sandbox is false: there SES also checks the "
        "sender's permission on each recipient's identity, so sends are denied and dead-lettered",
        "set ses_sandbox: true and list the verified recipients in sandbox_recipients, then "
        "`npx cdk deploy`; or request production access",
    )


def send_rate(quota: Mapping[str, Any], config: StepmailConfig) -> CheckResult:
    """The account's MaxSendRate against ``ses_max_send_rate``, which only caps the pacing.

    The runs pace to the live quota (re-read every ``quota_refresh_seconds``), under the cap when one is
    set; the cap also derives the event source's batches and concurrency and the retries.  A cap above
    the quota sends no faster than the quota, but starts more runs than can send: they wait for a send
    slot and give messages back to the queue.  Mail still goes out: a warning, not a blocker.
    """
    name = "SES send rate"
    allowed = float(quota.get("MaxSendRate", 0))
    configured = config.ses_max_send_rate
    if configured is None:
        return _ok(
            name,
            f"SES allows {allowed:g} emails/s; the runs pace to it (re-read every "
            f"{config.quota_refresh_seconds} s)",
        )
    if configured > allowed:
        return _warning(
            name,
            f"ses_max_send_rate is {configured:g} emails/s but SES allows {allowed:g}: the runs pace to "
            f"{allowed:g}, while batches, concurrency and retries are sized for {configured:g}, so runs "
            "wait for send slots and give messages back to the queue",
            f"set ses_max_send_rate: {allowed:g} (or remove it to pace to the live quota) and "
            "`npx cdk deploy`, or ask AWS for a higher sending rate",
        )
    return _ok(name, f"capped at {configured:g} emails/s; SES allows {allowed:g}")


#: Share of the 24-hour quota from which the doctor warns.
DAILY_QUOTA_WARNING_SHARE = 0.8


def daily_quota(quota: Mapping[str, Any]) -> CheckResult:
    """SentLast24Hours against Max24HourSend (-1 means unlimited; SES counts recipients, not messages)."""
    name = "SES 24-hour quota"
    maximum, sent = float(quota.get("Max24HourSend", 0)), float(quota.get("SentLast24Hours", 0))
    if maximum < 0:
        return _ok(name, f"unlimited; {sent:g} sent in the last 24 h")
    found = f"{sent:g} of {maximum:g} recipients in the last 24 h"
    if sent >= maximum:
        return _blocker(
            name,
            f"{found}: SES refuses more until the window moves on",
            "wait, or ask AWS for a higher quota (SES console, Account dashboard)",
        )
    if sent >= DAILY_QUOTA_WARNING_SHARE * maximum:
        return _warning(name, f"{found}: close to the quota", "ask AWS for a higher quota before it runs out")
    return _ok(name, found)


# ---------------------------------------------------------------------------------------------- identities
def check_sender_identity(sesv2: Any, identity: str, config: StepmailConfig) -> list[CheckResult]:
    """Verified for sending; for a domain also its DKIM and its custom MAIL FROM."""
    name = f"sender identity {identity}"
    details = _email_identity(sesv2, identity)
    if details is None:
        return [
            _blocker(name, f"not an SES identity in {config.region}", _create_identity_fix(identity, config))
        ]
    results = [identity_verified(name, identity, details)]
    if "@" not in identity:
        results += [dkim_status(identity, details), mail_from_status(identity, details)]
    return results


def _email_identity(sesv2: Any, identity: str) -> dict[str, Any] | None:
    """GetEmailIdentity, or None if the account has no such identity in the region."""
    try:
        return dict(sesv2.get_email_identity(EmailIdentity=identity))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            return None
        raise


def _create_identity_fix(identity: str, config: StepmailConfig) -> str:
    if "@" in identity:
        return "create it (SES console, Identities) and click the link in the email AWS sends"
    if identity == config.sending_domain:
        return "deploy the stack: it creates this identity (sending_domain)"
    return (
        f"create it (SES console, Identities), or set sending_domain: {identity} to have the stack create it"
    )


def identity_verified(name: str, identity: str, details: Mapping[str, Any]) -> CheckResult:
    if details.get("VerifiedForSendingStatus"):
        return _ok(name, "verified for sending")
    status = details.get("VerificationStatus") or "no status"
    if "@" in identity:
        fix = "click the link in the verification email (the SES console sends it again)"
    else:
        fix = (
            "publish its three DKIM CNAME records (the stack's DnsRecordDkim* outputs, or the SES console); "
            "SES verifies the domain once they resolve (up to 72 h)"
        )
    return _blocker(name, f"not verified for sending ({status})", fix)


def dkim_status(domain: str, details: Mapping[str, Any]) -> CheckResult:
    name = f"DKIM of {domain}"
    dkim = details.get("DkimAttributes", {})
    status = dkim.get("Status", "NOT_STARTED")
    if not dkim.get("SigningEnabled", False):
        return _warning(
            name,
            f"signing is off ({status}): mail is not DKIM-signed with the domain, DMARC can pass by SPF only",
            f"`aws sesv2 put-email-identity-dkim-attributes --email-identity {domain} --signing-enabled`",
        )
    if status == "SUCCESS":
        return _ok(name, "SUCCESS: mail is signed with the domain")
    return _warning(
        name,
        f"{status}: mail is not signed with the domain yet",
        "publish the three DKIM CNAME records (the stack's DnsRecordDkim* outputs, or the SES console) and "
        "wait for SES to find them (up to 72 h)",
    )


def mail_from_status(domain: str, details: Mapping[str, Any]) -> CheckResult:
    name = f"MAIL FROM of {domain}"
    attributes = details.get("MailFromAttributes", {})
    mail_from = attributes.get("MailFromDomain")
    if not mail_from:
        return _ok(name, "not set: SES's own MAIL FROM (amazonses.com), DMARC aligns through DKIM")
    status = attributes.get("MailFromDomainStatus", "PENDING")
    if status == "SUCCESS":
        return _ok(name, f"{mail_from}: SUCCESS")
    fix = (
        f"publish the MX and SPF TXT records of {mail_from} (the stack's DnsRecordMailFrom* outputs, or the "
        "SES console)"
    )
    if attributes.get("BehaviorOnMxFailure") == "REJECT_MESSAGE":
        return _blocker(
            name, f"{mail_from}: {status}, and SES rejects mail while its MX record is missing", fix
        )
    return _warning(
        name,
        f"{mail_from}: {status}: SES uses its own MAIL FROM until the records resolve (no SPF alignment)",
        fix,
    )


def check_sandbox_recipients(sesv2: Any, config: StepmailConfig) -> list[CheckResult]:
    """In the sandbox, each configured recipient must be verified: the address, or its domain."""
    results: list[CheckResult] = []
    for recipient in config.sandbox_recipients:
        name = f"sandbox recipient {recipient}"
        candidates = [recipient, recipient.rsplit("@", 1)[1]] if "@" in recipient else [recipient]
        results += _guarded(
            name, "ses:GetEmailIdentity", partial(_recipient_verified, sesv2, name, candidates)
        )
    return results


def _recipient_verified(sesv2: Any, name: str, candidates: list[str]) -> list[CheckResult]:
    for candidate in candidates:
        details = _email_identity(sesv2, candidate)
        if details and details.get("VerifiedForSendingStatus"):
            return [_ok(name, f"verified ({candidate})")]
    return [
        _warning(
            name,
            "not a verified identity: in the sandbox SES refuses mail to it",
            "verify it in SES (an address: the link AWS emails; a domain: its DKIM records), or test with "
            f"the mailbox simulator (success@{MAILBOX_SIMULATOR_DOMAIN})",
        )
    ]


# ---------------------------------------------------------------------------------------------- DMARC
def sending_domains(identities: Iterable[str]) -> list[str]:
    """The domains mail is sent from: each domain identity, and each address identity's domain."""
    domains: list[str] = []
    for identity in identities:
        domain = identity.rsplit("@", 1)[-1].lower()
        if domain not in domains:
            domains.append(domain)
    return domains


def check_dmarc(domain: str, resolver: TxtResolver, config: StepmailConfig) -> CheckResult:
    """One DMARC record at ``_dmarc.<domain>``, or at a parent domain (its policy covers subdomains)."""
    name = f"DMARC of {domain}"
    try:
        found_at, records = _dmarc_records(domain, resolver)
    except DnsLookupError as error:
        return _warning(
            name,
            f"could not look up {dmarc_name(domain)}: {error}",
            "run it again from a network with working DNS",
        )
    if not records:
        return _warning(
            name,
            f"no DMARC record at {dmarc_name(domain)}: mailbox providers (Gmail, Yahoo) require one of "
            "bulk senders",
            _dmarc_fix(domain, config),
        )
    if len(records) > 1:
        return _warning(
            name,
            f"{len(records)} DMARC records at {dmarc_name(found_at)}: receivers then apply none "
            "(RFC 7489 6.6.3)",
            "keep exactly one",
        )
    inherited = "" if found_at == domain else f" (at {dmarc_name(found_at)}, which covers subdomains)"
    return _ok(name, f"{records[0]}{inherited}")


def _dmarc_records(domain: str, resolver: TxtResolver) -> tuple[str, list[str]]:
    """The DMARC records of the domain, or of its nearest parent with some (down to two labels).

    Receivers look the organizational domain up when a subdomain has no record (RFC 7489 6.6.3); two
    labels stand in for it here (no public suffix list: a ``co.uk`` parent is looked up, harmlessly).
    """
    labels = domain.split(".")
    for start in range(max(1, len(labels) - 1)):
        candidate = ".".join(labels[start:])
        records = [
            text for text in resolver(dmarc_name(candidate)) if text.strip().lower().startswith("v=dmarc1")
        ]
        if records:
            return candidate, records
    return domain, []


def _dmarc_fix(domain: str, config: StepmailConfig) -> str:
    if domain == config.sending_domain and config.dmarc_record:
        return (
            f"deploy the stack (it writes {dmarc_name(domain)}), or publish its DnsRecordDmarc output if the "
            "domain has no hosted zone"
        )
    return f'publish a TXT record at {dmarc_name(domain)}, e.g. "v=DMARC1; p=none" to start by monitoring'


#: How long one DNS lookup may take, retries across name servers included (seconds).
DNS_LIFETIME_SECONDS = 5.0


def dns_txt_records(name: str) -> list[str]:
    """The TXT strings of ``name`` through the system's resolvers ([] if it has none).

    Raises
    ------
    DnsLookupError
        If no answer came (timeout, no reachable name server, SERVFAIL).
    """
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=DNS_LIFETIME_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as error:
        raise DnsLookupError(type(error).__name__) from error
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


# ---------------------------------------------------------------------------------------------- plumbing
def check_configuration_set(sesv2: Any, name: str, *, tracked: bool) -> list[CheckResult]:
    """The set exists and sends; the stack's tracked set also has its EventBridge destination enabled."""
    label = f"configuration set {name}"
    try:
        details = sesv2.get_configuration_set(ConfigurationSetName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NotFoundException":
            raise
        fix = (
            "deploy the stack (it creates it)"
            if tracked
            else "create it in SES, or remove it from the config"
        )
        return [_blocker(label, "does not exist: SES rejects every send that names it", fix)]
    if not details.get("SendingOptions", {}).get("SendingEnabled", True):
        fix = (
            f"`aws sesv2 put-configuration-set-sending-options --configuration-set-name {name} "
            "--sending-enabled`"
        )
        return [
            _blocker(label, "sending is disabled for this set: SES rejects every send that names it", fix)
        ]
    results = [_ok(label, "exists, sending enabled")]
    if tracked:
        destinations = sesv2.get_configuration_set_event_destinations(ConfigurationSetName=name)
        results.append(event_destination(name, destinations.get("EventDestinations", [])))
    return results


def event_destination(name: str, destinations: list[Mapping[str, Any]]) -> CheckResult:
    label = f"delivery events of {name}"
    enabled = [d for d in destinations if d.get("Enabled") and d.get("EventBridgeDestination")]
    if enabled:
        return _ok(
            label, f"published to EventBridge ({', '.join(sorted(enabled[0].get('MatchingEventTypes', [])))})"
        )
    found = "its EventBridge destination is disabled" if destinations else "no event destination"
    return _warning(
        label,
        f"{found}: delivery events are not recorded on the emails",
        "deploy the stack again (it creates and enables the destination)",
    )


def check_event_source_mapping(lambda_: Any, sqs: Any, queue_url: str) -> CheckResult:
    """The starter's event source mapping on the mail queue is enabled."""
    name = "event source mapping"
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    mappings = lambda_.list_event_source_mappings(EventSourceArn=attributes["QueueArn"]).get(
        "EventSourceMappings", []
    )
    if not mappings:
        return _blocker(
            name,
            "nothing reads the mail queue: messages wait there until they expire",
            "deploy the stack again",
        )
    states = [str(mapping.get("State", "")) for mapping in mappings]
    if "Enabled" in states:
        return _ok(name, "Enabled: the starter reads the mail queue")
    if "Disabled" in states:
        uuid = mappings[states.index("Disabled")].get("UUID", "<uuid>")
        return _blocker(
            name,
            "Disabled: nothing reads the mail queue",
            f"`aws lambda update-event-source-mapping --uuid {uuid} --enabled`",
        )
    return _warning(name, f"{', '.join(states)}: not reading yet", "run the doctor again in a minute")


def check_alarm_subscriptions(sns: Any, topic_arn: str, *, alarm_email: str | None = None) -> CheckResult:
    """Someone receives the alarms: the topic has subscriptions, each of them confirmed.

    SNS deletes an email subscription left unconfirmed for 48 hours (since 2023-05-10), and CloudFormation
    does not notice: a stack with ``alarm_email`` whose topic has no subscription lost it that way.
    """
    name = "alarm subscriptions"
    subscriptions = _all_subscriptions(sns, topic_arn)
    if not subscriptions and alarm_email:
        return _warning(
            name,
            "none, though alarm_email is set: SNS deleted the subscription left unconfirmed for 48 hours",
            f"`aws sns subscribe --topic-arn {topic_arn} --protocol email --notification-endpoint "
            "<your alarm_email>`, then click the link in the email within 48 hours",
        )
    if not subscriptions:
        return _warning(
            name,
            "none: alarms reach no one",
            "set alarm_email (or slack_workspace_id and slack_channel_id), then `npx cdk deploy`",
        )
    pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
    if pending:
        protocols = ", ".join(sorted({str(s.get("Protocol", "?")) for s in pending}))
        return _warning(
            name,
            f"{len(pending)} of {len(subscriptions)} pending confirmation ({protocols}): alarms do not "
            "reach them",
            'click the link in the "AWS Notification - Subscription Confirmation" email: SNS deletes an '
            "unconfirmed subscription after 48 hours",
        )
    return _ok(name, f"{len(subscriptions)} confirmed")


def _all_subscriptions(sns: Any, topic_arn: str) -> list[Mapping[str, Any]]:
    subscriptions: list[Mapping[str, Any]] = []
    page = sns.list_subscriptions_by_topic(TopicArn=topic_arn)
    subscriptions += page.get("Subscriptions", [])
    while page.get("NextToken"):
        page = sns.list_subscriptions_by_topic(TopicArn=topic_arn, NextToken=page["NextToken"])
        subscriptions += page.get("Subscriptions", [])
    return subscriptions


_DLQ_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


def check_dead_letters(sqs: Any, dead_letter_queue_url: str) -> CheckResult:
    name = "dead-letter queue"
    attributes = sqs.get_queue_attributes(QueueUrl=dead_letter_queue_url, AttributeNames=list(_DLQ_COUNTS))
    count = sum(int(attributes["Attributes"].get(key, 0)) for key in _DLQ_COUNTS)
    if count == 0:
        return _ok(name, "empty")
    return _warning(
        name,
        f"about {count} message(s) that could not be sent",
        "`stepmail dlq list` shows each with its reason; `stepmail dlq redrive` once the cause is fixed",
    )


# ---------------------------------------------------------------------------------------------- output
_MARKS = {Status.OK: "ok", Status.WARNING: "warning", Status.BLOCKER: "BLOCKER"}


def exit_code(results: Iterable[CheckResult]) -> int:
    """1 if any check found a blocker, else 0 (warnings do not fail the command)."""
    return 1 if any(result.status is Status.BLOCKER for result in results) else 0


def _counts(results: list[CheckResult]) -> dict[str, int]:
    return {status.value: sum(1 for result in results if result.status is status) for status in Status}


def render_checklist(results: list[CheckResult]) -> str:
    """The checklist as text: one line per check, with the fix under each one that is not ok."""
    counts = _counts(results)
    header = (
        f"stepmail doctor: {len(results)} checks, "
        f"{counts['blocker']} blocker(s), {counts['warning']} warning(s)"
    )
    width = max(len(mark) for mark in _MARKS.values()) + 2
    lines = [header, ""]
    for result in results:
        lines.append(f"  {'[' + _MARKS[result.status] + ']':<{width}} {result.name}: {result.found}")
        if result.fix and result.status is not Status.OK:
            lines.append(f"  {'':<{width}}   fix: {result.fix}")
    return "\n".join(lines)


def checklist_json(results: list[CheckResult]) -> str:
    """The checklist as JSON: the exit code, the counts by status and each check."""
    checks = [{**asdict(result), "status": result.status.value} for result in results]
    return json.dumps(
        {"exitCode": exit_code(results), "counts": _counts(results), "checks": checks}, indent=2
    )
