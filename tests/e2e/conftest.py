"""The e2e target's environment: with ``STEPMAIL_E2E_STACK`` set, the real AWS credentials.

tests/conftest.py replaces every test's AWS environment by fake credentials that cannot reach an
account.  `make e2e` runs against a deployed stack on purpose: the environment as the command got it
is kept here (read when pytest imports this file, before any fixture runs) and given back to the
e2e tests, only when a stack is named.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

STACK_VARIABLE = "STEPMAIL_E2E_STACK"
_REAL_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name.startswith("AWS_") or name == "STEPMAIL_CONFIG"
}


def real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give back the AWS environment the command was started with (and nothing the tests added)."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in _REAL_ENVIRONMENT:
            monkeypatch.delenv(name)
    for name, value in _REAL_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def aws_environment() -> Iterator[bool]:
    """True when the e2e runs against a deployed stack, with the real AWS environment while it lasts."""
    if not os.environ.get(STACK_VARIABLE):
        yield False
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        real_aws(monkeypatch)
        yield True


@pytest.fixture(autouse=True)
def _real_aws_for_a_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """After tests/conftest.py's fake credentials (an outer autouse fixture runs first): the real ones."""
    if os.environ.get(STACK_VARIABLE):
        real_aws(monkeypatch)
