"""The twin's commands for the ``stepmail`` CLI: ``local serve`` and ``demo``.

Registered through the ``stepmail.commands`` entry point (pyproject.toml), so the producer's CLI
never imports the twin.  This module imports nothing heavy: the twin (moto, werkzeug...) is imported
when one of its commands runs, and a missing dependency is reported with the command to install it.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

from producer import project

#: The twin runs from a checkout (it reads the ASL file and the functions' code from it).
INSTALL_HINT = "in a stepmail checkout, `make demo` or `pip install -e '.[twin]'` installs it"
DEFAULT_PORT = 4750


class TwinNotInstalledError(RuntimeError):
    """The twin's dependencies are not installed."""


def register(commands: Any) -> None:
    """Add ``local serve`` and ``demo`` to the CLI's sub-command parsers."""
    local = commands.add_parser("local", help="the local twin").add_subparsers(
        required=True, metavar="COMMAND"
    )
    serve = local.add_parser("serve", help="run the local twin until interrupted")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument(
        "--outbox", type=Path, default=project.DEFAULT_OUTBOX, help="where sent emails are written"
    )
    serve.add_argument("--info-file", type=Path, default=project.DEFAULT_INFO_FILE, help="written once ready")
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
    serve.set_defaults(run=serve_until_stopped)

    demo = commands.add_parser("demo", help="run the twin on a scripted set of messages and report")
    demo.add_argument("--outbox", type=Path, default=project.DEFAULT_OUTBOX)
    demo.add_argument("--config", type=Path, help="a config file (default: cdk.json's context)")
    demo.set_defaults(run=run_demo)


def serve_until_stopped(args: argparse.Namespace) -> int:
    """``stepmail local serve``: start the twin, write its info file, wait for Ctrl-C or SIGTERM."""
    twin = _twin_module()
    from twin.faults import Fault, FaultInjector

    local = twin.LocalTwin(
        project.project_config(args.config),
        port=args.port,
        outbox=args.outbox,
        ses_max_send_rate=args.ses_max_send_rate,
        handler_log_level="INFO" if args.verbose else "WARNING",
        faults=FaultInjector([Fault.parse(text) for text in args.fault], seed=args.fault_seed),
    )
    info = local.start()
    try:
        args.info_file.parent.mkdir(parents=True, exist_ok=True)
        args.info_file.write_text(info.to_json(), encoding="utf-8")
        _print_ready(info, args.info_file, local.console_url)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop as on SIGTERM
            stopped.wait()
    finally:
        local.stop()
        # A stopped twin's info file would send the next `--local` command to a closed port.
        args.info_file.unlink(missing_ok=True)
    return 0


def _print_ready(info: Any, info_file: Path, console_url: str) -> None:
    print(f"stepmail twin ready on {info.endpoint_url}  (info: {info_file}, outbox: {info.outbox})")
    print(f"  console: {console_url}")
    print(
        f"  aws --endpoint-url {info.endpoint_url} sqs send-message"
        f" --queue-url {info.queue_url} --message-body ..."
    )
    print("  stepmail send --local --to someone@example.org --subject Hi --body Hello")
    print("Ctrl-C to stop.", flush=True)


def run_demo(args: argparse.Namespace) -> int:
    """``stepmail demo``."""
    _twin_module()
    from twin.demo import run_demo

    return run_demo(project.project_config(args.config), outbox=args.outbox)


def _twin_module() -> Any:
    """``twin.twin``, or an error saying how to install what it needs.

    Raises
    ------
    TwinNotInstalledError
        One of the twin's dependencies is missing.
    """
    try:
        from twin import twin
    except ModuleNotFoundError as error:
        raise TwinNotInstalledError(
            f"the local twin needs {error.name}, which is not installed: {INSTALL_HINT}"
        ) from None
    return twin
