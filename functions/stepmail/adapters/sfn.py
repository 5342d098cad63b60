"""Step Functions as the workflow: one synchronous Express run per email (StartSyncExecution)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from stepmail.core.starting import RunResult

#: A run lasts at most the workflow timeout (<= 5 min for Express): wait for it, and do not let the
#: SDK start a second run after a read timeout (the lock would hold, but the run would be wasted).
SYNC_CLIENT_CONFIG = Config(read_timeout=330, retries={"total_max_attempts": 1, "mode": "standard"})


class SfnWorkflow:
    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._state_machine_arn = state_machine_arn
        self._client = client or boto3.client("stepfunctions", config=SYNC_CLIENT_CONFIG)

    def run(self, execution_input: str) -> RunResult:
        response = self._client.start_sync_execution(
            stateMachineArn=self._state_machine_arn, input=execution_input
        )
        return RunResult(
            status=response["status"],
            execution_arn=response["executionArn"],
            output=_output(response.get("output")),
            error=response.get("error"),
            cause=response.get("cause"),
        )


def _output(output: str | None) -> dict[str, Any] | None:
    """The run's JSON output, or None (a failed run has none)."""
    parsed = json.loads(output) if output else None
    return parsed if isinstance(parsed, dict) else None
