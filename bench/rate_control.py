# ruff: noqa: E501 - a benchmark prints wide tables
"""Rate control: a burst against the twin's emulated SES quota R (prints numbers; not a test).

    .venv/bin/python bench/rate_control.py [--rates 3 10] [--seconds 12] [--repeat 2] [--json out.json]

Each run puts a burst of ``seconds x R`` emails on the queue of a twin whose SES accepts R recipients a
second, with the configuration derived from ``ses_max_send_rate`` (when the config model has it), and
waits until every email is sent. Sustained rate: emails after the first second's allowance over the
time from the first send to the last. Lost: emails never sent; doubled: emails sent more than once.

First, the default configuration (nothing set: the runs pace to the quota the starter reads from
SES's GetAccount) against each quota of ``--default-quotas`` (2 5 10 14), a burst of
``--burst-seconds`` (8) seconds of quota each: what a user gets without tuning.  Then a quota raised
while a burst runs (2/s, raised to 6/s after 5 s; the starter reads the quota every 5 s there instead of
every 60).  Throttled: sends SES refused (the run then took a
slot again), as a share of the emails.  Each row keeps its send times (seconds from the first send)
for the plot.
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

GOAL = 0.9  # default configuration: sustained / quota
DERIVED_GOAL = 0.95  # ses_max_send_rate set: sustained / R


def _config(rate: float | None, **settings: Any) -> StepmailConfig:
    base = {"sender_identities": ("example.com",), "default_sender": "no-reply@example.com", **settings}
    if rate is not None and "ses_max_send_rate" in StepmailConfig.model_fields:  # derived from it
        return StepmailConfig(**base, ses_max_send_rate=rate)
    return StepmailConfig(**base)


def one_run(
    rate: float, burst: int, index: int, *, derived: bool = True, raise_to: float | None = None
) -> dict[str, Any]:
    """One burst; with ``raise_to``, SES raises the quota to it ``RAISE_AFTER`` seconds after the first send."""
    # The raised-quota run reads the quota every 5 s (the default: every 60 s) to see it within the burst
    refresh = {"quota_refresh_seconds": 5} if raise_to else {}
    config = _config(rate) if derived else _config(None, **refresh)
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
        raised_at: float | None = None
        while len({email.recipients[0] for email in twin.ses.sent}) < burst and time.monotonic() < deadline:
            if raise_to and raised_at is None and twin.ses.sent:
                first = min(email.sent_at.timestamp() for email in twin.ses.sent)
                if time.time() - first >= RAISE_AFTER:
                    twin.ses.rate.change(raise_to)
                    raised_at = time.time() - first
            time.sleep(0.05)
        time.sleep(1.0)  # a late duplicate would show up here
        sent = Counter(email.recipients[0] for email in twin.ses.sent)
        times = sorted(email.sent_at.timestamp() for email in twin.ses.sent)
        throttled = twin.ses.throttled
    sustained = (len(times) - rate) / (times[-1] - times[0]) if len(times) > rate else 0.0
    return {
        "config": ("derived" if derived else "default") + (" raised" if raise_to else ""),
        "raised_to": raise_to,
        "raised_at": raised_at,
        "after_raise": _rate_after(times, raised_at) if raised_at is not None else None,
        "throttled": throttled,
        "throttled_share": throttled / max(len(times), 1),
        "times": [moment - times[0] for moment in times],
        "rate": rate,
        "burst": burst,
        "sustained": sustained,
        "ratio": sustained / rate,
        "lost": sum(1 for to in recipients if to not in sent),
        "doubled": sum(count - 1 for count in sent.values() if count > 1),
        "max_concurrency": config.max_concurrency,
    }


#: When the quota-change run raises the quota, in seconds after its first send.
RAISE_AFTER = 5.0


def _rate_after(times: list[float], raised_at: float) -> float:
    """Emails per second from 2 s after the raise (the starter reads the quota again) to the last send."""
    start = times[0] + raised_at + 2
    later = [moment for moment in times if moment >= start]
    return (len(later) - 1) / (later[-1] - later[0]) if len(later) > 1 and later[-1] > later[0] else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=float, nargs="+", default=[3.0, 10.0])
    parser.add_argument("--seconds", type=float, default=12, help="burst size in seconds of quota")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--default-quotas", type=float, nargs="+", default=[2.0, 5.0, 10.0, 14.0])
    parser.add_argument(
        "--burst-seconds", type=float, default=8, help="default-config bursts, in seconds of quota"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    print(f"rate control (median of {args.repeat} runs; goal sustained/R >= {GOAL}, zero lost, zero doubled)")
    plan: list[tuple[float, int, bool, float | None]] = [
        (quota, int(args.burst_seconds * quota), False, None) for quota in args.default_quotas
    ]
    plan += [(2.0, 50, False, 6.0)]
    plan += [(rate, int(args.seconds * rate), True, None) for rate in args.rates]
    for rate, burst, derived, raise_to in plan:
        runs = [
            one_run(rate, burst, index, derived=derived, raise_to=raise_to) for index in range(args.repeat)
        ]
        row = {
            "config": runs[0]["config"],
            "raised_to": raise_to,
            "after_raise": runs[len(runs) // 2]["after_raise"],
            "raised_at": runs[len(runs) // 2]["raised_at"],
            "throttled": sum(run["throttled"] for run in runs),
            "throttled_share": statistics.median(run["throttled_share"] for run in runs),
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
        goal = GOAL if row["config"].startswith("default") else DERIVED_GOAL
        ok = (
            row["ratio"] >= goal
            and row["lost"] == 0
            and row["doubled"] == 0
            and row["throttled_share"] < 0.05
        )
        raised = (
            f", raised to {raise_to:g}/s at {row['raised_at']:.1f} s: then {row['after_raise']:.2f}/s"
            if raise_to and row["raised_at"] is not None
            else ""
        )
        print(
            f"  {row['config']:14} config, R={rate:5.1f}/s burst {burst:4d}: sustained {row['sustained']:5.2f}/s = {row['ratio']:.2f} x R{raised},"
            f" throttled {row['throttled_share']:.1%}, lost {row['lost']}, doubled {row['doubled']}"
            f" (max_concurrency {row['max_concurrency']})  {'ok' if ok else 'UNDER GOAL'}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
