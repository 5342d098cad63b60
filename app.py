"""CDK entry point: ``npx cdk synth`` / ``npx cdk deploy`` run this (see cdk.json).

The configuration comes from the ``stepmailConfigFile`` context value (``-c stepmailConfigFile=prod.json``),
else ``$STEPMAIL_CONFIG``, else the ``stepmail`` object in cdk.json's context; it is validated here, at
synth time.  cdk-nag's AwsSolutions checks run on every synth: an unacknowledged finding fails it; checkov's
findings that the design answers differently carry their reasons in the template (infra/checkov.py).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Aspects, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.checkov import CheckovSkips
from infra.config import CONFIG_FILE_CONTEXT_KEY, CONTEXT_KEY, load_config
from infra.stack import StepmailStack


def config_context(app: App) -> dict[str, Any]:
    """The context values ``load_config`` reads (cdk.json, ``-c`` options or ``App(context=...)``)."""
    values = {key: app.node.try_get_context(key) for key in (CONTEXT_KEY, CONFIG_FILE_CONTEXT_KEY)}
    return {key: value for key, value in values.items() if value is not None}


def build_app(app: App) -> StepmailStack:
    """Validate the configuration, add the stack and the compliance checks to ``app``."""
    config = load_config(config_context(app))
    stack = StepmailStack(
        app,
        config.stack_name,
        config=config,
        env=Environment(account=config.account, region=config.region),
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    Aspects.of(stack).add(CheckovSkips())
    return stack


def main() -> None:
    app = App()
    build_app(app)
    app.synth()


if __name__ == "__main__":
    main()
