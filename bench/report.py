# ruff: noqa: S603, E501 - a benchmark runs fixed commands of this repository and prints wide tables
"""Run every benchmark, print its figures, and regenerate docs/performance.md and its plots.

    .venv/bin/python bench/report.py [--quick]      # `make bench`

Each benchmark is a script in this directory that prints its own figures; this runs them one after
the other (they measure time and memory: never in parallel), keeps their JSON in ``.bench/results``
and writes the report from it. ``--quick`` makes fewer repetitions (for a first look, not the docs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from producer.cost import Workload, compare, render_table  # noqa: E402

RESULTS = REPO / ".bench" / "results"
DOCS = REPO / "docs"

#: name -> (script, arguments for the docs, arguments with --quick)
BENCHMARKS = {
    "sender_memory": ("sender_memory.py", ["--repeat", "3"], ["--repeat", "1"]),
    "cold_start": ("cold_start.py", ["--repeat", "7"], ["--repeat", "3"]),
    "twin_throughput": (
        "twin_throughput.py",
        ["--repeat", "3", "--emails", "200"],
        ["--repeat", "1", "--emails", "100"],
    ),
    "rate_control": ("rate_control.py", ["--repeat", "2"], ["--repeat", "1"]),
}


def run_benchmarks(quick: bool) -> dict[str, object]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {}
    for name, (script, full, short) in BENCHMARKS.items():
        out = RESULTS / f"{name}.json"
        print(f"\n== {name}", flush=True)
        command = [
            sys.executable,
            str(REPO / "bench" / script),
            *(short if quick else full),
            "--json",
            str(out),
        ]
        subprocess.run(command, check=True, cwd=REPO)
        results[name] = json.loads(out.read_text())
    return results


# ------------------------------------------------------------------------------------------- plots
def plot_memory(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mime = [row["mime_bytes"] / 1e6 for row in rows]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(mime, [row["peak_mb"] for row in rows], "o-", label="peak RSS of the sender")
    axes.plot(mime, [row["floor_mb"] for row in rows], "s--", label="floor: baseline + MIME + request body")
    axes.plot(mime, [1.3 * row["floor_mb"] for row in rows], ":", color="grey", label="goal: 1.3 x floor")
    axes.axhline(256, color="red", linewidth=0.8, label="256 MB function")
    axes.set_xlabel("encoded email (MB)")
    axes.set_ylabel("MB")
    axes.set_title("Sender memory vs email size")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_cost(workload: Workload, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comparison = compare(workload)
    names = [name for name in comparison.term_names() if not name.startswith("SES")]
    ours = [comparison.stepmail.dollars(name) for name in names]
    theirs = [comparison.original.dollars(name) for name in names]
    figure, axes = plt.subplots(figsize=(8, 4))
    positions = range(len(names))
    axes.barh(
        [p + 0.2 for p in positions],
        ours,
        height=0.4,
        label=f"stepmail (\\${comparison.stepmail.total:,.2f})",
    )
    axes.barh(
        [p - 0.2 for p in positions],
        theirs,
        height=0.4,
        label=f"original (\\${comparison.original.total:,.2f})",
    )
    axes.set_yticks(list(positions), names)
    axes.invert_yaxis()
    axes.set_xlabel("dollars per 1M emails")
    ses = comparison.stepmail.dollars("SES emails") + comparison.stepmail.dollars("SES attachment GB")
    axes.set_title(
        f"Cost by term; SES (\\${ses:,.2f}, the same in both) left out; overhead \\${comparison.overhead:,.2f}"
    )
    axes.legend(title="total with SES")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ------------------------------------------------------------------------------------------- text
def _memory_table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| attachment | encoded email MB | request body MB | baseline MB | floor MB | peak MB | peak / floor | time s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['mime_bytes'] / 1e6:.1f} | {row['request_bytes'] / 1e6:.1f} | {row['baseline_mb']:.1f}"
            f" | {row['floor_mb']:.1f} | {row['peak_mb']:.1f} | **{row['ratio']:.2f}** | {row['seconds']:.2f} |"
        )
    return "\n".join(lines)


def _cold_start_table(figures: dict[str, object]) -> str:
    imports = figures["imports"]  # type: ignore[index]
    lines = [
        "| handler module | median import ms | runs ms | heaviest direct imports (ms) |",
        "|---|---:|---|---|",
    ]
    for module, row in imports.items():  # type: ignore[union-attr]
        runs = ", ".join(f"{ms:.0f}" for ms in row["runs_ms"])
        heaviest = ", ".join(f"`{name}` {ms:.0f}" for ms, name in row["heaviest"])
        lines.append(f"| `{module}` | **{row['median_ms']:.0f}** | {runs} | {heaviest} |")
    asset = figures.get("asset")  # type: ignore[union-attr]
    if asset:
        largest = ", ".join(f"`{name}` {mb:.2f}" for mb, name in asset["largest_zipped"])
        lines.append("")
        lines.append(
            f"Lambda asset (one, shared by both functions): **{asset['zipped_mb']:.2f} MB zipped**, "
            f"{asset['unzipped_mb']:.1f} MB unzipped. Largest parts, zipped MB: {largest}."
        )
    return "\n".join(lines)


def _throughput_table(figures: dict[str, object]) -> str:
    median, runs = figures["median"], figures["runs"]  # type: ignore[index]

    def row(title: str, key: str, digits: int) -> str:
        values = ", ".join(f"{run[key]:.{digits}f}" for run in runs)
        return f"| {title} | {median[key]:.{digits}f} | {values} |"

    lines = ["| | median | runs |", "|---|---:|---|"]
    lines += [row("pipeline, emails/s", "pipeline", 1), row("Pass-only ceiling, runs/s", "ceiling", 1)]
    lines.append(row("**pipeline / ceiling**", "ratio", 2))
    return "\n".join(lines)


def _rate_table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| quota R /s | burst | max_concurrency | sustained /s | sustained / R | lost | doubled |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['rate']:g} | {row['burst']} | {row['max_concurrency']} | {row['sustained']:.2f} | **{row['ratio']:.2f}**"
            f" | {row['lost']} | {row['doubled']} |"
        )
    return "\n".join(lines)


def _cost_sweep() -> str:
    lines = [
        "| batch size | attachments | MB each | stepmail $ | original $ | overhead $ |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for batch_size, attachments, megabytes in [
        (10, 0, 0),
        (10, 1, 0.1),
        (10, 3, 1),
        (1, 1, 0.1),
        (10, 1, 10),
        (1, 10, 2),
    ]:
        comparison = compare(
            Workload(batch_size=batch_size, attachments=attachments, attachment_mb=megabytes)
        )
        lines.append(
            f"| {batch_size} | {attachments} | {megabytes:g} | {comparison.stepmail.total:,.2f} | {comparison.original.total:,.2f}"
            f" | **{comparison.overhead:.2f}** |"
        )
    return "\n".join(lines)


def _summary(results: dict[str, Any]) -> str:
    memory = max(row["ratio"] for row in results["sender_memory"])
    largest = results["sender_memory"][-1]
    imports = results["cold_start"]["imports"]
    slowest = max(row["median_ms"] for row in imports.values())
    asset = results["cold_start"].get("asset") or {}
    throughput = results["twin_throughput"]["median"]["ratio"]
    rate = min(row["ratio"] for row in results["rate_control"])
    lost = sum(row["lost"] + row["doubled"] for row in results["rate_control"])
    overhead = compare(Workload()).overhead

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        (
            "sender peak RSS / floor",
            "<= 1.3",
            f"{memory:.2f} (largest email: {largest['peak_mb']:.0f} MB peak)",
            met(memory <= 1.3),
        ),
        ("handler import time", "<= 250 ms", f"{slowest:.0f} ms (slowest handler)", met(slowest <= 250)),
        (
            "Lambda asset, zipped",
            "<= 3 MB",
            f"{asset.get('zipped_mb', float('nan')):.2f} MB",
            met(asset.get("zipped_mb", 99) <= 3),
        ),
        ("twin pipeline / Pass-only ceiling", ">= 0.3", f"{throughput:.2f}", met(throughput >= 0.3)),
        (
            "sustained send rate / SES quota",
            ">= 0.9, 0 lost, 0 doubled",
            f"{rate:.2f}, {lost} lost or doubled",
            met(rate >= 0.9 and lost == 0),
        ),
        ("orchestration overhead per 1M emails", "<= $5", f"${overhead:.2f}", met(overhead <= 5)),
    ]
    lines = ["| goal | target | measured | |", "|---|---|---|---|"]
    lines += [f"| {goal} | {target} | {measured} | {verdict} |" for goal, target, measured, verdict in rows]
    return "\n".join(lines)


def write_report(results: dict[str, Any], template: Path, out: Path) -> None:
    workload = Workload()
    plot_memory(results["sender_memory"], DOCS / "sender_memory.png")  # type: ignore[arg-type]
    plot_cost(workload, DOCS / "cost_by_term.png")
    values = {
        "summary": _summary(results),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "memory_table": _memory_table(results["sender_memory"]),  # type: ignore[arg-type]
        "cold_start_table": _cold_start_table(results["cold_start"]),  # type: ignore[arg-type]
        "throughput_table": _throughput_table(results["twin_throughput"]),  # type: ignore[arg-type]
        "rate_table": _rate_table(results["rate_control"]),  # type: ignore[arg-type]
        "cost_table": render_table(compare(workload)),
        "cost_sweep": _cost_sweep(),
        "workload": ", ".join(f"{name}={value}" for name, value in vars(workload).items()),
    }
    out.write_text(template.read_text().format(**values))
    print(f"\nwrote {out.relative_to(REPO)} and its plots")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--report-only", action="store_true", help="rewrite the docs from .bench/results")
    args = parser.parse_args()
    if args.report_only:
        results = {name: json.loads((RESULTS / f"{name}.json").read_text()) for name in BENCHMARKS}
    else:
        results = run_benchmarks(args.quick)
    print("\n== cost model (stepmail cost)")
    print(render_table(compare(Workload())))
    print(f"orchestration overhead: ${compare(Workload()).overhead:,.2f} per 1M emails (goal: <= $5.00)")
    write_report(results, REPO / "bench" / "performance.md.in", DOCS / "performance.md")


if __name__ == "__main__":
    main()
