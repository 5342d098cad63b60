"""The twin's own calls are served in process; producers keep the HTTP endpoint; faults fire for both."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import twin_config
from twin.inprocess import IN_PROCESS_KEY
from twin.twin import LocalTwin


class Recorder:
    """A WSGI layer next to moto: (operation, served in process?) for each request that reaches it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, app: Any) -> Any:
        def layer(environ: dict[str, Any], start_response: Any) -> Any:
            operation = environ.get("HTTP_X_AMZ_TARGET", "") or environ["REQUEST_METHOD"] + " " + environ.get(
                "PATH_INFO", ""
            )
            with self._lock:
                self.requests.append((operation, bool(environ.get(IN_PROCESS_KEY))))
            return app(environ, start_response)

        return layer

    def transports(self, operation: str) -> set[bool]:
        """How requests whose operation contains ``operation`` were served (True: in process)."""
        with self._lock:
            return {in_process for name, in_process in self.requests if operation in name}


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[LocalTwin, Recorder]]:
    twin = LocalTwin(twin_config(), outbox=tmp_path / "outbox", time_scale=0.01)
    recorder = Recorder()
    twin.layers.insert(0, recorder)  # innermost: every request that reaches moto, after the faults
    with twin:
        yield twin, recorder


def test_the_pipeline_calls_moto_in_process_and_a_producer_over_http(recorded) -> None:
    twin, recorder = recorded
    assert twin.info is not None
    # Given a producer sending one email over the HTTP endpoint
    body = {"mailKey": "in-process-1", "toAddress": "r@customer.example", "body": "hello"}
    twin.client("sqs").send_message(QueueUrl=twin.info.queue_url, MessageBody=json.dumps(body))
    # When the pipeline sends it
    deadline = time.monotonic() + 30
    while not twin.ses.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [email.to for email in twin.ses.sent] == [["r@customer.example"]]
    assert twin.wait_until_idle(timeout=30)
    # Then the producer's request came over HTTP, and every call of the pipeline's own in process:
    # the poller's, the starter's, the interpreter's service integrations and the sender's
    assert recorder.transports("AmazonSQS.SendMessage") == {False}
    for operation in (
        "AmazonSQS.ReceiveMessage",
        "AmazonSQS.DeleteMessageBatch",
        "AWSStepFunctions.StartSyncExecution",
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.UpdateItem",
        "POST /v2/email/outbound-emails",
    ):
        assert recorder.transports(operation) == {True}, operation


def test_an_injected_fault_answers_an_in_process_call(recorded) -> None:
    twin, recorder = recorded
    assert twin.info is not None
    # Given a throttled lock read armed once
    twin.faults.add("dynamodb.read:throttle:times=1")
    dynamodb = twin.own_client("dynamodb", Config(retries={"total_max_attempts": 1}))  # no SDK retry
    key = {"pk": {"S": "no-such-lock"}}
    # When the twin's own client reads the lock table, twice
    with pytest.raises(ClientError) as raised:
        dynamodb.get_item(TableName=twin.info.table, Key=key)
    second = dynamodb.get_item(TableName=twin.info.table, Key=key)
    # Then the first call met the fault AWS would answer, decided by the same fault layer, in process
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert twin.faults.fired("dynamodb.read", "throttle") == 1
    assert "Item" not in second
    assert recorder.transports("DynamoDB_20120810.GetItem") == {True}


@pytest.mark.parametrize("key", ["plain.txt", "a key/with spaces+plus.txt", "Grüße/請求書 €.pdf"])
def test_s3_keys_and_metadata_read_in_process_as_over_http(recorded, key: str) -> None:
    twin, _ = recorded
    assert twin.info is not None
    # Given an object a producer uploaded over HTTP, with metadata whose name has an underscore
    twin.client("s3").put_object(
        Bucket=twin.info.bucket, Key=key, Body="bytes €".encode(), Metadata={"file_name": "x"}
    )
    own = twin.own_client("s3")
    # When the twin's own client reads it in process
    head = own.head_object(Bucket=twin.info.bucket, Key=key)
    body = own.get_object(Bucket=twin.info.bucket, Key=key)["Body"].read()
    # Then it sees what the producer stored, as an HTTP client does
    over_http = twin.client("s3").head_object(Bucket=twin.info.bucket, Key=key)
    assert body == "bytes €".encode()
    assert (head["ETag"], head["ContentLength"], head["Metadata"]) == (
        over_http["ETag"],
        over_http["ContentLength"],
        over_http["Metadata"],
    )
    assert head["Metadata"] == {"file_name": "x"}
