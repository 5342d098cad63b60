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

from producer.cost import (  # noqa: E402
    PRICES_READ,
    Workload,
    compare,
    render_options,
    render_prices,
    render_table,
)

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
    "latency": (
        "latency.py",
        ["--emails", "30", "--retry-wait", "60"],
        ["--emails", "10", "--retry-wait", "20"],
    ),
    "log_volume": ("log_volume.py", [], []),
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
    same = {"SES emails", "SES attachment GB", "S3 uploads and storage"}
    names = [name for name in comparison.term_names() if name not in same]
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
    alike = sum(comparison.stepmail.dollars(name) for name in same)
    axes.set_title(
        f"Cost by term; SES and uploads (\\${alike:,.2f}, the same in both) left out;"
        f" overhead \\${comparison.overhead:,.2f}",
        fontsize=9,
    )
    axes.legend(title="total with SES")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_rate(rows: list[dict[str, Any]], path: Path) -> None:
    """Emails accepted by the twin's SES over time, each burst against its quota."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for row in rows:
        times = row["times"]
        line = axes.plot(
            times,
            range(1, len(times) + 1),
            label=f"{row['config']} config, quota {row['rate']:g}/s ({row['ratio']:.2f} x quota)",
        )
        axes.plot(
            [0, times[-1]],
            [row["rate"], row["rate"] * (1 + times[-1])],
            ":",
            color=line[0].get_color(),
            linewidth=0.8,
        )
    axes.set_xlabel("seconds from the first send")
    axes.set_ylabel("emails accepted by SES")
    axes.set_title("Send rate over time (dotted: the quota)")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_latency(figures: dict[str, Any], path: Path) -> None:
    """p50 and p95 of each stage, from SendMessage to SES accepting the email."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [stage for stage in figures["stages"] if stage != "total to SES"]
    positions = range(len(stages))
    figure, axes = plt.subplots(figsize=(7, 3.5))
    for offset, key in ((-0.2, "p50"), (0.2, "p95")):
        values = [figures["stages"][stage][key] for stage in stages]
        axes.barh([p + offset for p in positions], values, height=0.4, label=key)
    axes.set_yticks(list(positions), stages)
    axes.invert_yaxis()
    axes.set_xlabel("ms")
    total = figures["stages"]["total to SES"]
    axes.set_title(f"Latency by stage on the twin (SendMessage -> SES: p50 {total['p50']:.0f} ms)")
    axes.legend()
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


def _cold_start_table(figures: dict[str, Any]) -> str:
    imports = figures["imports"]
    lines = [
        "| import | median ms | / floor | runs ms | heaviest direct imports (ms) |",
        "|---|---:|---:|---|---|",
    ]
    floor_runs = ", ".join(f"{ms:.0f}" for ms in imports["floor_runs_ms"])
    lines.append(
        f"| floor: `import boto3` + one client | {imports['floor_ms']:.0f} | 1.00 | {floor_runs} | |"
    )
    for module, row in imports["handlers"].items():
        runs = ", ".join(f"{ms:.0f}" for ms in row["runs_ms"])
        heaviest = ", ".join(f"`{name}` {ms:.0f}" for ms, name in row["heaviest"])
        ratio = row["median_ms"] / imports["floor_ms"]
        lines.append(f"| `{module}` | {row['median_ms']:.0f} | **{ratio:.2f}** | {runs} | {heaviest} |")
    asset = figures.get("asset")
    if asset:
        largest = ", ".join(f"`{name}` {mb:.2f}" for mb, name in asset["largest_zipped"])
        lines.append("")
        lines.append(
            f"Lambda asset (one, shared by every function): **{asset['zipped_mb']:.2f} MB zipped**, "
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
    if "ceiling_in_process" in median:  # type: ignore[operator]
        lines += [
            row("Pass-only ceiling, runs started in process, runs/s", "ceiling_in_process", 1),
            row("pipeline / in-process ceiling", "ratio_in_process", 2),
            row("requests to moto per email", "requests_per_email", 1),
            row("of which over HTTP (the producer's)", "http_requests_per_email", 1),
        ]
    return "\n".join(lines)


def _rate_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| configuration | quota R /s | burst | max_concurrency | sustained /s | sustained / R | throttled"
        " | lost | doubled |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        setting = {
            "default": "default (nothing set)",
            "default raised": f"default; SES raises the quota to {row.get('raised_to') or 0:g}/s mid-burst",
        }.get(row.get("config", ""), f"ses_max_send_rate={row['rate']:g}")
        lines.append(
            f"| {setting} | {row['rate']:g} | {row['burst']} | {row['max_concurrency']} | {row['sustained']:.2f}"
            f" | **{row['ratio']:.2f}** | {row.get('throttled_share', 0):.1%} | {row['lost']} | {row['doubled']} |"
        )
    return "\n".join(lines)


