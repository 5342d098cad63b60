# ruff: noqa: S603, E501 - a benchmark runs fixed commands of this repository and prints wide tables
"""Cold start: each handler module's import time from the shipped asset, next to the floor; the zip.

    .venv/bin/python bench/cold_start.py [--repeat 7] [--json out.json] [--asset DIR]

The asset is synthesized with the real local bundler (Linux arm64 wheels, bytecode for 3.13) and
zipped as the CDK CLI zips it (deflate level 6, one fixed date), unless ``--asset`` names an already
unpacked one (to measure another build, e.g. the one before a change).

Import time: the asset unpacked read-only (``tests/infrastructure/lambda_runtime.py``: pydantic-core's
extension swapped for this machine's build of the same version) on a Python 3.13 venv holding only the
boto3 the project pins, as the runtime does (``.bench/py313``).  Each figure is a fresh process
(``-I -B``: isolated, and no bytecode written, so nothing is cached between runs, as on Lambda) timing
``import <handler module>`` with ``time.perf_counter``.  The floor is the same for what every handler
needs anyway: ``import boto3`` and one client (``boto3.client("sqs")``).  Floor and handlers take turns
in every round, so the ratio compares figures taken side by side on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.infrastructure.lambda_runtime import runtime_python, unpacked_asset  # noqa: E402

HANDLERS = ("stepmail.handlers.starter", "stepmail.handlers.sender", "stepmail.handlers.tracker")
FLOOR = "floor"
RATIO_GOAL = 1.5
ZIP_GOAL_MB = 3.0
#: One fresh process: the time to import its argument (or the floor: boto3 and one client), in ms.
_TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
if sys.argv[2] == "floor":
    import boto3
    boto3.client("sqs", region_name="us-east-1")
else:
    __import__(sys.argv[2])
print(json.dumps((time.perf_counter() - started) * 1000))
"""
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
_ENVIRONMENT = {"AWS_DEFAULT_REGION": "us-east-1"}


def time_once(python: Path, task: Path, target: str) -> float:
    result = subprocess.run(
        [str(python), "-I", "-B", "-c", _TIMER, str(task), target],
        capture_output=True,
        text=True,
        check=True,
        env=_ENVIRONMENT,
        cwd=task,
    )
    return float(result.stdout)


def heaviest_imports(python: Path, task: Path, module: str) -> list[tuple[float, str]]:
    """One more run under ``-X importtime``: the module's five heaviest direct imports (ms)."""
    code = f"import sys; sys.path.insert(0, {str(task)!r}); import {module}"
    result = subprocess.run(
        [str(python), "-I", "-B", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=_ENVIRONMENT,
        cwd=task,
    )
    rows = [match.groups() for match in map(_IMPORTTIME.match, result.stderr.splitlines()) if match]
    # The handler's direct imports (importtime indents one level per nesting: 1 space, then 3).
    direct = [(int(cumulative) / 1000, name) for _, cumulative, indent, name in rows if len(indent) == 3]
    return sorted(direct, reverse=True)[:5]


def measure_imports(asset: Path, repeat: int) -> dict[str, Any]:
    python = runtime_python()
    version = subprocess.run([str(python), "-V"], capture_output=True, text=True, check=True).stdout.strip()
    runs: dict[str, list[float]] = {target: [] for target in (FLOOR, *HANDLERS)}
    with tempfile.TemporaryDirectory() as parent, unpacked_asset(asset, Path(parent)) as task:
        for _ in range(repeat):  # rounds: floor and every handler, side by side
            for target in runs:
                runs[target].append(time_once(python, task, target))
        heaviest = {module: heaviest_imports(python, task, module) for module in HANDLERS}
    medians = {target: statistics.median(times) for target, times in runs.items()}
    slowest = max(HANDLERS, key=lambda module: medians[module])
    return {
        "python": version,
        "floor_ms": medians[FLOOR],
        "floor_runs_ms": runs[FLOOR],
        "handlers": {
            module: {"median_ms": medians[module], "runs_ms": runs[module], "heaviest": heaviest[module]}
            for module in HANDLERS
        },
        "slowest": slowest,
        "ratio": medians[slowest] / medians[FLOOR],
    }


def build_asset(outdir: Path) -> Path:
    """Synthesize with bundling: the one Lambda asset directory the functions share."""
    from tests.infrastructure.synth import cdk_context, synthesize

    synth = synthesize(cdk_context(bundle=True), outdir)
    manifest = json.loads((synth.outdir / f"{synth.stack.artifact_id}.assets.json").read_text())
    (directory,) = [
        synth.outdir / entry["source"]["path"]
        for entry in manifest["files"].values()
        if entry["source"].get("packaging") == "zip"
    ]
    return directory


def measure_zip(directory: Path, archive: Path) -> dict[str, Any]:
    """Zip as the CDK CLI does (yazl, deflate level 6 = zlib's default, every entry at one date)."""
    unzipped = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                entry = zipfile.ZipInfo(
                    path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
                )
                entry.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(entry, path.read_bytes())
    parts: dict[str, int] = {}  # zipped bytes per top-level package (powertools: per subpackage)
    with zipfile.ZipFile(archive) as written:
        for info in written.infolist():
            names = Path(info.filename).parts
            top = "/".join(names[:2]) if names[0] == "aws_lambda_powertools" and len(names) > 2 else names[0]
            parts[top] = parts.get(top, 0) + info.compress_size
    return {
        "zipped_mb": archive.stat().st_size / 1e6,
        "unzipped_mb": unzipped / 1e6,
        "largest_zipped": sorted(((size / 1e6, name) for name, size in parts.items()), reverse=True)[:8],
    }


def report(imports: dict[str, Any], asset: dict[str, Any] | None, repeat: int) -> None:
    print(
        f"cold start: import time from the unpacked asset on {imports['python']} (median of {repeat}"
        f" rounds of fresh processes; goal: slowest handler <= {RATIO_GOAL} x floor)"
    )
    print(f"  {'floor: import boto3 + one client':40} {imports['floor_ms']:6.0f} ms")
    for module, figures in imports["handlers"].items():
        heaviest = ", ".join(f"{name} {ms:.0f}" for ms, name in figures["heaviest"])
        ratio = figures["median_ms"] / imports["floor_ms"]
        print(f"  {module:40} {figures['median_ms']:6.0f} ms  {ratio:4.2f} x floor   (heaviest: {heaviest})")
    verdict = "met" if imports["ratio"] <= RATIO_GOAL else "NOT MET"
    print(f"  slowest / floor: {imports['ratio']:.2f}  {verdict}")
    if asset:
        verdict = "met" if asset["zipped_mb"] <= ZIP_GOAL_MB else "NOT MET"
        print(
            f"lambda asset (one, all functions): {asset['zipped_mb']:.2f} MB zipped, {asset['unzipped_mb']:.1f} MB"
            f" unzipped; goal <= {ZIP_GOAL_MB} MB zipped: {verdict}"
        )
        print(
            "  largest, zipped MB: " + ", ".join(f"{name} {mb:.2f}" for mb, name in asset["largest_zipped"])
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--asset", type=Path, help="an unpacked asset to measure instead of a fresh synth")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as outdir:
        directory = args.asset or build_asset(Path(outdir) / "cdk.out")
        asset = measure_zip(directory, Path(outdir) / "asset.zip")
        imports = measure_imports(directory, args.repeat)
    report(imports, asset, args.repeat)
    if args.json:
        args.json.write_text(json.dumps({"imports": imports, "asset": asset}, indent=2))


if __name__ == "__main__":
    main()
