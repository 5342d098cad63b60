# ruff: noqa: E501 - a benchmark prints wide tables
"""Emails per second end to end through the local twin, next to the emulator's ceiling (prints numbers).

    .venv/bin/python bench/twin_throughput.py [--emails 200] [--repeat 3] [--json out.json]

In each run, on one twin: first the ceiling, a Pass-only Express state machine started with
StartSyncExecution from as many threads as the starter runs at once (max_concurrency x batch_size),
once per email, over HTTP as an external producer starts it; then the pipeline, the same number of
emails put on the queue (over HTTP) and timed until SES has sent them all. The ratio of the two is
measured side by side; the medians are over the runs.

The twin's own calls (the starter's, the interpreter's, the sender's, the poller's) are served in
process (twin/inprocess.py): the requests reaching moto are counted apart, over HTTP and in process.
For reference, the ceiling is also measured with the Pass-only runs started in process, as the
starter starts its runs ("in-process ceiling"); the goal is stated against the HTTP ceiling.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.config import Config

from infra.config import StepmailConfig
from twin.inprocess import IN_PROCESS_KEY
from twin.twin import LocalTwin

GOAL = 0.3
PASS_ONLY = {"StartAt": "Pass", "States": {"Pass": {"Type": "Pass", "End": True}}}


def ceiling(twin: LocalTwin, runs: int, threads: int, in_process: bool = False) -> float:
    """Pass-only sync executions per second on ``twin`` (started over HTTP, or in process)."""
    config = Config(inject_host_prefix=False, max_pool_connections=threads, retries={"total_max_attempts": 1})
    sfn = twin.own_client("stepfunctions", config) if in_process else twin.client("stepfunctions", config)
    arn = sfn.create_state_machine(
        name=f"bench-pass-only-{'in-process' if in_process else 'http'}",
        definition=json.dumps(PASS_ONLY),
        roleArn="arn:aws:iam::123456789012:role/bench",
        type="EXPRESS",
    )["stateMachineArn"]
    body = json.dumps({"mailKey": "x", "toAddress": "r@customer.example", "body": "x"})

    def run(_: int) -> str:
        return str(sfn.start_sync_execution(stateMachineArn=arn, input=body)["status"])

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(run, range(runs)))
    elapsed = time.monotonic() - started
    assert statuses == ["SUCCEEDED"] * runs, set(statuses)
    return runs / elapsed


def pipeline(twin: LocalTwin, emails: int, tag: str) -> float:
    """Emails per second from the queue to SES."""
    assert twin.info is not None
    sqs = twin.client("sqs")
    sent_before = len(twin.ses.sent)
    bodies = [
        json.dumps({"mailKey": f"bench-{tag}-{n}", "toAddress": f"r{n}@customer.example", "body": "x"})
        for n in range(emails)
    ]
    started = time.monotonic()
    for start in range(0, emails, 10):
        sqs.send_message_batch(
            QueueUrl=twin.info.queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
            ],
        )
    deadline = started + 600
    while len(twin.ses.sent) - sent_before < emails and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    assert len(twin.ses.sent) - sent_before == emails, "not every email was sent"
    return emails / elapsed


class RequestCounter:
    """A WSGI layer in front of the twin's moto application: counts the requests it serves."""

    def __init__(self) -> None:
        self.count = 0
        self.in_process = 0
        self._lock = threading.Lock()

    def __call__(self, app: Any) -> Any:
        def layer(environ: dict[str, Any], start_response: Any) -> Any:
            with self._lock:
                self.count += 1
                self.in_process += bool(environ.get(IN_PROCESS_KEY))
            return app(environ, start_response)

        return layer


def one_run(emails: int, concurrency: int, index: int) -> dict[str, float]:
    config = StepmailConfig(
        sender_identities=("example.com",), default_sender="no-reply@example.com", max_concurrency=concurrency
    )
    with tempfile.TemporaryDirectory() as outbox:
        twin = LocalTwin(config, outbox=Path(outbox), handler_log_level="ERROR")
        requests = RequestCounter()
        twin.layers.insert(0, requests)  # innermost: every request that reaches moto
        with twin:
            before = requests.count
            pass_only = ceiling(twin, emails, concurrency * config.batch_size)
            ceiling_requests = requests.count - before
            pass_only_in_process = ceiling(twin, emails, concurrency * config.batch_size, in_process=True)
            before, before_in_process = requests.count, requests.in_process
            emails_per_second = pipeline(twin, emails, str(index))
            pipeline_requests = requests.count - before
            in_process_requests = requests.in_process - before_in_process
    return {
        "ceiling": pass_only,
        "ceiling_in_process": pass_only_in_process,
        "pipeline": emails_per_second,
        "ratio": emails_per_second / pass_only,
        "ratio_in_process": emails_per_second / pass_only_in_process,
        "requests_per_run": ceiling_requests / emails,
        "requests_per_email": pipeline_requests / emails,
        "http_requests_per_email": (pipeline_requests - in_process_requests) / emails,
        "ceiling_requests_per_second": pass_only * ceiling_requests / emails,
        "pipeline_requests_per_second": emails_per_second * pipeline_requests / emails,
    }


def _runs(runs: list[dict[str, float]], key: str) -> str:
    return ", ".join(f"{run[key]:.1f}" for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=5, help="the event source's max_concurrency")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    runs = [one_run(args.emails, args.concurrency, index) for index in range(args.repeat)]
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(
        f"twin throughput ({args.emails} emails per run, max_concurrency {args.concurrency}, median of {args.repeat} runs)"
    )
    print(f"  pipeline          {median['pipeline']:6.1f} emails/s   (runs: {_runs(runs, 'pipeline')})")
    print(f"  Pass-only ceiling {median['ceiling']:6.1f} runs/s     (runs: {_runs(runs, 'ceiling')})")
    print(
        f"  pipeline/ceiling  {median['ratio']:6.2f}            {'ok' if median['ratio'] >= GOAL else 'UNDER GOAL'} (goal >= {GOAL})"
    )
    print(
        f"  in-process ceiling {median['ceiling_in_process']:5.1f} runs/s     (runs: {_runs(runs, 'ceiling_in_process')});"
        f" pipeline / it {median['ratio_in_process']:.2f}"
    )
    print(
        f"  requests to moto: {median['requests_per_email']:.1f} per email"
        f" ({median['http_requests_per_email']:.1f} over HTTP, the rest in process;"
        f" {median['pipeline_requests_per_second']:.0f}/s), {median['requests_per_run']:.1f} per Pass-only run"
        f" ({median['ceiling_requests_per_second']:.0f}/s)"
    )
    if args.json:
        args.json.write_text(json.dumps({"median": median, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
