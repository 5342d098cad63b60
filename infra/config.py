"""The one configuration model: validated at synth time, reused by the local twin.

Where it comes from (first match wins):

1. the file named by the context value ``stepmailConfigFile`` (``cdk deploy -c stepmailConfigFile=prod.json``)
   or by the environment variable ``STEPMAIL_CONFIG``;
2. the ``stepmail`` object in ``cdk.json``'s context.

Everything derived (timeouts that must nest, queue visibility) is computed here, once, so the stack,
the ASL substitutions and the twin cannot disagree.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepmail.core.addresses import address_allowed, normalize_address
from stepmail.core.pacing import least_total_delay
from stepmail.settings import SenderSettings, StarterSettings, TrackerSettings

_IDENTITY = re.compile(r"^([^@\s]+@)?[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LABELS = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"

#: The SES mailbox simulator's domain: in the sandbox, its addresses are recipients like verified ones.
MAILBOX_SIMULATOR_DOMAIN = "simulator.amazonses.com"


def dmarc_name(domain: str) -> str:
    """Where a domain's DMARC policy lives (RFC 7489): ``_dmarc.<domain>``."""
    return f"_dmarc.{domain}"


class RetryPolicy(BaseModel):
    """Retry with exponential backoff and full jitter, applied to every transient error in the ASL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_seconds: int = Field(default=1, ge=1, le=60)
    backoff_rate: float = Field(default=2.0, ge=1.0, le=10.0)
    max_attempts: int = Field(default=6, ge=1, le=20)
    max_delay_seconds: int = Field(default=20, ge=1, le=120)

    def worst_case_wait_seconds(self) -> float:
        """The longest total time a state can spend waiting between its retries."""
        waits = (
            min(self.max_delay_seconds, self.interval_seconds * self.backoff_rate**attempt)
            for attempt in range(self.max_attempts)
        )
        return float(sum(waits))


class StepmailConfig(BaseModel):
    """Everything an operator can set.  Field names are what goes into cdk.json or a config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stack_name: str = Field(default="Stepmail", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    account: str | None = Field(default=None, pattern=r"^\d{12}$")

    # Who may send.  An identity is an email address or a whole domain, as verified in SES.
    sender_identities: tuple[str, ...] = Field(min_length=1)
    default_sender: str
    configuration_sets: tuple[str, ...] = ()
    default_configuration_set: str = ""

    # De-duplication: how long a sent email blocks a resend, and how long a run owns its lock.
    dedup_window_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    lease_seconds: int = Field(default=240, ge=2)

    # Timeouts (seconds).  workflow < lease, sender < workflow, starter > workflow.
    workflow_timeout_seconds: int = Field(default=120, ge=2, le=300)
    sender_timeout_seconds: int = Field(default=60, ge=1, le=300)
    retry: RetryPolicy = RetryPolicy()

    # Event source: how fast the queue drains (rate control against the SES quota).
    batch_size: int = Field(default=10, ge=1, le=10)
    batching_window_seconds: int = Field(default=1, ge=0, le=300)
    max_concurrency: int = Field(default=5, ge=2, le=1000)
    # The account's SES maximum send rate (emails per second).  When given, max_concurrency and the
    # retry policy default to values derived from it (see derive_rate_control); explicit ones win.
    ses_max_send_rate: float | None = Field(default=None, gt=0, le=10_000)
    max_receive_count: int = Field(default=10, ge=1, le=1000)
    # A message given back to the queue (busy lock, retries exhausted) comes back after a jittered
    # delay that doubles from the base up to the maximum (stepmail.core.pacing.redelivery_delay).
    retry_later_base_seconds: int = Field(default=2, ge=1, le=900)
    retry_later_max_seconds: int = Field(default=300, ge=1, le=43_200)
    # How often the starter reads the SES quota again (GetAccount), to pace to it.
    quota_refresh_seconds: int = Field(default=60, ge=1, le=86_400)
    visibility_timeout_seconds: int | None = Field(default=None, ge=1, le=43200)
    message_retention_days: int = Field(default=4, ge=1, le=14)
    dead_letter_retention_days: int = Field(default=14, ge=1, le=14)

    # Storage.
    attachments_expiry_days: int = Field(default=14, ge=1)
    point_in_time_recovery: bool = True

    # Functions.
    starter_memory_mb: int = Field(default=256, ge=128, le=10240)
    sender_memory_mb: int = Field(default=512, ge=128, le=10240)

    # Observability.  Email content (addresses, subjects, bodies) stays out of logs unless asked for;
    # the same switch turns on execution data in the state machine's logs.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_email_content: bool = False
    # The state machine's CloudWatch Logs.  ERROR logs every failed step of every run (its error and
    # cause), which is what an operator inspects; a sent email logs nothing there (the starter logs its
    # outcome and the lock table keeps its record).  ALL logs each state transition, which costs more
    # than the rest of the orchestration together (`stepmail cost` shows both).
    execution_log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = "ERROR"
    alarm_email: str | None = None
    # Alarm thresholds.  SES reviews an account at a 5 % bounce or 0.1 % complaint rate (and may pause
    # it at 10 % / 0.5 %): the defaults page before the review.
    queue_age_alarm_seconds: int = Field(default=900, ge=60)
    lambda_errors_alarm_threshold: int = Field(default=1, ge=1)
    lambda_throttles_alarm_threshold: int = Field(default=1, ge=1)
    # Messages handed back to the queue (lock busy, SES throttled past the workflow's retries): a few
    # are normal, a steady stream is not.  The alarm fires when more than ..._per_minute were handed
    # back in each of ..._minutes minutes in a row, so a shorter throttling episode pages nobody.
    retried_later_alarm_per_minute: int = Field(default=5, ge=0)
    retried_later_alarm_minutes: int = Field(default=5, ge=1, le=60)
    bounce_rate_alarm_threshold: float = Field(default=0.05, gt=0, le=1)
    complaint_rate_alarm_threshold: float = Field(default=0.001, gt=0, le=1)

    # Delivery tracking (opt-in): a configuration set made by the stack (used when a message names none)
    # whose events (send, delivery, bounce, complaint, reject, delay) are recorded on each email's
    # record: about two events per email, each a tracker invocation and DynamoDB writes, which nearly
    # doubles the orchestration's cost (`stepmail cost` shows both).  Off, SES's account-level
    # suppression list still stops sends to addresses that bounced or complained, the reputation alarms
    # still watch the account's rates, and `stepmail status` still shows each email's send.
    delivery_tracking: bool = False
    # SES's own suppression list for the stack's configuration set: "account" (the account-level list
    # applies), "bounces-and-complaints" / "bounces" / "complaints" (this set's override), or "off".
    suppression: Literal["account", "bounces-and-complaints", "bounces", "complaints", "off"] = "account"
    slack_workspace_id: str | None = Field(default=None, pattern=r"^[A-Z0-9]{9,11}$")
    slack_channel_id: str | None = Field(default=None, pattern=r"^[A-Z0-9]{9,11}$")

    # The SES sandbox (where every account starts, in each region).  Public reports show SES checking
    # the sender's IAM permission on each *recipient's* identity ARN there too, so in the sandbox the
    # sender's role must also allow the recipients: the verified identities (addresses or domains) it
    # sends to, and the mailbox simulator.  Out of the sandbox neither is needed (docs/aws-assumptions.md).
    ses_sandbox: bool = False
    sandbox_recipients: tuple[str, ...] = ()

    # A sending domain made by the stack (optional): the SES domain identity with Easy DKIM, a custom
    # MAIL FROM subdomain and a DMARC record.  With a Route 53 hosted zone (id and name: no lookup at
    # synth) the stack writes the DNS records; without, it prints each record to publish as an output.
    sending_domain: str | None = None
    hosted_zone_id: str | None = Field(default=None, pattern=r"^Z[A-Z0-9]{1,31}$")
    hosted_zone_name: str | None = None
    mail_from_subdomain: str = Field(default="mail", max_length=63, pattern=_LABELS)
    # The DMARC record's policy (p=); "off": the stack writes no DMARC record (you publish your own).
    dmarc_policy: Literal["none", "quarantine", "reject", "off"] = "none"
    dmarc_report_email: str | None = None

    @field_validator("sending_domain", "hosted_zone_name")
    @classmethod
    def _domain_name(cls, value: str | None) -> str | None:
        """Lower-case, without the root's trailing dot (CDK and SES take names that way)."""
        if value is None:
            return None
        name = value.strip().lower().removesuffix(".")
        if not _DOMAIN.match(name):
            raise ValueError(f"{value!r} is not a domain name")
        return name

    @model_validator(mode="before")
    @classmethod
    def _rate_control_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ses_max_send_rate"):
            derived = derive_rate_control(float(data["ses_max_send_rate"]))
            data = {**derived, **data}  # what the operator set explicitly wins
        return data

    @model_validator(mode="after")
    def _check(self) -> StepmailConfig:
        for identity in self.sender_identities:
            if not _IDENTITY.match(identity):
                raise ValueError(f"sender identity {identity!r} is neither an email address nor a domain")
        normalized = normalize_address(self.default_sender)
        if not address_allowed(normalized, self.sender_identities):
            raise ValueError(f"default_sender {self.default_sender!r} is not covered by sender_identities")
        if self.default_configuration_set and self.default_configuration_set not in self.configuration_sets:
            raise ValueError("default_configuration_set must be one of configuration_sets")
        if self.sender_timeout_seconds >= self.workflow_timeout_seconds:
            raise ValueError("sender_timeout_seconds must be shorter than workflow_timeout_seconds")
        if self.lease_seconds <= self.workflow_timeout_seconds + self.sender_task_timeout_seconds:
            # A run can start its sender just before its own timeout, and a timed-out run does not
            # stop a sender already running: the lock must outlive both, or a retry could send twice.
            raise ValueError(
                "lease_seconds must exceed workflow_timeout_seconds + sender_timeout_seconds + 2 "
                f"({self.workflow_timeout_seconds + self.sender_task_timeout_seconds}): a lock must outlive "
                "the run holding it and the last send that run can start"
            )
        if self.retry.worst_case_wait_seconds() >= self.workflow_timeout_seconds:
            raise ValueError("the retry policy's waits do not fit in workflow_timeout_seconds")
        if self.visibility_timeout_seconds is not None and (
            self.visibility_timeout_seconds < 6 * self.starter_timeout_seconds
        ):
            raise ValueError(
                "visibility_timeout_seconds must be at least 6 x the starter's timeout (AWS guidance)"
            )
        if self.sender_task_timeout_seconds >= self.workflow_timeout_seconds:
            raise ValueError("sender_timeout_seconds + 2 must be shorter than workflow_timeout_seconds")
        if self.retry_later_max_seconds < self.retry_later_base_seconds:
            raise ValueError("retry_later_max_seconds must be at least retry_later_base_seconds")
        if self.alarm_email is not None:
            normalize_address(self.alarm_email)
        if bool(self.slack_workspace_id) != bool(self.slack_channel_id):
            raise ValueError("slack_workspace_id and slack_channel_id go together")
        self._check_sandbox()
        self._check_sending_domain()
        return self

    def _check_sandbox(self) -> None:
        if self.sandbox_recipients and not self.ses_sandbox:
            raise ValueError("sandbox_recipients apply only with ses_sandbox: true")
        for recipient in self.sandbox_recipients:
            if not _IDENTITY.match(recipient):
                raise ValueError(f"sandbox recipient {recipient!r} is neither an email address nor a domain")
            if "@" in recipient:
                normalize_address(recipient)

    def _check_sending_domain(self) -> None:
        domain = self.sending_domain
        if domain is None:
            if self.hosted_zone_id or self.hosted_zone_name or self.dmarc_report_email:
                raise ValueError(
                    "hosted_zone_id, hosted_zone_name and dmarc_report_email need sending_domain"
                )
            return
        if domain not in {identity.lower() for identity in self.sender_identities}:
            raise ValueError(
                f"sending_domain {domain!r} must also be one of sender_identities: the sender's IAM "
                "permissions and the starter's From check are made from that list"
            )
        if bool(self.hosted_zone_id) != bool(self.hosted_zone_name):
            raise ValueError("hosted_zone_id and hosted_zone_name go together")
        zone = self.hosted_zone_name
        if zone is not None and domain != zone and not domain.endswith(f".{zone}"):
            raise ValueError(f"sending_domain {domain!r} is not in the hosted zone {zone!r}")
        if not _DOMAIN.match(self.mail_from_domain):
            raise ValueError(f"the MAIL FROM domain {self.mail_from_domain!r} is not a valid domain name")
        if self.dmarc_report_email is not None:
            if self.dmarc_policy == "off":
                raise ValueError("dmarc_report_email needs a DMARC record (dmarc_policy is off)")
            normalize_address(self.dmarc_report_email)

    # ------------------------------------------------------------------ derived values
    @property
    def starter_timeout_seconds(self) -> int:
        """The starter waits for its runs (StartSyncExecution): it must outlive the longest run."""
        return self.workflow_timeout_seconds + 30

    @property
    def sender_task_timeout_seconds(self) -> int:
        """The ASL's timeout for Render And Send: a little longer than the Lambda's own, so the Lambda's
        timeout error (not a race with the state's) is what the execution shows."""
        return self.sender_timeout_seconds + 2

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        """AWS recommends at least 6 x the function timeout for an SQS event source."""
        return self.visibility_timeout_seconds or 6 * self.starter_timeout_seconds

    @property
    def tracking_configuration_set(self) -> str:
        """The name of the configuration set the stack creates (SES: letters, digits, - and _, <= 64)."""
        return f"{self.stack_name}-tracking"[:64]

    @property
    def sending_configuration_set(self) -> str:
        """The configuration set of a message that names none ("" for none)."""
        if self.default_configuration_set:
            return self.default_configuration_set
        return self.tracking_configuration_set if self.delivery_tracking else ""

    @property
    def sendable_configuration_sets(self) -> tuple[str, ...]:
        """Every configuration set the sender may send through (its IAM resources)."""
        tracking = (self.tracking_configuration_set,) if self.delivery_tracking else ()
        return (*self.configuration_sets, *tracking)

    @property
    def mail_from_domain(self) -> str:
        """The custom MAIL FROM domain of the stack's sending domain (a full name: ``mail.example.com``).

        Raises
        ------
        ValueError
            If there is no ``sending_domain``.
        """
        if self.sending_domain is None:
            raise ValueError("no sending_domain: no MAIL FROM domain")
        return f"{self.mail_from_subdomain}.{self.sending_domain}"

    @property
    def dmarc_record(self) -> str | None:
        """The DMARC TXT value the stack publishes at ``_dmarc.<sending_domain>`` (None: no record)."""
        if self.sending_domain is None or self.dmarc_policy == "off":
            return None
        parts = ["v=DMARC1", f"p={self.dmarc_policy}"]
        if self.dmarc_report_email:
            parts.append(f"rua=mailto:{normalize_address(self.dmarc_report_email)}")
        return "; ".join(parts)

    @property
    def sandbox_recipient_identities(self) -> tuple[str, ...]:
        """The recipients the sender may send to in the sandbox: the configured ones and the simulator."""
        if not self.ses_sandbox:
            return ()
        return (*self.sandbox_recipients, MAILBOX_SIMULATOR_DOMAIN)

    def asl_numbers(self) -> dict[str, int | float]:
        """Numeric ``${Placeholder}`` values of the ASL (written as quoted strings in the file)."""
        return {
            "WorkflowTimeoutSeconds": self.workflow_timeout_seconds,
            "SenderTimeoutSeconds": self.sender_task_timeout_seconds,
            "RetryIntervalSeconds": self.retry.interval_seconds,
            "RetryBackoffRate": self.retry.backoff_rate,
            "RetryMaxAttempts": self.retry.max_attempts,
            "RetryMaxDelaySeconds": self.retry.max_delay_seconds,
        }

    @property
    def pacing_max_waits(self) -> int:
        """How many one-second waits a run may spend on a full send rate: what the workflow's budget
        leaves after the longest send and a margin (then the message goes back to the queue)."""
        return max(self.workflow_timeout_seconds - self.sender_task_timeout_seconds - 10, 0)

    @property
    def least_retry_span_seconds(self) -> float:
        """The shortest time a message's deliveries can span: longer than the lease, a dead run's lock
        frees before the message runs out of deliveries (then it is sent, not dead-lettered)."""
        return least_total_delay(
            self.max_receive_count,
            base_seconds=self.retry_later_base_seconds,
            max_seconds=self.retry_later_max_seconds,
        )

    @property
    def failure_note_ttl_seconds(self) -> int:
        """A failed delivery's note lives as long as its message can be on the queue, then in the DLQ."""
        return (self.message_retention_days + self.dead_letter_retention_days) * 86_400

    def starter_settings(
        self, *, state_machine_arn: str, dead_letter_queue_url: str, lock_table: str, mail_queue_url: str
    ) -> StarterSettings:
        return StarterSettings(
            state_machine_arn=state_machine_arn,
            dead_letter_queue_url=dead_letter_queue_url,
            lock_table=lock_table,
            max_receive_count=self.max_receive_count,
            failure_note_ttl_seconds=self.failure_note_ttl_seconds,
            mail_queue_url=mail_queue_url,
            ses_max_send_rate=self.ses_max_send_rate or 0,
            quota_refresh_seconds=self.quota_refresh_seconds,
            pacing_max_waits=self.pacing_max_waits,
            retry_later_base_seconds=self.retry_later_base_seconds,
            retry_later_max_seconds=self.retry_later_max_seconds,
            sender_identities=self.sender_identities,
            default_sender=self.default_sender,
            configuration_sets=self.configuration_sets,
            lease_seconds=self.lease_seconds,
            dedup_window_seconds=self.dedup_window_seconds,
            log_email_content=self.log_email_content,
        )

    def sender_settings(self, *, attachments_bucket: str) -> SenderSettings:
        return SenderSettings(
            attachments_bucket=attachments_bucket,
            default_configuration_set=self.sending_configuration_set,
            log_email_content=self.log_email_content,
        )

    def tracker_settings(self, *, lock_table: str) -> TrackerSettings:
        return TrackerSettings(
            lock_table=lock_table,
            index_ttl_seconds=self.dedup_window_seconds,
            log_email_content=self.log_email_content,
        )


#: How long one run takes from its start to SES's answer on AWS (S3 lookups, the sender's cold and warm
#: starts, the SES call): the sizing assumption of :func:`derive_rate_control`.
RUN_SECONDS_ESTIMATE = 1.0


def derive_rate_control(ses_max_send_rate: float) -> dict[str, Any]:
    """Event source and retry settings that keep SES busy at its quota without overrunning it.

    * Runs in flight: to sustain R emails/s when a run takes ~1 s, about R runs must be sending at
      any time; twice that keeps the quota used while some runs wait out a throttle.
    * Batches: a starter waits for every run of its batch, so one slow run holds back the batch's
      slot; small batches at low rates keep those stalls short (up to 10 per batch as rates grow,
      where fewer invocations matter for cost), and ``max_concurrency`` batches give the runs.
    * Retries: a throttled run waits uniformly in [0, min(cap, 2^n)] s (full jitter); with a cap of
      (runs in flight / R) s the waiting runs come back at ~2R attempts/s — every token of the quota
      used, the collisions spread — and 12 attempts make running out of them (back to the queue)
      rare.
    """
    in_flight = max(2, math.ceil(2 * ses_max_send_rate * RUN_SECONDS_ESTIMATE))
    batch_size = min(10, max(1, math.ceil(in_flight / 8)))
    max_concurrency = min(1000, max(2, math.ceil(in_flight / batch_size)))
    cap = min(20, max(2, math.ceil(in_flight / ses_max_send_rate)))
    retry = {"interval_seconds": 1, "backoff_rate": 2.0, "max_attempts": 12, "max_delay_seconds": cap}
    return {"batch_size": batch_size, "max_concurrency": max_concurrency, "retry": retry}


CONTEXT_KEY = "stepmail"
CONFIG_FILE_CONTEXT_KEY = "stepmailConfigFile"
CONFIG_FILE_ENV = "STEPMAIL_CONFIG"


def load_config(
    context: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> StepmailConfig:
    """Load and validate the configuration (see the module docstring for the order)."""
    path = config_file or (context or {}).get(CONFIG_FILE_CONTEXT_KEY) or environ.get(CONFIG_FILE_ENV)
    if path:
        return StepmailConfig.model_validate_json(Path(path).read_text(encoding="utf-8"))
    raw = (context or {}).get(CONTEXT_KEY)
    if raw is None:
        raise ValueError(
            f"no configuration: set the {CONTEXT_KEY!r} context in cdk.json or {CONFIG_FILE_ENV}"
        )
    if isinstance(raw, str):  # `cdk synth -c stepmail='{...}'` passes a string
        raw = json.loads(raw)
    return StepmailConfig.model_validate(raw)


def repo_context(repo_root: Path) -> dict[str, Any]:
    """The ``context`` object of ``cdk.json`` (for tools that run outside the CDK app)."""
    cdk_json = json.loads((repo_root / "cdk.json").read_text(encoding="utf-8"))
    return dict(cdk_json.get("context", {}))
