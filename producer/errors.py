"""What the ``stepmail`` command says when a command fails."""

from __future__ import annotations

import argparse


def explain(error: Exception, args: argparse.Namespace) -> str:
    """The error as one line for the user."""
    return f"{type(error).__name__}: {error}"
