"""Templates on the twin: the real sender renders the repository's template; a missing variable or a
printed null is dead-lettered by the workflow with the TemplateError's reason; JSON values cross the
pipeline and print as JSON spells them."""

from __future__ import annotations

import email
import email.policy

import markupsafe

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


def test_json_values_cross_the_pipeline_and_print_as_json_spells_them(twin) -> None:
    # Given messages written as a producer in any language writes JSON: a 2**64 integer, an object
    # with a boolean, a 1.0 and 2-, 3- and 4-byte UTF-8, a float 1e20; and one whose product is null
    data = (
        '{"product": 18446744073709551616, "login_url": 1e20,'
        ' "name": {"first": "Jane", "vip": true, "score": 1.0, "kana": "Zoë ジェーン 😀"}}'
    )
    message = (
        '{{"mailKey": "{key}", "to": ["jane@customer.example"], "template": "welcome",'
        ' "templateData": {data}}}'
    )
    good = twin.send_raw(message.format(key="tpl-json-1", data=data))
    null = twin.send_raw(message.format(key="tpl-json-2", data='{"name": "Jane", "product": null}'))

    # When both are sent
    sent, dead = twin.wait_for(good, null)

    # Then the first went out with every value in JSON's spelling (the integer exact, no True, no 1.0,
    # no 1e+20), in the text part and escaped in the HTML part
    assert sent.outcome is Outcome.SENT and dead.outcome is Outcome.DEAD_LETTERED
    (mail,) = twin.emails
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    name = '{"first":"Jane","vip":true,"score":1,"kana":"Zoë ジェーン 😀"}'
    assert parsed["Subject"] == f"Welcome to 18446744073709551616, {name}"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "your 18446744073709551616 account is ready. Sign in at 100000000000000000000" in text
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"<p>Hello {markupsafe.escape(name)},</p>" in html
    assert 'href="100000000000000000000"' in html

    # And the null one is dead-lettered with a reason naming the part and line, not sent as "None"
    (letter,) = list_dead_letters(twin.sqs, twin.info.dlq_url)
    assert letter.mail_key == "tpl-json-2" and letter.error == "TemplateError"
    assert "template 'welcome' (subject.txt, line 1): null cannot be printed" in letter.reason
