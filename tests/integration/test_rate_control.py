"""Rate control against the live SES quota: every run takes a send slot (a per-second counter of
recipients in the lock table, sized from SES's GetAccount) before it sends.  With the twin's SES
enforcing a quota the configuration does not know, a burst is sent once each, none dead-lettered, and
no second ever holds more than the quota; a quota raised while the burst runs is followed without a
redeploy; ``ses_max_send_rate`` caps the rate below the quota.

The achieved rate and the share of throttled sends are measured by ``bench/rate_control.py`` (speed
belongs in benchmarks); these tests print them for the record and assert only what cannot vary.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest

from stepmail.core.starting import Outcome
from tests.integration.conftest import Harness

LONG = os.environ.get("STEPMAIL_LONG_TESTS") == "1"

#: The twin's timings at the quota: the derived retry and lease settings, sized for waiting runs.
PACED = {
    "visibility_timeout_seconds": 2,
    "max_receive_count": 100,
    "workflow_timeout_seconds": 120,
    "sender_timeout_seconds": 10,
    "lease_seconds": 150,
    "time_scale": 1.0,
}


def _burst(twin: Harness, size: int, prefix: str = "burst") -> list[str]:
    bodies = [
        json.dumps({"mailKey": f"{prefix}-{n}", "toAddress": f"r{n}@customer.example", "body": "x"})
        for n in range(size)
    ]
    return [qid for start in range(0, size, 10) for qid in twin.send_batch(bodies[start : start + 10])]


def _sent_once_each(twin: Harness, ids: list[str], size: int) -> None:
    twin.wait_for(*ids, timeout=300)
    twin.idle(timeout=120)
    assert sorted(email.to[0] for email in twin.emails) == sorted(
        f"r{n}@customer.example" for n in range(size)
    )
    assert twin.dead_letters() == []
    assert all(twin.twin.journal.outcome(qid).outcome in (Outcome.SENT, Outcome.DUPLICATE) for qid in ids)


def _report(twin: Harness, quota: float) -> None:
    times = sorted(email.sent_at.timestamp() for email in twin.emails)
    span = times[-1] - times[0] or 1.0
    print(
        f"rate control: {(len(times) - 1) / span:.2f} emails/s against a quota of {quota}/s; "
        f"throttled sends: {twin.twin.ses.throttled} of {len(times)}"
    )


@pytest.mark.parametrize(("quota", "burst"), [(2, 60), (5, 100)] if LONG else [(2, 24)])
def test_a_burst_is_paced_to_the_live_quota_with_no_setting(make_twin, quota: int, burst: int) -> None:
    # Given SES accepting `quota` recipients a second, and a configuration that does not say so
    twin = make_twin(ses_quota=quota, **PACED)
    assert twin.twin.config.ses_max_send_rate is None

    # When a burst arrives at once
    ids = _burst(twin, burst)

    # Then every email is sent once, none dead-lettered
    _sent_once_each(twin, ids, burst)
    # and the runs shared the quota learned from SES: no second held more, and seconds were filled
    slots = twin.send_slots()
    assert sum(slots.values()) >= burst
    assert max(slots.values()) == quota
    _report(twin, quota)


def test_a_raised_quota_is_followed_without_a_redeploy(make_twin) -> None:
    # Given SES accepting 2 recipients a second, and a burst being sent at that rate
    twin = make_twin(ses_quota=2, **PACED)
    ids = _burst(twin, 40)
    while len(twin.emails) < 6:
        time.sleep(0.05)

    # When SES raises the account's quota to 6 while the burst runs
    twin.twin.ses.rate.change(6)
    raised_at = time.time()

    # Then every email is still sent once
    _sent_once_each(twin, ids, 40)
    # and the seconds after the starter's next quota refresh hold more than the old quota, never more
    # than the new one
    slots = twin.send_slots()
    assert max(slots.values()) <= 6
    assert any(sent > 2 for sent in slots.values())
    before = [sent for second, sent in slots.items() if _epoch(second) < raised_at - 1]
    assert before and max(before) <= 2
    _report(twin, 6)


def test_the_configured_cap_holds_below_the_quota(make_twin) -> None:
    # Given SES accepting any rate, and ses_max_send_rate = 2 in the configuration
    twin = make_twin(ses_max_send_rate=2, ses_quota=0, **PACED)

    # When a burst arrives at once
    ids = _burst(twin, 16)

    # Then no second held more than the cap, and every email was sent once
    _sent_once_each(twin, ids, 16)
    assert max(twin.send_slots().values()) == 2
    assert twin.twin.ses.throttled == 0


def _epoch(second: str) -> float:
    """A counter's second (``2026-12-03T04:36:42``, UTC) as a POSIX time."""
    return datetime.strptime(second, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
