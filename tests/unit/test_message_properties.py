"""One recipient, one destination (issue 10), on generated recipient lists: the same mailbox given again
in another case or another list is one recipient, kept where it first appears (toAddress, to, cc, bcc),
and the count, the lock key, the headers and SES's destinations all come from that one list."""

from __future__ import annotations

import email
import email.policy
import email.utils
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from stepmail.core.addresses import parse_mailbox
from stepmail.core.lock import lock_key
from stepmail.core.message import MailMessage, validate_message
from stepmail.core.mime import render_email
from stepmail.core.starting import build_run_input
from tests.unit.test_budget_properties import NOW, POLICY, _delivery, recipient_lists

SETTINGS = settings(max_examples=80, deadline=None, database=None)
RECIPIENTS = recipient_lists(st.integers(1, 50))


def _occurrences(lists: dict[str, Any]) -> list[tuple[str, str]]:
    """Every mailbox given, in the order that decides which one is kept: toAddress, to, cc, bcc."""
    given_to = ([lists["toAddress"]] if "toAddress" in lists else []) + lists["to"]
    return (
        [("to", m) for m in given_to] + [("cc", m) for m in lists["cc"]] + [("bcc", m) for m in lists["bcc"]]
    )


def _key(mailbox: str) -> str:
    return parse_mailbox(mailbox).address.lower()


def _message(lists: dict[str, Any]) -> MailMessage:
    return POLICY.senders.resolve(
        validate_message({"mailKey": "k", "subject": "Hi", "body": "Hello", **lists})
    )


@SETTINGS
@given(RECIPIENTS)
@example({"to": ["a@example.org"], "cc": ["A@example.org"], "bcc": ["a@EXAMPLE.org"]})  # issue 10, case 3
def test_each_mailbox_is_kept_once_where_it_first_appears(lists: dict[str, Any]) -> None:
    message = _message(lists)
    first: dict[str, tuple[str, str]] = {}
    for where, mailbox in _occurrences(lists):
        first.setdefault(_key(mailbox), (where, str(parse_mailbox(mailbox))))

    to, cc, bcc = message.destinations()
    kept = [("to", m) for m in to] + [("cc", m) for m in cc] + [("bcc", m) for m in bcc]

    # Each mailbox once (case-insensitive), as it was first written, in the list it first appeared in
    assert sorted(kept) == sorted(first.values())
    # in the order given, within each list
    assert [m for where, m in kept if where == "to"] == [m for where, m in first.values() if where == "to"]
    # and the recipients are those mailboxes' addresses, in that order
    assert message.recipients() == [parse_mailbox(m).address for _, m in kept]


@SETTINGS
@given(RECIPIENTS)
def test_count_lock_key_and_headers_come_from_the_one_list(lists: dict[str, Any]) -> None:
    message = _message(lists)
    to, cc, bcc = message.destinations()
    addresses = [parse_mailbox(m).address for m in to + cc + bcc]
    run_input = build_run_input(message, _delivery(), POLICY, NOW)

    # The count the run paces by and the lock key are made of the same recipients
    assert (
        run_input["pacing"]["recipients"] == str(len(addresses)) == str(len({a.lower() for a in addresses}))
    )
    assert run_input["lock"]["key"] == lock_key("k", addresses)
    # and the rendered headers show to and cc once each, never bcc
    parsed = email.message_from_bytes(render_email(message, [], date=NOW), policy=email.policy.default)
    assert [a for _, a in email.utils.getaddresses(parsed.get_all("To", []))] == [
        parse_mailbox(m).address for m in to
    ]
    assert [a for _, a in email.utils.getaddresses(parsed.get_all("Cc", []))] == [
        parse_mailbox(m).address for m in cc
    ]
    assert parsed.get_all("Bcc") is None


@SETTINGS
@given(RECIPIENTS, st.data())
def test_the_lock_key_ignores_case_order_and_repetition(lists: dict[str, Any], data: st.DataObject) -> None:
    # Given the same mailboxes again, re-cased, reshuffled across to/cc/bcc, some given twice
    mailboxes = [m for _, m in _occurrences(lists)]
    again = data.draw(
        st.permutations(mailboxes + data.draw(st.lists(st.sampled_from(mailboxes), max_size=5)))
    )
    recased = [data.draw(st.sampled_from([str.lower, str.upper, str.swapcase]))(_key(m)) for m in again]
    split = sorted(data.draw(st.lists(st.integers(0, len(recased)), min_size=2, max_size=2)))
    other = {"to": recased[: split[0]], "cc": recased[split[0] : split[1]], "bcc": recased[split[1] :]}
    if all(len(addresses) <= 50 for addresses in other.values()):
        # Then it is the same email: the same lock key and the same count
        first, second = _message(lists), _message(other)
        assert lock_key("k", first.recipients()) == lock_key("k", second.recipients())
        assert len(first.recipients()) == len(second.recipients())
