"""What 1M emails cost on AWS: this design next to the original single-Lambda design, term by term.

Pure arithmetic on AWS's published us-east-1 list prices (:data:`PRICE_SOURCES`, read on
:data:`PRICES_READ`; free tiers left out) and a few assumptions about the workload (:class:`Workload`,
whose defaults are the deployed configuration's).  ``stepmail cost`` prints it, with the price of each
option an operator can turn on (:func:`options`); ``docs/performance.md`` plots it.

The original design: SQS -> one Lambda per batch that writes a DynamoDB de-duplication record, reads
the attachments from S3, renders the email and sends it with SES, one email after the other, logging
a line and its metrics per email as our sender does.  This design adds, per email, an Express run
(request, duration, its CloudWatch Logs at the configured level), a second DynamoDB write (Mark Sent)
and the pacing writes, one S3 HEAD per attachment, a sender Lambda request, delivery tracking (the
``byMessageId`` index and, per tracked SES event, a tracker invocation and its DynamoDB calls), and
per batch a starter Lambda that waits for its runs; both designs pay for X-Ray traces and Lambda log
lines, this one for more.  The difference of the two totals is the *orchestration overhead*.

Log volumes are measured, not guessed: :data:`EXECUTION_LOGS` from the execution history of runs on
the local twin, rendered as Step Functions writes them to CloudWatch Logs
(:func:`execution_log_bytes`; ``bench/log_volume.py`` prints them and
``tests/integration/test_log_volume.py`` checks them), :data:`LAMBDA_LOGS` from the handlers' own
output (``tests/unit/test_cost.py`` checks it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from infra.config import StepmailConfig

EMAILS = 1_000_000
"""Every figure is dollars per this many emails."""
GB = 1024**3
"""Bytes in a GB as AWS bills data (and as attachment_mb is converted: 1 GB = 1024 MB)."""

# ------------------------------------------------------------------------------------------ prices
PRICES_READ = "2026-12-02"
"""When the prices below were read from their pages (us-east-1, list prices)."""

PRICE_SOURCES: Mapping[str, str] = {
    "express_per_request": "https://aws.amazon.com/step-functions/pricing/",
    "express_per_gb_second": "https://aws.amazon.com/step-functions/pricing/",
    "lambda_per_request": "https://aws.amazon.com/lambda/pricing/",
    "lambda_per_gb_second": "https://aws.amazon.com/lambda/pricing/",
    "sqs_per_request": "https://aws.amazon.com/sqs/pricing/",
    "dynamodb_per_write": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "dynamodb_per_read": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "dynamodb_per_gb_month": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "s3_per_get": "https://aws.amazon.com/s3/pricing/",
    "s3_per_put": "https://aws.amazon.com/s3/pricing/",
    "s3_per_gb_month": "https://aws.amazon.com/s3/pricing/",
    "ses_per_email": "https://aws.amazon.com/ses/pricing/",
    "ses_per_attachment_gb": "https://aws.amazon.com/ses/pricing/",
    "logs_per_gb_ingested": "https://aws.amazon.com/cloudwatch/pricing/",
    "logs_per_gb_month": "https://aws.amazon.com/cloudwatch/pricing/",
    "xray_per_trace": "https://aws.amazon.com/xray/pricing/",
    "eventbridge_per_aws_event": "https://aws.amazon.com/eventbridge/pricing/",
}


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices (dollars), each from its page in :data:`PRICE_SOURCES`."""

    express_per_request: float = 1.00 / 1e6
    express_per_gb_second: float = 0.00001667  # first tier: $0.06 per GB-hour
    lambda_per_request: float = 0.20 / 1e6
    lambda_per_gb_second: float = 0.0000133334  # arm64, first tier
    sqs_per_request: float = 0.40 / 1e6  # standard queue, per 64 KB chunk
    dynamodb_per_write: float = 0.625 / 1e6  # on-demand write request unit (1 KB)
    dynamodb_per_read: float = 0.125 / 1e6  # on-demand read request unit (4 KB, strongly consistent)
    dynamodb_per_gb_month: float = 0.25  # Standard table class
    s3_per_get: float = 0.0004 / 1000  # GET and HEAD
    s3_per_put: float = 0.005 / 1000
    s3_per_gb_month: float = 0.023  # S3 Standard, first 50 TB
    ses_per_email: float = 0.10 / 1000
    ses_per_attachment_gb: float = 0.12
    logs_per_gb_ingested: float = 0.50  # Standard class; vended logs (Step Functions) too, first 10 TB
    logs_per_gb_month: float = 0.03  # archived (stored) logs
    xray_per_trace: float = 5.00 / 1e6  # traces recorded
    eventbridge_per_aws_event: float = 0.0  # events AWS services (SES) put on the default bus are free


