"""The Lambda runtime, as near as this machine gets: Python 3.13 with boto3, and the unpacked asset.

The Python 3.13 runtime ships boto3 (and its dependencies) and nothing else of ours; Lambda unpacks
the asset into a read-only directory that comes first on ``sys.path``.  :func:`runtime_python` makes a
venv with exactly the boto3 the project pins (and pytest, to drive tests from the asset), and
:func:`unpacked_asset` copies a bundled asset into a read-only directory.  The asset's one compiled
extension, pydantic-core's, is built for Linux arm64: the copy gets the same version built for this
machine instead (every other file is the asset's own, bytecode included).

Used by ``bench/cold_start.py`` (import times against the floor) and by
``tests/infrastructure/test_lambda_bundling.py`` (every handler path runs from the asset).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.bundling import lambda_python
from infra.constants import REPO_ROOT

VENV = REPO_ROOT / ".bench" / "py313"
NATIVE = REPO_ROOT / ".bench" / "py313-native"
#: What the runtime ships (boto3 and its dependencies), and what the unit tests run against the asset
#: need besides it (pytest, Hypothesis).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")
TEST_PACKAGES = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "hypothesis", "sortedcontainers")


def _pins(names: tuple[str, ...]) -> list[str]:
    """The ``name==version`` lines of requirements.txt for these distributions."""
    wanted = {name.lower() for name in names}
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.split("==")[0].lower() in wanted]


def _pip(python: Path, *arguments: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments],
        check=True,
    )


def runtime_python() -> Path:
    """The venv's interpreter: Python 3.13 with the pinned boto3 (and pytest), made on first use."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = "\n".join(_pins(RUNTIME_PACKAGES + TEST_PACKAGES))
    if stamp.is_file() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([str(lambda_python()), "-m", "venv", str(VENV)], check=True)
    _pip(python, *wanted.splitlines())
    stamp.write_text(wanted)
    return python


def native_pydantic_core(asset: Path) -> Path:
    """pydantic-core's compiled extension, at the asset's version, built for this machine."""
    (dist_info,) = asset.glob("pydantic_core-*.dist-info")
    version = dist_info.name.removeprefix("pydantic_core-").removesuffix(".dist-info")
    target = NATIVE / version
    found = list(target.glob("pydantic_core/_pydantic_core.*.so"))
    if not found:
        _pip(runtime_python(), "--no-deps", "--target", str(target), f"pydantic-core=={version}")
        found = list(target.glob("pydantic_core/_pydantic_core.*.so"))
    (extension,) = found
    return extension


@contextmanager
def unpacked_asset(asset: Path, parent: Path) -> Iterator[Path]:
    """A read-only copy of ``asset`` under ``parent``, runnable on this machine (see the module doc)."""
    copy = parent / "task"
    shutil.copytree(asset, copy)
    for extension in (copy / "pydantic_core").glob("_pydantic_core.*.so"):
        extension.unlink()
    shutil.copy2(native_pydantic_core(asset), copy / "pydantic_core")
    _set_writable(copy, writable=False)
    try:
        yield copy
    finally:
        _set_writable(copy, writable=True)


def _set_writable(root: Path, *, writable: bool) -> None:
    write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for directory, _, files in os.walk(root):
        for path in [Path(directory), *(Path(directory) / name for name in files)]:
            mode = path.stat().st_mode
            path.chmod((mode | stat.S_IWUSR) if writable else (mode & ~write))
