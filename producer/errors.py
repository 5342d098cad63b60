"""What the ``stepmail`` command says when a command fails: what is wrong, and what to do about it.

Most errors are the user's to read as they are (an invalid message says which field).  Three are
about where the command looked, and say so: no twin where ``--local`` looks, a twin's info file whose
server is gone, and no AWS credentials (or region) for the deployed stack.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

from producer.project import DEFAULT_INFO_FILE

#: What to do when no twin answers.
START_A_TWIN = "start one with `stepmail local serve` or `make serve`, or pass --info-file"
SET_CREDENTIALS = (
    "set credentials (`aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
    "or use --local for the local twin"
)


class NoTwinError(Exception):
    """The command was pointed at a twin, and none is there."""


def no_twin_info(path: Path, *, default: bool) -> NoTwinError:
    """No info file at ``path``: no twin was started there (``default``: the path ``--local`` reads)."""
    if default:
        return NoTwinError(f"no local twin is running here (no {path}): {START_A_TWIN}")
    return NoTwinError(f"no twin's info file at {path}: {START_A_TWIN}")


def explain(error: Exception, args: argparse.Namespace) -> str:
    """The error as one line for the user."""
    if isinstance(error, NoTwinError):
        return str(error)
    if isinstance(error, EndpointConnectionError) and _on_a_twin(args):
        return _twin_gone(error, args)
    if isinstance(error, NoCredentialsError):
        return f"no AWS credentials found to read the stack {_stack(args)}: {SET_CREDENTIALS}"
    if isinstance(error, NoRegionError):
        return (
            f"no AWS region to look for the stack {getattr(args, 'stack', None)} in: pass --region, "
            "set AWS_DEFAULT_REGION, or use --local for the local twin"
        )
    return f"{type(error).__name__}: {error}"


def _on_a_twin(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("local", "info_file", "endpoint_url"))


def _twin_gone(error: EndpointConnectionError, args: argparse.Namespace) -> str:
    url = urlsplit(str(error.kwargs.get("endpoint_url", "")))
    endpoint = f"{url.scheme}://{url.netloc}"
    if getattr(args, "endpoint_url", None):
        return f"nothing answers at {endpoint}: {START_A_TWIN}"
    source = getattr(args, "info_file", None) or DEFAULT_INFO_FILE
    return f"the twin of {source} is not running (nothing answers at {endpoint}): {START_A_TWIN}"


def _stack(args: argparse.Namespace) -> str:
    region = getattr(args, "region", None)
    return f"{getattr(args, 'stack', None)} in {region}" if region else f"{getattr(args, 'stack', None)}"