# ------------------------------------------------------------------------------------ log volumes
#: How Step Functions' log levels filter the execution history (docs: "Log levels" of the Step
#: Functions developer guide): ERROR logs the error events, FATAL only the run's own end in failure.
FATAL_EVENTS = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
ERROR_EVENTS = FATAL_EVENTS | {
    "FailStateEntered",
    "LambdaFunctionFailed",
    "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed",
    "LambdaFunctionTimedOut",
    "MapIterationAborted",
    "MapIterationFailed",
    "MapStateAborted",
    "MapStateFailed",
    "ParallelStateAborted",
    "ParallelStateFailed",
    "TaskFailed",
    "TaskStartFailed",
    "TaskStateAborted",
    "TaskSubmitFailed",
    "TaskTimedOut",
}
LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
#: Fields of an event's details that only ``includeExecutionData`` writes (the email's content).
_EXECUTION_DATA = ("input", "inputDetails", "output", "outputDetails", "parameters")
#: An Express run's ARN as AWS writes it in the log (``:express:``, the CloudFormation-named state
#: machine, the execution's name and id): what the twin's ARN is replaced by to size a record.
EXPRESS_RUN_ARN = (
    "arn:aws:states:us-east-1:123456789012:express:WorkflowStateMachine5D9A3EAB-Ab1Cd2Ef3Gh4:"
    "6f1e0c2a-5b3d-4e8f-9a7c-1d2e3f4a5b6c:0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"
)
#: What CloudWatch Logs counts per event beyond its message (PutLogEvents: UTF-8 bytes + 26).
LOG_EVENT_OVERHEAD_BYTES = 26


def logged(event_type: str, level: str) -> bool:
    """Whether Step Functions writes an event of this type to CloudWatch Logs at this level."""
    if level == "ALL":
        return True
    if level == "ERROR":
        return event_type in ERROR_EVENTS
    return level == "FATAL" and event_type in FATAL_EVENTS


def execution_log_record(event: Mapping[str, Any], *, include_data: bool) -> str:
    """One history event (as GetExecutionHistory returns it) as Step Functions logs it (docs: "Using
    CloudWatch Logs to log execution history"): ``id``, ``type``, ``details``, ``previous_event_id``,
    ``event_timestamp`` (epoch ms), ``execution_arn`` and ``redrive_count``, all but details as text."""
    details_key = next((key for key in event if key.endswith("EventDetails")), None)
    details = dict(event[details_key]) if details_key else {}
    if not include_data:
        details = {key: value for key, value in details.items() if key not in _EXECUTION_DATA}
    record = {
        "id": str(event["id"]),
        "type": event["type"],
        "details": details,
        "previous_event_id": str(event.get("previousEventId", 0)),
        "event_timestamp": "1764712529083",
        "execution_arn": EXPRESS_RUN_ARN,
        "redrive_count": "0",
    }
    return json.dumps(record, separators=(",", ":"), default=str)


def execution_log_bytes(events: Iterable[Mapping[str, Any]], level: str, *, include_data: bool) -> int:
    """What one run's history costs in CloudWatch Logs at this level (bytes, with the per-event count)."""
    return sum(
        len(execution_log_record(event, include_data=include_data).encode()) + LOG_EVENT_OVERHEAD_BYTES
        for event in events
        if logged(event["type"], level)
    )


