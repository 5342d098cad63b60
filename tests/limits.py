"""Shared by the unit and integration tests of the size budget: the four UTF-8 scripts, and the largest
body the starter accepts for a message, found by bisection against its own checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stepmail.core.errors import InvalidMessageError
from stepmail.core.message import MAX_MESSAGE_BYTES

#: One letter per width of UTF-8: ASCII, Cyrillic (2 bytes), CJK (3 bytes), emoji (4 bytes).
SCRIPTS: dict[str, str] = {"ascii": "a", "cyrillic": "Ж", "cjk": "日", "emoji": "😀"}
#: A few letters of each script (and width), for bodies that are not one letter repeated.
ALPHABETS: dict[str, str] = {
    "ascii": "abcdefghijklmnopqrstuvwxyz .,",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюяΑΒΓΔαβγδ",
    "cjk": "日本語中文漢字東京大阪北京上海",
    "emoji": "😀😃😄🙂🚀🎉🍣🐍",
}


def accepts(prepare: Callable[[str], Any], message: dict[str, Any]) -> bool:
    """Whether the starter's checks (``prepare``: body -> run input) accept ``message``."""
    try:
        prepare(json.dumps(message, ensure_ascii=False))
    except InvalidMessageError:
        return False
    return True


def largest_accepted_body(prepare: Callable[[str], Any], message: dict[str, Any], letter: str) -> int:
    """The largest ``n`` for which ``message`` with ``body = letter * n`` is accepted (0 if none).

    The budget only grows with the body, so the accepted lengths are ``0..n``: bisect them.
    """
    low, high = 0, MAX_MESSAGE_BYTES // len(letter.encode("utf-8")) + 1  # high: always refused
    if not accepts(prepare, {**message, "body": ""}):
        return 0
    while high - low > 1:
        middle = (low + high) // 2
        if accepts(prepare, {**message, "body": letter * middle}):
            low = middle
        else:
            high = middle
    return low