def _latency_table(figures: dict[str, Any]) -> str:
    lines = ["| stage | p50 ms | p95 ms |", "|---|---:|---:|"]
    for stage, values in figures["stages"].items():
        name = f"**{stage}**" if stage == "total to SES" else stage
        lines.append(f"| {name} | {values['p50']:.0f} | {values['p95']:.0f} |")
    return "\n".join(lines)


def _log_volume_table(figures: dict[str, Any]) -> str:
    from producer.cost import EXECUTION_LOGS

    labels = {
        "run": "a run, one attachment (ALL)",
        "attachment": "each attachment more (ALL)",
        "retry_all": "each retried send (ALL)",
        "retry_error": "each retried send (ERROR)",
    }
    lines = ["| bytes logged | without data | with data | model |", "|---|---:|---:|---:|"]
    for name, label in labels.items():
        measured, model = figures["execution_logs"][name], getattr(EXECUTION_LOGS, name)
        lines.append(f"| {label} | {measured[0]:,} | {measured[1]:,} | {model[0]:,} / {model[1]:,} |")
    lines.append("| a sent email at ERROR, FATAL or OFF | 0 | 0 | 0 |")
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


def _retry_delay(retry: dict[str, Any]) -> tuple[str, bool]:
    if retry["delay_seconds"] is None:
        return (
            f"not seen within {retry['waited_seconds']:.0f} s (the visibility timeout:"
            f" {retry['visibility_timeout_seconds'] / 60:g} min)",
            False,
        )
    return f"{retry['delay_seconds']:.1f} s (first retry)", retry["delay_seconds"] <= 60


def goal_rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The issue's table: (figure, measured, goal, met), from one run of every benchmark."""
    rates = results["rate_control"]
    default = [row for row in rates if row.get("config") == "default"]
    raised = next((row for row in rates if row.get("config") == "default raised"), None)
    derived = [row for row in rates if row.get("config", "derived") == "derived"]
    imports = results["cold_start"]["imports"]
    asset = results["cold_start"].get("asset") or {}
    throughput = results["twin_throughput"]["median"]
    delay, delay_met = _retry_delay(results["latency"]["retry_later"])
    overhead = compare(Workload()).overhead
    slowest = imports["slowest"].rsplit(".", 1)[-1]
    return [
        (
            "send rate with the default configuration, SES quota "
            + ", ".join(f"{row['rate']:g}" for row in default)
            + f" /s, bursts of {default[0]['burst'] / default[0]['rate']:g} s of quota",
            " / ".join(f"{row['ratio']:.2f}" for row in default)
            + f" x quota ({sum(row['lost'] for row in default)} lost,"
            f" {sum(row['doubled'] for row in default)} doubled)",
            ">= 0.9 x the quota, no setting changed",
            all(row["ratio"] >= 0.9 and row["lost"] + row["doubled"] == 0 for row in default),
        ),
        (
            "a quota raised while a burst runs (2/s, then 6/s), default configuration",
            f"{raised['after_raise']:.2f}/s after the raise = {raised['after_raise'] / raised['raised_to']:.2f} x"
            " the new quota"
            if raised and raised["after_raise"] is not None
            else "not measured",
            ">= 0.9 x the new quota, no redeploy",
            bool(raised and raised["after_raise"] and raised["after_raise"] >= 0.9 * raised["raised_to"]),
        ),
        (
            "throttled sends, every burst above",
            f"at most {max(row.get('throttled_share', 0) for row in rates):.1%} of the emails",
            "< 5 %",
            all(row.get("throttled_share", 0) < 0.05 for row in rates),
        ),
        (
            "send rate with `ses_max_send_rate` set (R = "
            + " and ".join(f"{row['rate']:g}" for row in derived)
            + ")",
            " and ".join(f"{row['ratio']:.3f}" for row in derived) + " x R",
            ">= 0.95 x R",
            all(row["ratio"] >= 0.95 and row["lost"] + row["doubled"] == 0 for row in derived),
        ),
        (
            "delay before a message sent back to the queue is tried again",
            delay,
            "seconds, growing with each retry",
            delay_met,
        ),
        (
            "twin pipeline / Pass-only ceiling",
            f"{throughput['ratio']:.2f} ({throughput['pipeline']:.1f} emails/s, {throughput['ceiling']:.0f} runs/s)",
            ">= 0.3",
            throughput["ratio"] >= 0.3,
        ),
        (
            "slowest handler import / floor (`import boto3` + one client, same venv, same run)",
            f"{imports['ratio']:.2f} x ({slowest} {imports['handlers'][imports['slowest']]['median_ms']:.0f} ms,"
            f" floor {imports['floor_ms']:.0f} ms)",
            "<= 1.5 x",
            imports["ratio"] <= 1.5,
        ),
        (
            "Lambda asset, zipped",
            f"{asset.get('zipped_mb', float('nan')):.2f} MB",
            "<= 3 MB",
            asset.get("zipped_mb", 99) <= 3,
        ),
        (
            "orchestration overhead per 1M emails, every default term counted (logs, tracking, pacing)",
            f"${overhead:.2f}",
            "<= $5",
            overhead <= 5,
        ),
    ]


