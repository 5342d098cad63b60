"""Bundle the Lambda code locally, without Docker: pip fetches Linux arm64 wheels for Python 3.13.

``PythonFunction`` needs Docker, which is not available everywhere we synth.  pip can install wheels
for another platform into a directory (``--platform``/``--python-version`` with ``--only-binary``),
so the asset is built on the host and is still correct for the Lambda runtime.

The asset is also made lean and ready to import (``bench/cold_start.py`` measures both):

* What no handler imports is left out of the installed requirements: Powertools' other utilities,
  pydantic's v1 package, type stubs, pip's bookkeeping (the lists are in ``infra.constants``).
* Every module is compiled to bytecode by a Python of the runtime's version.  Lambda's code directory
  is read-only, so a module shipped as source is compiled again at every cold start and never cached.
  The bytecode is ``unchecked-hash``: the CDK CLI zips every file with the same fixed date, so
  bytecode that checks its source's timestamp would be stale after every deployment (and compiled
  again), and a checked hash would read and hash each source at every import.  The file names it
  carries are the paths in the Lambda (``/var/task/...``), so it is the same on every machine.
* The requirements ship as bytecode only (their sources are on PyPI at the pinned versions), which
  keeps the zip near its size without bytecode; our package ships with its sources beside its
  bytecode, so its tracebacks show the failing line.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, IgnoreMode, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import constants

# Never copied from the repository: its bytecode is whatever the local Python left behind.
_NOT_SHIPPED = ("__pycache__", "*.pyc")
#: Email templates (``templates/<name>/``): shipped beside the package, read by the sender.
TEMPLATES_DIR = constants.REPO_ROOT / "templates"


def pip_install_command(requirements: Path, target: Path) -> list[str]:
    """The pip call that installs the runtime dependencies for the Lambda platform into ``target``."""
    platforms = [arg for platform in constants.PIP_PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable, "-m", "pip", "install",
        "--requirement", str(requirements),
        "--target", str(target),
        *platforms,
        "--implementation", "cp",
        "--python-version", constants.PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--quiet", "--disable-pip-version-check", "--no-input",
    ]  # fmt: skip


def compile_command(python: Path, directory: Path, asset_root: Path, *, keep_sources: bool) -> list[str]:
    """The compileall call that writes the bytecode of every module under ``directory``.

    ``keep_sources=False`` writes ``module.pyc`` beside ``module.py`` (where Python imports it without
    a source) instead of ``__pycache__/module.cpython-313.pyc``.
    """
    return [
        str(python), "-s", "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(asset_root), "-p", constants.LAMBDA_TASK_ROOT,
        *([] if keep_sources else ["-b"]),
        str(directory),
    ]  # fmt: skip


@functools.cache
def lambda_python() -> Path:
    """A Python of the runtime's version (``constants.PYTHON_VERSION``), to compile the asset with.

    Looked for in ``$STEPMAIL_LAMBDA_PYTHON``, as ``python3.13`` on ``PATH``, then among pyenv's
    versions.

    Raises
    ------
    RuntimeError
        If there is none: bytecode of another version would be ignored by the runtime.
    """
    version = constants.PYTHON_VERSION
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get(constants.LAMBDA_PYTHON_ENV),
        shutil.which(f"python{version}"),
        *sorted(map(str, pyenv_root.glob(f"versions/{version}.*/bin/python{version}")), reverse=True),
    ]
    for candidate in filter(None, candidates):
        if _version_of(candidate) == version:
            return Path(candidate)
    raise RuntimeError(
        f"bundling needs Python {version} (the Lambda runtime's) to compile the asset: install it, or "
        f"name its interpreter in ${constants.LAMBDA_PYTHON_ENV}"
    )


def _version_of(python: str) -> str | None:
    try:
        result = subprocess.run(  # noqa: S603 - a fixed one-line probe of an interpreter, no shell
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def leave_out_unused(root: Path) -> None:
    """Delete from the installed requirements under ``root`` what no handler imports."""
    utilities = root / "aws_lambda_powertools" / "utilities"
    for path in sorted(utilities.iterdir()) if utilities.is_dir() else []:
        if path.is_dir() and path.name not in (*constants.POWERTOOLS_UTILITIES_SHIPPED, "__pycache__"):
            shutil.rmtree(path)
    for relative in constants.REQUIREMENTS_NOT_SHIPPED:
        _remove(root / relative)
    for pattern in constants.TYPING_ONLY_FILES:
        for path in list(root.rglob(pattern)):
            path.unlink()
    for dist_info in root.glob("*.dist-info"):
        for name in constants.DIST_INFO_NOT_SHIPPED:
            _remove(dist_info / name)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def compile_modules(python: Path, directory: Path, asset_root: Path, *, keep_sources: bool) -> None:
    """Compile every module under ``directory``; without ``keep_sources``, delete the compiled sources.

    Raises
    ------
    RuntimeError
        If a module does not compile: it could not be imported either.
    """
    # Only PATH from this environment: no PYTHONPATH or PYTHONHASHSEED of the developer's.  Column
    # ranges only underline a traceback's source line, and a module shipped without one has none to
    # show (an environment variable, not -X, because compileall's worker processes inherit it).
    environment = {"PATH": os.environ.get("PATH", "")}
    if not keep_sources:
        environment["PYTHONNODEBUGRANGES"] = "1"
    result = subprocess.run(  # noqa: S603 - a fixed compileall command line, no shell
        compile_command(python, directory, asset_root, keep_sources=keep_sources),
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not compile {directory} for the Lambda:\n{result.stdout}{result.stderr}")
    if not keep_sources:
        for source in list(directory.rglob("*.py")):
            if source.with_suffix(".pyc").is_file():
                source.unlink()


@jsii.implements(ILocalBundling)
class LocalPipBundler:
    """Builds the asset on the host: the pinned requirements, then the ``stepmail`` package."""

    def __init__(
        self,
        requirements: Path = constants.FUNCTIONS_REQUIREMENTS,
        package_dir: Path = constants.FUNCTIONS_DIR / constants.FUNCTIONS_PACKAGE,
    ) -> None:
        self._requirements = requirements
        self._package_dir = package_dir

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        """Bundle into ``output_dir``; fail loudly rather than fall back to Docker (there is none)."""
        target = Path(output_dir)
        python = lambda_python()
        self._install_requirements(target)
        leave_out_unused(target)
        compile_modules(python, target, target, keep_sources=False)
        self._copy_package(target)
        compile_modules(python, target / self._package_dir.name, target, keep_sources=True)
        self._copy_templates(target)
        return True

    def _install_requirements(self, target: Path) -> None:
        result = subprocess.run(  # noqa: S603 - a fixed pip command line, no shell
            pip_install_command(self._requirements, target), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"pip could not bundle {self._requirements}:\n{result.stderr}")

    def _copy_package(self, target: Path) -> None:
        shutil.copytree(
            self._package_dir,
            target / self._package_dir.name,
            ignore=shutil.ignore_patterns(*_NOT_SHIPPED),
            dirs_exist_ok=True,
        )

    def _copy_templates(self, target: Path) -> None:
        if TEMPLATES_DIR.is_dir():
            shutil.copytree(TEMPLATES_DIR, target / TEMPLATES_DIR.name, ignore=shutil.ignore_patterns("*.md"))


def templates_digest(root: Path = TEMPLATES_DIR) -> str:
    """A hash of every template file: the asset hash covers ``functions/`` only, so this goes in too."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def bundler_digest() -> str:
    """A hash of how the asset is built (this module and what it leaves out).

    The asset hash covers ``functions/`` only: without this, a change in bundling would keep the
    hash, and CDK would reuse the asset already built (or uploaded) under it.
    """
    recipe = (
        constants.POWERTOOLS_UTILITIES_SHIPPED,
        constants.REQUIREMENTS_NOT_SHIPPED,
        constants.TYPING_ONLY_FILES,
        constants.DIST_INFO_NOT_SHIPPED,
        constants.LAMBDA_TASK_ROOT,
    )
    digest = hashlib.sha256(Path(__file__).read_bytes() + repr(recipe).encode())
    return digest.hexdigest()[:16]


def lambda_code() -> lambda_.Code:
    """One asset for both functions: the same code directory and bundling, so it is bundled once.

    A local bundler is not part of the asset hash, so the target architecture, the Python version and
    the bundling recipe go into the bundling ``environment``: changing any of them changes the hash
    and forces a rebuild.
    """
    return lambda_.Code.from_asset(
        str(constants.FUNCTIONS_DIR),
        asset_hash_type=AssetHashType.SOURCE,
        exclude=[f"**/{pattern}" for pattern in _NOT_SHIPPED],
        ignore_mode=IgnoreMode.GLOB,
        bundling=BundlingOptions(
            # Never pulled: LocalPipBundler always bundles, and raises instead of returning False.
            image=DockerImage.from_registry("local-only"),
            local=LocalPipBundler(),
            environment={
                "TARGET_ARCHITECTURE": constants.LAMBDA_ARCHITECTURE.name,
                "TARGET_PYTHON_VERSION": constants.PYTHON_VERSION,
                "TARGET_PLATFORMS": ",".join(constants.PIP_PLATFORMS),
                "TEMPLATES_DIGEST": templates_digest(),
                "BUNDLER_DIGEST": bundler_digest(),
            },
        ),
    )
