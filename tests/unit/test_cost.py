"""The cost model: dollars per 1M emails for this design and the original, term by term."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from infra.config import StepmailConfig
from producer import cli
from producer.cost import (
    EMAILS,
    EXPRESS_RUN_ARN,
    GB,
    LAMBDA_LOGS,
    LOG_EVENT_OVERHEAD_BYTES,
    PLATFORM_LINES,
    PRICE_SOURCES,
    PRICES_READ,
    Prices,
    Workload,
    compare,
    execution_log_bytes,
    execution_log_record,
    express_gb_seconds,
    lambda_gb_seconds,
    options,
    original_bill,
    render_options,
    render_prices,
    render_table,
    stepmail_bill,
    xray_traces_per_email,
)
from stepmail.core.message import SenderPolicy
from stepmail.core.sending import StoredFile
from stepmail.core.starting import Ports, RunResult, StartPolicy
from stepmail.core.tracking import DeliveryEvent, RecordOutcome
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler
from stepmail.handlers import tracker as tracker_handler
from tests.unit.test_handlers import FakeQuota

EVENTS = Path(__file__).resolve().parent.parent / "events"
#: Ids as long as AWS's: an SES message id, a lock key (mailKey # 32 hex digits).
SES_MESSAGE_ID = "010001938c0e4b2f-7e1a7a70-6b39-4c3e-9a40-2f6d3c1b8e5a-000000"
MAIL_KEY = "invoice-2026-0001"
LOCK_KEY = f"{MAIL_KEY}#74ccd857cfdfa5d58e34edbe11995f21"
TRACE_ID = "Root=1-6765e2a1-34bd7d8f1c0a2b3c4d5e6f70;Parent=54565fb41ac79632;Sampled=0"
#: What a bare run pays beyond the original design: no retries, no logs, no traces, no pacing.
BARE = {"retried_sends_per_email": 0.0, "pacing_writes_per_email": 0.0, "execution_log_level": "OFF"}


def test_express_bills_100_ms_and_64_mb_units() -> None:
    # Given runs just over a unit boundary, Then they are billed for the next whole unit
    assert express_gb_seconds(64, 0.101) == pytest.approx(64 / 1024 * 0.2)
    assert express_gb_seconds(65, 0.1) == pytest.approx(128 / 1024 * 0.1)
    assert express_gb_seconds(1, 0.3) == pytest.approx(64 / 1024 * 0.3)  # 0.3 is not 0.30000000000000004


def test_lambda_bills_per_millisecond() -> None:
    assert lambda_gb_seconds(1024, 0.0101) == pytest.approx(0.011)


def test_every_term_is_priced_from_the_published_prices() -> None:
    # Given one email a batch, one 1 GB attachment, 1 s of render-and-send and 1024 MB functions
    workload = Workload(
        batch_size=1,
        attachments=1,
        attachment_mb=1024,
        message_kb=1,
        starter_memory_mb=1024,
        sender_memory_mb=1024,
        render_send_seconds=1.0,
        workflow_extra_seconds=0.0,
        batch_overhead_seconds=0.0,
        **BARE,
    )
    # When this design is priced
    bill = stepmail_bill(workload)
    # Then each term is its count times its list price, per 1M emails
    prices = Prices()
    assert bill.dollars("SQS") == pytest.approx(3 * 0.40)  # send, receive, delete
    assert bill.dollars("Starter Lambda") == pytest.approx(0.20 + prices.lambda_per_gb_second * EMAILS)
    assert bill.dollars("Express requests") == pytest.approx(1.00)
    assert bill.dollars("Express duration") == pytest.approx(
        64 / 1024 * prices.express_per_gb_second * EMAILS
    )
    assert bill.dollars("DynamoDB") == pytest.approx(3 * 0.625)  # lock, its byMailKey entry, Mark Sent
    assert bill.dollars("Pacing (DynamoDB)") == 0
    assert bill.dollars("S3 GET/HEAD") == pytest.approx(2 * 0.40)
    assert bill.dollars("Sender Lambda") == pytest.approx(0.20 + prices.lambda_per_gb_second * EMAILS)
    assert bill.dollars("Workflow logs") == 0
    assert bill.dollars("SES emails") == pytest.approx(100.0)
    assert bill.dollars("SES attachment GB") == pytest.approx(0.12 * EMAILS)
    assert bill.total == pytest.approx(sum(term.dollars for term in bill.terms))


def test_pacing_is_one_write_per_email_and_its_retries() -> None:
    # Given the pacing writes the rate control makes (the default: 1.1, a tenth of them retried)
    assert Workload().pacing_writes_per_email == 1.1
    # Then the term is that many DynamoDB writes per email
    bill = stepmail_bill(Workload(pacing_writes_per_email=1.5))
    assert bill.dollars("Pacing (DynamoDB)") == pytest.approx(1.5 * 0.625)


def test_bigger_batches_spread_the_per_batch_costs() -> None:
    # Given the same workload with batches of 1 and of 10
    one, ten = Workload(batch_size=1), Workload(batch_size=10)
    # Then the per-batch terms shrink and the per-email terms do not move
    assert stepmail_bill(ten).dollars("SQS") < stepmail_bill(one).dollars("SQS")
    assert stepmail_bill(ten).dollars("Starter Lambda") == pytest.approx(
        stepmail_bill(one).dollars("Starter Lambda") / 10, rel=0.01
    )
    assert stepmail_bill(ten).dollars("Express requests") == stepmail_bill(one).dollars("Express requests")


def test_attachments_cost_the_same_ses_in_both_designs_and_a_head_more_here() -> None:
    # Given three 5 MB attachments per email
    comparison = compare(Workload(attachments=3, attachment_mb=5))
    # Then SES and the uploads cost both designs alike, and this design pays one HEAD per attachment more
    for same in ("SES attachment GB", "S3 uploads and storage"):
        assert comparison.stepmail.dollars(same) == comparison.original.dollars(same)
    assert comparison.stepmail.dollars("S3 GET/HEAD") == pytest.approx(
        2 * comparison.original.dollars("S3 GET/HEAD")
    )


def test_the_workload_defaults_are_the_deployed_configuration() -> None:
    # Given the configuration cdk deploy uses when nothing is set
    deployed = StepmailConfig(sender_identities=("example.com",), default_sender="a@example.com")
    workload = Workload()
    # Then the model prices exactly that
    assert workload.execution_log_level == deployed.execution_log_level
    assert workload.execution_data is deployed.log_email_content
    assert workload.delivery_tracking is deployed.delivery_tracking
    assert workload.batch_size == deployed.batch_size
    assert (workload.starter_memory_mb, workload.sender_memory_mb) == (
        deployed.starter_memory_mb,
        deployed.sender_memory_mb,
    )


def test_the_facts_the_model_repeats_from_the_stack_match_it() -> None:
    # (producer/cost.py must not import CDK: `stepmail cost` would take a second to start)
    from infra import constants
    from infra.constructs import tracking

    assert Workload().tracker_memory_mb == tracking._TRACKER_MEMORY_MB
    # the log groups keep a month (a CDK enum: its name, not a number of days)
    assert (constants.LOG_RETENTION.name, Workload().log_retention_days) == ("ONE_MONTH", 30)


def test_the_default_overhead_meets_the_goal_with_every_term_counted() -> None:
    # Given the deployed defaults
    comparison = compare(Workload())
    # Then the orchestration adds at most $5 per 1M emails, counting pacing, logs, traces and storage
    assert 0 < comparison.overhead <= 5.0
    assert comparison.overhead == pytest.approx(comparison.stepmail.total - comparison.original.total)
    names = {term.name for term in comparison.stepmail.terms}
    expected = {"Pacing (DynamoDB)", "Workflow logs", "Lambda logs", "X-Ray traces", "DynamoDB storage"}
    assert names >= expected


def test_delivery_tracking_adds_the_index_write_and_a_tracker_run_per_event() -> None:
    # Given the same workload without and with tracking, and one SES event per email
    off = stepmail_bill(Workload(delivery_tracking=False, ses_events_per_email=1.0))
    on = stepmail_bill(Workload(delivery_tracking=True, ses_events_per_email=1.0))
    prices = Prices()
    # Then tracking's terms appear: writes (Mark Sent's index entry, the update, the index item), the
    # reads (GetItem, Query on the index), one tracker invocation; EventBridge is free for SES events
    assert off.dollars("Tracking: DynamoDB") == 0
    assert on.dollars("Tracking: DynamoDB") == pytest.approx(
        (3 * prices.dynamodb_per_write + 1.5 * prices.dynamodb_per_read) * EMAILS
    )
    assert on.dollars("Tracking: EventBridge") == 0
    tracker = prices.lambda_per_request + lambda_gb_seconds(256, 0.03) * prices.lambda_per_gb_second
    assert on.dollars("Tracking: tracker Lambda") == pytest.approx(tracker * EMAILS)
    # and the tracker's log lines and its traces
    assert on.dollars("Lambda logs") > off.dollars("Lambda logs")
    assert on.dollars("X-Ray traces") >= off.dollars("X-Ray traces")


@pytest.mark.parametrize(
    ("level", "logs"), [("ALL", True), ("ERROR", True), ("FATAL", False), ("OFF", False)]
)
def test_the_workflow_logs_follow_the_log_level(level: str, logs: bool) -> None:
    # Given a workload with retried sends, Then only ALL and ERROR log anything for a sent email
    bill = stepmail_bill(Workload(execution_log_level=level, retried_sends_per_email=0.05))
    assert (bill.dollars("Workflow logs") > 0) is logs


def test_logs_cost_ingestion_and_a_month_of_storage() -> None:
    # Given one log level with a known volume: ALL, one attachment, no retries, no data
    workload = Workload(execution_log_level="ALL", retried_sends_per_email=0.0, attachments=1)
    prices = Prices()
    # Then the term is the run's bytes, per GB ingested plus a month stored
    from producer.cost import EXECUTION_LOGS

    per_gb = prices.logs_per_gb_ingested + prices.logs_per_gb_month
    expected = EXECUTION_LOGS.run[0] * EMAILS / GB * per_gb
    assert stepmail_bill(workload).dollars("Workflow logs") == pytest.approx(expected)


def test_execution_data_is_left_out_of_the_log_unless_asked_for() -> None:
    # Given a history event with input
    event = {
        "id": 2,
        "previousEventId": 1,
        "type": "TaskStateEntered",
        "stateEnteredEventDetails": {"name": "Acquire Lock", "input": '{"to": "jane@customer.example"}'},
    }
    # When it is written to the log without and with execution data
    without = json.loads(execution_log_record(event, include_data=False))
    with_data = json.loads(execution_log_record(event, include_data=True))
    # Then the record has Step Functions' fields, and the input only when asked for
    assert set(without) == {
        "id",
        "type",
        "details",
        "previous_event_id",
        "event_timestamp",
        "execution_arn",
        "redrive_count",
    }
    assert without["details"] == {"name": "Acquire Lock"} and without["execution_arn"] == EXPRESS_RUN_ARN
    assert "jane@customer.example" in with_data["details"]["input"]


def test_each_log_level_writes_its_events_only() -> None:
    # Given a run's events: a success and a retried failure
    events = [
        {"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {}},
        {"id": 2, "type": "TaskFailed", "taskFailedEventDetails": {"error": "SesThrottledError"}},
        {"id": 3, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "RetryLaterError"}},
    ]

    def size(event: dict[str, Any]) -> int:
        return len(execution_log_record(event, include_data=False)) + LOG_EVENT_OVERHEAD_BYTES

    # Then ALL writes all three, ERROR the two errors, FATAL the run's failure, OFF nothing
    assert execution_log_bytes(events, "ALL", include_data=False) == sum(map(size, events))
    assert execution_log_bytes(events, "ERROR", include_data=False) == size(events[1]) + size(events[2])
    assert execution_log_bytes(events, "FATAL", include_data=False) == size(events[2])
    assert execution_log_bytes(events, "OFF", include_data=False) == 0


@pytest.mark.parametrize(
    ("emails_per_second", "traces_per_email"),
    [(1.0, 0.1), (10.0, 0.1), (20.0, (1 + 0.05 * 1) / 20), (100.0, (1 + 0.05 * 9) / 100)],
)
def test_xray_records_the_first_trace_of_each_second_then_five_percent(
    emails_per_second: float, traces_per_email: float
) -> None:
    # Given one trace started per 10 emails: up to 1 trace/s (10 emails/s) all are recorded,
    # above it the first of each second and 5 % of the rest
    workload = Workload(emails_per_second=emails_per_second)
    assert xray_traces_per_email(0.1, workload) == pytest.approx(traces_per_email)


def test_the_original_design_has_no_orchestration_terms() -> None:
    bill = original_bill(Workload())
    for name in ("Express requests", "Starter Lambda", "Workflow logs", "Pacing (DynamoDB)"):
        assert bill.dollars(name) == 0


@pytest.mark.parametrize(
    "bad",
    [{"batch_size": 0}, {"attachment_mb": -1}, {"emails_per_second": 0}, {"execution_log_level": "VERBOSE"}],
)
def test_impossible_workloads_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        Workload(**bad)


def test_the_table_lists_every_term_and_the_overhead() -> None:
    comparison = compare(Workload())
    table = render_table(comparison)
    for name in comparison.term_names():
        assert f"| {name} |" in table
    assert f"${comparison.overhead:+,.2f}" in table


def test_each_option_is_priced_against_the_defaults() -> None:
    # Given the default workload
    workload = Workload()
    base = compare(workload).overhead
    priced = {label: (overhead, change) for label, overhead, change in options(workload)}
    # Then turning on ALL logging or tracking costs more, and each figure is the model's for it
    all_logs = compare(replace(workload, execution_log_level="ALL")).overhead
    assert priced["execution_log_level ALL"] == pytest.approx((all_logs, all_logs - base))
    tracked = compare(replace(workload, delivery_tracking=True)).overhead
    assert priced["delivery_tracking on"] == pytest.approx((tracked, tracked - base))
    assert priced["execution_log_level ALL"][1] > 0 and priced["delivery_tracking on"][1] > 0
    # and the default's own setting is not offered as an option
    assert "execution_log_level ERROR" not in priced and "delivery_tracking off" not in priced
    assert "| delivery_tracking on |" in render_options(workload)


def test_every_price_names_its_page_and_when_it_was_read() -> None:
    # Then each price has an AWS pricing page, and the table says when they were read
    names = {field.name for field in fields(Prices)}
    assert set(PRICE_SOURCES) == names
    assert all(url.startswith("https://aws.amazon.com/") for url in PRICE_SOURCES.values())
    table = render_prices()
    assert PRICES_READ in table and all(url in table for url in PRICE_SOURCES.values())


def test_stepmail_cost_takes_the_assumptions_as_flags(capsys: pytest.CaptureFixture[str]) -> None:
    # When the CLI prices batches of 1 with two attachments and tracking on, as JSON
    argv = ["cost", "--batch-size", "1", "--attachments", "2", "--delivery-tracking", "--json"]
    assert cli.main(argv) == 0
    # Then it used those assumptions and the same model, and priced the options
    printed = json.loads(capsys.readouterr().out)
    assert printed["workload"]["batch_size"] == 1 and printed["workload"]["delivery_tracking"] is True
    expected = compare(Workload(batch_size=1, attachments=2, delivery_tracking=True))
    assert printed["overhead"] == pytest.approx(expected.overhead)
    assert {option["option"] for option in printed["options"]} >= {"execution_log_level ALL"}


def test_stepmail_cost_prints_the_bill_and_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--no-delivery-tracking"]) == 0
    printed = capsys.readouterr().out
    assert "orchestration overhead" in printed and "| execution_log_level ALL |" in printed


# ---------------------------------------------------------------- the log lines, measured
def _lines(capfd: pytest.CaptureFixture[str]) -> tuple[int, int]:
    """Bytes of the captured INFO lines and EMF lines, each with CloudWatch's per-event count."""
    lines = [line for line in capfd.readouterr().out.splitlines() if line.strip()]
    metrics = [line for line in lines if line.startswith('{"_aws"')]
    info = [line for line in lines if '"level":"INFO"' in line]
    assert len(metrics) + len(info) == len(lines), lines
    count = lambda group: sum(len(line.encode()) + LOG_EVENT_OVERHEAD_BYTES for line in group)  # noqa: E731
    return count(info), count(metrics)


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time (pytest swaps it between a test's phases)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in Lambda: metrics on (the twin turns them off), a trace id the logger adds to each line,
    and the handlers' logger writing to the test's stdout (it keeps the stream it was made with)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_ID)
    monkeypatch.setattr(sender_handler.logger.registered_handler, "stream", _CurrentStdout())
    # At INFO, as deployed: a twin started earlier in this process may have quietened the logger
    level = logging.getLogger("stepmail").level
    logging.getLogger("stepmail").setLevel(logging.INFO)
    yield
    logging.getLogger("stepmail").setLevel(level)


