"""Run from the unpacked Lambda asset by test_lambda_bundling.py, after the handlers' unit tests.

Not collected in the suite (its name does not start with ``test_``): it only makes sense on Python 3.13
with nothing but boto3 installed and the asset first on ``sys.path`` (tests/infrastructure/
lambda_runtime.py).  The unit tests before it drive every handler path through fakes; this adds what
they leave out (each handler built with its real boto3 clients) and then checks where every imported
module came from.
"""

from __future__ import annotations

import sys
from pathlib import Path

from infra.config import StepmailConfig
from stepmail.handlers import sender, starter, tracker

#: What may come from the runtime's site-packages: the runtime's own boto3 and the test runner.
RUNTIME_TOP_LEVEL = {
    "boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six",
    "pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py",
    "hypothesis", "_hypothesis_globals", "_hypothesis_pytestplugin", "sortedcontainers",
}  # fmt: skip


def _asset_root() -> Path:
    return Path(sender.__file__).resolve().parents[2]


def test_each_handler_builds_its_real_clients() -> None:
    # Given the configuration the stack deploys
    config = StepmailConfig(sender_identities=("example.com",), default_sender="no-reply@example.com")

    # When each handler is built as on its first invocation, with boto3 clients (no call is made)
    built = [
        starter.build_starter(
            config.starter_settings(
                state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:stepmail",
                dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters",
                lock_table="locks",
                mail_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/mail",
            )
        ),
        sender.build_sender(config.sender_settings(attachments_bucket="attachments")),
        tracker.build_tracker(config.tracker_settings(lock_table="locks")),
    ]

    # Then each has its ports
    assert [type(handler).__name__ for handler in built] == ["Starter", "Sender", "Tracker"]


def test_every_module_came_from_the_asset_or_the_runtime() -> None:
    # Given every module this process imported (the unit tests ran before this)
    asset, runtime = _asset_root(), Path(sys.prefix).resolve()
    stdlib = Path(sys.base_prefix).resolve() / "lib"
    from_asset, elsewhere = [], []
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if not origin:
            continue
        path = Path(origin).resolve()
        if path.is_relative_to(asset):
            from_asset.append(module)
        elif path.is_relative_to(runtime) and name.split(".")[0] not in RUNTIME_TOP_LEVEL:
            elsewhere.append(name)
        elif not (path.is_relative_to(runtime) or path.is_relative_to(stdlib)):
            elsewhere.append(name)  # the repository's tests, infra.config
    # Then the Lambda's code came from the asset, as bytecode (nothing compiled at run time)
    assert {module.__name__.split(".")[0] for module in from_asset} >= {"stepmail", "pydantic", "jinja2"}
    compiled_here = [
        module.__name__
        for module in from_asset
        if not str(module.__file__).endswith((".pyc", ".so"))
        and not Path(getattr(module, "__cached__", None) or module.__file__ + "c").is_file()
    ]
    assert compiled_here == []
    # And nothing but boto3, the test runner and the repository's tests came from anywhere else
    assert {name.split(".")[0] for name in elsewhere} <= {"tests", "infra", "producer", "twin"}
