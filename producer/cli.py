"""The ``stepmail`` command line.

    stepmail send --to jane@example.com --subject Hi --body "Hello" [--html page.html] [--attach f.pdf]...
    stepmail schema                      # the message format as JSON Schema
    stepmail local serve [--port 4750]   # the local twin, until Ctrl-C
    stepmail demo                        # the twin on a scripted set of messages, with a report

``send`` goes to the local twin with ``--local`` (its info file) or ``--endpoint-url``, and to a
deployed stack otherwise (``--stack``, read from CloudFormation outputs).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INFO_FILE = REPO_ROOT / ".stepmail" / "twin.json"
DEFAULT_OUTBOX = REPO_ROOT / ".stepmail" / "outbox"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a CLI reports, it does not dump a traceback on a user error
        if getattr(args, "debug", False):
            raise
        print(f"stepmail: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepmail", description="Send email through stepmail.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="upload attachments and enqueue one email")
    send.add_argument("--to", action="append", default=[], metavar="ADDR", help="recipient (repeatable)")
    send.add_argument("--cc", action="append", default=[], metavar="ADDR")
    send.add_argument("--bcc", action="append", default=[], metavar="ADDR")
    send.add_argument("--reply-to", action="append", default=[], metavar="ADDR")
    send.add_argument("--from", dest="sender", metavar="ADDR", help="one of the configured sender identities")
    send.add_argument("--subject", default="")
    body = send.add_mutually_exclusive_group()
    body.add_argument("--body", default="", help="plain-text body")
    body.add_argument("--body-file", type=Path, metavar="FILE", help="plain-text body from a file")
    send.add_argument("--html", type=Path, metavar="FILE", help="HTML part from a file")
    send.add_argument("--attach", action="append", type=Path, default=[], metavar="FILE", help="repeatable")
    send.add_argument("--header", action="append", default=[], metavar="'Name: value'", help="repeatable")
    send.add_argument("--mail-key", help="identifies the email (default: a new UUID)")
    _add_target_arguments(send)
    send.set_defaults(run=_send)

    schema = commands.add_parser("schema", help="print the message format as JSON Schema")
    schema.set_defaults(run=_schema)

    local = commands.add_parser("local", help="the local twin").add_subparsers(
        required=True, metavar="COMMAND"
    )
    serve = local.add_parser("serve", help="run the local twin until interrupted")
    serve.add_argument("--port", type=int, default=None, help="default 4750")
    serve.add_argument("--outbox", type=Path, default=DEFAULT_OUTBOX, help="where sent emails are written")
    serve.add_argument("--info-file", type=Path, default=DEFAULT_INFO_FILE, help="written once ready")
    serve.add_argument(
        "--ses-max-send-rate",
        type=float,
        default=None,
        metavar="N",
        help="emulate the SES quota: recipients per second",
    )
    serve.add_argument("--config", type=Path, help="a config file (default: cdk.json's context)")
    serve.add_argument("--verbose", action="store_true", help="show the handlers' logs")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="run the twin on a scripted set of messages and report")
    demo.add_argument("--outbox", type=Path, default=DEFAULT_OUTBOX)
    demo.set_defaults(run=_demo)
    return parser


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target (default: the deployed stack)")
    target.add_argument("--local", action="store_true", help=f"the local twin ({DEFAULT_INFO_FILE.name})")
    target.add_argument("--info-file", type=Path, help="a twin's info file")
    target.add_argument("--endpoint-url", help="a twin's endpoint (queue and bucket from the config)")
    target.add_argument("--stack", default=None, help="the deployed stack's name (default from cdk.json)")
    target.add_argument("--region", default=None)


def _load_config(path: Path | None = None) -> Any:
    from infra.config import load_config, repo_context

    return load_config(repo_context(REPO_ROOT), config_file=path)


def _target(args: argparse.Namespace) -> Any:
    from producer.client import Target

    if args.info_file or args.local:
        return Target.from_info_file(args.info_file or DEFAULT_INFO_FILE)
    config = _load_config()
    if args.endpoint_url:
        # The twin names its resources after the stack name (see twin.twin.LocalTwin._names).
        prefix = config.stack_name.lower()
        url = args.endpoint_url.rstrip("/")
        return Target(
            f"{url}/123456789012/{prefix}-mail", f"{prefix}-attachments", args.region or config.region, url
        )
    return Target.from_stack(args.stack or config.stack_name, region=args.region or config.region)


def _send(args: argparse.Namespace) -> int:
    from producer.client import StepmailClient

    if not (args.to or args.cc or args.bcc):
        raise SystemExit("stepmail send: give at least one --to, --cc or --bcc")
    message: dict[str, Any] = {
        "mailKey": args.mail_key or str(uuid.uuid4()),
        "to": args.to,
        "subject": args.subject,
        "body": args.body_file.read_text(encoding="utf-8") if args.body_file else args.body,
    }
    for field, values in (("cc", args.cc), ("bcc", args.bcc), ("replyTo", args.reply_to)):
        if values:
            message[field] = values
    if args.sender:
        message["from"] = args.sender
    if args.html:
        message["html"] = args.html.read_text(encoding="utf-8")
    if args.header:
        message["headers"] = dict(_header(text) for text in args.header)
    attachments = {path.name: path for path in args.attach}
    queue_message_id = StepmailClient(_target(args)).send(message, attachments)
    print(json.dumps({"mailKey": message["mailKey"], "queueMessageId": queue_message_id}))
    return 0


def _header(text: str) -> tuple[str, str]:
    name, separator, value = text.partition(":")
    if not separator:
        raise SystemExit(f"stepmail send: --header {text!r} is not 'Name: value'")
    return name.strip(), value.strip()


def _schema(args: argparse.Namespace) -> int:
    from stepmail.core.message import message_json_schema

    print(json.dumps(message_json_schema(), indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from twin.twin import DEFAULT_PORT, LocalTwin

    twin = LocalTwin(
        _load_config(args.config),
        port=args.port or DEFAULT_PORT,
        outbox=args.outbox,
        ses_max_send_rate=args.ses_max_send_rate,
        handler_log_level="INFO" if args.verbose else "WARNING",
    )
    info = twin.start()
    args.info_file.parent.mkdir(parents=True, exist_ok=True)
    args.info_file.write_text(info.to_json(), encoding="utf-8")
    print(f"stepmail twin ready on {info.endpoint_url}  (info: {args.info_file}, outbox: {info.outbox})")
    print(
        f"  aws --endpoint-url {info.endpoint_url} sqs send-message"
        f" --queue-url {info.queue_url} --message-body ..."
    )
    print("  stepmail send --local --to someone@example.org --subject Hi --body Hello")
    print("Ctrl-C to stop.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        twin.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from twin.demo import run_demo

    return run_demo(_load_config(), outbox=args.outbox)


if __name__ == "__main__":
    sys.exit(main())
