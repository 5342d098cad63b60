"""The numbers docs/reliability.md states about limits and retries, recomputed from the code that makes
them: the latency table from ``redelivery_delay`` and the default configuration, the largest bodies
from the starter's own checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.config import StepmailConfig
from stepmail.core.contract import Delivery
from stepmail.core.message import SenderPolicy
from stepmail.core.pacing import PacingPolicy, redelivery_delay
from stepmail.core.starting import StartPolicy, prepare_run
from tests.limits import SCRIPTS, largest_accepted_body

DOC = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
CONFIG = StepmailConfig(sender_identities=("example.com",), default_sender="no-reply@example.com")


class _Edge:
    """A random source that always draws the lower (or upper) end of the range."""

    def __init__(self, upper: bool) -> None:
        self.upper = upper

    def uniform(self, low: float, high: float) -> float:
        return high if self.upper else low


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _number(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text.split("(")[0]))


def test_the_latency_table_is_what_redelivery_delay_gives_with_the_defaults() -> None:
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in _section("Worst-case latency of a message retried later N times").splitlines()
        if re.match(r"\|\s*\d", line)
    ]
    assert [int(row[0]) for row in rows] == list(range(1, CONFIG.max_receive_count))
    low = high = 0
    per_delivery = CONFIG.batching_window_seconds + CONFIG.workflow_timeout_seconds
    for row in rows:
        n = int(row[0])
        terms = {
            "base_seconds": CONFIG.retry_later_base_seconds,
            "max_seconds": CONFIG.retry_later_max_seconds,
        }
        lower = redelivery_delay(n, rng=_Edge(upper=False), **terms)  # type: ignore[arg-type]
        upper = redelivery_delay(n, rng=_Edge(upper=True), **terms)  # type: ignore[arg-type]
        low, high = low + lower, high + upper
        assert row[2] == f"{lower}\N{EN DASH}{upper}"
        assert [_number(cell) for cell in row[3:]] == [low, high, high + (n + 1) * per_delivery]


def test_the_visibility_timeout_stated_is_the_default_one() -> None:
    section = _section("Worst-case latency of a message retried later N times")
    assert f"**{CONFIG.queue_visibility_timeout_seconds} s** by default" in section


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_largest_bodies_stated_are_what_the_starter_accepts(script: str) -> None:
    pacing = PacingPolicy(cap=None, max_waits=CONFIG.pacing_max_waits)
    policy = StartPolicy(
        SenderPolicy(CONFIG.sender_identities, CONFIG.default_sender),
        lease_seconds=CONFIG.lease_seconds,
        dedup_window_seconds=CONFIG.dedup_window_seconds,
        pacing=pacing,
    )
    delivery = Delivery(queue_message_id="5f1c7b8e-0000-4000-8000-000000000001", receive_count=1)
    message = {"mailKey": "invoice-1", "to": ["jane@customer.example"], "subject": "Hello"}
    largest = largest_accepted_body(
        lambda body: prepare_run(body, delivery=delivery, policy=policy, now=datetime.now(UTC)),
        message,
        SCRIPTS[script],
    )
    word = {"ascii": "ASCII letters", "cyrillic": "Cyrillic", "cjk": "Chinese", "emoji": "emoji"}[script]
    assert f"{largest:,} {word}" in " ".join(_section("The size budget").split())
