"""The real local bundler: pip installs the Linux arm64 wheels and the asset holds what Lambda needs.

This synthesizes once with bundling on (pip downloads from PyPI, or uses its cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import constants
from tests.infrastructure.synth import Synthesized, cdk_context, synthesize


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(cdk_context(bundle=True), tmp_path_factory.mktemp("cdk-bundled"))


@pytest.fixture(scope="module")
def asset(bundled: Synthesized) -> Path:
    """The one bundled Lambda asset directory."""
    assets = json.loads((bundled.outdir / f"{bundled.stack.artifact_id}.assets.json").read_text())
    directories = [
        bundled.outdir / entry["source"]["path"]
        for entry in assets["files"].values()
        if entry["source"].get("packaging") == "zip"
    ]
    assert len(directories) == 1, "both functions should share one asset"
    return directories[0]


def test_asset_contains_the_stepmail_package_without_bytecode(asset: Path) -> None:
    # Then the handlers are there, as source only
    assert (asset / "stepmail" / "handlers" / "starter.py").is_file()
    assert (asset / "stepmail" / "handlers" / "sender.py").is_file()
    assert (asset / "stepmail" / "handlers" / "tracker.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    assert not list((asset / "stepmail").rglob("*.pyc"))


def test_asset_has_pydantic_core_built_for_python_313_on_aarch64(asset: Path) -> None:
    # When we look for pydantic-core's compiled extension
    extensions = list((asset / "pydantic_core").glob("_pydantic_core.*.so"))

    # Then it is the Linux arm64 build for CPython 3.13, as the Lambda runtime needs
    assert [extension.name for extension in extensions] == ["_pydantic_core.cpython-313-aarch64-linux-gnu.so"]
    [wheel_metadata] = asset.glob("pydantic_core-*.dist-info/WHEEL")
    tags = [line for line in wheel_metadata.read_text().splitlines() if line.startswith("Tag:")]
    assert tags and all("cp313" in tag and "aarch64" in tag for tag in tags)


def test_asset_has_the_runtime_requirements_but_not_boto3(asset: Path) -> None:
    # Given the pinned runtime requirements
    pinned = [
        line.split("==")[0].replace("-", "_")
        for line in constants.FUNCTIONS_REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    ]

    # Then each is installed, and boto3/botocore (in the Lambda runtime already) are not bundled
    for name in pinned:
        assert list(asset.glob(f"{name}-*.dist-info")), name
    assert not (asset / "boto3").exists()
    assert not (asset / "botocore").exists()


def test_both_functions_point_at_the_bundled_asset(bundled: Synthesized, asset: Path) -> None:
    # Given the asset's hash (its directory is asset.<hash>)
    asset_hash = asset.name.removeprefix("asset.")

    # Then both functions deploy that zip
    for function in (bundled.stack.starter.function, bundled.stack.sender.function):
        assert bundled.resource(function)["Properties"]["Code"]["S3Key"] == f"{asset_hash}.zip"
