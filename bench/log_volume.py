# ruff: noqa: E501 - a benchmark prints wide tables
"""What each run logs to CloudWatch Logs and what the lock table keeps, next to the cost model's figures.

    .venv/bin/python bench/log_volume.py [--json out.json]

On a twin with the default configuration (and one with delivery tracking, for the record's size):
three emails (one attachment, two, and one whose first send fails with an SES 5xx and is retried), each run's execution
history written as Step Functions logs it (``producer.cost.execution_log_record``) at ALL and at
ERROR, without and with execution data (tests/integration/log_volume.py).  The model's figures
(``producer.cost.EXECUTION_LOGS``, ``Workload.item_kb``) must cover these;
tests/integration/test_log_volume.py checks it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import StepmailConfig
from producer.cost import EXECUTION_LOGS, Workload
from tests.integration.log_volume import measure_execution_logs, record_bytes, send_and_wait
from twin.twin import LocalTwin


def measure() -> dict[str, object]:
    base = {"sender_identities": ("example.com",), "default_sender": "no-reply@example.com"}
    with tempfile.TemporaryDirectory() as outbox:
        with LocalTwin(
            StepmailConfig(**base), outbox=Path(outbox), time_scale=0.01, handler_log_level="ERROR"
        ) as twin:
            logs = measure_execution_logs(twin)
        tracked = StepmailConfig(**base, delivery_tracking=True)
        with LocalTwin(tracked, outbox=Path(outbox), time_scale=0.01, handler_log_level="ERROR") as twin:
            send_and_wait(twin, attachments=1)
            assert twin.simulator is not None and twin.simulator.wait_until_idle()
            record = record_bytes(twin)
    return {"execution_logs": asdict(logs), "record_bytes": record}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = measure()
    print("CloudWatch Logs per run (bytes, with 26 per event), measured on the twin vs the cost model:")
    print(f"  {'':34} {'without data':>14} {'with data':>12}   model")
    rows = {
        "run, 1 attachment (ALL)": "run",
        "each attachment more (ALL)": "attachment",
        "each retried send (ALL)": "retry_all",
        "each retried send (ERROR)": "retry_error",
    }
    for label, name in rows.items():
        measured, model = figures["execution_logs"][name], getattr(EXECUTION_LOGS, name)  # type: ignore[index]
        print(f"  {label:34} {measured[0]:14,} {measured[1]:12,}   {model[0]:,} / {model[1]:,}")
    print("  a sent email at ERROR, FATAL or OFF: 0")
    print(
        f"email record with two delivery events: {figures['record_bytes']} bytes (model: {Workload().item_kb:g} KB)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
