"""The hostile and broken messages of tests/bad_input/: each one is refused with a readable reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepmail.core.contract import Delivery
from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import MAX_MESSAGE_BYTES, SenderPolicy
from stepmail.core.starting import StartPolicy, prepare_run

CORPUS = sorted((Path(__file__).resolve().parent.parent / "bad_input").glob("*.json"))
POLICY = StartPolicy(
    SenderPolicy(("example.com",), "no-reply@example.com", ("stepmail-events",)),
    lease_seconds=240,
    dedup_window_seconds=86_400,
)
DELIVERY = Delivery(queue_message_id="5f1c7b8e-0000-4000-8000-000000000001", receive_count=1)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _prepare(body: str) -> dict:
    """Everything the starter checks before it starts a run."""
    return prepare_run(body, delivery=DELIVERY, policy=POLICY, now=NOW)


def test_the_corpus_has_at_least_thirty_cases() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("case", CORPUS, ids=lambda path: path.stem)
def test_each_hostile_message_is_refused_with_its_reason(case: Path) -> None:
    # Given a hostile or broken body
    spec = json.loads(case.read_text(encoding="utf-8"))

    # When the starter's checks read it
    with pytest.raises(InvalidMessageError) as refused:
        _prepare(spec["body"])

    # Then the reason says what is wrong, in one readable line
    reason = refused.value.reason
    assert spec["reason"] in reason
    assert "\n" not in reason and "\r" not in reason
    assert len(reason) < 2000


def test_an_oversized_body_is_refused_before_parsing() -> None:
    # Given a body one byte over what a run's input can hold, and not even JSON
    body = "{" * (MAX_MESSAGE_BYTES + 1)

    # When / Then: the size is the reason (parsing it would only find it nested too deeply)
    with pytest.raises(InvalidMessageError, match="1 bytes too many"):
        _prepare(body)
