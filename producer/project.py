"""The project a ``stepmail`` command runs in: the directory it is started from.

A checkout of stepmail (or a project deploying it) keeps its configuration in ``cdk.json``, its
templates in ``templates/`` and its running twin's info file and outbox under ``.stepmail/``.  The
commands read them relative to the working directory, so an installed ``stepmail`` works in any
such project.
"""

from __future__ import annotations

import os
from pathlib import Path

from infra.config import CONFIG_FILE_ENV, StepmailConfig, load_config, repo_context

STATE_DIR = Path(".stepmail")
#: Where ``stepmail local serve`` writes where it is, and where ``--local`` reads it.
DEFAULT_INFO_FILE = STATE_DIR / "twin.json"
DEFAULT_OUTBOX = STATE_DIR / "outbox"
DEFAULT_TEMPLATES = Path("templates")
#: The stack's name and region when no configuration says otherwise (infra.config.StepmailConfig's).
DEFAULT_STACK_NAME = StepmailConfig.model_fields["stack_name"].default
DEFAULT_REGION = StepmailConfig.model_fields["region"].default


def project_config(path: Path | None = None) -> StepmailConfig:
    """The configuration: ``path``, else ``$STEPMAIL_CONFIG``, else ``cdk.json`` in the working directory.

    Raises
    ------
    FileNotFoundError
        Neither ``path``, ``$STEPMAIL_CONFIG`` nor ``./cdk.json`` exists.
    pydantic.ValidationError
        The configuration is invalid.
    """
    if path is not None:
        return load_config(config_file=path)
    context = repo_context(Path.cwd()) if Path("cdk.json").is_file() else {}
    return load_config(context)


def optional_config() -> StepmailConfig | None:
    """The project's configuration, or None where there is none (a producer with the client only).

    Raises
    ------
    ValueError
        A configuration is there but invalid.
    """
    if not Path("cdk.json").is_file() and CONFIG_FILE_ENV not in os.environ:
        return None
    return project_config()
