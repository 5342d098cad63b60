"""checkov on the synthesized templates: no failed check, and a written reason for every skipped one.

checkov pins an older boto3 than the project, so it lives in its own virtualenv (`make setup` builds
`.venv-checkov` from requirements-checkov.txt)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.constants import REPO_ROOT
from tests.infrastructure.synth import Synthesized

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def _checkov(template: dict[str, Any], directory: Path) -> dict[str, Any]:
    path = directory / "template.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    completed = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(completed.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def reports(
    full: Synthesized, minimal: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    assert CHECKOV.exists(), "checkov is installed by `make setup` (.venv-checkov)"
    return {
        name: _checkov(synth.template.to_json(), tmp_path_factory.mktemp(name))
        for name, synth in (("full", full), ("minimal", minimal))
    }


@pytest.mark.parametrize("configuration", ["full", "minimal"])
def test_checkov_finds_no_failed_check(reports: dict[str, Any], configuration: str) -> None:
    results = reports[configuration]["results"]
    failed = [(check["check_id"], check["resource"]) for check in results["failed_checks"]]
    assert failed == []
    assert len(results["passed_checks"]) > 50  # it really ran


@pytest.mark.parametrize("configuration", ["full", "minimal"])
def test_every_skipped_check_has_a_written_reason(reports: dict[str, Any], configuration: str) -> None:
    skipped = reports[configuration]["results"]["skipped_checks"]
    assert skipped, "the skips in infra/checkov.py are applied"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) >= 60, f"{check['check_id']} on {check['resource']}: {reason!r}"
