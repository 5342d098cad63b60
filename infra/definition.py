"""Load the one state machine definition and fill its placeholders.

The ASL file is the source of truth for both the deployed state machine and the local twin.  It has
two kinds of ``${Placeholder}``:

* numbers from the configuration (timeouts, retry policy), written as quoted strings so the file
  stays valid JSON (``"MaxAttempts": "${RetryMaxAttempts}"``); :func:`apply_numbers` replaces the
  quoted placeholder with the bare number;
* resource names and ARNs (``${LockTableName}``...), filled by CDK's ``definition_substitutions``
  when deployed and by the twin with local names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from infra.config import StepmailConfig

ASL_PATH = Path(__file__).resolve().parent.parent / "statemachine" / "stepmail.asl.json"

#: The resource placeholders, filled by CDK (tokens) or the twin (local names).
RESOURCE_PLACEHOLDERS = ("LockTableName", "AttachmentsBucketName", "SenderFunctionArn", "DeadLetterQueueUrl")

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def read_definition(path: Path = ASL_PATH) -> str:
    return path.read_text(encoding="utf-8")


def apply_numbers(definition: str, config: StepmailConfig) -> str:
    """Replace each quoted numeric placeholder with its number from ``config``."""
    for name, value in config.asl_numbers().items():
        definition = definition.replace(f'"${{{name}}}"', json.dumps(value))
    return definition


def apply_resources(definition: str, resources: Mapping[str, str]) -> str:
    """Fill the resource placeholders the way CDK's ``definition_substitutions`` does (plain text)."""
    missing = set(RESOURCE_PLACEHOLDERS) - set(resources)
    if missing:
        raise ValueError(f"missing substitutions: {sorted(missing)}")
    return _PLACEHOLDER.sub(lambda match: resources.get(match.group(1), match.group(0)), definition)


def render_definition(config: StepmailConfig, resources: Mapping[str, str], path: Path = ASL_PATH) -> str:
    """The complete definition, as the twin runs it and as CDK deploys it."""
    rendered = apply_resources(apply_numbers(read_definition(path), config), resources)
    leftover = _PLACEHOLDER.findall(rendered)
    if leftover:
        raise ValueError(f"unknown placeholders in {path.name}: {sorted(set(leftover))}")
    return rendered
