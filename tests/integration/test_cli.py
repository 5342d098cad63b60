"""The `stepmail` command line and the demo, run as a user runs them."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from producer.cli import main
from producer.deployment import Deployment
from stepmail.core.errors import InvalidMessageError
from twin.demo import run_demo
from twin.server import free_port

from .conftest import twin_config

STEPMAIL = [sys.executable, "-m", "producer.cli"]


@contextmanager
def served(tmp_path: Path, *options: str) -> Iterator[tuple[dict, Path]]:
    """`stepmail local serve` in its own process: yields its info file's content and its outbox;
    stops it with SIGTERM and checks that it exits cleanly."""
    info_file, outbox, port = tmp_path / "twin.json", tmp_path / "outbox", free_port()
    command = [*STEPMAIL, "local", "serve", "--port", str(port), "--info-file", str(info_file)]
    server = subprocess.Popen(
        [*command, "--outbox", str(outbox), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.1)
        info = json.loads(info_file.read_text())
        assert info["endpoint_url"] == f"http://127.0.0.1:{port}"
        yield info, outbox
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    # A stopped twin takes its info file along: `--local` must not aim at a closed port.
    assert not info_file.exists()


def test_schema_prints_the_message_json_schema(capsys) -> None:
    # When
    assert main(["schema"]) == 0

    # Then it is JSON Schema naming the contract's fields, mailKey required
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "stepmail message" and "mailKey" in schema["required"]
    assert {"toAddress", "to", "cc", "bcc", "replyTo", "from", "html", "attachedFileKeys", "headers"} <= set(
        schema["properties"]
    )


def test_local_serve_runs_until_terminated_and_accepts_any_sdk_producer(tmp_path: Path) -> None:
    # Given `stepmail local serve` running in its own process
    with served(tmp_path) as (info, outbox):
        info_file = tmp_path / "twin.json"

        # When a plain boto3 producer sends a message in the original format
        sqs = boto3.client("sqs", endpoint_url=info["endpoint_url"], region_name=info["region"])
        sqs.send_message(
            QueueUrl=info["queue_url"],
            MessageBody=json.dumps(
                {
                    "mailKey": "cli-1",
                    "toAddress": "ops@customer.example",
                    "subject": "Ünïcode",
                    "body": "hello",
                }
            ),
        )

        # and `stepmail send --local`-style sending through the info file, with an attachment
        attachment = tmp_path / "notes.txt"
        attachment.write_text("some notes")
        sent = subprocess.run(
            [
                *STEPMAIL,
                "send",
                "--info-file",
                str(info_file),
                "--to",
                "ana@customer.example",
                "--subject",
                "Notes",
                "--body",
                "see attached",
                "--attach",
                str(attachment),
                "--mail-key",
                "cli-2",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(sent.stdout)["mailKey"] == "cli-2"

        # Then both emails land in the outbox as .eml files
        deadline = time.monotonic() + 30
        while len(list(outbox.glob("*.eml"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        emails = [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(outbox.glob("*.eml"))
        ]
        assert sorted(str(message["Subject"]) for message in emails) == ["Notes", "Ünïcode"]
        index = [json.loads(line) for line in (outbox / "index.jsonl").read_text().splitlines()]
        assert sorted(entry["to"][0] for entry in index) == ["ana@customer.example", "ops@customer.example"]


def test_send_refuses_an_invalid_message_before_uploading_anything(tmp_path: Path, capsys) -> None:
    # Given an info file pointing at nothing (nothing may be contacted)
    info_file = tmp_path / "twin.json"
    info_file.write_text(Deployment.for_twin("Stepmail", "us-east-1", "http://127.0.0.1:9").to_json())

    # When the recipient carries a header injection
    code = main(
        [
            "send",
            "--info-file",
            str(info_file),
            "--to",
            "a@example.org\r\nBcc: x@example.org",
            "--subject",
            "x",
            "--body",
            "y",
        ]
    )

    # Then the CLI says why, and fails
    assert code == 1
    assert InvalidMessageError.__name__ in capsys.readouterr().err


def test_demo_reports_every_message_in_its_place(tmp_path: Path, capsys) -> None:
    # When the demo runs on the default configuration shape
    code = run_demo(twin_config(), outbox=tmp_path / "outbox")

    # Then every scripted message reached its place, and the report says so
    out = capsys.readouterr().out
    assert code == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 4
    for expected in ("duplicate", "dead-lettered", "rejected", "AttachmentMissingError: attach", "U+000D"):
        assert expected in out
    assert os.fspath(tmp_path / "outbox") in out


def test_local_serve_injects_the_faults_it_is_given(tmp_path: Path) -> None:
    # Given the twin served with SES throttling the first two sends
    with served(tmp_path, "--fault", "ses.send:throttle:times=2") as (info, outbox):
        # When a message is sent
        sqs = boto3.client("sqs", endpoint_url=info["endpoint_url"], region_name=info["region"])
        sqs.send_message(
            QueueUrl=info["queue_url"],
            MessageBody=json.dumps(
                {"mailKey": "fault-1", "toAddress": "ops@customer.example", "body": "hello"}
            ),
        )

        # Then it still arrives, once, after the throttled attempts were retried
        deadline = time.monotonic() + 60
        while not list(outbox.glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert len(list(outbox.glob("*.eml"))) == 1


def stepmail(
    *arguments: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``stepmail ARGUMENTS`` as a user runs it, from ``cwd``."""
    return subprocess.run(
        [*STEPMAIL, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_local_commands_with_no_twin_say_how_to_start_one(tmp_path: Path) -> None:
    # Given a directory where no twin was ever started
    for command in (["send", "--to", "a@example.org", "--body", "hi"], ["status", "k-1"], ["dlq", "list"]):
        # When a command asks for the local twin
        result = stepmail(*command, "--local", cwd=tmp_path)

        # Then it says what is wrong and what to do, without a traceback, and fails
        assert result.returncode == 1
        assert result.stderr == (
            "stepmail: no local twin is running here (no .stepmail/twin.json): start one with "
            "`stepmail local serve` or `make serve`, or pass --info-file\n"
        )


def test_an_info_file_whose_twin_is_gone_says_so(tmp_path: Path) -> None:
    # Given the info file a twin killed without a clean stop leaves: its port answers no more
    port = free_port()
    info_file = tmp_path / "twin.json"
    info_file.write_text(Deployment.for_twin("Stepmail", "us-east-1", f"http://127.0.0.1:{port}").to_json())

    # When a command uses it
    result = stepmail("dlq", "list", "--info-file", str(info_file), cwd=tmp_path)

    # Then it names the file and the silent endpoint, and says what to do
    assert result.returncode == 1
    assert result.stderr == (
        f"stepmail: the twin of {info_file} is not running (nothing answers at http://127.0.0.1:{port}): "
        "start one with `stepmail local serve` or `make serve`, or pass --info-file\n"
    )


def test_the_deployed_stack_without_credentials_names_the_stack_region_and_the_way_out(
    tmp_path: Path,
) -> None:
    # Given no AWS credentials anywhere (and no instance metadata to ask: nothing leaves the machine)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env |= {"AWS_EC2_METADATA_DISABLED": "true"}

    # When a command goes to the deployed stack
    result = stepmail("status", "k-1", "--stack", "Mailer", "--region", "eu-west-1", cwd=tmp_path, env=env)

    # Then it says which stack and region it tried, how to set credentials, and that --local exists
    assert result.returncode == 1
    assert result.stderr.startswith(
        "stepmail: no AWS credentials found to read the stack Mailer in eu-west-1: "
    )
    assert "aws configure" in result.stderr and "--local" in result.stderr
    assert "Traceback" not in result.stderr