@dataclass(frozen=True)
class ExecutionLogs:
    """Bytes one run logs, by what happened in it, without and with execution data.

    ``run``: an email with one attachment sent at the first try (level ALL); ``attachment``: each
    attachment more (ALL); ``retry_all`` / ``retry_error``: each attempt of Render And Send that
    failed and was retried, at ALL and at ERROR (the only thing a sent email logs at ERROR).
    """

    run: tuple[int, int]
    attachment: tuple[int, int]
    retry_all: tuple[int, int]
    retry_error: tuple[int, int]


#: Measured on the twin with the stack's ASL (bench/log_volume.py, 2026-12-03), rounded up.
EXECUTION_LOGS = ExecutionLogs(
    run=(15_300, 38_000), attachment=(2_700, 4_700), retry_all=(2_100, 2_900), retry_error=(1_300, 1_300)
)


@dataclass(frozen=True)
class LambdaLogs:
    """Bytes the functions log, with CloudWatch's per-event count (JSON log format).

    ``platform``: Lambda's own lines per invocation at system level INFO (``platform.start``,
    ``platform.runtimeDone``, ``platform.report`` with the X-Ray trace id); ``*_info``: the handlers'
    INFO lines (starter per record, sender per email, tracker per event); ``*_metrics``: their EMF
    lines, printed at every log level (sender per email, tracker per event).
    """

    platform: int
    starter_info: int
    sender_info: int
    sender_metrics: int
    tracker_info: int
    tracker_metrics: int


#: The platform lines as documented (monitoring-cloudwatchlogs-logformat), one example of each:
PLATFORM_LINES = (
    '{"time":"2026-12-02T22:15:29.083Z","type":"platform.start","record":{"requestId":'
    '"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","version":"$LATEST"}}',
    '{"time":"2026-12-02T22:15:29.312Z","type":"platform.runtimeDone","record":{"requestId":'
    '"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","status":"success","metrics":{"durationMs":228.5,'
    '"producedBytes":0}}}',
    '{"time":"2026-12-02T22:15:29.315Z","type":"platform.report","record":{"requestId":'
    '"6d68ca91-49c9-448d-89b8-7ca3e6dc66aa","metrics":{"durationMs":229.1,"billedDurationMs":230,'
    '"memorySizeMB":512,"maxMemoryUsedMB":93},"tracing":{"spanId":"54565fb41ac79632",'
    '"type":"X-Amzn-Trace-Id","value":"Root=1-6765e2a1-34bd7d8f1c0a2b3c4d5e6f70;'
    'Parent=54565fb41ac79632;Sampled=0"},"status":"success"}}',
)
#: The handlers' lines measured by running them (tests/unit/test_cost.py), rounded up.
LAMBDA_LOGS = LambdaLogs(
    platform=sum(len(line) + LOG_EVENT_OVERHEAD_BYTES for line in PLATFORM_LINES),
    starter_info=600,
    sender_info=400,
    sender_metrics=500,
    tracker_info=350,
    tracker_metrics=300,
)


def dynamodb_item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it (docs: "Item sizes and formats"), in its wire format."""
    return sum(len(name.encode()) + _attribute_bytes(value) for name, value in item.items())


def _attribute_bytes(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return (len(content.strip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "L":
        return 3 + sum(1 + _attribute_bytes(element) for element in content)
    if kind == "M":
        return 3 + sum(len(key.encode()) + 1 + _attribute_bytes(element) for key, element in content.items())
    return 1  # BOOL, NULL


# ------------------------------------------------------------------------------------ assumptions
def _deployed(name: str) -> Any:
    """The configuration model's default for a field: what ``cdk deploy`` gives without settings."""
    return StepmailConfig.model_fields[name].default


