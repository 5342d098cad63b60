# ruff: noqa: E501 - a benchmark prints wide tables
"""Rate control: a burst against the twin's emulated SES quota R (prints numbers; not a test).

    .venv/bin/python bench/rate_control.py [--rates 3 10] [--seconds 12] [--repeat 2] [--json out.json]

Each run puts a burst of ``seconds x R`` emails on the queue of a twin whose SES accepts R recipients a
second, with the configuration derived from ``ses_max_send_rate`` (when the config model has it), and
waits until every email is sent. Sustained rate: emails after the first second's allowance over the
time from the first send to the last. Lost: emails never sent; doubled: emails sent more than once.

First, the same with the default configuration (nothing set, ``ses_max_send_rate`` unknown to the
stack) against a quota of ``--default-quota`` (5) and a burst of ``--default-burst`` (40): what a user
gets without tuning.  Each row keeps its send times (seconds from the first send) for the plot.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import StepmailConfig
from twin.twin import LocalTwin

GOAL = 0.9


def _config(rate: float | None) -> StepmailConfig:
    base = {"sender_identities": ("example.com",), "default_sender": "no-reply@example.com"}
    if rate is not None and "ses_max_send_rate" in StepmailConfig.model_fields:  # derived from it
        return StepmailConfig(**base, ses_max_send_rate=rate)
    return StepmailConfig(**base)


def one_run(rate: float, burst: int, index: int, *, derived: bool = True) -> dict[str, Any]:
    config = _config(rate) if derived else _config(None)
    with (
        tempfile.TemporaryDirectory() as outbox,
        LocalTwin(
            config,
            outbox=Path(outbox),
            ses_max_send_rate=rate,
            visibility_timeout_seconds=5,
            handler_log_level="ERROR",
        ) as twin,
    ):
        assert twin.info is not None
        sqs = twin.client("sqs")
        recipients = [f"r{n}@customer.example" for n in range(burst)]
        for start in range(0, burst, 10):
            sqs.send_message_batch(
                QueueUrl=twin.info.queue_url,
                Entries=[
                    {
                        "Id": str(n),
                        "MessageBody": json.dumps(
                            {"mailKey": f"rate-{index}-{n}", "toAddress": to, "body": "x"}
                        ),
                    }
                    for n, to in enumerate(recipients[start : start + 10], start)
                ],
            )
        deadline = time.monotonic() + 60 + 4 * burst / rate
        while len({email.recipients[0] for email in twin.ses.sent}) < burst and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a late duplicate would show up here
        sent = Counter(email.recipients[0] for email in twin.ses.sent)
        times = sorted(email.sent_at.timestamp() for email in twin.ses.sent)
    sustained = (len(times) - rate) / (times[-1] - times[0]) if len(times) > rate else 0.0
    return {
        "config": "derived" if derived else "default",
        "times": [moment - times[0] for moment in times],
        "rate": rate,
        "burst": burst,
        "sustained": sustained,
        "ratio": sustained / rate,
        "lost": sum(1 for to in recipients if to not in sent),
        "doubled": sum(count - 1 for count in sent.values() if count > 1),
        "max_concurrency": config.max_concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=float, nargs="+", default=[3.0, 10.0])
    parser.add_argument("--seconds", type=float, default=12, help="burst size in seconds of quota")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--default-quota", type=float, default=5.0)
    parser.add_argument("--default-burst", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    print(f"rate control (median of {args.repeat} runs; goal sustained/R >= {GOAL}, zero lost, zero doubled)")
    plan = [(args.default_quota, args.default_burst, False)]
    plan += [(rate, int(args.seconds * rate), True) for rate in args.rates]
    for rate, burst, derived in plan:
        runs = [one_run(rate, burst, index, derived=derived) for index in range(args.repeat)]
        row = {
            "config": runs[0]["config"],
            "times": runs[len(runs) // 2]["times"],
            "rate": rate,
            "burst": burst,
            "sustained": statistics.median(run["sustained"] for run in runs),
            "ratio": statistics.median(run["ratio"] for run in runs),
            "lost": sum(run["lost"] for run in runs),
            "doubled": sum(run["doubled"] for run in runs),
            "max_concurrency": runs[0]["max_concurrency"],
        }
        rows.append(row)
        ok = row["ratio"] >= GOAL and row["lost"] == 0 and row["doubled"] == 0
        print(
            f"  {row['config']:7} config, R={rate:5.1f}/s burst {burst:4d}: sustained {row['sustained']:5.2f}/s = {row['ratio']:.2f} x R,"
            f" lost {row['lost']}, doubled {row['doubled']} (max_concurrency {row['max_concurrency']})"
            f"  {'ok' if ok else 'UNDER GOAL'}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
