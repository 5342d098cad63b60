"""The operator's text: dead letters, a redrive's report and emails' status as a person reads them."""

from __future__ import annotations

from collections.abc import Sequence

from producer.dead_letters import DeadLetter
from producer.redrive import RedriveReport
from producer.status import EmailStatus


def render_letters(letters: list[DeadLetter]) -> str:
    """A readable table of dead letters."""
    if not letters:
        return "the dead-letter queue is empty"
    rows = [("FAILED AT", "SOURCE", "MAIL KEY", "RECIPIENTS", "DELIVERIES", "REDRIVES", "COPIES", "REASON")]
    rows += [
        (
            letter.failed_at or "-",
            letter.source,
            letter.mail_key or "-",
            ", ".join(letter.recipients) or "-",
            str(letter.deliveries) if letter.deliveries is not None else "-",
            str(letter.redrive_count),
            str(letter.copies),
            letter.reason,
        )
        for letter in letters
    ]
    return _table(rows)


def render_redrive(report: RedriveReport) -> str:
    verb = "would redrive" if report.dry_run else "redriven"
    lines = [f"{verb}: {len(report.redriven)}, kept in the dead-letter queue: {len(report.kept)}"]
    lines += [
        f"  {verb} {item.letter.mail_key} ({item.letter.source}, redrive #{item.letter.redrive_count + 1})"
        for item in report.redriven
    ]
    lines += [f"  kept {item.letter.mail_key or '-'}: {item.reason}" for item in report.kept]
    removed = "would delete" if report.dry_run else "deleted"
    lines += [
        f"  {removed} an extra copy of {letter.mail_key or '-'} (queue message {letter.original_message_id})"
        for letter in report.copies
    ]
    lines += [
        f"  left {letter.mail_key or '-'}: dead-lettered again after this redrive began ({letter.reason})"
        for letter in report.returned
    ]
    if report.other_keys:
        lines.append(f"  left {report.other_keys} letter(s) not asked for")
    return "\n".join(lines)


def render_status(records: list[EmailStatus]) -> str:
    """One block per email: its state, lock record, delivery events and dead letters."""
    if not records:
        return "no email found"
    return "\n\n".join(_status_block(record) for record in records)


def _status_block(record: EmailStatus) -> str:
    """``name  value`` lines: what always shows, then what the record holds, events, dead letters."""
    rows = [("mail key", record.mail_key), ("lock key", record.lock_key or "-"), ("state", record.state)]
    optional = (
        ("lock", record.lock_status),
        ("owner", record.owner),
        ("locked at", record.locked_at),
        ("sent at", record.sent_at),
        ("SES message id", record.message_id),
        ("delivery", record.delivery_status),
    )
    rows += [(name, value) for name, value in optional if value]
    rows += [
        (f"event {event.at}", f"{event.type} {event.detail}".strip()) for event in record.delivery_events
    ]
    rows += [
        (
            f"dead-lettered {letter.failed_at or ''}".strip(),
            f"{letter.reason} (redriven {letter.redrive_count}x)",
        )
        for letter in record.dead_letters
    ]
    return "\n".join(f"{name:<20} {value}" for name, value in rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]])
        for row in rows
    )