class _Store:
    def read(self, key: str, etag: str) -> StoredFile:
        return StoredFile(b"%PDF-1.4\n", "application/pdf")


class _Transport:
    def send_raw(self, **_: Any) -> str:
        return SES_MESSAGE_ID


class _Workflow:
    def run(self, execution_input: str) -> RunResult:
        output = {"outcome": "sent", "messageId": SES_MESSAGE_ID, "lockKey": LOCK_KEY}
        return RunResult("SUCCEEDED", EXPRESS_RUN_ARN, output)


class _Records:
    def lock_key_for(self, message_id: str) -> str:
        return LOCK_KEY

    def record(self, lock_key: str, event: DeliveryEvent) -> RecordOutcome:
        return RecordOutcome.RECORDED


def _within(figure: int, measured: int) -> bool:
    """The model's figure covers what was measured, and not by more than a quarter."""
    return measured <= figure <= 1.25 * measured


def test_the_senders_lines_per_email_are_what_the_model_counts(
    lambda_environment: None, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the sender's payload with AWS-sized ids
    payload = json.loads((EVENTS / "sender_payload.json").read_text())
    payload["lockKey"] = LOCK_KEY
    capfd.readouterr()
    # When it sends one email
    sender_handler.handler(payload, None, sender_handler.Sender(store=_Store(), transport=_Transport()))
    # Then its INFO line and its two EMF lines are what the model counts
    info, metrics = _lines(capfd)
    assert _within(LAMBDA_LOGS.sender_info, info), (info, metrics)
    assert _within(LAMBDA_LOGS.sender_metrics, metrics), (info, metrics)


def test_the_starters_lines_per_record_are_what_the_model_counts(
    lambda_environment: None, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given one SQS record whose run sends its email
    event = json.loads((EVENTS / "sqs_batch.json").read_text())
    event["Records"] = event["Records"][:1]
    event["Records"][0]["body"] = json.dumps(
        {"mailKey": MAIL_KEY, "toAddress": "a@customer.example", "body": "b"}
    )
    policy = StartPolicy(
        SenderPolicy(("example.com",), "no-reply@example.com"), lease_seconds=60, dedup_window_seconds=3600
    )
    ports = Ports(workflow=_Workflow(), dead_letters=None, locks=None, quota=FakeQuota())  # type: ignore[arg-type]
    starter = starter_handler.Starter(policy=policy, ports=ports)
    capfd.readouterr()
    # When the starter handles it
    starter_handler.handler(event, None, starter=starter)
    # Then its one INFO line is what the model counts (a sent email counts no metric here)
    info, metrics = _lines(capfd)
    assert _within(LAMBDA_LOGS.starter_info, info), (info, metrics)
    assert metrics == 0


def test_the_trackers_lines_per_event_are_what_the_model_counts(
    lambda_environment: None, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given an SES delivery event as EventBridge delivers it
    detail = {
        "eventType": "Delivery",
        "mail": {
            "messageId": SES_MESSAGE_ID,
            "timestamp": "2026-12-02T00:00:00.000Z",
            "destination": ["x@y.z"],
        },
        "delivery": {"timestamp": "2026-12-02T00:00:01.000Z", "smtpResponse": "250 2.6.0 Message received"},
    }
    capfd.readouterr()
    # When the tracker records it
    tracker_handler.handler({"detail": detail}, None, tracker_handler.Tracker(records=_Records()))
    # Then its INFO line and its EMF line are what the model counts
    info, metrics = _lines(capfd)
    assert _within(LAMBDA_LOGS.tracker_info, info), (info, metrics)
    assert _within(LAMBDA_LOGS.tracker_metrics, metrics), (info, metrics)


def test_the_platform_lines_are_the_documented_three_per_invocation() -> None:
    # Then each is JSON of its documented type, and the model counts them with their overhead
    types = [json.loads(line)["type"] for line in PLATFORM_LINES]
    assert types == ["platform.start", "platform.runtimeDone", "platform.report"]
    assert LAMBDA_LOGS.platform == sum(len(line) + LOG_EVENT_OVERHEAD_BYTES for line in PLATFORM_LINES)