def memory_row(results: dict[str, Any]) -> tuple[str, str, str, bool]:
    """The earlier goal still watched: the sender's peak memory against its floor."""
    memory = max(row["ratio"] for row in results["sender_memory"])
    largest = results["sender_memory"][-1]
    return (
        "sender peak RSS / floor (earlier goal)",
        f"{memory:.2f} (largest email: {largest['peak_mb']:.0f} MB peak)",
        "<= 1.3",
        memory <= 1.3,
    )


def _summary(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | goal | |", "|---|---|---|---|"]
    for figure, measured, goal, met in [*goal_rows(results), memory_row(results)]:
        lines.append(f"| {figure} | {measured} | {goal} | {'met' if met else '**not met**'} |")
    return "\n".join(lines)


def print_goals(results: dict[str, Any]) -> None:
    """The issue's table on the terminal, side by side, from this one run."""
    rows = [*goal_rows(results), memory_row(results)]
    width = max(len(figure) for figure, *_ in rows)
    print("\n== goals (one run of every benchmark)")
    for figure, measured, goal, met in rows:
        print(f"  {figure:{width}}  {measured:58}  goal {goal:40}  {'met' if met else 'NOT MET'}")


def write_report(results: dict[str, Any], template: Path, out: Path) -> None:
    workload = Workload()
    plot_memory(results["sender_memory"], DOCS / "sender_memory.png")  # type: ignore[arg-type]
    plot_cost(workload, DOCS / "cost_by_term.png")
    plot_rate(results["rate_control"], DOCS / "rate_over_time.png")
    plot_latency(results["latency"], DOCS / "latency.png")
    values = {
        "summary": _summary(results),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "memory_table": _memory_table(results["sender_memory"]),  # type: ignore[arg-type]
        "cold_start_table": _cold_start_table(results["cold_start"]),  # type: ignore[arg-type]
        "throughput_table": _throughput_table(results["twin_throughput"]),  # type: ignore[arg-type]
        "rate_table": _rate_table(results["rate_control"]),  # type: ignore[arg-type]
        "cost_table": render_table(compare(workload)),
        "options_table": render_options(workload),
        "prices_table": render_prices(),
        "prices_read": PRICES_READ,
        "log_volume_table": _log_volume_table(results["log_volume"]),
        "latency_table": _latency_table(results["latency"]),
        "batching_window": results["latency"]["batching_window_seconds"],
        "retry_later": _retry_delay(results["latency"]["retry_later"])[0],
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
    print(render_options(Workload()))
    print_goals(results)
    write_report(results, REPO / "bench" / "performance.md.in", DOCS / "performance.md")


if __name__ == "__main__":
    main()