@dataclass(frozen=True)
class Workload:
    """The assumptions; the defaults are the deployed configuration's and a small-attachment email.

    Durations are per email unless named per batch; the defaults are estimates for an email of a
    few hundred KB (SES v2 SendEmail ~100-200 ms, DynamoDB and S3 calls ~10-20 ms each).  The rates
    of SES events are typical of a list in good standing (SES reviews an account at 5 % bounces).
    """

    batch_size: int = _deployed("batch_size")
    attachments: int = 1
    attachment_mb: float = 0.1
    message_kb: float = 2.0  # the SQS body
    starter_memory_mb: int = _deployed("starter_memory_mb")
    sender_memory_mb: int = _deployed("sender_memory_mb")
    single_memory_mb: int = 512  # the original design's one Lambda (it must fit the same email)
    tracker_memory_mb: int = 256  # infra/constructs/tracking.py (a test keeps them equal)
    render_send_seconds: float = 0.25  # read attachments, render, SES send: the same in both designs
    workflow_extra_seconds: float = 0.08  # the run's own tasks around the sender: lock, heads, mark
    batch_overhead_seconds: float = 0.05  # a Lambda's per-batch work: parse, respond
    tracker_seconds: float = 0.03  # one SES event: a GetItem and an UpdateItem
    express_memory_mb: int = 64  # Express bills the run's memory in 64 MB units; small state = 64
    # What the stack logs and tracks (the configuration's names and defaults).
    execution_log_level: str = _deployed("execution_log_level")
    execution_data: bool = _deployed("log_email_content")  # the same switch turns both on
    delivery_tracking: bool = _deployed("delivery_tracking")
    # What happens per email.
    pacing_writes_per_email: float = 1.1  # one conditional UpdateItem on the second's counter, some retried
    retried_sends_per_email: float = 0.05  # throttled attempts of Render And Send (the goal: < 5 %)
    ses_events_per_email: float = 2.03  # Send, Delivery; a few % bounces, complaints, delays, rejects
    emails_per_second: float = 14.0  # the steady rate (X-Ray samples 1/s + 5 %); SES's first quota
    item_kb: float = 0.6  # the email's record with two delivery events, as DynamoDB sizes it (the twin)
    log_retention_days: int = 30  # infra.constants.LOG_RETENTION (a test keeps them equal)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{field.name} must not be negative")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.emails_per_second <= 0:
            raise ValueError("emails_per_second must be positive")
        if self.execution_log_level not in LOG_LEVELS:
            raise ValueError(f"execution_log_level must be one of {', '.join(LOG_LEVELS)}")

    @property
    def workflow_seconds(self) -> float:
        """One Express run: its own tasks plus the sender it waits for."""
        return self.workflow_extra_seconds + self.render_send_seconds

    @property
    def attachment_gb(self) -> float:
        """Attachment data per email, in GB (1 GB = 1024 MB)."""
        return self.attachments * self.attachment_mb / 1024

    @property
    def tracked_events_per_email(self) -> float:
        """SES events the tracker records per email (none without delivery tracking)."""
        return self.ses_events_per_email if self.delivery_tracking else 0.0


# ------------------------------------------------------------------------------------------ bills
@dataclass(frozen=True)
class Term:
    """One line of the bill: dollars per ``EMAILS`` emails."""

    name: str
    dollars: float


@dataclass(frozen=True)
class Bill:
    """One design's cost per ``EMAILS`` emails, term by term."""

    design: str
    terms: tuple[Term, ...]

    @property
    def total(self) -> float:
        return sum(term.dollars for term in self.terms)

    def dollars(self, name: str) -> float:
        """The named term, 0 when this design has no such term."""
        return sum(term.dollars for term in self.terms if term.name == name)


@dataclass(frozen=True)
class Comparison:
    """Both designs and what the orchestration adds."""

    stepmail: Bill
    original: Bill

    @property
    def overhead(self) -> float:
        """Dollars per ``EMAILS`` emails this design costs beyond the original."""
        return self.stepmail.total - self.original.total

    def term_names(self) -> list[str]:
        """Every term of either bill, in bill order."""
        names = [term.name for term in self.stepmail.terms]
        return names + [term.name for term in self.original.terms if term.name not in names]


def lambda_gb_seconds(memory_mb: int, seconds: float) -> float:
    """Lambda bills memory x duration per 1 ms."""
    return memory_mb / 1024 * math.ceil(seconds * 1000) / 1000


def express_gb_seconds(memory_mb: int, seconds: float) -> float:
    """Express bills duration in 100 ms units and memory in 64 MB units."""
    billed_seconds = math.ceil(round(seconds * 10, 9)) / 10
    billed_mb = max(1, math.ceil(memory_mb / 64)) * 64
    return billed_mb / 1024 * billed_seconds


