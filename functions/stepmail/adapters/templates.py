"""Templates from a directory: ``templates/<name>/{subject.txt,body.txt,body.html}``.

In the Lambda asset the directory sits beside the ``stepmail`` package (``infra/bundling.py`` copies
it there); in the repository it is at the root.  Each template is read once per cold start.
"""

from __future__ import annotations

from pathlib import Path

from stepmail.core.errors import TemplateError
from stepmail.core.templates import TemplateParts

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the asset root in Lambda; functions/ here


def default_templates_dir() -> Path:
    """The asset's ``templates/``, else the repository's."""
    for candidate in (_PACKAGE_PARENT / "templates", _PACKAGE_PARENT.parent / "templates"):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_PARENT / "templates"


class DirectoryTemplates:
    """A :class:`stepmail.core.templates.TemplateSource` over one directory per template."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_templates_dir()
        self._cache: dict[str, TemplateParts] = {}

    def parts(self, name: str) -> TemplateParts:
        """The template's text.

        Raises
        ------
        TemplateError
            No such template, or it has no subject.txt.
        """
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def _read(self, name: str) -> TemplateParts:
        directory = self.root / name
        # The message model allows only [A-Za-z0-9_-] names; refuse anything else here too.
        if name in ("", ".", "..") or "/" in name or "\\" in name or not directory.is_dir():
            raise TemplateError(f"template {name!r} does not exist")
        subject = _text(directory / "subject.txt")
        if subject is None:
            raise TemplateError(f"template {name!r} has no subject.txt")
        return TemplateParts(subject, _text(directory / "body.txt"), _text(directory / "body.html"))


def _text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
