"""What 1M emails cost on AWS: this design next to the original single-Lambda design, term by term.

Pure arithmetic on the published us-east-1 prices (``/work/shared/DESIGN.md``, November 2026) and a
few assumptions about the workload (``Workload``). ``stepmail cost`` prints it; ``docs/performance.md``
plots it.

The original design: SQS → one Lambda per batch that writes a DynamoDB de-duplication record, reads
the attachments from S3, renders the email and sends it with SES, one email after the other. This design
adds, per email, an Express run (request + duration), a second DynamoDB write (Mark Sent), one S3
HEAD per attachment and a sender Lambda request, and, per batch, a starter Lambda that waits for its
runs. The difference of the two totals is the *orchestration overhead*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

EMAILS = 1_000_000
"""Every figure is dollars per this many emails."""


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices (dollars)."""

    express_per_request: float = 1.00 / 1e6
    express_per_gb_second: float = 0.00001667
    lambda_per_request: float = 0.20 / 1e6
    lambda_per_gb_second: float = 0.0000133334  # arm64
    sqs_per_request: float = 0.40 / 1e6  # per 64 KB chunk
    dynamodb_per_write: float = 0.625 / 1e6  # on-demand write request unit (1 KB)
    s3_per_get: float = 0.0004 / 1000  # GET and HEAD
    ses_per_email: float = 0.10 / 1000
    ses_per_attachment_gb: float = 0.12


@dataclass(frozen=True)
class Workload:
    """The assumptions; the defaults are the deployed configuration's and a small-attachment email.

    Durations are per email unless named per batch; the defaults are estimates for an email of a
    few hundred KB (SES v2 SendEmail ~100-200 ms, DynamoDB and S3 calls ~10-20 ms each).
    """

    batch_size: int = 10
    attachments: int = 1
    attachment_mb: float = 0.1
    message_kb: float = 2.0  # the SQS body
    starter_memory_mb: int = 256
    sender_memory_mb: int = 512
    single_memory_mb: int = 512  # the original design's one Lambda (it must fit the same email)
    render_send_seconds: float = 0.25  # read attachments, render, SES send: the same in both designs
    workflow_extra_seconds: float = 0.08  # the run's own tasks around the sender: lock, heads, mark
    batch_overhead_seconds: float = 0.05  # a Lambda's per-batch work: parse, respond
    express_memory_mb: int = 64  # Express bills the run's memory in 64 MB units; small state = 64

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) < 0:
                raise ValueError(f"{field.name} must not be negative")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")

    @property
    def workflow_seconds(self) -> float:
        """One Express run: its own tasks plus the sender it waits for."""
        return self.workflow_extra_seconds + self.render_send_seconds

    @property
    def attachment_gb(self) -> float:
        """Attachment data per email, in GB (1 GB = 1024 MB)."""
        return self.attachments * self.attachment_mb / 1024


@dataclass(frozen=True)
class Term:
    """One line of the bill: dollars per ``EMAILS`` emails."""

    name: str
    dollars: float


@dataclass(frozen=True)
class Bill:
    """One design's cost per ``EMAILS`` emails, term by term."""

    design: str
    terms: tuple[Term, ...]

    @property
    def total(self) -> float:
        return sum(term.dollars for term in self.terms)

    def dollars(self, name: str) -> float:
        """The named term, 0 when this design has no such term."""
        return sum(term.dollars for term in self.terms if term.name == name)


@dataclass(frozen=True)
class Comparison:
    """Both designs and what the orchestration adds."""

    stepmail: Bill
    original: Bill

    @property
    def overhead(self) -> float:
        """Dollars per ``EMAILS`` emails this design costs beyond the original."""
        return self.stepmail.total - self.original.total

    def term_names(self) -> list[str]:
        """Every term of either bill, in bill order."""
        names = [term.name for term in self.stepmail.terms]
        return names + [term.name for term in self.original.terms if term.name not in names]


def lambda_gb_seconds(memory_mb: int, seconds: float) -> float:
    """Lambda bills memory x duration per 1 ms."""
    return memory_mb / 1024 * math.ceil(seconds * 1000) / 1000


