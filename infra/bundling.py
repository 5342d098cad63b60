"""Bundle the Lambda code locally, without Docker: pip fetches Linux arm64 wheels for Python 3.13.

``PythonFunction`` needs Docker, which is not available everywhere we synth.  pip can install wheels
for another platform into a directory (``--platform``/``--python-version`` with ``--only-binary``),
so the asset is built on the host and is still correct for the Lambda runtime.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, IgnoreMode, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import constants

# Never shipped: byte code differs between machines and would be recompiled by the runtime anyway.
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
        self._install_requirements(target)
        self._copy_package(target)
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


def lambda_code() -> lambda_.Code:
    """One asset for both functions: the same code directory and bundling, so it is bundled once.

    A local bundler is not part of the asset hash, so the target architecture and Python version go
    into the bundling ``environment``: changing either changes the hash and forces a rebuild.
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
            },
        ),
    )