def lambda_term(name: str, invocations: float, memory_mb: int, seconds: float, prices: Prices) -> Term:
    """Requests and duration of ``invocations`` per email, each ``seconds`` long."""
    per_invocation = (
        prices.lambda_per_request + lambda_gb_seconds(memory_mb, seconds) * prices.lambda_per_gb_second
    )
    return Term(name, invocations * per_invocation * EMAILS)


def logs_term(name: str, bytes_per_email: float, workload: Workload, prices: Prices) -> Term:
    """Ingestion, then storage for the retention (stored size counted as ingested: an upper bound)."""
    months = workload.log_retention_days / 30
    per_gb = prices.logs_per_gb_ingested + months * prices.logs_per_gb_month
    return Term(name, bytes_per_email * EMAILS / GB * per_gb)


def sqs_term(workload: Workload, prices: Prices) -> Term:
    """Send per 64 KB chunk; receive and delete once per batch (the event source batches both)."""
    per_email = math.ceil(workload.message_kb / 64) + 2 / workload.batch_size
    return Term("SQS", per_email * prices.sqs_per_request * EMAILS)


def ses_terms(workload: Workload, prices: Prices) -> list[Term]:
    """The same in both designs: the emails and their attachment data."""
    return [
        Term("SES emails", prices.ses_per_email * EMAILS),
        Term("SES attachment GB", workload.attachment_gb * prices.ses_per_attachment_gb * EMAILS),
    ]


def uploads_terms(workload: Workload, prices: Prices) -> list[Term]:
    """The same in both designs: producers' uploads, kept until the bucket's lifecycle expires them."""
    months = _deployed("attachments_expiry_days") / 30
    return [
        Term("S3 uploads and storage", workload.attachments * prices.s3_per_put * EMAILS
             + workload.attachment_gb * months * prices.s3_per_gb_month * EMAILS),
    ]  # fmt: skip


def execution_logs_bytes(workload: Workload) -> float:
    """What one email's run logs at the configured level (see :class:`ExecutionLogs`)."""
    data = int(workload.execution_data)
    logs, level = EXECUTION_LOGS, workload.execution_log_level
    if level == "ALL":
        extra = max(0, workload.attachments - 1) * logs.attachment[data]
        return logs.run[data] + extra + workload.retried_sends_per_email * logs.retry_all[data]
    if level == "ERROR":
        return workload.retried_sends_per_email * logs.retry_error[data]
    return 0.0  # FATAL and OFF: a sent email ends in success


def xray_traces_per_email(roots_per_email: float, workload: Workload) -> float:
    """Traces X-Ray records under its default rule: the first request each second, then 5 %.

    A root is what starts a trace: a starter invocation (the Express runs it starts, and the sender
    they invoke, join its trace) or a tracker invocation (EventBridge starts a new one).
    """
    roots_per_second = roots_per_email * workload.emails_per_second
    recorded_per_second = min(roots_per_second, 1 + 0.05 * max(0.0, roots_per_second - 1))
    return recorded_per_second / workload.emails_per_second


def stepmail_bill(workload: Workload, prices: Prices | None = None) -> Bill:
    """This design: starter per batch -> one Express run and one sender invoke per email."""
    prices = prices or Prices()
    terms = [
        sqs_term(workload, prices),
        starter_term(workload, prices),
        *express_terms(workload, prices),
        # Acquire Lock, its entry in the byMailKey index (keys only: Mark Sent changes no key, so it
        # writes no index entry), Mark Sent
        Term("DynamoDB", 3 * prices.dynamodb_per_write * EMAILS),
        Term("Pacing (DynamoDB)", workload.pacing_writes_per_email * prices.dynamodb_per_write * EMAILS),
        Term("S3 GET/HEAD", 2 * workload.attachments * prices.s3_per_get * EMAILS),  # HEAD + GET
        sender_term(workload, prices),
        logs_term("Workflow logs", execution_logs_bytes(workload), workload, prices),
        logs_term("Lambda logs", stepmail_lambda_log_bytes(workload), workload, prices),
        xray_term(stepmail_trace_roots(workload), workload, prices),
        *tracking_terms(workload, prices),
        storage_term(workload, prices),
        *uploads_terms(workload, prices),
        *ses_terms(workload, prices),
    ]
    return Bill("stepmail", tuple(terms))


