"""The real local bundler: pip installs the Linux arm64 wheels and the asset holds what Lambda needs.

This synthesizes once with bundling on (pip downloads from PyPI, or uses its cache) and compiles the
asset with Python 3.13; the last test runs the handlers' unit tests from the unpacked asset on a
Python 3.13 with only boto3 installed, as the Lambda runtime has.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra import constants
from infra.bundling import bundler_digest, lambda_python
from tests.infrastructure.lambda_runtime import runtime_python, unpacked_asset
from tests.infrastructure.synth import Synthesized, cdk_context, synthesize

#: The unit tests that drive the handlers and the core through every path (with fakes for AWS), and
#: the asset's own checks last.  Not test_message.py: it needs jsonschema, which the runtime lacks.
ASSET_TESTS = (
    "tests/unit/test_handlers.py",
    "tests/unit/test_tracking.py",
    "tests/unit/test_templates.py",
    "tests/unit/test_mime.py",
    "tests/unit/test_bad_input_corpus.py",
    "tests/unit/test_addresses.py",
    "tests/unit/test_lock.py",
    "tests/unit/test_error_contract.py",
    "tests/infrastructure/asset_paths.py",
)
#: Not run from the asset: the producer CLI's test (not Lambda code), and the corpus case of a body
#: nested 5,000 deep, which Python 3.13's json parses (3.11's stops at ~1,000: "nested too deeply"),
#: so on the runtime it is refused for its content instead, with another reason than the case expects.
NOT_FROM_THE_ASSET = (
    "tests/unit/test_templates.py::test_template_render_previews_a_template",
    "tests/unit/test_bad_input_corpus.py::test_each_hostile_message_is_refused_with_its_reason[deeply-nested-json]",
)


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


def _bytecode_header(path: Path) -> tuple[bytes, int]:
    """A .pyc's magic number and flags (PEP 552: bit 0 hash-based, bit 1 check the source)."""
    header = path.read_bytes()[:8]
    return header[:4], int.from_bytes(header[4:8], "little")


def _magic_number_of_lambda_python() -> bytes:
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    return bytes.fromhex(subprocess.check_output([str(lambda_python()), "-c", code], text=True))


def test_our_package_ships_its_sources_and_their_bytecode_for_python_313(asset: Path) -> None:
    # The asset used to ship no bytecode at all ("the runtime would recompile it anyway"). But Lambda's
    # code directory is read-only: each cold start compiled every module it imported, ours and the
    # requirements' (pip ran with --no-compile), and cached nothing.  Now the bytecode is built for
    # the runtime's Python, as unchecked-hash (the CDK CLI zips every file with one fixed date, so
    # timestamp-checked bytecode would look stale after every deployment).
    # Given the handlers' sources in the asset
    sources = sorted((asset / "stepmail").rglob("*.py"))
    assert {"starter.py", "sender.py", "tracker.py"} <= {path.name for path in sources}
    magic = _magic_number_of_lambda_python()
    for source in sources:
        # Then each has its bytecode for 3.13, which the runtime loads without checking the source
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert _bytecode_header(cached) == (magic, 0b01), cached


def test_the_requirements_ship_as_bytecode_only(asset: Path) -> None:
    # Given everything outside our package
    outside = [path for path in asset.rglob("*") if path.relative_to(asset).parts[0] != "stepmail"]
    # Then no module is left as source, and every module's bytecode is 3.13's, unchecked-hash
    assert [path for path in outside if path.suffix == ".py"] == []
    compiled = [path for path in outside if path.suffix == ".pyc"]
    assert len(compiled) > 100  # pydantic, Powertools, jinja2...
    magic = _magic_number_of_lambda_python()
    assert {_bytecode_header(path) for path in compiled} == {(magic, 0b01)}


def test_bytecode_names_the_files_where_lambda_unpacks_them(asset: Path) -> None:
    # Given one dependency's bytecode and a Python that can read it
    pyc = asset / "pydantic" / "main.pyc"
    code = f"import marshal; print(marshal.loads(open({str(pyc)!r}, 'rb').read()[16:]).co_filename)"
    # Then its tracebacks name /var/task/..., not the build machine's directory
    filename = subprocess.check_output([str(lambda_python()), "-c", code], text=True).strip()
    assert filename == f"{constants.LAMBDA_TASK_ROOT}/pydantic/main.py"


def test_the_asset_leaves_out_what_no_handler_imports(asset: Path) -> None:
    # Then only the Powertools utilities the handlers import are there
    utilities = asset / "aws_lambda_powertools" / "utilities"
    assert sorted(path.name for path in utilities.iterdir() if path.is_dir()) == sorted(
        constants.POWERTOOLS_UTILITIES_SHIPPED
    )
    # And none of the other unused parts, type stubs, tests or pip's bookkeeping
    for relative in constants.REQUIREMENTS_NOT_SHIPPED:
        assert not (asset / relative).exists(), relative
    left_out = ("*.pyi", "py.typed", "RECORD", "tests", "test")
    assert not [path for pattern in left_out for path in asset.rglob(pattern)]
    # But each requirement keeps its licence and metadata
    for dist_info in asset.glob("*.dist-info"):
        assert (dist_info / "METADATA").is_file(), dist_info.name


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


def test_a_change_in_how_the_asset_is_built_changes_its_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the recipe's digest
    before = bundler_digest()
    # When one more path is left out, Then the digest (part of the asset hash) differs
    more = (*constants.REQUIREMENTS_NOT_SHIPPED, "jinja2")
    monkeypatch.setattr(constants, "REQUIREMENTS_NOT_SHIPPED", more)
    assert bundler_digest() != before


def test_every_handler_path_runs_from_the_asset_on_python_313(asset: Path, tmp_path: Path) -> None:
    # Given the asset unpacked read-only on a Python 3.13 with only boto3 (and pytest) installed
    python = runtime_python()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    with unpacked_asset(asset, tmp_path) as task:
        environment["PYTHONPATH"] = str(task)
        # When each handler module is imported alone, as its Lambda does at a cold start
        for handler in (constants.STARTER_HANDLER, constants.SENDER_HANDLER, constants.TRACKER_HANDLER):
            module = handler.rsplit(".", 1)[0]
            cold = _run([str(python), "-c", f"import {module}"], environment)
            assert cold.returncode == 0, cold.stderr[-3000:]
        # And the handlers' unit tests run after the handlers were imported in that order (what a
        # module imports can depend on what was imported before it; see POWERTOOLS_UTILITIES_SHIPPED).
        # No conftest: the suite's conftest files import CDK, and the one fixture the unit tests need
        # is this environment.
        deselect = [f"--deselect={test}" for test in NOT_FROM_THE_ASSET]
        pytest_options = ["-q", "-p", "no:cacheprovider", "--noconftest", *deselect]
        result = _run([str(python), "-c", _PYTEST_AFTER_HANDLERS, *pytest_options, *ASSET_TESTS], environment)
    # Then every test passed, each module imported from the asset's bytecode
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


_PYTEST_AFTER_HANDLERS = (
    "import stepmail.handlers.starter, stepmail.handlers.sender, stepmail.handlers.tracker, sys, pytest; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def _run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment,
        cwd=constants.REPO_ROOT,
        timeout=600,
        check=False,
    )
