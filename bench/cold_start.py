# ruff: noqa: S603, E501 - a benchmark runs fixed commands of this repository and prints wide tables
"""Cold start: each handler module's import time on the Lambda's Python, and the zipped Lambda asset.

    .venv/bin/python bench/cold_start.py [--repeat 7] [--json out.json]

Import time: a throwaway Python 3.13 venv (``.bench/py313``) with ``functions/requirements.txt`` and
the boto3 the project pins (the runtime ships one); every run is a fresh process with
``PYTHONDONTWRITEBYTECODE=1`` on a copy of ``stepmail`` without bytecode, as in the asset (Lambda's
code directory is read-only: our modules are compiled on every cold start; the pip-installed ones
carry their ``.pyc``). The figure is ``-X importtime``'s cumulative time of the handler module.

Asset size: ``cdk synth`` with the real local bundler (Linux arm64 wheels), zipped as CDK does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON_313 = Path(os.environ.get("STEPMAIL_PYTHON_313", "/root/.pyenv/versions/3.13.0/bin/python"))
VENV = REPO / ".bench" / "py313"
HANDLERS = ("stepmail.handlers.starter", "stepmail.handlers.sender")
IMPORT_GOAL_MS = 250
ZIP_GOAL_MB = 3.0
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def python_313() -> Path:
    """The venv's interpreter, created (and its requirements installed) on first use."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    requirements = REPO / "functions" / "requirements.txt"
    boto3_pin = next(
        line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("boto3==")
    )
    wanted = requirements.read_text() + boto3_pin
    if stamp.is_file() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([str(PYTHON_313), "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements), boto3_pin], check=True)
    stamp.write_text(wanted)
    return python


def import_times_ms(python: Path, module: str, code_root: Path) -> tuple[float, list[tuple[float, str]]]:
    """One fresh process: the module's cumulative import time and its heaviest direct imports."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(code_root),
    }
    environment |= {"AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [str(python), "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=code_root,
    )
    rows = [match.groups() for match in map(_IMPORTTIME.match, result.stderr.splitlines()) if match]
    total = next(int(cumulative) for _, cumulative, _, name in rows if name == module) / 1000
    # The handler's direct imports (importtime indents one level per nesting: 1 space, then 3).
    direct = [(int(cumulative) / 1000, name) for _, cumulative, indent, name in rows if len(indent) == 3]
    return total, sorted(direct, reverse=True)[:5]


def measure_imports(repeat: int) -> dict[str, dict[str, object]]:
    python = python_313()
    version = subprocess.run([str(python), "-V"], capture_output=True, text=True, check=True).stdout.strip()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as code_root:
        shutil.copytree(
            REPO / "functions" / "stepmail",
            Path(code_root) / "stepmail",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for module in HANDLERS:
            runs = [import_times_ms(python, module, Path(code_root)) for _ in range(repeat)]
            totals = [total for total, _ in runs]
            results[module] = {
                "median_ms": statistics.median(totals),
                "runs_ms": totals,
                "heaviest": runs[len(runs) // 2][1],
                "python": version,
            }
    return results


def measure_asset() -> dict[str, float]:
    """Synthesize with bundling and zip the one Lambda asset both functions share."""
    sys.path.insert(0, str(REPO))
    from tests.infrastructure.synth import cdk_context, synthesize

    with tempfile.TemporaryDirectory() as outdir:
        synth = synthesize(cdk_context(bundle=True), Path(outdir))
        manifest = json.loads((synth.outdir / f"{synth.stack.artifact_id}.assets.json").read_text())
        (directory,) = [
            synth.outdir / entry["source"]["path"]
            for entry in manifest["files"].values()
            if entry["source"].get("packaging") == "zip"
        ]
        unzipped = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
        archive = Path(outdir) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    out.write(path, path.relative_to(directory))
        biggest: dict[str, int] = {}  # zipped bytes per top-level package (powertools: per subpackage)
        with zipfile.ZipFile(archive) as written:
            for info in written.infolist():
                parts = Path(info.filename).parts
                top = (
                    "/".join(parts[:2])
                    if parts[0] == "aws_lambda_powertools" and len(parts) > 2
                    else parts[0]
                )
                biggest[top] = biggest.get(top, 0) + info.compress_size
        return {
            "zipped_mb": archive.stat().st_size / 1e6,
            "unzipped_mb": unzipped / 1e6,
            "largest_zipped": sorted(((size / 1e6, name) for name, size in biggest.items()), reverse=True)[
                :8
            ],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-asset", action="store_true", help="import times only (no synth)")
    args = parser.parse_args()
    imports = measure_imports(args.repeat)
    python = next(iter(imports.values()))["python"]
    print(
        f"cold start: handler import time on {python} (median of {args.repeat} fresh processes; goal <= {IMPORT_GOAL_MS} ms)"
    )
    for module, figures in imports.items():
        median = float(figures["median_ms"])  # type: ignore[arg-type]
        heaviest = ", ".join(f"{name} {ms:.0f}" for ms, name in figures["heaviest"])  # type: ignore[attr-defined]
        print(
            f"  {module:28} {median:6.0f} ms  {'ok' if median <= IMPORT_GOAL_MS else 'OVER GOAL'}   (heaviest: {heaviest})"
        )
    asset = None if args.skip_asset else measure_asset()
    if asset:
        print(
            f"lambda asset (both functions share it): {asset['zipped_mb']:.2f} MB zipped, "
            f"{asset['unzipped_mb']:.1f} MB unzipped  {'ok' if asset['zipped_mb'] <= ZIP_GOAL_MB else 'OVER GOAL'}"
            f"  (goal <= {ZIP_GOAL_MB} MB zipped)"
        )
        print("  largest, zipped: " + ", ".join(f"{name} {mb:.2f}" for mb, name in asset["largest_zipped"]))
    if args.json:
        args.json.write_text(json.dumps({"imports": imports, "asset": asset}, indent=2))


if __name__ == "__main__":
    main()
