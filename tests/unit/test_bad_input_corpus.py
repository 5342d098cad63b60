"""The hostile and broken messages of tests/bad_input/: each one is refused with a readable reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import SenderPolicy, parse_message

CORPUS = sorted((Path(__file__).resolve().parent.parent / "bad_input").glob("*.json"))
POLICY = SenderPolicy(("example.com",), "no-reply@example.com", ("stepmail-events",))


def test_the_corpus_has_at_least_thirty_cases() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("case", CORPUS, ids=lambda path: path.stem)
def test_each_hostile_message_is_refused_with_its_reason(case: Path) -> None:
    # Given a hostile or broken body
    spec = json.loads(case.read_text(encoding="utf-8"))

    # When the starter's validation reads it
    with pytest.raises(InvalidMessageError) as refused:
        parse_message(spec["body"], POLICY)

    # Then the reason says what is wrong, in one readable line
    reason = refused.value.reason
    assert spec["reason"] in reason
    assert "\n" not in reason and "\r" not in reason
    assert len(reason) < 2000


def test_an_oversized_body_is_refused_before_parsing() -> None:
    # Given a valid message whose body is larger than a workflow run can carry
    body = json.dumps({"mailKey": "big", "toAddress": "a@customer.example", "body": "x" * 240_000})

    # When / Then
    with pytest.raises(InvalidMessageError, match="at most"):
        parse_message(body, POLICY)
