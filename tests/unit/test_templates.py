"""Templates: the message fields, rendering in the sandbox, the directory source and the preview CLI."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path
from typing import Any

import markupsafe
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
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


# ---------------------------------------------------------------------------------------- JSON values
JSON_SETTINGS = settings(max_examples=150, deadline=None, database=None)
PYTHON_SPELLING = re.compile(r"None|True|False|'|\bnan\b|\binf\b")
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _render_data(template: str, data: dict[str, Any]) -> tuple[str, str | None]:
    """The template rendered as the text and as the HTML part."""
    rendered = render_template(TemplateParts(subject="s", body=template, html=template), data, name="t")
    return rendered.body, rendered.html


def _render_json(template: str, document: str) -> tuple[str, str | None]:
    """The template rendered with data parsed from JSON text, as the message parser reads it."""
    return _render_data(template, json.loads(document))


@pytest.mark.parametrize(
    ("document", "text"),
    [
        ("true", "true"),
        ("false", "false"),
        ("0", "0"),
        ("-0.0", "0"),
        ("1", "1"),
        ("1.0", "1"),  # JSON has one number type: 1 and 1.0 are the same value and print alike
        ("2.50", "2.5"),
        ("-1.5", "-1.5"),
        ("0.1", "0.1"),
        ("19.99", "19.99"),
        ("1e20", "100000000000000000000"),  # a float: ECMAScript writes it in full below 1e21
        ("1e21", "1e+21"),  # from 1e21, as JSON.stringify does
        ("0.000001", "0.000001"),
        ("1e-7", "1e-7"),  # below 1e-6, as JSON.stringify does
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("5e-324", "5e-324"),
        ("100000000000000000000", "100000000000000000000"),  # an integer: never 1e+20
        ("18446744073709551616", "18446744073709551616"),  # 2**64
        ("9007199254740993", "9007199254740993"),  # 2**53 + 1, which JavaScript would round
        ("-123456789012345678901234567890", "-123456789012345678901234567890"),
        ('"1e+20"', "1e+20"),  # a string is printed as it is
        ('"None"', "None"),
        ('{"a":[1,2]}', '{"a":[1,2]}'),
        ('{"a": [1, 2.0, null, true, false, "x"]}', '{"a":[1,2,null,true,false,"x"]}'),
        ('{"a": {"b": {"c": {"d": [[], {}, [null]]}}}}', '{"a":{"b":{"c":{"d":[[],{},[null]]}}}}'),
        ("[]", "[]"),
        ("{}", "{}"),
        ("[1e20, 1e21, 0.5]", "[100000000000000000000,1e+21,0.5]"),
        ('{"q": "say \\"hi\\"\\n\\\\"}', '{"q":"say \\"hi\\"\\n\\\\"}'),  # JSON's escapes inside
        ('{"\\u540d\\u524d": "\\u592a\\u90ce"}', '{"名前":"太郎"}'),  # non-ASCII written as is
    ],
)
def test_a_json_value_prints_as_json_spells_it(document: str, text: str) -> None:
    # Given a templateData value parsed from JSON
    # When it is printed in a text and an HTML part
    body, html = _render_json("{{ value }}", f'{{"value": {document}}}')
    # Then the text is JSON's spelling, and the HTML is the same text escaped as before
    assert body == text
    assert html == markupsafe.escape(text)


@pytest.mark.parametrize(
    ("value", "width"),
    [("é", 2), ("ß", 2), ("€", 3), ("東京", 3), ("😀", 4), ("𠮷", 4)],
    ids=["e-acute", "sharp-s", "euro", "cjk", "emoji", "cjk-ext-b"],
)
def test_unicode_of_every_utf8_width_prints_as_is_alone_and_inside_json(value: str, width: int) -> None:
    # Given text whose characters take 2, 3 or 4 bytes in UTF-8, as a string, a key and an array item
    assert {len(char.encode()) for char in value} == {width}
    data = {"text": value, "object": {value: [value]}}
    # When printed
    body, html = _render_data("{{ text }} {{ object }}", data)
    # Then the characters are written as they are (not \\u escapes), in the text and in the HTML
    assert body == f'{value} {{"{value}":["{value}"]}}'
    assert html == markupsafe.escape(body)


def test_html_escapes_json_values_as_it_escapes_strings() -> None:
    # Given values with markup inside an object, and a boolean
    data = {"order": {"note": "<b>rush</b> & fragile"}, "paid": True}
    # When rendered
    body, html = _render_data("{{ order }} {{ paid }}", data)
    # Then the text part is raw JSON, the HTML part the same escaped
    assert body == '{"note":"<b>rush</b> & fragile"} true'
    assert html == "{&#34;note&#34;:&#34;&lt;b&gt;rush&lt;/b&gt; &amp; fragile&#34;} true"


def test_the_largest_integer_the_parser_accepts_prints_every_digit() -> None:
    # Given a 4,300-digit integer: the most Python's JSON parser accepts (the message parser refuses more)
    digits = "9" * 4_300
    # When printed / Then every digit is there, in the text and inside an object
    body, _html = _render_json("{{ value }} {{ wrapped }}", f'{{"value": {digits}, "wrapped": [{digits}]}}')
    assert body == f"{digits} [{digits}]"


def test_printing_null_is_an_error_naming_the_part_and_line() -> None:
    # Given a template that prints a value the producer sent as null, on its third line
    template = "Hello {{ name }},\n\nyour company: {{ company }}\n"
    for part in ("body", "html"):
        parts = TemplateParts(subject="Hi", **{part: template})
        # When it is rendered / Then it is a permanent error naming the template, part and line
        with pytest.raises(TemplateError) as raised:
            render_template(parts, {"name": "Jane", "company": None}, name="greeting")
        file = "body.txt" if part == "body" else "body.html"
        assert raised.value.permanent
        assert f"template 'greeting' ({file}, line 3): null cannot be printed" in raised.value.reason


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ('{{ company | default("") }}', ""),
        ('{{ company | d("n/a") }}', "n/a"),
        ('{{ missing | default("n/a") }}', "n/a"),  # still the fallback for a missing variable
        ("{% if company %}at {{ company }}{% else %}alone{% endif %}", "alone"),
        ("{{ company is none }} {{ company is defined }}", "true true"),
        ("{{ info }}", '{"company":null}'),  # inside JSON, null is JSON's null
        ('{{ paid | default("x") }} {{ zero | d("x") }} {{ empty | d("x") }}', "false 0 "),  # not missing
        ('{{ paid | default("x", true) }}', "x"),  # Jinja's boolean mode still works
    ],
)
def test_a_template_chooses_what_null_prints(template: str, text: str) -> None:
    # Given null, false, 0 and "" values
    data = {"company": None, "info": {"company": None}, "paid": False, "zero": 0, "empty": ""}
    # When / Then null takes the fallback that a missing variable takes, and nothing else does
    assert _render_data(template, data)[0] == text


@pytest.mark.parametrize(
    "template",
    [
        '{{ "at " ~ company }}',
        "{{ company | string }}",
        '{{ [company] | join(", ") }}',
        '{{ "%s" | format(company) }}',
    ],
    ids=["concat", "string", "join", "format"],
)
def test_null_cannot_be_printed_through_a_filter_or_the_concat_operator_either(template: str) -> None:
    with pytest.raises(TemplateError, match="null cannot be printed"):
        _render_data(template, {"company": None})


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ('{{ paid | yesno("paid", "unpaid") }} / {{ due | yesno("paid", "unpaid") }}', "paid / unpaid"),
        ("{{ paid | yesno }} / {{ due | yesno }}", "yes / no"),
        ('{{ unknown | yesno("paid", "unpaid", "pending") }}', "pending"),
        ('{{ paid | yesno("<b>paid</b>", "-") }}', "<b>paid</b>"),
    ],
)
def test_yesno_lets_the_author_choose_the_words_for_true_false_and_null(template: str, text: str) -> None:
    body, html = _render_data(template, {"paid": True, "due": False, "unknown": None})
    assert body == text
    assert html == markupsafe.escape(text)  # the chosen words are escaped in HTML like any text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"paid": "false"}, "yesno takes true or false (or null, given a third word), not a string"),
        ({"paid": 0}, "not a number"),
        ({"paid": None}, "not null"),
        ({"paid": ["secret-value"]}, "not an array"),
        ({}, "'paid' is undefined"),
    ],
    ids=["string", "number", "null-without-a-word", "array", "missing"],
)
def test_yesno_refuses_what_is_not_a_boolean_without_echoing_it(data: dict[str, Any], reason: str) -> None:
    # When yesno is given a value that is not true or false / Then it is an error naming its type only
    with pytest.raises(TemplateError) as raised:
        _render_data('{{ paid | yesno("paid", "unpaid") }}', data)
    assert reason in raised.value.reason
    assert "secret-value" not in raised.value.reason


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ('{{ "Paid: " ~ paid ~ ", total " ~ total }}', "Paid: true, total 100000000000000000000"),
        ('{{ tags | join(", ") }}', 'true, 1, a, {"k":null}'),
        ('{{ lines | join(", ", attribute="done") }}', "true, false"),
        ("{{ paid | string }}{{ ratio | string }}", "true0.5"),
        (
            '{{ "%s items, paid: %s, total %s" | format(count, paid, total) }}',
            "3 items, paid: true, total 100000000000000000000",
        ),
        ('{{ "%.2f" | format(price) }} {{ "%d" | format(price) }}', "19.90 19"),
        ('{{ "%(a)s" | format(a=tags) }}', '[true,1,"a",{"k":null}]'),
        ("{{ price * 2 }} {{ 10 / 4 }} {{ 10 / 5 }} {{ count / 3 * 3 }}", "39.8 2.5 2 3"),
        ("{{ price | round(0) }} {{ tags | length }} {{ true }}", "20 4 true"),
    ],
    ids=[
        "concat",
        "join",
        "join-attribute",
        "string",
        "format-s",
        "format-f",
        "format-named",
        "arithmetic",
        "filters",
    ],
)
def test_json_spelling_applies_wherever_a_value_becomes_text(template: str, text: str) -> None:
    # Given booleans, numbers and containers used through the operators and filters that make text
    data = json.loads(
        '{"paid": true, "total": 1e20, "tags": [true, 1.0, "a", {"k": null}], "price": 19.9,'
        ' "ratio": 0.5, "count": 1, "lines": [{"done": true}, {"done": false}]}'
    )
    data["count"] = 3
    # When rendered / Then no Python spelling appears, in the text or the (escaped) HTML
    body, html = _render_data(template, data)
    assert body == text
    assert html == markupsafe.escape(text)


def test_a_format_that_does_not_fit_its_arguments_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"format: %d format"):
        _render_data('{{ "%d" | format(paid) }}', {"paid": True})


@pytest.mark.parametrize(
    ("template", "data"),
    [
        ("{{ value }}", {"value": float("nan")}),  # Python's JSON parser accepts NaN: refuse to print it
        ("{{ value }}", {"value": [float("inf")]}),
        ("{{ 1e308 * 10 }}", {}),  # a template's arithmetic can overflow to infinity
    ],
    ids=["nan", "infinity-inside", "overflow"],
)
def test_a_number_that_is_not_finite_is_a_template_error(template: str, data: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="not finite"):
        _render_data(template, data)


def test_data_nested_deeper_than_python_can_print_is_a_template_error() -> None:
    # Given an array nested 100 deep (prints) and one nested 5,000 deep (more than the recursion limit)
    shallow: list[Any] = []
    deep: list[Any] = []
    for _ in range(100):
        shallow = [shallow]
    for _ in range(5_000):
        deep = [deep]
    # When / Then the first prints whole, the second is a template error, not a crash
    assert _render_data("{{ value }}", {"value": shallow})[0] == "[" * 101 + "]" * 101
    with pytest.raises(TemplateError, match="nested too deeply"):
        _render_data("{{ value }}", {"value": deep})


def _same_json(read: Any, value: Any) -> bool:
    """Whether JSON read back is ``value``: a float compares as the double its digits read back to
    (``62198560047130430`` is how ECMAScript writes the double 6.219856004713043e16)."""
    if isinstance(value, dict):
        return (
            isinstance(read, dict)
            and read.keys() == value.keys()
            and all(_same_json(read[key], item) for key, item in value.items())
        )
    if isinstance(value, list):
        return isinstance(read, list) and len(read) == len(value) and all(map(_same_json, read, value))
    if isinstance(value, float):
        return _is_number(read) and float(read) == value
    return type(read) is type(value) and read == value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


@JSON_SETTINGS
@given(value=_json_values())
@example(value=None)
@example(value=1e16)  # Python writes 1e+16
@example(value=1e-5)  # Python writes 1e-05
@example(value=6.219856004713043e16)  # ECMAScript writes 62198560047130430: not the double's exact digits
@example(value=[None, True, {"a": 1.0}])
@example(value={"'": "None"})  # Python's spelling inside a string is data, not spelling
def test_any_json_value_prints_as_json_that_reads_back_as_itself(value: Any) -> None:
    # Given any JSON value, as the message parser would produce it
    value = json.loads(json.dumps(value))
    data = {"value": value}
    templates = ["{{ value }}", '{{ "" ~ value }}', "{{ value | string }}", "{{ [value] | join }}"]
    for template in templates:
        # When it is printed (directly, concatenated, as a string, joined)
        if value is None:
            # Then null alone is an error, as a missing variable is
            with pytest.raises(TemplateError, match="null cannot be printed"):
                _render_data(template, data)
            continue
        body, html = _render_data(template, data)
        # Then a string prints as itself, anything else as JSON that parses back to the same value
        if isinstance(value, str):
            assert body == value
        else:
            assert _same_json(json.loads(body), value)
            # And, outside its strings, nothing of Python's spelling: None, True, False, {'..'}, 1e+16
            assert not PYTHON_SPELLING.search(JSON_STRING.sub('""', body))
            if _is_number(value) and float(value).is_integer() and abs(value) < 1e21:
                assert body.lstrip("-").isdigit()  # a whole number below 1e21 is written in full
        # And the HTML part is the same text, escaped
        assert html == markupsafe.escape(body)


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


def test_template_render_previews_json_values_as_the_sender_renders_them(tmp_path: Path, capsys) -> None:
    # Given data for the welcome template with a boolean, an object and a float 1e20
    data = tmp_path / "data.json"
    data.write_text('{"name": {"vip": true, "score": 1.0}, "product": true, "login_url": 1e20}')

    # When it is previewed as a user would / Then the text is the same JSON spelling as the email's
    assert main(["template", "render", "welcome", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Subject: Welcome to true, {"vip":true,"score":1}\n')
    assert "Sign in at 100000000000000000000" in out
    assert "True" not in out and "1e+20" not in out

    # And a null that the template prints is an error naming the part and line, exit code 1
    data.write_text('{"name": "Jane", "product": null}')
    assert main(["template", "render", "welcome", "--data", str(data)]) == 1
    assert "'welcome' (subject.txt, line 1): null cannot be printed" in capsys.readouterr().err
