"""The ``stepmail`` command line.

    stepmail send --to jane@example.com --subject Hi --body "Hello" [--html page.html] [--attach f.pdf]...
    stepmail schema                      # the message format as JSON Schema
    stepmail cost [--batch-size 10] ...  # dollars per 1M emails, this design vs the original
    stepmail dlq list | dlq redrive (--mail-key K | --all) [--dry-run] [--wait-seconds S]  # the DLQ;
                                         # exit 3 when another reader held letters it could not see
    stepmail status MAILKEY [--to ADDR]... [--json]                     # what happened to an email
    stepmail template render NAME --data FILE                           # preview a template
    stepmail local serve [--port 4750]   # the local twin, until Ctrl-C       (registered by the twin)
    stepmail demo                        # the twin on a scripted set of messages (registered by the twin)

``send``, ``status`` and ``dlq`` go to the local twin with ``--local`` (its info file) or
``--endpoint-url``, and to a deployed stack otherwise (``--stack``, read from CloudFormation outputs).
Other packages add commands through the ``stepmail.commands`` entry point group: each entry is a
function called with the sub-command parsers (the twin's is ``twin.commands:register``).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from producer import project
from producer.errors import explain, no_twin_info

COMMANDS_ENTRY_POINTS = "stepmail.commands"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a CLI reports, it does not dump a traceback on a user error
        if getattr(args, "debug", False):
            raise
        print(f"stepmail: {explain(error, args)}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stepmail", description="Send email through stepmail.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_send_command(commands)
    schema = commands.add_parser("schema", help="print the message format as JSON Schema")
    schema.set_defaults(run=_schema)
    cost = commands.add_parser("cost", help="dollars per 1M emails: this design vs the original, by term")
    _add_cost_arguments(cost)
    cost.set_defaults(run=_cost)
    _add_operate_commands(commands)
    _add_template_commands(commands)
    _add_registered_commands(commands)
    return parser


def _add_registered_commands(commands: Any) -> None:
    """The commands other packages register (the twin's ``local serve`` and ``demo``)."""
    for entry_point in entry_points(group=COMMANDS_ENTRY_POINTS):
        try:
            register = entry_point.load()
        except ImportError as error:  # a broken package must not take the producer's commands down
            print(f"stepmail: the {entry_point.name} commands are unavailable: {error}", file=sys.stderr)
            continue
        register(commands)


def _add_send_command(commands: Any) -> None:
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
    _add_deployment_arguments(send)
    send.set_defaults(run=_send)


def _add_operate_commands(commands: Any) -> None:
    """``dlq list``, ``dlq redrive`` and ``status``."""
    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(
        required=True, metavar="COMMAND"
    )
    dlq_list = dlq.add_parser("list", help="each dead-lettered message with its reason")
    dlq_list.add_argument("--json", action="store_true")
    _add_wait_argument(dlq_list)
    _add_deployment_arguments(dlq_list)
    dlq_list.set_defaults(run=_dlq_list)
    dlq_redrive = dlq.add_parser("redrive", help="re-validate messages and send them back to the queue")
    which = dlq_redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--mail-key", metavar="K")
    which.add_argument("--all", action="store_true")
    dlq_redrive.add_argument("--dry-run", action="store_true", help="show what would be redriven")
    dlq_redrive.add_argument("--json", action="store_true")
    _add_wait_argument(dlq_redrive)
    _add_deployment_arguments(dlq_redrive)
    dlq_redrive.set_defaults(run=_dlq_redrive)

    status = commands.add_parser("status", help="what happened to an email: lock, send, delivery, DLQ")
    status.add_argument("mail_key", metavar="MAILKEY")
    status.add_argument(
        "--to", action="append", default=[], metavar="ADDR", help="every recipient: to, cc, bcc (repeatable)"
    )
    status.add_argument("--json", action="store_true")
    _add_deployment_arguments(status)
    status.set_defaults(run=_status)


def _add_wait_argument(parser: argparse.ArgumentParser) -> None:
    from producer.dead_letters import DEFAULT_WAIT_SECONDS

    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="S",
        help="how long to wait for letters another reader holds (the console, another dlq command); "
        f"default {DEFAULT_WAIT_SECONDS:g}",
    )


