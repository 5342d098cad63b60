"""The ``stepmail`` command line.

    stepmail send --to jane@example.com --subject Hi --body "Hello" [--html page.html] [--attach f.pdf]...
    stepmail schema                      # the message format as JSON Schema
    stepmail local serve [--port 4750]   # the local twin, until Ctrl-C
    stepmail demo                        # the twin on a scripted set of messages, with a report
    stepmail cost [--batch-size 10] ...  # dollars per 1M emails, this design vs the original
    stepmail dlq list | dlq redrive (--mail-key K | --all) [--dry-run]   # the dead-letter queue
    stepmail status MAILKEY [--to ADDR]... [--json]                     # what happened to an email
    stepmail template render NAME --data FILE                           # preview a template

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
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="POINT:EFFECT[:OPTIONS]",
        help="inject a fault, e.g. ses.send:throttle:p=0.2 (repeatable; see twin/faults.py)",
    )
    serve.add_argument("--fault-seed", type=int, default=0, help="seed of the faults' probabilities")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="run the twin on a scripted set of messages and report")
    demo.add_argument("--outbox", type=Path, default=DEFAULT_OUTBOX)
    demo.set_defaults(run=_demo)

    cost = commands.add_parser("cost", help="dollars per 1M emails: this design vs the original, by term")
    _add_cost_arguments(cost)
    cost.set_defaults(run=_cost)
    _add_operate_commands(commands)
    return parser


def _add_operate_commands(commands: Any) -> None:
    """``dlq list``, ``dlq redrive``, ``status`` and ``template render`` (see producer.operate)."""
    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(
        required=True, metavar="COMMAND"
    )
    dlq_list = dlq.add_parser("list", help="each dead-lettered message with its reason")
    dlq_list.add_argument("--json", action="store_true")
    _add_target_arguments(dlq_list)
    dlq_list.set_defaults(run=_dlq_list)
    dlq_redrive = dlq.add_parser("redrive", help="re-validate messages and send them back to the queue")
    which = dlq_redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--mail-key", metavar="K")
    which.add_argument("--all", action="store_true")
    dlq_redrive.add_argument("--dry-run", action="store_true", help="show what would be redriven")
    dlq_redrive.add_argument("--json", action="store_true")
    _add_target_arguments(dlq_redrive)
    dlq_redrive.set_defaults(run=_dlq_redrive)

    status = commands.add_parser("status", help="what happened to an email: lock, send, delivery, DLQ")
    status.add_argument("mail_key", metavar="MAILKEY")
    status.add_argument(
        "--to", action="append", default=[], metavar="ADDR", help="every recipient: to, cc, bcc (repeatable)"
    )
    status.add_argument("--json", action="store_true")
    _add_target_arguments(status)
    status.set_defaults(run=_status)

    template = commands.add_parser("template", help="email templates").add_subparsers(
        required=True, metavar="COMMAND"
    )
    render = template.add_parser("render", help="preview a template with data, as the sender renders it")
    render.add_argument("name", metavar="NAME")
    render.add_argument("--data", type=Path, metavar="FILE", help="templateData as a JSON file")
    render.add_argument("--templates", type=Path, default=REPO_ROOT / "templates", metavar="DIR")
    render.add_argument("--json", action="store_true")
    render.set_defaults(run=_template_render)


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
    from twin.faults import Fault, FaultInjector
    from twin.twin import DEFAULT_PORT, LocalTwin

    twin = LocalTwin(
        _load_config(args.config),
        port=args.port or DEFAULT_PORT,
        outbox=args.outbox,
        ses_max_send_rate=args.ses_max_send_rate,
        handler_log_level="INFO" if args.verbose else "WARNING",
        faults=FaultInjector([Fault.parse(text) for text in args.fault], seed=args.fault_seed),
    )
    info = twin.start()
    args.info_file.parent.mkdir(parents=True, exist_ok=True)
    args.info_file.write_text(info.to_json(), encoding="utf-8")
    print(f"stepmail twin ready on {info.endpoint_url}  (info: {args.info_file}, outbox: {info.outbox})")
    print(f"  console: {twin.console_url}")
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


def _add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    from producer.cost import Workload

    defaults = Workload()
    for field in fields(Workload):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):  # --delivery-tracking / --no-delivery-tracking
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"default {default}")
    parser.add_argument("--json", action="store_true", help="the terms as JSON")


def _cost(args: argparse.Namespace) -> int:
    from dataclasses import asdict, fields

    from producer.cost import Workload, compare, options, render_options, render_table

    workload = Workload(**{field.name: getattr(args, field.name) for field in fields(Workload)})
    comparison = compare(workload)
    if args.json:
        bills = {"stepmail": asdict(comparison.stepmail), "original": asdict(comparison.original)}
        priced = [{"option": label, "overhead": cost} for label, cost, _ in options(workload)]
        print(
            json.dumps(
                {"workload": asdict(workload), **bills, "overhead": comparison.overhead, "options": priced}
            )
        )
    else:
        print(render_table(comparison))
        print(f"orchestration overhead: ${comparison.overhead:,.2f} per 1M emails (goal: <= $5.00)")
        print(f"\nwith each option instead:\n{render_options(workload)}")
    return 0


def _resources(args: argparse.Namespace) -> Any:
    from producer.operate import Resources

    if args.info_file or args.local:
        return Resources.from_info_file(args.info_file or DEFAULT_INFO_FILE)
    if args.endpoint_url:
        target, prefix = _target(args), _load_config().stack_name.lower()
        dlq_url = target.queue_url.rsplit("/", 1)[0] + f"/{prefix}-dead-letters"
        return Resources(target.queue_url, dlq_url, f"{prefix}-locks", target.region, target.endpoint_url)
    config = _load_config()
    return Resources.from_stack(args.stack or config.stack_name, region=args.region or config.region)


def _dlq_list(args: argparse.Namespace) -> int:
    from producer.operate import list_dead_letters, render_letters

    resources = _resources(args)
    letters = list_dead_letters(resources.client("sqs"), resources.dlq_url)
    print(json.dumps([letter.summary() for letter in letters]) if args.json else render_letters(letters))
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from producer.operate import redrive, render_redrive
    from stepmail.core.message import SenderPolicy

    resources, config = _resources(args), _load_config()
    policy = SenderPolicy(config.sender_identities, config.default_sender, config.sendable_configuration_sets)
    report = redrive(
        resources.client("sqs"),
        dlq_url=resources.dlq_url,
        queue_url=resources.queue_url,
        mail_key=args.mail_key,
        all=args.all,
        dry_run=args.dry_run,
        policy=policy,
    )
    print(json.dumps(report.summary()) if args.json else render_redrive(report))
    return 0


def _status(args: argparse.Namespace) -> int:
    from producer.operate import email_status, render_status

    resources = _resources(args)
    records = email_status(
        resources.client("dynamodb"),
        resources.client("sqs"),
        table=resources.table,
        dlq_url=resources.dlq_url,
        mail_key=args.mail_key,
        recipients=args.to or None,
    )
    print(json.dumps([record.summary() for record in records]) if args.json else render_status(records))
    return 0


def _template_render(args: argparse.Namespace) -> int:
    from stepmail.adapters.templates import DirectoryTemplates
    from stepmail.core.templates import render_template

    data = json.loads(args.data.read_text(encoding="utf-8")) if args.data else {}
    if not isinstance(data, dict):
        raise SystemExit("stepmail template render: --data must hold a JSON object")
    parts = DirectoryTemplates(args.templates).parts(args.name)
    rendered = render_template(parts, data, name=args.name)
    if args.json:
        print(json.dumps({"subject": rendered.subject, "body": rendered.body, "html": rendered.html}))
    else:
        print(f"Subject: {rendered.subject}\n\n{rendered.body}")
        if rendered.html is not None:
            print(f"--- HTML ---\n{rendered.html}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from twin.demo import run_demo

    return run_demo(_load_config(), outbox=args.outbox)


if __name__ == "__main__":
    sys.exit(main())
