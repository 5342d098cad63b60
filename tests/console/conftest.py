"""The console's fixtures: one twin per test module holding a run of every kind, and its console URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from stepmail.core.errors import SesUnavailableError
from tests.integration.conftest import Harness, make_twin, twin_config  # noqa: F401 - make_twin is a fixture
from twin.twin import LocalTwin

TERMS = b"Terms and conditions.\n" * 60  # 1,320 bytes
WELCOME = {
    "mailKey": "welcome-1",
    "to": ["Jane <jane@example.org>"],
    "cc": ["ops@example.org"],
    "subject": "Welcome aboard",
    "body": "Hello Jane, the terms are attached.",
    "html": "<h1>Hello Jane</h1><p>The terms are attached.</p><script>parent.document.title='pwned'</script>",
    "attachedFileKeys": ["terms.txt"],
}
MISSING = {
    "mailKey": "invoice-2",
    "to": ["bob@example.org"],
    "subject": "Your invoice",
    "body": "Attached.",
    "attachedFileKeys": ["invoice.pdf"],
}
RETRIED = {"mailKey": "retry-3", "to": ["carol@example.org"], "subject": "Later", "body": "Once more."}


def page_token(console: str) -> str:
    """The token the page was served with (only a page loaded from the twin's own address has it)."""
    match = re.search(
        r'name="stepmail-console-token" content="([^"]+)"', requests.get(console, timeout=10).text
    )
    assert match is not None, "the page carries no token"
    return match.group(1)


def post_as_the_page(console: str, path: str, body: Any) -> requests.Response:
    """A POST as the console's own page sends it: its origin, JSON, and its token."""
    headers = {"Origin": console.removesuffix("/console"), "X-Stepmail-Token": page_token(console)}
    return requests.post(f"{console}/api{path}", json=body, headers=headers, timeout=30)


@dataclass
class Scenario:
    """A twin after one sent email, its duplicate, a dead-lettered one and one sent after a retry."""

    harness: Harness
    console: str

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.console}/api{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def run_of(self, mail_key: str, status: str) -> dict[str, Any]:
        (run,) = self.api("/executions", status=status, q=mail_key)["executions"]
        return run


def start_scenario(harness: Harness) -> Scenario:
    failed_once: list[str] = []

    def fail_first_try(real: Any, payload: dict[str, Any]) -> Any:
        if payload["message"]["mailKey"] == RETRIED["mailKey"] and not failed_once:
            failed_once.append("thrown")
            raise SesUnavailableError("SES: internal service error")
        return real(payload)

    harness.wrap_sender(fail_first_try)
    harness.wait_for(harness.send(WELCOME, {"terms.txt": TERMS}))
    harness.wait_for(harness.send(WELCOME, {"terms.txt": TERMS}))
    harness.wait_for(harness.send(MISSING), harness.send(RETRIED))
    return Scenario(harness, harness.twin.console_url)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    twin = LocalTwin(twin_config(), outbox=tmp_path_factory.mktemp("outbox"), time_scale=0.01)
    twin.start()
    try:
        yield start_scenario(Harness(twin))
    finally:
        twin.stop()
