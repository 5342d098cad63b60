"""The cost model: dollars per 1M emails for this design and the original, term by term."""

from __future__ import annotations

import json

import pytest

from producer import cli
from producer.cost import (
    EMAILS,
    Prices,
    Workload,
    compare,
    express_gb_seconds,
    lambda_gb_seconds,
    original_bill,
    render_table,
    stepmail_bill,
)


def test_express_bills_100_ms_and_64_mb_units() -> None:
    # Given runs just over a unit boundary, Then they are billed for the next whole unit
    assert express_gb_seconds(64, 0.101) == pytest.approx(64 / 1024 * 0.2)
    assert express_gb_seconds(65, 0.1) == pytest.approx(128 / 1024 * 0.1)
    assert express_gb_seconds(1, 0.3) == pytest.approx(64 / 1024 * 0.3)  # 0.3 is not 0.30000000000000004


def test_lambda_bills_per_millisecond() -> None:
    assert lambda_gb_seconds(1024, 0.0101) == pytest.approx(0.011)


def test_every_term_is_priced_from_the_published_prices() -> None:
    # Given one email a batch, one 1 GB attachment, 1 s of render-and-send and 1024 MB functions
    workload = Workload(
        batch_size=1,
        attachments=1,
        attachment_mb=1024,
        message_kb=1,
        starter_memory_mb=1024,
        sender_memory_mb=1024,
        render_send_seconds=1.0,
        workflow_extra_seconds=0.0,
        batch_overhead_seconds=0.0,
    )
    # When this design is priced
    bill = stepmail_bill(workload)
    # Then each term is its count times its list price, per 1M emails
    prices = Prices()
    assert bill.dollars("SQS") == pytest.approx(3 * 0.40)  # send, receive, delete
    assert bill.dollars("Starter Lambda") == pytest.approx(0.20 + prices.lambda_per_gb_second * EMAILS)
    assert bill.dollars("Express requests") == pytest.approx(1.00)
    assert bill.dollars("Express duration") == pytest.approx(
        64 / 1024 * prices.express_per_gb_second * EMAILS
    )
    assert bill.dollars("DynamoDB") == pytest.approx(2 * 0.625)
    assert bill.dollars("S3 GET/HEAD") == pytest.approx(2 * 0.40)
    assert bill.dollars("Sender Lambda") == pytest.approx(0.20 + prices.lambda_per_gb_second * EMAILS)
    assert bill.dollars("SES emails") == pytest.approx(100.0)
    assert bill.dollars("SES attachment GB") == pytest.approx(0.12 * EMAILS)
    assert bill.total == pytest.approx(sum(term.dollars for term in bill.terms))


def test_bigger_batches_spread_the_per_batch_costs() -> None:
    # Given the same workload with batches of 1 and of 10
    one, ten = Workload(batch_size=1), Workload(batch_size=10)
    # Then the per-batch terms shrink and the per-email terms do not move
    assert stepmail_bill(ten).dollars("SQS") < stepmail_bill(one).dollars("SQS")
    assert stepmail_bill(ten).dollars("Starter Lambda") == pytest.approx(
        stepmail_bill(one).dollars("Starter Lambda") / 10, rel=0.01
    )
    assert stepmail_bill(ten).dollars("Express requests") == stepmail_bill(one).dollars("Express requests")


def test_attachments_cost_the_same_ses_in_both_designs_and_a_head_more_here() -> None:
    # Given three 5 MB attachments per email
    comparison = compare(Workload(attachments=3, attachment_mb=5))
    # Then SES charges both designs alike, and this design pays one HEAD per attachment more
    assert comparison.stepmail.dollars("SES attachment GB") == comparison.original.dollars(
        "SES attachment GB"
    )
    assert comparison.stepmail.dollars("S3 GET/HEAD") == pytest.approx(
        2 * comparison.original.dollars("S3 GET/HEAD")
    )


def test_the_default_overhead_meets_the_goal() -> None:
    # Given the deployed defaults, Then the orchestration adds at most $5 per 1M emails
    comparison = compare(Workload())
    assert 0 < comparison.overhead <= 5.0
    assert comparison.overhead == pytest.approx(comparison.stepmail.total - comparison.original.total)


def test_the_original_design_has_no_orchestration_terms() -> None:
    bill = original_bill(Workload())
    assert bill.dollars("Express requests") == 0
    assert bill.dollars("Starter Lambda") == 0


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"attachment_mb": -1}])
def test_impossible_workloads_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        Workload(**bad)  # type: ignore[arg-type]


def test_the_table_lists_every_term_and_the_overhead() -> None:
    comparison = compare(Workload())
    table = render_table(comparison)
    for name in comparison.term_names():
        assert f"| {name} |" in table
    assert f"${comparison.overhead:+,.2f}" in table


def test_stepmail_cost_takes_the_assumptions_as_flags(capsys: pytest.CaptureFixture[str]) -> None:
    # When the CLI prices batches of 1 with two attachments, as JSON
    assert cli.main(["cost", "--batch-size", "1", "--attachments", "2", "--json"]) == 0
    # Then it used those assumptions and the same model
    printed = json.loads(capsys.readouterr().out)
    assert printed["workload"]["batch_size"] == 1
    assert printed["overhead"] == pytest.approx(compare(Workload(batch_size=1, attachments=2)).overhead)