def starter_term(workload: Workload, prices: Prices) -> Term:
    """The starter starts a batch's runs at once and waits for the longest: one run's time per batch."""
    seconds = workload.batch_overhead_seconds + workload.workflow_seconds
    return lambda_term("Starter Lambda", 1 / workload.batch_size, workload.starter_memory_mb, seconds, prices)


def express_terms(workload: Workload, prices: Prices) -> list[Term]:
    gb_seconds = express_gb_seconds(workload.express_memory_mb, workload.workflow_seconds)
    return [
        Term("Express requests", prices.express_per_request * EMAILS),
        Term("Express duration", gb_seconds * prices.express_per_gb_second * EMAILS),
    ]


def sender_term(workload: Workload, prices: Prices) -> Term:
    """One invocation per email, and one more per retried attempt."""
    invocations = 1 + workload.retried_sends_per_email
    memory, seconds = workload.sender_memory_mb, workload.render_send_seconds
    return lambda_term("Sender Lambda", invocations, memory, seconds, prices)


def xray_term(roots_per_email: float, workload: Workload, prices: Prices) -> Term:
    traces = xray_traces_per_email(roots_per_email, workload)
    return Term("X-Ray traces", traces * prices.xray_per_trace * EMAILS)


def storage_term(workload: Workload, prices: Prices) -> Term:
    return Term("DynamoDB storage", storage_gb_months(workload) * prices.dynamodb_per_gb_month * EMAILS)


def stepmail_lambda_log_bytes(workload: Workload) -> float:
    """Starter (per batch and per record), sender (per attempt and per email), tracker (per event)."""
    logs = LAMBDA_LOGS
    starter = logs.platform / workload.batch_size + logs.starter_info
    sender = (1 + workload.retried_sends_per_email) * logs.platform + logs.sender_metrics + logs.sender_info
    per_event = logs.platform + logs.tracker_metrics + logs.tracker_info
    return starter + sender + workload.tracked_events_per_email * per_event


def stepmail_trace_roots(workload: Workload) -> float:
    """Traces started per email: one per starter invocation, one per tracker invocation."""
    return 1 / workload.batch_size + workload.tracked_events_per_email


def tracking_terms(workload: Workload, prices: Prices) -> list[Term]:
    """The index on Mark Sent's message id, then per tracked SES event the rule, tracker and writes.

    Per event the tracker reads the index item (a consistent GetItem) and appends to the record (an
    UpdateItem); the first event of an email finds the record through the index instead (a Query)
    and writes the index item (a PutItem).
    """
    if not workload.delivery_tracking:
        return []
    events = workload.tracked_events_per_email
    first_events = min(1.0, events)  # emails with at least one tracked event
    writes = 1 + events + first_events  # the index entry of Mark Sent, the updates, the index items
    reads = events + 0.5 * first_events  # GetItem (1 unit); Query on the index (eventually consistent)
    dynamodb = writes * prices.dynamodb_per_write + reads * prices.dynamodb_per_read
    memory, seconds = workload.tracker_memory_mb, workload.tracker_seconds
    return [
        Term("Tracking: DynamoDB", dynamodb * EMAILS),
        Term("Tracking: EventBridge", events * prices.eventbridge_per_aws_event * EMAILS),
        lambda_term("Tracking: tracker Lambda", events, memory, seconds, prices),
    ]


def storage_gb_months(workload: Workload) -> float:
    """GB-months per email of the lock table: the record, its byMailKey index entry (and its
    byMessageId entry and index item when tracking) kept for the dedup window; DynamoDB adds 100 bytes
    per item and per index entry."""
    items_kb = workload.item_kb + 0.1 + 0.15  # the record; its byMailKey entry (keys and 100 B)
    if workload.delivery_tracking:
        items_kb += 0.2 + 0.25  # the byMessageId entry; the msg#<id> index item (each with its 100 B)
    return float(items_kb / 1024**2 * _deployed("dedup_window_seconds") / 86_400 / 30)


