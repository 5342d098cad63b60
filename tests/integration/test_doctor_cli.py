"""`stepmail doctor` run as a user runs it, against a running twin: the checklist's text and exit code.

The twin answers every read the doctor makes as a deployed stack would (twin/ses.py's GetAccount,
twin/doctor_support.py for the rest); each test changes one thing a real account can get wrong and
checks that the doctor names it, with its fix, and exits 1 on a blocker only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Harness

ROOT = Path(__file__).resolve().parents[2]
STEPMAIL = [sys.executable, "-m", "producer.cli"]
#: A deployment with nothing to fix: the quota configured, tracking on, someone receiving the alarms.
HEALTHY: dict[str, Any] = {
    "ses_max_send_rate": 14,
    "retry": {"interval_seconds": 1, "max_attempts": 4, "max_delay_seconds": 4},
    "delivery_tracking": True,
    "alarm_email": "ops@example.com",
}


def _doctor(harness: Harness, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`stepmail doctor --local` in a project directory holding the twin's info file and config."""
    project = tmp_path / "project"
    (project / ".stepmail").mkdir(parents=True, exist_ok=True)
    (project / ".stepmail" / "twin.json").write_text(harness.info.to_json())
    (project / "config.json").write_text(harness.twin.config.model_dump_json())
    environment = {
        **os.environ,
        "STEPMAIL_CONFIG": str(project / "config.json"),
        # this checkout's code, whatever the directory the command runs in
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    }
    return subprocess.run(
        [*STEPMAIL, "doctor", "--local", *options],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _line(output: str, name: str) -> str:
    """The checklist's line for the check ``name`` and, when there is one, its fix on the next line."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if re.search(rf"\]\s+{re.escape(name)}:", line):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            return line + ("\n" + following if following.strip().startswith("fix:") else "")
    raise AssertionError(f"no check {name!r} in:\n{output}")


@pytest.fixture
def healthy(make_twin: Callable[..., Harness]) -> Harness:
    return make_twin(**HEALTHY)


def test_a_healthy_twin_passes_every_check(healthy: Harness, tmp_path: Path) -> None:
    # When the doctor checks a twin with nothing to fix
    result = _doctor(healthy, tmp_path)

    # Then it exits 0, every check ok, each of the checks present
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 blocker(s), 0 warning(s)" in result.stdout
    assert "[BLOCKER]" not in result.stdout and "[warning]" not in result.stdout
    for name in (
        "stack Stepmail",
        "SES sending",
        "SES sandbox",
        "SES send rate",
        "SES 24-hour quota",
        "sender identity example.com",
        "DKIM of example.com",
        "MAIL FROM of example.com",
        "sender identity billing@example.org",
        "configuration set Stepmail-tracking",
        "delivery events of Stepmail-tracking",
        "event source mapping",
        "alarm subscriptions",
        "dead-letter queue",
    ):
        assert _line(result.stdout, name).lstrip().startswith("[ok]")
    assert "capped at 14 emails/s; SES allows 14" in _line(result.stdout, "SES send rate")
    assert "its 7 outputs present" in _line(result.stdout, "stack Stepmail")


def test_the_json_checklist_carries_the_exit_code_and_every_check(healthy: Harness, tmp_path: Path) -> None:
    # When the doctor is asked for JSON
    result = _doctor(healthy, tmp_path, "--json")

    # Then the document says the same as the exit code, check by check
    document = json.loads(result.stdout)
    assert result.returncode == document["exitCode"] == 0
    assert document["counts"] == {"ok": len(document["checks"]), "warning": 0, "blocker": 0}
    assert {check["name"] for check in document["checks"]} >= {"SES sandbox", "event source mapping"}


def test_an_account_in_the_sandbox_is_a_blocker_with_its_fix(healthy: Harness, tmp_path: Path) -> None:
    # Given the account in the SES sandbox, while the configuration says it is not (ses_sandbox false)
    healthy.twin.ses.production_access = False

    # When the doctor runs
    result = _doctor(healthy, tmp_path)

    # Then it exits 1, naming the sandbox and how to deploy for it
    assert result.returncode == 1
    line = _line(result.stdout, "SES sandbox")
    assert "[BLOCKER]" in line and "in the sandbox in us-east-1, and ses_sandbox is false" in line
    assert "fix: set ses_sandbox: true and list the verified recipients in sandbox_recipients" in line
    assert "1 blocker(s)" in result.stdout


def test_the_sandbox_configured_as_such_is_a_warning_only(
    make_twin: Callable[..., Harness], tmp_path: Path
) -> None:
    # Given an account in the sandbox, configured for it (ses_sandbox, a verified recipient)
    harness = make_twin(**HEALTHY, ses_sandbox=True, sandbox_recipients=("example.com",))
    harness.twin.ses.production_access = False

    # When the doctor runs
    result = _doctor(harness, tmp_path)

    # Then mail goes out (exit 0), and the warning says what the sandbox allows and how to leave it
    assert result.returncode == 0, result.stdout
    line = _line(result.stdout, "SES sandbox")
    assert "[warning]" in line and "only to verified recipients and the mailbox simulator" in line
    assert "fix: request production access" in line
    assert _line(result.stdout, "sandbox recipient example.com").lstrip().startswith("[ok]")


def test_an_unverified_sender_identity_is_a_blocker_with_its_fix(healthy: Harness, tmp_path: Path) -> None:
    # Given the address identity still pending verification
    healthy.twin.doctor.set_identity("billing@example.org", verified=False)

    # When the doctor runs
    result = _doctor(healthy, tmp_path)

    # Then it exits 1 on that identity (the other one is fine), with the fix for an address
    assert result.returncode == 1
    line = _line(result.stdout, "sender identity billing@example.org")
    assert "[BLOCKER]" in line and "not verified for sending (PENDING)" in line
    assert "fix: click the link in the verification email" in line
    assert _line(result.stdout, "sender identity example.com").lstrip().startswith("[ok]")


def test_dkim_pending_on_a_domain_is_a_warning(healthy: Harness, tmp_path: Path) -> None:
    # Given the domain verified but its DKIM records not found yet
    healthy.twin.doctor.set_identity("example.com", dkim="PENDING")

    # When the doctor runs
    result = _doctor(healthy, tmp_path)

    # Then mail goes out unsigned (exit 0) and the doctor says which records to publish
    assert result.returncode == 0
    line = _line(result.stdout, "DKIM of example.com")
    assert "[warning]" in line and "PENDING" in line and "publish the three DKIM CNAME records" in line


def test_a_quota_lower_than_the_configured_rate_is_a_warning_with_its_fix(
    healthy: Harness, tmp_path: Path
) -> None:
    # Given SES allowing 1 email a second to a deployment whose cap is 14
    healthy.twin.ses.rate.change(1)

    # When the doctor runs
    result = _doctor(healthy, tmp_path)

    # Then mail goes out at the quota (exit 0), and the fix is the account's rate
    assert result.returncode == 0, result.stdout
    line = _line(result.stdout, "SES send rate")
    assert "[warning]" in line and "ses_max_send_rate is 14 emails/s but SES allows 1" in line
    assert "fix: set ses_max_send_rate: 1 (or remove it to pace to the live quota)" in line


def test_a_non_empty_dead_letter_queue_is_a_warning(healthy: Harness, tmp_path: Path) -> None:
    # Given one message dead-lettered (invalid: no recipient)
    healthy.wait_for(healthy.send_raw(json.dumps({"mailKey": "doctor-dlq", "subject": "s", "body": "b"})))

    # When the doctor runs
    result = _doctor(healthy, tmp_path)

    # Then mail still goes out (exit 0); the warning counts it and points at the DLQ commands
    assert result.returncode == 0
    line = _line(result.stdout, "dead-letter queue")
    assert "[warning]" in line and "about 1 message(s) that could not be sent" in line
    assert "fix: `stepmail dlq list` shows each with its reason" in line


def test_a_disabled_event_source_mapping_is_a_blocker(healthy: Harness, tmp_path: Path) -> None:
    # Given nothing polling the mail queue (the twin's poller is its event source mapping)
    healthy.twin.stop_polling()

    # When the doctor runs
    result = _doctor(healthy, tmp_path)

    # Then it exits 1 with the command that enables the mapping
    assert result.returncode == 1
    line = _line(result.stdout, "event source mapping")
    assert "[BLOCKER]" in line and "fix: `aws lambda update-event-source-mapping --uuid" in line


def test_no_alarm_subscriber_is_a_warning_and_no_cap_paces_to_the_quota(
    make_twin: Callable[..., Harness], tmp_path: Path
) -> None:
    # Given the test configuration as it is: no alarm_email, no ses_max_send_rate, no tracking
    harness = make_twin(ses_quota=5)

    # When the doctor runs
    result = _doctor(harness, tmp_path)

    # Then mail goes out (exit 0), the alarms reach no one, and no configuration set is expected
    assert result.returncode == 0, result.stdout
    assert "[warning]" in _line(result.stdout, "alarm subscriptions")
    rate = _line(result.stdout, "SES send rate")
    assert rate.lstrip().startswith("[ok]") and "SES allows 5 emails/s; the runs pace to it" in rate
    assert "its 6 outputs present" in _line(result.stdout, "stack Stepmail")
    assert "configuration set" not in result.stdout


def test_a_stack_name_that_is_not_deployed_is_a_blocker(healthy: Harness, tmp_path: Path) -> None:
    # When the doctor is pointed at a stack the twin does not serve
    result = _doctor(healthy, tmp_path, "--stack", "Elsewhere")

    # Then the first check says so, with the deploy command
    assert result.returncode == 1
    line = _line(result.stdout, "stack Elsewhere")
    assert "[BLOCKER]" in line and "not deployed in us-east-1" in line and "npx cdk deploy" in line


def test_without_a_running_twin_the_doctor_says_how_to_start_one(tmp_path: Path) -> None:
    # Given a project directory with a configuration and no twin
    (tmp_path / "config.json").write_text(
        json.dumps({"sender_identities": ["example.com"], "default_sender": "a@example.com"})
    )
    environment = {
        **os.environ,
        "STEPMAIL_CONFIG": str(tmp_path / "config.json"),
        "PYTHONPATH": str(ROOT / "functions") + os.pathsep + str(ROOT),
    }

    # When `stepmail doctor --local` runs
    result = subprocess.run(
        [*STEPMAIL, "doctor", "--local"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it fails with what to do
    assert result.returncode == 1
    assert "no local twin is running here" in result.stderr and "stepmail local serve" in result.stderr