def _add_template_commands(commands: Any) -> None:
    template = commands.add_parser("template", help="email templates").add_subparsers(
        required=True, metavar="COMMAND"
    )
    render = template.add_parser("render", help="preview a template with data, as the sender renders it")
    render.add_argument("name", metavar="NAME")
    render.add_argument("--data", type=Path, metavar="FILE", help="templateData as a JSON file")
    render.add_argument("--templates", type=Path, default=project.DEFAULT_TEMPLATES, metavar="DIR")
    render.add_argument("--json", action="store_true")
    render.set_defaults(run=_template_render)


def _add_deployment_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("where (default: the deployed stack)")
    target.add_argument("--local", action="store_true", help=f"the local twin ({project.DEFAULT_INFO_FILE})")
    target.add_argument("--info-file", type=Path, help="a twin's info file")
    target.add_argument("--endpoint-url", help="a twin's endpoint (resource names from the stack name)")
    target.add_argument("--stack", default=None, help="the deployed stack's name (default from cdk.json)")
    target.add_argument("--region", default=None)


def _deployment(args: argparse.Namespace) -> Any:
    """The deployment the command's options name: a twin's info file or endpoint, or the stack."""
    import boto3

    from producer.deployment import Deployment

    if args.info_file or args.local:
        path = args.info_file or project.DEFAULT_INFO_FILE
        try:
            return Deployment.from_info_file(path)
        except FileNotFoundError:
            raise no_twin_info(path, default=args.info_file is None) from None
    config = project.optional_config()
    stack = args.stack or (config.stack_name if config else project.DEFAULT_STACK_NAME)
    region = args.region or (config.region if config else boto3.session.Session().region_name)
    if args.endpoint_url:
        return Deployment.for_twin(stack, region or project.DEFAULT_REGION, args.endpoint_url)
    args.stack, args.region = stack, region  # what was tried, should it fail (producer.errors)
    return Deployment.from_stack(stack, region=region)


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
    queue_message_id = StepmailClient(_deployment(args)).send(message, attachments)
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


def _dlq_list(args: argparse.Namespace) -> int:
    from producer.dead_letters import read_dead_letter_queue
    from producer.render import render_letters

    deployment = _deployment(args)
    listing = read_dead_letter_queue(
        deployment.client("sqs"),
        deployment.dlq_url,
        history=_delivery_history(deployment),
        wait_seconds=args.wait_seconds,
    )
    print(json.dumps(listing.summary()) if args.json else render_letters(listing.letters))
    return _accounted(listing.tally, args.json)


def _dlq_redrive(args: argparse.Namespace) -> int:
    from producer.redrive import redrive
    from producer.render import render_redrive
    from stepmail.core.message import SenderPolicy

    deployment, config = _deployment(args), project.optional_config()
    # Without the project's configuration the sender identities are unknown: the stack checks them.
    policy = (
        SenderPolicy(config.sender_identities, config.default_sender, config.sendable_configuration_sets)
        if config
        else None
    )
    report = redrive(
        deployment.client("sqs"),
        dlq_url=deployment.dlq_url,
        queue_url=deployment.queue_url,
        mail_key=args.mail_key,
        all=args.all,
        dry_run=args.dry_run,
        policy=policy,
        history=_delivery_history(deployment),
        wait_seconds=args.wait_seconds,
    )
    print(json.dumps(report.summary()) if args.json else render_redrive(report))
    return _accounted(report.tally, args.json)


#: The exit status of a dlq command that could not see every letter (another reader held some).
EXIT_LETTERS_UNSEEN = 3


def _accounted(tally: Any, as_json: bool) -> int:
    """0 when every letter was seen; else the line that says how many were not, and a non-zero exit."""
    if not as_json:
        print(tally.line())
    if tally.complete:
        return 0
    print(f"stepmail: {tally.unseen} letter(s) in flight elsewhere: run again", file=sys.stderr)
    return EXIT_LETTERS_UNSEEN


def _delivery_history(deployment: Any) -> Any:
    from producer.dead_letters import DeliveryHistory

    return DeliveryHistory.of(
        deployment.client("sqs"),
        deployment.client("dynamodb"),
        queue_url=deployment.queue_url,
        table=deployment.table,
    )


def _status(args: argparse.Namespace) -> int:
    from producer.render import render_status
    from producer.status import email_status

    deployment = _deployment(args)
    records = email_status(
        deployment.client("dynamodb"),
        deployment.client("sqs"),
        table=deployment.table,
        dlq_url=deployment.dlq_url,
        mail_key=args.mail_key,
        recipients=args.to or None,
        history=_delivery_history(deployment),
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


if __name__ == "__main__":
    sys.exit(main())
