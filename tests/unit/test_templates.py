"""Templates: the message fields, rendering in the sandbox, the directory source and the preview CLI."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from producer.cli import main
from stepmail.adapters.templates import DirectoryTemplates
from stepmail.core.errors import TemplateError
from stepmail.core.message import MailMessage
from stepmail.core.sending import SendRequest, send_email
from stepmail.core.templates import TemplateParts, apply_template, render_template

REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


class FakeTemplates:
    def __init__(self, **templates: TemplateParts) -> None:
        self.templates = templates

    def parts(self, name: str) -> TemplateParts:
        if name not in self.templates:
            raise TemplateError(f"template {name!r} does not exist")
        return self.templates[name]


GREETING = TemplateParts(
    subject="Hello {{ name }}\n",
    body="Hi {{ name }}, your code is {{ code }}.\n",
    html="<p>Hi {{ name }}</p>",
)


def _message(**fields: Any) -> MailMessage:
    document = {"mailKey": "t-1", "to": ["jane@customer.example"], "from": "no-reply@example.com"}
    return MailMessage.model_validate(document | fields)


# ---------------------------------------------------------------------------------------- the message
def test_a_template_replaces_subject_body_and_html() -> None:
    # When a message names a template with data
    message = _message(template="greeting", templateData={"name": "Jane"})
    # Then it is valid and keeps both fields
    assert message.template == "greeting" and message.template_data == {"name": "Jane"}


@pytest.mark.parametrize(
    "fields",
    [
        {"template": "greeting", "subject": "Hi"},
        {"template": "greeting", "html": "<p>Hi</p>"},
        {"templateData": {"name": "Jane"}, "subject": "Hi"},
        {"template": "../etc"},
        {"template": ""},
    ],
)
def test_template_is_exclusive_with_content_and_its_name_is_a_plain_word(fields: dict[str, Any]) -> None:
    # When / Then template with content, data without a template, or a path-like name is refused
    with pytest.raises(ValidationError):
        _message(**fields)


# ---------------------------------------------------------------------------------------- rendering
def test_rendering_fills_every_part_and_escapes_html_only() -> None:
    # Given data with markup in it
    data = {"name": "<b>Jane</b> & co", "code": "42"}

    # When the template is rendered
    rendered = render_template(GREETING, data, name="greeting")

    # Then the subject is one line, the text is verbatim and the HTML is escaped
    assert rendered.subject == "Hello <b>Jane</b> & co"
    assert rendered.body == "Hi <b>Jane</b> & co, your code is 42.\n"
    assert rendered.html == "<p>Hi &lt;b&gt;Jane&lt;/b&gt; &amp; co</p>"


def test_a_missing_variable_is_a_template_error_naming_it() -> None:
    # When a variable is missing from the data / Then a permanent error names the template, part and variable
    with pytest.raises(TemplateError) as raised:
        render_template(GREETING, {"name": "Jane"}, name="greeting")
    assert raised.value.permanent
    assert "'greeting' (body.txt)" in raised.value.reason and "'code' is undefined" in raised.value.reason


def test_the_sandbox_refuses_reaching_python_internals() -> None:
    # Given a template that tries to climb to Python's internals
    evil = TemplateParts(subject="{{ ''.__class__.__mro__[1].__subclasses__() }}", body="x")
    # When / Then it is a template error, not code execution
    with pytest.raises(TemplateError):
        render_template(evil, {}, name="evil")


def test_a_syntax_error_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="'broken'"):
        render_template(TemplateParts(subject="{% if %}", body="x"), {}, name="broken")


def test_data_cannot_put_a_line_break_into_the_subject() -> None:
    # Given data that would inject a header through the subject
    message = _message(
        template="greeting", templateData={"name": "x\r\nBcc: all@customer.example", "code": "1"}
    )
    # When it is applied / Then the rendered message is refused like a producer's would be
    with pytest.raises(TemplateError, match="subject"):
        apply_template(message, FakeTemplates(greeting=GREETING))


def test_apply_template_returns_a_plain_message() -> None:
    # Given a template message
    message = _message(template="greeting", templateData={"name": "Jane", "code": "7"})
    # When it is applied
    rendered = apply_template(message, FakeTemplates(greeting=GREETING))
    # Then the result carries the rendered content and no template, the rest unchanged
    assert (rendered.subject, rendered.body, rendered.html) == (
        "Hello Jane",
        "Hi Jane, your code is 7.\n",
        "<p>Hi Jane</p>",
    )
    assert rendered.template is None and rendered.template_data is None
    assert rendered.to == message.to and rendered.mail_key == "t-1"
    # And a message without a template is returned as is, with or without a source
    plain = _message(subject="Hi")
    assert apply_template(plain, None) is plain


def test_send_email_renders_the_template_into_the_mime_message() -> None:
    # Given a send request naming a template
    sent: list[dict[str, Any]] = []

    class Transport:
        def send_raw(self, **request: Any) -> str:
            sent.append(request)
            return "ses-1"

    request = SendRequest.model_validate(
        {
            "message": _message(template="greeting", templateData={"name": "Jane", "code": "7"}),
            "lockKey": "t-1#x",
        }
    )

    # When it is sent
    send_email(request, store=None, transport=Transport(), templates=FakeTemplates(greeting=GREETING))  # type: ignore[arg-type]

    # Then SES got the rendered subject and both parts
    parsed = email.message_from_bytes(sent[0]["raw"], policy=email.policy.default)
    assert parsed["Subject"] == "Hello Jane"
    assert {part.get_content_type() for part in parsed.walk()} >= {"text/plain", "text/html"}


# ---------------------------------------------------------------------------------------- the directory
def test_directory_templates_read_the_repository_templates_and_refuse_unknown_names(tmp_path: Path) -> None:
    # Given the repository's templates
    source = DirectoryTemplates(REPO_TEMPLATES)
    # Then the shipped welcome template has its three parts, and unknown or path-like names are errors
    welcome = source.parts("welcome")
    assert "{{ name }}" in welcome.subject and welcome.body and welcome.html
    for name in ("nope", "..", "a/b"):
        with pytest.raises(TemplateError, match="does not exist"):
            source.parts(name)
    # And a template without subject.txt is an error
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "body.txt").write_text("x", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"no subject\.txt"):
        DirectoryTemplates(tmp_path).parts("bare")


def test_template_render_previews_a_template(tmp_path: Path, capsys) -> None:
    # Given data for the shipped welcome template
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"name": "Jane", "product": "Acme", "login_url": "https://acme.example/in"}))

    # When it is previewed as JSON
    assert main(["template", "render", "welcome", "--data", str(data), "--json"]) == 0

    # Then every part is rendered
    rendered = json.loads(capsys.readouterr().out)
    assert rendered["subject"] == "Welcome to Acme, Jane"
    assert (
        "https://acme.example/in" in rendered["body"] and 'href="https://acme.example/in"' in rendered["html"]
    )

    # And a missing variable is reported as an error
    data.write_text(json.dumps({"name": "Jane"}))
    assert main(["template", "render", "welcome", "--data", str(data)]) == 1
    assert "product" in capsys.readouterr().err
