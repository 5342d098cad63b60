"""The de-duplication lock key: one email per mailKey + recipient set, with no address in the table."""

from __future__ import annotations

import re

import pytest

from stepmail.core.lock import LockTerms, lock_key

RECIPIENTS = ["jane@example.org", "Bob.Smith@example.org", "carol@example.net"]


@pytest.mark.parametrize(
    "same_set",
    [
        list(reversed(RECIPIENTS)),
        [address.upper() for address in RECIPIENTS],
        [*RECIPIENTS, "JANE@example.org", "bob.smith@EXAMPLE.org"],
        (address for address in RECIPIENTS),  # any iterable, read once
    ],
    ids=["order", "case", "duplicates", "generator"],
)
def test_lock_key_is_stable_under_order_case_and_duplicates(same_set: list[str]) -> None:
    # Given the same recipient set written differently, Then the key is the same
    assert lock_key("order-1001", same_set) == lock_key("order-1001", RECIPIENTS)


@pytest.mark.parametrize(
    "other_set",
    [
        RECIPIENTS[:2],
        [*RECIPIENTS, "dave@example.org"],
        ["jane@example.org"],
        ["jane@example.com", "Bob.Smith@example.org", "carol@example.net"],
        ["jane@example.org\nbob.smith@example.org", "carol@example.net"],  # joined-string collision attempt
    ],
    ids=["subset", "superset", "single", "other-domain", "separator"],
)
def test_lock_key_differs_for_another_recipient_set(other_set: list[str]) -> None:
    assert lock_key("order-1001", other_set) != lock_key("order-1001", RECIPIENTS)


def test_lock_key_differs_for_another_mail_key() -> None:
    assert lock_key("order-1001", RECIPIENTS) != lock_key("order-1002", RECIPIENTS)


def test_lock_key_is_the_mail_key_and_a_digest_without_any_address() -> None:
    # When a key is built
    key = lock_key("customers/order-1001", RECIPIENTS)
    # Then it is "<mailKey>#<32 hex digits>" (mailKey cannot hold '#', so the split is unambiguous)
    mail_key, digest = key.rsplit("#", 1)
    assert mail_key == "customers/order-1001"
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    # And no address, local part or domain of a recipient appears in it
    for address in RECIPIENTS:
        local, domain = address.lower().split("@")
        assert local not in key.lower()
        assert domain not in key.lower()


def test_lock_terms_as_state_are_strings_for_dynamodb_numbers() -> None:
    # Given the terms of a run started at t = 1,800,000,000
    terms = LockTerms(key="k#0", now=1_800_000_000, lease_seconds=180, dedup_window_seconds=14 * 86_400)
    # When written into the run's input
    state = terms.as_state()
    # Then every value is a string (DynamoDB's N) and the expiries are now + lease / now + window
    assert state == {
        "key": "k#0",
        "now": "1800000000",
        "leaseExpiresAt": "1800000180",
        "sentExpiresAt": "1801209600",
    }
