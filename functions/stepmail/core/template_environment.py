"""The Jinja2 environment templates render in, and how ``templateData``'s JSON values read there.

``templateData`` is JSON, so its values print as JSON spells them, never as Python does (``None``,
``True``, ``{'a': [1, 2]}``, ``1e+20``):

* a string prints as itself;
* ``true`` and ``false`` print ``true`` and ``false``; ``{{ paid | yesno("paid", "unpaid") }}``
  chooses other words;
* a number prints as ECMAScript's Number::toString writes it (what ``JSON.stringify`` writes):
  the shortest decimal that reads back as the same number, ``1.0`` as ``1``, ``2.50`` as ``2.5``,
  ``1e20`` as ``100000000000000000000``, in exponent form only from 1e21 and below 1e-6
  (``1e+21``, ``1e-7``).  JSON has one number type and producers' libraries spell the same value
  differently (``1`` or ``1.0``), so the value decides, not the spelling.  An integer prints all
  of its digits however large (JavaScript would round past 2**53; the parser accepts up to 4,300);
* an object or an array prints as compact JSON (``{"a":[1,2]}``, the separators of
  ``JSON.stringify``), non-ASCII as is, nested values spelled as above (``null`` inside is ``null``);
* ``null`` cannot be printed: it is an error, as a missing variable is under ``StrictUndefined``
  (printing nothing where the author expected a value is the mistake both catch).  The author
  decides instead: ``{% if x %}`` is false for null, and ``default`` (``d``) counts null as missing,
  so ``{{ x | default("") }}`` prints nothing and ``{{ x | d("n/a") }}`` a word.

The same spelling applies wherever a value becomes text: ``{{ ... }}``, the ``~`` operator and the
``join``, ``string`` and ``format`` filters (``"%.2f" | format(price)`` still sees a number).  HTML
templates escape the result as before.  Python's own ``"%s" % x`` and ``"{}".format(x)``, which the
sandbox also allows, are left as Python has them (covering them would change what their field
lookups see): templates use the filters.  A value the template computes follows the same rules
(``{{ 10 / 4 }}`` prints ``2.5``, ``{{ 10 / 5 }}`` prints ``2``); a non-finite one (``1e308 * 10``) is
an error, as JSON has no such number.

This module imports Jinja2; :mod:`stepmail.core.templates` imports it on the first template only.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, Undefined, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import FilterArgumentError, TemplateRuntimeError
from jinja2.filters import do_default, do_format, make_attrgetter, sync_do_join
from jinja2.nodes import Concat, Const, EvalContext, Expr, Impossible, TemplateData
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import soft_str

#: ECMAScript's Number::toString writes 0.<digits> * 10**n in full for -6 < n <= 21 (1e-6 <= |x| < 1e21).
_LONGEST_POSITIONAL_EXPONENT = 21
_SMALLEST_POSITIONAL_EXPONENT = -6


class TemplateValueError(TemplateRuntimeError):
    """A value that has no text in a template: null printed, a non-finite number, a yesno of a
    value that is not true or false, a format that does not fit its arguments."""


def build_environment(*, html: bool) -> SandboxedEnvironment:
    """The sandbox templates render in: strict about missing values, JSON's spelling for values."""
    environment = _JsonTextEnvironment(
        undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True, finalize=json_text
    )
    environment.filters.update(
        {
            "default": _default,
            "d": _default,
            "yesno": _yesno,
            "join": _join,
            "string": _string,
            "format": _format,
        }
    )
    return environment


# ---------------------------------------------------------------------------------------- spelling
def json_text(value: Any) -> Any:
    """What printing ``value`` writes: JSON's spelling for JSON's types; anything else unchanged
    (a string, markup, an undefined value) for Jinja to print as it does.

    Raises
    ------
    TemplateValueError
        For null and for a number that is not finite.
    """
    if isinstance(value, str):
        return value
    if value is None:
        raise TemplateValueError(
            "null cannot be printed: test it with {% if ... %} or give a fallback with | default(...)"
        )
    if isinstance(value, (bool, int, float, dict, list, tuple)):
        return compact_json(value)
    return value


