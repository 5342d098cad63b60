# ruff: noqa: S603, E501 - a benchmark runs fixed commands of this repository and prints wide tables
"""Sender memory and time vs attachment size (prints numbers; not a test).

    .venv/bin/python bench/sender_memory.py [--repeat 3] [--json out.json]

Each measurement is a fresh Python process that imports the sender handler, reads one attachment
from S3 and sends the rendered email with SES v2, both served by a tiny HTTP endpoint in another
process (so the bytes the endpoint holds are not counted). Peak RSS is ``ru_maxrss``; the floor is
what the sender cannot avoid holding at once: the interpreter with the handler imported (its RSS
before the send), the encoded MIME message and the base64 JSON request body boto3 sends.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "functions")]

MB = 1_000_000
SIZES = {"1 MB": 1 * MB, "10 MB": 10 * MB, "25 MB": 25 * MB}
GOAL = 1.3


# ------------------------------------------------------------------------------ the endpoint process
class _Endpoint(BaseHTTPRequestHandler):
    """S3 GetObject of ``/<bucket>/<key>?size=N`` bytes and SES v2 SendEmail (counts the raw size)."""

    protocol_version = "HTTP/1.1"
    blobs: dict[int, bytes] = {}  # one per size, made once

    def do_GET(self) -> None:
        size = int(self.path.rsplit("/", 1)[-1].split("-")[0])
        blob = self.blobs.setdefault(size, os.urandom(size))
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("ETag", '"bench"')
        self.send_header("Content-Type", "application/pdf")
        self.end_headers()
        self.wfile.write(blob)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        remaining = length
        while remaining:  # drain without holding the body
            remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
        answer = json.dumps({"MessageId": f"bench-{length}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the parent closes our stdin


# ------------------------------------------------------------------------------ the sender process
def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def measure(port: int, size: int) -> None:
    """In a fresh process: one send of one ``size``-byte attachment; prints a JSON line."""
    import boto3

    from stepmail.adapters.ses import SES_CLIENT_CONFIG
    from stepmail.handlers import sender as sender_module
    from stepmail.settings import SenderSettings

    url = f"http://127.0.0.1:{port}"
    options = {"endpoint_url": url, "region_name": "us-east-1"}
    options |= {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    s3 = boto3.client("s3", config=boto3.session.Config(s3={"addressing_style": "path"}), **options)
    ses = boto3.client("sesv2", config=SES_CLIENT_CONFIG, **options)
    sender = sender_module.build_sender(
        SenderSettings(ATTACHMENTS_BUCKET="bucket"), s3_client=s3, ses_client=ses
    )
    name = f"{size}-attachment.pdf"
    event = {
        "message": {
            "mailKey": "bench",
            "to": ["jane@customer.example"],
            "from": "no-reply@example.com",
            "subject": "Benchmark",
            "body": "Attached.",
            "attachedFileKeys": [name],
        },
        # As Resolve Attachments leaves them: one {size, etag} per name of attachedFileKeys
        "attachments": [{"size": size, "etag": '"bench"'}],
        "lockKey": "bench#0",
    }
    # Warm the connection pools and the handler's lazy paths with a tiny email, then take the baseline.
    small = json.loads(json.dumps(event).replace(str(size), "1000"))
    sender_module.handler(small, None, sender)
    baseline = _rss_bytes()
    started = time.perf_counter()
    result = sender_module.handler(event, None, sender)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    raw_size = int(result["messageId"].split("-")[1])  # the endpoint answers with the body's length
    print(json.dumps({"baseline": baseline, "peak": peak, "seconds": seconds, "body": raw_size}))


def _mime_size(size: int) -> int:
    from stepmail.core.mime import base64_encoded_size

    return base64_encoded_size(size) + 600  # headers, text part, boundaries


def largest_legal_size() -> int:
    """The largest single attachment whose email is within SES's 40 MB once encoded."""
    from stepmail.core.message import MailMessage
    from stepmail.core.mime import MAX_EMAIL_BYTES, estimate_email_size

    message = MailMessage.model_validate(
        {
            "mailKey": "bench",
            "to": ["jane@customer.example"],
            "from": "no-reply@example.com",
            "subject": "Benchmark",
            "body": "Attached.",
            "attachedFileKeys": ["12345678-attachment.pdf"],
        }
    )
    low, high = 0, MAX_EMAIL_BYTES
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_email_size(message, [middle]) <= MAX_EMAIL_BYTES:
            low = middle
        else:
            high = middle - 1
    return low


# ------------------------------------------------------------------------------ the report
def run(repeat: int) -> list[dict[str, float]]:
    sizes = {**SIZES, "max legal": largest_legal_size()}
    endpoint = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert endpoint.stdout is not None
    port = int(endpoint.stdout.readline())
    rows = []
    try:
        for label, size in sizes.items():
            runs = []
            for _ in range(repeat):
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", str(port), str(size)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            baseline = statistics.median(r["baseline"] for r in runs)
            peak = statistics.median(r["peak"] for r in runs)
            mime = _mime_size(size)
            body = statistics.median(r["body"] for r in runs)  # the JSON request body (base64 of the MIME)
            floor = baseline + mime + body
            rows.append(
                {
                    "label": label,
                    "attachment_bytes": size,
                    "mime_bytes": mime,
                    "request_bytes": body,
                    "baseline_mb": baseline / MB,
                    "peak_mb": peak / MB,
                    "floor_mb": floor / MB,
                    "ratio": peak / floor,
                    "seconds": statistics.median(r["seconds"] for r in runs),
                }
            )
    finally:
        endpoint.stdin.close()  # type: ignore[union-attr]
        endpoint.wait(timeout=10)
    return rows


def print_rows(rows: list[dict[str, float]], repeat: int) -> None:
    print(f"sender memory and time (median of {repeat} fresh processes each; goal peak <= {GOAL} x floor)")
    print(
        f"{'attachment':>12} {'MIME MB':>8} {'baseline':>9} {'floor MB':>9} {'peak MB':>8} {'peak/floor':>10} {'time s':>7}"
    )
    for row in rows:
        print(
            f"{row['label']:>12} {row['mime_bytes'] / MB:8.1f} {row['baseline_mb']:9.1f} {row['floor_mb']:9.1f}"
            f" {row['peak_mb']:8.1f} {row['ratio']:10.2f} {row['seconds']:7.2f}"
            f"  {'ok' if row['ratio'] <= GOAL else 'OVER GOAL'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, type=int, metavar=("PORT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    if args.measure:
        return measure(*args.measure)
    rows = run(args.repeat)
    print_rows(rows, args.repeat)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return None


if __name__ == "__main__":
    main()
