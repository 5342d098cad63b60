"""Templates: a message may name a ``template`` and give ``templateData`` instead of subject/body/html.

Rendered with Jinja2's sandbox (template data cannot reach Python internals), ``StrictUndefined``
(a missing variable is an error, not an empty string), HTML auto-escaping for the HTML part, and
JSON's spelling for ``templateData``'s values (``true``, not ``True``; printing ``null`` is an error
as a missing variable is: :mod:`stepmail.core.template_environment`).  Whatever goes wrong is a
:class:`TemplateError`: permanent, the message is dead-lettered with the reason.  The rendered
message is validated again, so data cannot smuggle a line break into the subject (a header) any
more than a producer can.

Where the templates' text comes from is a :class:`TemplateSource` (a directory in the Lambda asset:
``stepmail.adapters.templates``); this module reads no files.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from stepmail.core.errors import TemplateError
from stepmail.core.message import MailMessage, describe_validation_error

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment


@dataclass(frozen=True)
class TemplateParts:
    """A template's source text: the subject and at least one of the two bodies."""

    subject: str
    body: str | None = None
    html: str | None = None


class TemplateSource(Protocol):
    def parts(self, name: str) -> TemplateParts:
        """The template's text.

        Raises TemplateError when there is no template of that name.
        """
        ...


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html: str | None


@cache
def _environment(*, html: bool) -> SandboxedEnvironment:
    """Jinja2 is imported on the first template, not at cold start (~145 ms): most emails use none."""
    from stepmail.core.template_environment import build_environment

    return build_environment(html=html)


def render_template(parts: TemplateParts, data: dict[str, Any], *, name: str) -> Rendered:
    """Render each part with ``data``.

    Raises
    ------
    TemplateError
        A syntax error, a missing variable, a printed null (or another value without text: a
        non-finite number, a yesno of a non-boolean), data nested too deeply or a sandbox
        violation, naming the template and the part.
    """
    if parts.body is None and parts.html is None:
        raise TemplateError(f"template {name!r} has neither body.txt nor body.html")
    text, html = _environment(html=False), _environment(html=True)
    subject = _render(text, parts.subject, data, name, "subject.txt")
    return Rendered(
        # A subject file ends with a newline; the subject is one line.
        subject=subject.rstrip("\r\n"),
        body=_render(text, parts.body, data, name, "body.txt") if parts.body is not None else "",
        html=_render(html, parts.html, data, name, "body.html") if parts.html is not None else None,
    )


def _render(environment: SandboxedEnvironment, text: str, data: dict[str, Any], name: str, part: str) -> str:
    from jinja2 import TemplateError as JinjaError

    from stepmail.core.template_environment import TemplateValueError

    try:
        return environment.from_string(text).render(data)
    except TemplateValueError as error:
        # The message cannot name the variable (the value reached the output alone): give the line.
        where = f"{part}, line {_template_line(error)}"
        raise TemplateError(f"template {name!r} ({where}): {error.message}") from None
    except JinjaError as error:
        raise TemplateError(f"template {name!r} ({part}): {error.message or type(error).__name__}") from None
    except RecursionError:
        raise TemplateError(f"template {name!r} ({part}): the data is nested too deeply to print") from None


def _template_line(error: BaseException) -> int | str:
    """The template line being rendered when ``error`` was raised (Jinja2 rewrites the traceback so
    that the template's frames carry its own line numbers), or ``?``."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == "<template>"]
    return (frames[-1].lineno or "?") if frames else "?"


def apply_template(message: MailMessage, source: TemplateSource | None) -> MailMessage:
    """The message with its template rendered into subject/body/html (unchanged without a template).

    Raises
    ------
    TemplateError
        No template source, no such template, a rendering error, or a rendered message that is
        invalid (for example a line break in the subject).
    """
    if message.template is None:
        return message
    if source is None:
        raise TemplateError("this sender has no templates")
    rendered = render_template(
        source.parts(message.template), message.template_data or {}, name=message.template
    )
    document = message.model_dump(by_alias=True, exclude={"template", "template_data"}) | {
        "subject": rendered.subject,
        "body": rendered.body,
        "html": rendered.html,
    }
    try:
        return MailMessage.model_validate(document)
    except ValidationError as error:
        reason = describe_validation_error(error)
        raise TemplateError(f"template {message.template!r} rendered an {reason}") from None
