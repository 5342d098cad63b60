"""Emails per second end to end through the local twin (prints numbers; not a test).

.venv/bin/python bench/twin_throughput.py [--emails 200] [--concurrency 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import StepmailConfig
from twin.twin import LocalTwin


def one_run(emails: int, concurrency: int) -> float:
    config = StepmailConfig(
        sender_identities=("example.com",), default_sender="no-reply@example.com", max_concurrency=concurrency
    )
    with tempfile.TemporaryDirectory() as outbox, LocalTwin(config, outbox=Path(outbox)) as twin:
        assert twin.info is not None
        sqs = twin.client("sqs")
        bodies = [
            json.dumps({"mailKey": f"bench-{n}", "toAddress": f"r{n}@customer.example", "body": "x"})
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
        while len(twin.ses.sent) < emails:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        assert len(twin.ses.sent) == emails
        return emails / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates = [one_run(args.emails, args.concurrency) for _ in range(args.repeat)]
    print(
        f"twin throughput: median {statistics.median(rates):.1f} emails/s "
        f"(runs: {', '.join(f'{rate:.1f}' for rate in rates)}; {args.emails} emails, "
        f"max_concurrency {args.concurrency})"
    )


if __name__ == "__main__":
    main()