def express_gb_seconds(memory_mb: int, seconds: float) -> float:
    """Express bills duration in 100 ms units and memory in 64 MB units."""
    billed_seconds = math.ceil(round(seconds * 10, 9)) / 10
    billed_mb = max(1, math.ceil(memory_mb / 64)) * 64
    return billed_mb / 1024 * billed_seconds


def sqs_term(workload: Workload, prices: Prices) -> Term:
    """Send per 64 KB chunk; receive and delete once per batch (the event source batches both)."""
    per_email = math.ceil(workload.message_kb / 64) + 2 / workload.batch_size
    return Term("SQS", per_email * prices.sqs_per_request * EMAILS)


def ses_terms(workload: Workload, prices: Prices) -> list[Term]:
    """The same in both designs: the emails and their attachment data."""
    return [
        Term("SES emails", prices.ses_per_email * EMAILS),
        Term("SES attachment GB", workload.attachment_gb * prices.ses_per_attachment_gb * EMAILS),
    ]


def stepmail_bill(workload: Workload, prices: Prices | None = None) -> Bill:
    """This design: starter per batch → one Express run and one sender invoke per email."""
    prices = prices or Prices()
    # The starter starts a batch's runs at once and waits for the longest: one run's time per batch.
    starter_seconds = workload.batch_overhead_seconds + workload.workflow_seconds
    starter_gb_s = lambda_gb_seconds(workload.starter_memory_mb, starter_seconds) / workload.batch_size
    express_gb_s = express_gb_seconds(workload.express_memory_mb, workload.workflow_seconds)
    sender_gb_s = lambda_gb_seconds(workload.sender_memory_mb, workload.render_send_seconds)
    terms = [
        sqs_term(workload, prices),
        Term(
            "Starter Lambda",
            (prices.lambda_per_request / workload.batch_size + starter_gb_s * prices.lambda_per_gb_second)
            * EMAILS,
        ),
        Term("Express requests", prices.express_per_request * EMAILS),
        Term("Express duration", express_gb_s * prices.express_per_gb_second * EMAILS),
        Term("DynamoDB", 2 * prices.dynamodb_per_write * EMAILS),  # Acquire Lock + Mark Sent
        Term("S3 GET/HEAD", 2 * workload.attachments * prices.s3_per_get * EMAILS),  # HEAD + GET
        Term(
            "Sender Lambda", (prices.lambda_per_request + sender_gb_s * prices.lambda_per_gb_second) * EMAILS
        ),
        *ses_terms(workload, prices),
    ]
    return Bill("stepmail", tuple(terms))


def original_bill(workload: Workload, prices: Prices | None = None) -> Bill:
    """The original design: one Lambda per batch renders and sends each email in turn."""
    prices = prices or Prices()
    batch_seconds = workload.batch_overhead_seconds + workload.batch_size * workload.render_send_seconds
    gb_s = lambda_gb_seconds(workload.single_memory_mb, batch_seconds) / workload.batch_size
    terms = [
        sqs_term(workload, prices),
        Term("DynamoDB", prices.dynamodb_per_write * EMAILS),  # the de-duplication record
        Term("S3 GET/HEAD", workload.attachments * prices.s3_per_get * EMAILS),
        Term(
            "Sender Lambda",
            (prices.lambda_per_request / workload.batch_size + gb_s * prices.lambda_per_gb_second) * EMAILS,
        ),
        *ses_terms(workload, prices),
    ]
    return Bill("original", tuple(terms))


def compare(workload: Workload, prices: Prices | None = None) -> Comparison:
    """Both bills for one workload."""
    return Comparison(stepmail_bill(workload, prices), original_bill(workload, prices))


def render_table(comparison: Comparison) -> str:
    """A Markdown table: one row per term, both designs, then the totals and the overhead."""
    rows = ["| term | stepmail | original | difference |", "|---|---:|---:|---:|"]
    for name in comparison.term_names():
        ours, theirs = comparison.stepmail.dollars(name), comparison.original.dollars(name)
        rows.append(f"| {name} | ${ours:,.2f} | ${theirs:,.2f} | ${ours - theirs:+,.2f} |")
    ours, theirs = comparison.stepmail.total, comparison.original.total
    rows.append(
        f"| **total per 1M emails** | **${ours:,.2f}** | **${theirs:,.2f}** | **${ours - theirs:+,.2f}** |"
    )
    return "\n".join(rows)