def original_bill(workload: Workload, prices: Prices | None = None) -> Bill:
    """The original design: one Lambda per batch renders and sends each email in turn."""
    prices = prices or Prices()
    batch_seconds = workload.batch_overhead_seconds + workload.batch_size * workload.render_send_seconds
    per_email = 1 / workload.batch_size
    logs = LAMBDA_LOGS
    log_bytes = logs.platform * per_email + logs.sender_metrics + logs.sender_info
    dedup_record = replace(workload, item_kb=0.2, delivery_tracking=False)
    terms = [
        sqs_term(workload, prices),
        Term("DynamoDB", prices.dynamodb_per_write * EMAILS),  # the de-duplication record
        Term("S3 GET/HEAD", workload.attachments * prices.s3_per_get * EMAILS),
        lambda_term("Sender Lambda", per_email, workload.single_memory_mb, batch_seconds, prices),
        logs_term("Lambda logs", log_bytes, workload, prices),
        xray_term(per_email, workload, prices),
        storage_term(dedup_record, prices),
        *uploads_terms(workload, prices),
        *ses_terms(workload, prices),
    ]
    return Bill("original", tuple(terms))


def compare(workload: Workload, prices: Prices | None = None) -> Comparison:
    """Both bills for one workload."""
    return Comparison(stepmail_bill(workload, prices), original_bill(workload, prices))


# ------------------------------------------------------------------------------------------ options
#: What an operator can turn on or off, as the configuration names it: (label, change to the workload).
OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("execution_log_level ALL", {"execution_log_level": "ALL"}),
    ("execution_log_level ALL + log_email_content", {"execution_log_level": "ALL", "execution_data": True}),
    ("execution_log_level ERROR", {"execution_log_level": "ERROR"}),
    ("execution_log_level OFF", {"execution_log_level": "OFF"}),
    ("delivery_tracking on", {"delivery_tracking": True}),
    ("delivery_tracking off", {"delivery_tracking": False}),
    (
        "delivery_tracking on + execution_log_level ALL",
        {"delivery_tracking": True, "execution_log_level": "ALL"},
    ),
)


def options(workload: Workload, prices: Prices | None = None) -> list[tuple[str, float, float]]:
    """Each option that changes ``workload``: its label, its overhead and the change it makes."""
    base = compare(workload, prices).overhead
    rows = []
    for label, change in OPTIONS:
        if all(getattr(workload, name) == value for name, value in change.items()):
            continue  # already the workload's setting
        overhead = compare(replace(workload, **change), prices).overhead
        rows.append((label, overhead, overhead - base))
    return rows


# ------------------------------------------------------------------------------------------ text
def render_table(comparison: Comparison) -> str:
    """A Markdown table: one row per term, both designs, then the totals and the overhead."""
    rows = ["| term | stepmail | original | difference |", "|---|---:|---:|---:|"]
    for name in comparison.term_names():
        ours, theirs = comparison.stepmail.dollars(name), comparison.original.dollars(name)
        rows.append(f"| {name} | ${ours:,.2f} | ${theirs:,.2f} | ${ours - theirs:+,.2f} |")
    ours, theirs = comparison.stepmail.total, comparison.original.total
    rows.append(
        f"| **total per 1M emails** | **${ours:,.2f}** | **${theirs:,.2f}** | **${ours - theirs:+,.2f}** |"
    )
    return "\n".join(rows)


def render_options(workload: Workload, prices: Prices | None = None) -> str:
    """A Markdown table: the overhead with each option, and what it adds to this workload's."""
    rows = ["| option | overhead per 1M emails | change |", "|---|---:|---:|"]
    for label, overhead, change in options(workload, prices):
        rows.append(f"| {label} | ${overhead:,.2f} | ${change:+,.2f} |")
    return "\n".join(rows)


def render_prices(prices: Prices | None = None) -> str:
    """A Markdown table: every price, its page and when it was read."""
    prices = prices or Prices()
    rows = [f"| price (us-east-1, read {PRICES_READ}) | dollars | source |", "|---|---:|---|"]
    for field in fields(prices):
        rows.append(f"| {field.name} | {getattr(prices, field.name):.10g} | {PRICE_SOURCES[field.name]} |")
    return "\n".join(rows)
