"""The cost model's log volumes and record size hold for the stack's real ASL, measured on the twin."""

from __future__ import annotations

from collections.abc import Callable

from producer.cost import EXECUTION_LOGS, Workload, execution_log_bytes
from tests.integration.conftest import Harness
from tests.integration.log_volume import measure_execution_logs, record_bytes, send_and_wait

#: The model's figures are the measured ones rounded up: never under them, and close.
MARGIN = 1.1


def test_the_model_counts_what_each_run_logs_at_each_level(make_twin: Callable[..., Harness]) -> None:
    # Given the twin running the stack's ASL
    harness = make_twin()

    # When three emails go through (one attachment, two, and one SES throttles once) and each run's
    # history is written as Step Functions logs it, at ALL and at ERROR, without and with data
    measured = measure_execution_logs(harness.twin)

    # Then each figure of the model covers the measurement, by at most 10 %
    for name in ("run", "attachment", "retry_all", "retry_error"):
        model, actual = getattr(EXECUTION_LOGS, name), getattr(measured, name)
        for data in (0, 1):
            assert actual[data] <= model[data] <= MARGIN * actual[data], (name, data, actual, model)
    # and a sent email logs nothing at ERROR unless a step failed
    assert measured.retry_error[0] > 0
    clean = send_and_wait(harness.twin, attachments=1)
    assert execution_log_bytes(clean, "ERROR", include_data=True) == 0


def test_the_model_sizes_the_email_record_at_least_as_dynamodb_does(
    make_twin: Callable[..., Harness],
) -> None:
    # Given an email sent through the twin
    harness = make_twin()
    harness.wait_for(harness.send({"mailKey": "sized", "toAddress": "a@customer.example", "body": "b"}))

    # Then the record the lock table keeps for it is within the model's size
    assert record_bytes(harness.twin) <= Workload().item_kb * 1024
