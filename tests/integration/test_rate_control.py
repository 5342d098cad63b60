"""Rate control against the SES quota: with the twin's SES accepting R emails per second, a burst is
sent at >= 0.9 x R sustained, none lost, none doubled, none dead-lettered for throttling — with the
event source and retry policy derived from `ses_max_send_rate` alone."""

from __future__ import annotations

import json
import os

import pytest

from stepmail.core.starting import Outcome

LONG = os.environ.get("STEPMAIL_LONG_TESTS") == "1"


def sustained_rate(send_times: list[float]) -> float:
    """Emails per second in the steady part of a burst: between its 10th and 90th percentile sends
    (leaving out the first second's burst allowance and the tail of the last retries)."""
    times = sorted(send_times)
    first, last = len(times) // 10, len(times) - 1 - len(times) // 10
    return (last - first) / (times[last] - times[first])


@pytest.mark.parametrize(("rate", "burst"), [(2, 120)] if LONG else [(2, 36)])
def test_a_burst_is_sent_at_the_ses_quota(make_twin, rate: int, burst: int) -> None:
    # Given SES accepting `rate` emails a second, and a configuration derived from that quota only
    twin = make_twin(
        ses_max_send_rate=rate,
        time_scale=1.0,
        visibility_timeout_seconds=2,
        max_receive_count=100,
        workflow_timeout_seconds=120,
        sender_timeout_seconds=10,
        lease_seconds=150,
    )
    config = twin.twin.config
    assert (config.batch_size, config.max_concurrency, config.retry.max_attempts) == (1, 4, 12)  # derived

    # When a burst arrives at once
    bodies = [
        json.dumps({"mailKey": f"burst-{n}", "toAddress": f"r{n}@customer.example", "body": "x"})
        for n in range(burst)
    ]
    ids = [qid for start in range(0, burst, 10) for qid in twin.send_batch(bodies[start : start + 10])]
    twin.wait_for(*ids, timeout=300)
    twin.idle(timeout=120)

    # Then every email was sent exactly once, none dead-lettered, and SES was kept at its quota
    assert sorted(email.to[0] for email in twin.emails) == sorted(
        f"r{n}@customer.example" for n in range(burst)
    )
    assert twin.dead_letters() == []
    assert all(twin.twin.journal.outcome(qid).outcome in (Outcome.SENT, Outcome.DUPLICATE) for qid in ids)
    sustained = sustained_rate([email.sent_at.timestamp() for email in twin.emails])
    print(
        f"rate control: {sustained:.2f} emails/s sustained against a quota of {rate}/s "
        f"({sustained / rate:.0%}); throttled attempts: {twin.twin.ses.throttled}"
    )
    assert sustained >= 0.9 * rate
