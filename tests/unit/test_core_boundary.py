"""The pure core imports nothing that touches AWS, the network or the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "functions" / "stepmail" / "core"

#: Module prefixes the core must not import, and why.
FORBIDDEN = {
    "boto3": "AWS SDK: belongs in adapters",
    "botocore": "AWS SDK: belongs in adapters",
    "moto": "test double of AWS",
    "aws_lambda_powertools": "Lambda runtime concerns: belong in handlers",
    "os": "environment and files: settings are passed in",
    "requests": "network",
    "urllib.request": "network",
    "socket": "network",
    "importlib": "dynamic imports would hide all of the above",
}
#: Names whose use means reading the environment, however ``os`` was reached.
FORBIDDEN_NAMES = {"environ", "getenv", "putenv", "__import__"}


def _imported_modules(tree: ast.AST) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(
                f"{node.module}.{alias.name}" for alias in node.names
            )  # from urllib import request
    return modules


def _used_names(tree: ast.AST) -> set[str]:
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    return names


def violations(source: str) -> list[str]:
    """What in ``source`` crosses the core's boundary (empty when it is pure)."""
    tree = ast.parse(source)
    found = [
        f"imports {module} ({reason})"
        for module in sorted(_imported_modules(tree))
        for prefix, reason in FORBIDDEN.items()
        if module == prefix or module.startswith(f"{prefix}.")
    ]
    found += [f"uses {name}" for name in sorted(_used_names(tree) & FORBIDDEN_NAMES)]
    return found


CORE_MODULES = sorted(CORE.glob("*.py"))


def test_the_core_modules_are_found() -> None:
    assert {"message.py", "mime.py", "lock.py", "addresses.py", "errors.py"} <= {
        path.name for path in CORE_MODULES
    }


@pytest.mark.parametrize("module", CORE_MODULES, ids=lambda path: path.name)
def test_core_module_stays_inside_the_boundary(module: Path) -> None:
    assert violations(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import boto3",
        "import botocore.exceptions",
        "from botocore.config import Config",
        "from moto import mock_aws",
        "from aws_lambda_powertools import Logger",
        "import os",
        "import os.path",
        "from os import environ",
        "import requests",
        "import urllib.request",
        "from urllib import request",
        "from socket import create_connection",
        "import importlib\nimportlib.import_module('boto3')",
        "settings = __import__('os').environ['X']",
        "def f(o):\n    return o.getenv('X')",
    ],
)
def test_the_checker_catches_each_kind_of_violation(source: str) -> None:
    # Given a module that crosses the boundary, Then the checker reports it (so the test above can fail)
    assert violations(source)


def test_the_checker_allows_what_the_core_needs() -> None:
    source = (
        "import re\nimport email.policy\nfrom urllib.parse import quote\nfrom pydantic import BaseModel\n"
    )
    assert violations(source) == []
