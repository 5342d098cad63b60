"""Templates on the twin: the real sender renders the repository's template; a missing variable is
dead-lettered by the workflow with the TemplateError's reason."""

from __future__ import annotations

import email
import email.policy

from producer.dead_letters import list_dead_letters
from stepmail.core.starting import Outcome


def test_a_template_message_is_rendered_and_a_missing_variable_is_dead_lettered(twin) -> None:
    # Given two messages naming the shipped welcome template, one lacking a variable
    to = ["jane@customer.example"]
    good = {
        "mailKey": "tpl-1",
        "to": to,
        "template": "welcome",
        "templateData": {"name": "Jane", "product": "Acme"},
    }
    bad = {"mailKey": "tpl-2", "to": to, "template": "welcome", "templateData": {"name": "Jane"}}

    # When both are sent
    sent, dead = twin.wait_for(twin.send(good), twin.send(bad))

    # Then the first went out rendered (text and escaped HTML), once
    assert sent.outcome is Outcome.SENT and dead.outcome is Outcome.DEAD_LETTERED
    (mail,) = twin.emails
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert parsed["Subject"] == "Welcome to Acme, Jane"
    assert "your Acme account is ready" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<p>Hello Jane,</p>" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]

    # And the second is in the DLQ with a reason naming the template and the variable, lock released
    (letter,) = list_dead_letters(twin.sqs, twin.info.dlq_url)
    assert letter.mail_key == "tpl-2" and letter.error == "TemplateError"
    assert "'welcome'" in letter.reason and "'product' is undefined" in letter.reason
    assert twin.lock(dead.lock_key) is None