def compact_json(value: Any) -> str:
    """``value`` as compact JSON (``JSON.stringify``'s separators), numbers as :func:`number_text`.

    Raises
    ------
    TemplateValueError
        For a number that is not finite.
    RecursionError
        For nesting deeper than Python's recursion limit allows.
    """
    if isinstance(value, dict):
        members = (f"{_json_string(_key_text(key))}:{compact_json(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(compact_json(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__str__(value)
    if isinstance(value, float):
        return number_text(value)
    return _json_string(soft_str(value))


def number_text(number: float) -> str:
    """``number`` as ECMAScript's Number::toString writes it (ECMA-262, "Number::toString").

    Raises
    ------
    TemplateValueError
        For NaN and the infinities, which JSON cannot hold.
    """
    if not math.isfinite(number):
        raise TemplateValueError("a number that is not finite (NaN or infinity) cannot be printed")
    if number == 0:
        return "0"  # -0 too, as in JavaScript
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that read back as the same double, as ECMAScript asks.
    shortest = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, shortest.digits))
    point = int(shortest.exponent) + len(digits)  # the value is 0.<digits> * 10**point
    if len(digits) <= point <= _LONGEST_POSITIONAL_EXPONENT:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= _LONGEST_POSITIONAL_EXPONENT:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if _SMALLEST_POSITIONAL_EXPONENT < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{mantissa}e{point - 1:+d}"


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _key_text(key: Any) -> str:
    """A member name: JSON's are strings; a dict the template builds may use other keys."""
    return key if isinstance(key, str) else compact_json(key)


def _json_type(value: Any) -> str:
    """The JSON type of ``value``, for error messages (which never echo the data itself)."""
    names = ((str, "a string"), (bool, "a boolean"), ((int, float), "a number"), (dict, "an object"))
    for types, name in names:
        if isinstance(value, types):
            return name
    return "null" if value is None else "an array" if isinstance(value, (list, tuple)) else "a value"


# ---------------------------------------------------------------------------------------- filters
def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's ``default``, with null counted as missing (JSON's null is "no value")."""
    return default_value if value is None else do_default(value, default_value, boolean)


def _yesno(value: Any, yes: Any = "yes", no: Any = "no", null: Any = None) -> Any:
    """``yes`` for true, ``no`` for false, ``null`` (when given) for null.

    Raises
    ------
    TemplateValueError
        For any other value (a string ``"false"`` is not false), and for null without a third word.
    """
    if isinstance(value, Undefined):
        return value  # printing it reports the missing variable by name
    if value is True or value is False:
        return yes if value else no
    if value is None and null is not None:
        return null
    expected = "true, false or null" if null is not None else "true or false (or null, given a third word)"
    raise TemplateValueError(f"yesno takes {expected}, not {_json_type(value)}")


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    """Jinja's ``join`` over the items' JSON text."""
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    return sync_do_join(eval_ctx, [json_text(item) for item in value], d)


def _string(value: Any) -> str:
    return soft_str(json_text(value))


class _JsonNumber(float):
    """A float that ``%s`` writes as :func:`number_text` and ``%.2f`` still formats as a number."""

    def __str__(self) -> str:
        return number_text(self)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    """Jinja's ``format`` (printf-style) with JSON's spelling for ``%s``.

    Raises
    ------
    TemplateValueError
        When the arguments do not fit the format (``%d`` of a string, too few arguments).
    """
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at the same time")
    try:
        if kwargs:
            return do_format(value, **{key: _format_argument(item) for key, item in kwargs.items()})
        return do_format(value, *map(_format_argument, args))
    except (TypeError, ValueError) as error:
        raise TemplateValueError(f"format: {error}") from None


def _format_argument(value: Any) -> Any:
    if isinstance(value, float):
        return _JsonNumber(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return json_text(value)


# ---------------------------------------------------------------------------------------- compiling
class _JsonTextCodeGenerator(CodeGenerator):
    """Jinja2's code generator with two changes, so that a value reads the same in every part:

    * ``a ~ b`` joins the operands' JSON text (Jinja's own join calls ``str``);
    * an expression of constants (``{{ 10 / 5 }}``) is printed at run time like any other: Jinja
      computes it at compile time and, in HTML, escapes it before ``finalize`` sees it (``2.0``);
      a constant that overflows (``1e308 * 10``) is written as ``float("inf")``, not as the name
      ``inf`` (a ``NameError`` when the template runs).
    """

    def _output_child_to_const(self, node: Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, TemplateData):
            raise Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    def visit_Const(self, node: Const, frame: Frame) -> None:
        value = node.as_const(frame.eval_ctx)
        if isinstance(value, float) and not math.isfinite(value):
            self.write(f'float("{value}")')
        else:
            super().visit_Const(node, frame)

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.concat_text(context.eval_ctx, (")
        for operand in node.nodes:
            self.visit(operand, frame)
            self.write(", ")
        self.write("))")


class _JsonTextEnvironment(SandboxedEnvironment):
    code_generator_class = _JsonTextCodeGenerator

    def concat_text(self, eval_ctx: EvalContext, operands: tuple[Any, ...]) -> str:
        """``~``: the operands' text joined, escaped as Jinja's ``markup_join`` does in HTML."""
        texts = [json_text(operand) for operand in operands]
        return markup_join(texts) if eval_ctx.autoescape else str_join(texts)
