"""The console's DLQ actions, each on its own fresh twin (one twin per process at a time: moto's
backends are process-wide)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from tests.console.conftest import MISSING, post_as_the_page
from tests.integration.conftest import Harness


def test_dlq_shows_invalid_messages_from_the_starter(make_twin: Callable[..., Harness]) -> None:
    # Given a body that is not JSON
    harness = make_twin()
    harness.wait_for(harness.send_raw("not json"))

    # When the console lists the DLQ
    response = requests.get(f"{harness.twin.console_url}/api/dlq", timeout=30).json()

    # Then the starter's reason is shown, with no run to link to
    (letter,) = response["messages"]
    assert letter["source"] == "starter" and letter["error"] == "InvalidMessageError"
    assert "not valid JSON" in letter["reason"] and letter["executionArn"] is None


def test_redrive_sends_a_fixed_message_again(make_twin: Callable[..., Harness]) -> None:
    # Given a message dead-lettered for a missing attachment, which is then uploaded
    harness = make_twin()
    harness.wait_for(harness.send(MISSING))
    harness.s3.put_object(Bucket=harness.info.bucket, Key="invoice-2/invoice.pdf", Body=b"%PDF-1.7")

    # When the console's redrive button is pressed for that letter
    (letter,) = requests.get(f"{harness.twin.console_url}/api/dlq", timeout=30).json()["messages"]
    response = post_as_the_page(
        harness.twin.console_url, "/dlq/redrive", {"letters": [letter["originalMessageId"]]}
    )

    # Then the message leaves the DLQ and the email is sent
    assert response.status_code == 200
    assert [item["mailKey"] for item in response.json()["redriven"]["redriven"]] == ["invoice-2"]
    harness.idle()
    assert [email.to for email in harness.emails] == [["bob@example.org"]]
    assert harness.dead_letters() == []


def test_dlq_pages_through_every_letter(make_twin: Callable[..., Harness]) -> None:
    # Given 13 invalid messages in the DLQ (more than one receive returns)
    harness = make_twin()
    harness.wait_for(*[harness.send_raw(f'{{"mailKey": "bad-{index}"}}') for index in range(13)])

    # When the console lists the DLQ, twice
    url = f"{harness.twin.console_url}/api/dlq"
    first, second = (requests.get(url, timeout=30).json() for _ in range(2))

    # Then every letter is shown each time, with the deliveries it had (reading does not change them)
    assert sorted(letter["mailKey"] for letter in second["messages"]) == sorted(f"bad-{i}" for i in range(13))
    assert (second["heldAtStart"], second["seen"], second["unseen"]) == (13, 13, 0)
    assert {letter["deliveries"] for letter in first["messages"] + second["messages"]} == {1}
    assert first["messages"] == second["messages"]
