"""Pacing: every run's share of the live SES quota, and how long a message waits before its next try.

SES refuses sends over the account's maximum send rate (``GetAccount``'s ``SendQuota.MaxSendRate``,
counted per recipient) and raises the quota over time.  Each run takes a slot before it sends
("Take A Send Slot"): it adds its email's recipients to a counter of the current half-second in the
lock table, on the condition that the half still has room.  A run in a full first half takes a slot
in the second half (its sender waits for that half to begin: :func:`seconds_until`); a full second
half waits one second and tries again.

Half-seconds, not seconds: counters per calendar second let R sends at the end of one second and R
more at the start of the next through together, twice what SES's one second of burst accepts; with
half the quota per half-second, any interval holds at most what a token bucket of one second's burst
allows, and sends spread over the second.  The starter learns the quota from SES (read again every
minute or so, never at each message) and gives each run its terms, so a raised quota is followed
without a redeploy, and every concurrent run shares the same counters.
``ses_max_send_rate`` in the configuration only caps it.

A message given back to the queue comes back after a short, jittered delay that grows with its
deliveries (:func:`redelivery_delay`), instead of after the queue's visibility timeout (minutes).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

#: The longest a sender waits for its slot's half-second to begin (it is at most half a second away).
MAX_SLOT_WAIT_SECONDS = 1.0

#: The room of a second when no rate is known (no quota, no cap): every email takes its slot at once.
UNLIMITED_ROOM = 1_000_000_000


@dataclass(frozen=True)
class PacingPolicy:
    """What the deployment sets: an optional cap, how many seconds a run may wait for a slot."""

    cap: float | None
    max_waits: int
    #: How long a second's counter stays in the table (TTL deletes it later still: harmless).
    counter_ttl_seconds: int = 3_600


def send_rate(quota: float | None, cap: float | None) -> float | None:
    """The rate to pace to: the live quota, under the configured cap when there is one."""
    known = [rate for rate in (quota, cap) if rate]
    return min(known) if known else None


def room(rate: float | None, recipients: int) -> int:
    """How many recipients a window holding ``rate`` may already hold for this email to take its slot.

    An email with more recipients than a window's share (or a quota under one per second) is sent in a
    window of its own: it needs an empty one (room 0), never an impossible one.
    """
    if rate is None:
        return UNLIMITED_ROOM
    return max(math.floor(rate) - recipients, 0)


def send_windows(rate: float | None, recipients: int) -> tuple[dict[str, str], dict[str, str]]:
    """The two halves of a second a run may take its slot in: each one's counter suffix and room.

    The first half gets the odd recipient of an odd quota.  Under 2 a second (or no rate known) a
    half would hold nothing: the whole second is one window, both halves share its counter.
    """
    if rate is None or rate < 2:
        whole = {"suffix": "", "room": str(room(rate, recipients))}
        return whole, whole
    per_second = math.floor(rate)
    first, second = per_second - per_second // 2, per_second // 2
    return (
        {"suffix": ".0", "room": str(room(first, recipients))},
        {"suffix": ".5", "room": str(room(second, recipients))},
    )


def pacing_terms(recipients: int, rate: float | None, *, now: int, policy: PacingPolicy) -> dict[str, object]:
    """The run's ``$.pacing`` (numbers for DynamoDB as strings; the wait counter as a number)."""
    first, second = send_windows(rate, recipients)
    return {
        "recipients": str(recipients),
        "first": first,
        "second": second,
        "expiresAt": str(now + policy.counter_ttl_seconds),
        "waited": 0,
        "maxWaits": policy.max_waits,
    }


def seconds_until(not_before: str, now: datetime) -> float:
    """How long the sender waits before sending: until its slot's half-second begins.

    A run in the first half of a second whose half is full takes a slot in the second half instead
    of waiting a whole second (runs that arrive together would otherwise keep meeting in the same
    half); it must not send before that half begins.  Unreadable or past times: no wait.
    """
    try:
        start = datetime.fromisoformat(not_before.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if start.tzinfo is None or now.tzinfo is None:
        return 0.0
    return min(max((start - now).total_seconds(), 0.0), MAX_SLOT_WAIT_SECONDS)


def redelivery_delay(receive_count: int, *, base_seconds: int, max_seconds: int, rng: random.Random) -> int:
    """Seconds before a message given back to the queue is delivered again ("equal jitter").

    The n-th delivery's delay is drawn from [d/2, d] with d = min(max, base x 2^(n-1)): never shorter
    than half the step (so the deliveries of a message held by a dead run's lock outlast the lease,
    see ``infra.config``), spread so that a burst given back together does not come back together.
    """
    step = min(max_seconds, base_seconds << max(receive_count - 1, 0))
    return max(1, math.ceil(step / 2 + rng.uniform(0, step / 2)))


def least_total_delay(deliveries: int, *, base_seconds: int, max_seconds: int) -> float:
    """The shortest time ``deliveries`` deliveries can span (each delay at its lower bound)."""
    return sum(min(max_seconds, base_seconds << (n - 1)) / 2 for n in range(1, deliveries))
