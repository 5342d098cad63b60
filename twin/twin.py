"""The local twin: the whole pipeline on this machine, no AWS account.

A moto server on 127.0.0.1 holds the queue, the dead-letter queue, the attachments bucket, the lock
table, the SES identities and the Express state machine, all created from the same configuration
model the stack uses.  The state machine is the ASL file itself, run by moto's interpreter with the
real handlers called in process (see :mod:`twin.patches`); a poller feeds the real starter real SQS
batches (:mod:`twin.poller`); SES sends land in an outbox (:mod:`twin.ses`).  Any AWS SDK or the aws
CLI can be a producer: point it at :attr:`TwinInfo.endpoint_url`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from infra.config import StepmailConfig
from infra.definition import render_definition
from stepmail.adapters.ses import SES_CLIENT_CONFIG
from stepmail.adapters.sfn import SYNC_CLIENT_CONFIG
from stepmail.core.starting import StartReport
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler
from stepmail.settings import SenderSettings, StarterSettings
from twin import console, patches, ses, simulator
from twin.faults import FaultInjector
from twin.journal import Journal
from twin.poller import QueuePoller

ACCOUNT_ID = "123456789012"
DEFAULT_PORT = 4750
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass(frozen=True)
class TwinInfo:
    """Where everything is: what ``--info-file`` holds."""

    endpoint_url: str
    region: str
    queue_url: str
    dlq_url: str
    bucket: str
    table: str
    state_machine_arn: str
    outbox: str | None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass(frozen=True)
class ObservedStarter(starter_handler.Starter):
    """The real starter, with each result written to the twin's journal."""

    journal: Journal = field(default_factory=Journal)

    def start(self, record: Any) -> StartReport:
        try:
            report = super().start(record)
        except Exception as error:
            self.journal.record(record.message_id, error)
            raise
        self.journal.record(record.message_id, report)
        return report


class TwinServer(ThreadedMotoServer):
    """moto's threaded server with WSGI layers in front of its application (faults, the console...)."""

    def __init__(self, port: int, layers: list[Callable[[Any], Any]]) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.layers = layers

    def _server_entry(self) -> None:
        app: Any = DomainDispatcherApplication(create_backend_app)
        for layer in self.layers:
            app = layer(app)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalTwin:
    """Start with :meth:`start` (or ``with LocalTwin(config) as twin``), stop with :meth:`stop`."""

    def __init__(
        self,
        config: StepmailConfig,
        *,
        port: int | None = None,
        outbox: Path | None = None,
        ses_max_send_rate: float | None = None,
        time_scale: float = 1.0,
        visibility_timeout_seconds: int | None = None,
        faults: FaultInjector | None = None,
        handler_log_level: str = "WARNING",
    ) -> None:
        """
        Parameters
        ----------
        time_scale
            Multiplies every retry wait of the state machine (the computed waits are still recorded
            unscaled in ``hooks.retry_waits``).
        visibility_timeout_seconds
            Overrides the queue's visibility timeout (the config's is >= 6 x the starter's timeout, i.e.
            minutes): lets tests see redeliveries in seconds.
        faults
            The fault schedule (see :mod:`twin.faults`); add to ``twin.faults`` at any time.
        """
        self.config = config
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.region = config.region
        self.outbox = outbox
        self.journal = Journal()
        self.faults = faults or FaultInjector()
        #: WSGI layers put in front of moto's application, outermost last.
        self.layers: list[Callable[[Any], Any]] = [self.faults.middleware]
        # The console is outermost: injected faults never hit it.
        self.layers.append(console.middleware(self))
        self.console_url = f"{self.endpoint_url}/console"
        self.hooks = patches.InterpreterHooks(endpoint_url=self.endpoint_url, time_scale=time_scale)
        quota = ses_max_send_rate if ses_max_send_rate is not None else config.ses_max_send_rate
        self.ses = ses.TwinSes(ACCOUNT_ID, self.region, outbox, ses.SendingRate(quota))
        self._handler_log_level = handler_log_level
        self._visibility_timeout_seconds = (
            visibility_timeout_seconds or config.queue_visibility_timeout_seconds
        )
        self._server: TwinServer | None = None
        self._poller: QueuePoller | None = None
        self.info: TwinInfo | None = None
        self.simulator: simulator.MailboxSimulator | None = None  # SES events -> tracker (twin/simulator.py)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> TwinInfo:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # The interpreter logs every caught failure with its whole parse tree: the journal and the
        # executions' history say the same thing readably.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        logging.getLogger("stepmail").setLevel(self._handler_log_level)
        os.environ.setdefault("AWS_DEFAULT_REGION", self.region)
        self._server = TwinServer(self.port, self.layers)
        self._server.start()
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
        requests.post(f"{self.endpoint_url}/moto-api/config", json=_MOTO_CONFIG, timeout=10)
        patches.install(self.hooks)
        ses.install(self.ses)
        if self.outbox:
            self.outbox.mkdir(parents=True, exist_ok=True)
        self.info = self._create_resources()
        self._start_functions(self.info)
        self.simulator = simulator.install(self)
        return self.info

    def stop(self) -> None:
        if self.simulator:
            self.simulator.stop()
        if self._poller:
            self._poller.stop()
            self._poller = None
        if self._server:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalTwin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients and state
    def client(self, service: str, config: Config | None = None) -> Any:
        """A boto3 client aimed at the twin (any credentials are accepted)."""
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="twin",
            aws_secret_access_key="twin",  # noqa: S106 - the twin accepts any credentials
            config=config,
        )

    def wait_until_idle(self, timeout: float = 60.0) -> bool:
        """Wait until the queue holds nothing (visible or in flight) and no batch is being handled."""
        assert self.info is not None and self._poller is not None
        sqs = self.client("sqs")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.info.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            pending = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
            if pending == 0 and not self._poller.busy:
                return True
            time.sleep(0.05)
        return False

    def kill_execution(self, execution_arn: str) -> bool:
        """Stop a run where it stands, as a crashed host would: no Catch runs, its lock stays taken."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT_ID][self.region]
        for state_machine in backend.state_machines:
            for execution in state_machine.executions:
                if execution.exec_arn == execution_arn:
                    execution.stop(datetime.now(UTC), error="States.Runtime", cause="killed by the twin")
                    return True
        return False

    # ------------------------------------------------------------------ setup
    def _names(self) -> dict[str, str]:
        prefix = self.config.stack_name.lower()
        return {
            "queue": f"{prefix}-mail",
            "dlq": f"{prefix}-dead-letters",
            "bucket": f"{prefix}-attachments",
            "table": f"{prefix}-locks",
            "state_machine": f"{prefix}-workflow",
            "sender": f"{prefix}-sender",
            "starter": f"{prefix}-starter",
        }

    def _create_resources(self) -> TwinInfo:
        names, config = self._names(), self.config
        sqs, s3, dynamodb = self.client("sqs"), self.client("s3"), self.client("dynamodb")
        dlq_url = sqs.create_queue(
            QueueName=names["dlq"],
            Attributes={"MessageRetentionPeriod": str(config.dead_letter_retention_days * 86400)},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue_url = sqs.create_queue(
            QueueName=names["queue"],
            Attributes={
                "MaximumMessageSize": "262144",
                "VisibilityTimeout": str(self._visibility_timeout_seconds),
                "MessageRetentionPeriod": str(config.message_retention_days * 86400),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": config.max_receive_count}
                ),
            },
        )["QueueUrl"]
        s3.create_bucket(Bucket=names["bucket"], **_bucket_location(self.region))
        dynamodb.create_table(
            TableName=names["table"],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=names["table"], TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
        )
        sesv2 = self.client("sesv2")
        for identity in config.sender_identities:
            sesv2.create_email_identity(EmailIdentity=identity)
        sender_arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{names['sender']}"
        definition = render_definition(
            config,
            {
                "LockTableName": names["table"],
                "AttachmentsBucketName": names["bucket"],
                "SenderFunctionArn": sender_arn,
                "DeadLetterQueueUrl": dlq_url,
            },
        )
        state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=names["state_machine"],
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{names['state_machine']}",
            type="EXPRESS",
        )["stateMachineArn"]
        self._sender_arn = sender_arn
        return TwinInfo(
            endpoint_url=self.endpoint_url,
            region=self.region,
            queue_url=queue_url,
            dlq_url=dlq_url,
            bucket=names["bucket"],
            table=names["table"],
            state_machine_arn=state_machine_arn,
            outbox=str(self.outbox) if self.outbox else None,
        )

    def _start_functions(self, info: TwinInfo) -> None:
        """Build both functions from the environment the stack gives them, then start the poller."""
        config, names = self.config, self._names()
        sender_env = config.sender_settings(attachments_bucket=info.bucket).to_environment()
        sender = sender_handler.build_sender(
            SenderSettings.from_environ(sender_env),
            s3_client=self.faults.instrument(self.client("s3")),
            ses_client=self.faults.instrument(self.client("sesv2", SES_CLIENT_CONFIG)),
        )
        sender_context = patches.lambda_context(names["sender"])
        self.hooks.functions[self._sender_arn] = self.faults.around_sender(
            lambda payload: sender_handler.handler(payload, sender_context, sender=sender)
        )

        starter_env = config.starter_settings(
            state_machine_arn=info.state_machine_arn,
            dead_letter_queue_url=info.dlq_url,
            lock_table=info.table,
        ).to_environment()
        built = starter_handler.build_starter(
            StarterSettings.from_environ(starter_env),
            # StartSyncExecution is served on a `sync-` host on AWS; the twin has one endpoint.
            sfn_client=self.client(
                "stepfunctions", SYNC_CLIENT_CONFIG.merge(Config(inject_host_prefix=False))
            ),
            sqs_client=self.client("sqs"),
            dynamodb_client=self.client("dynamodb"),
        )
        starter = ObservedStarter(
            policy=built.policy,
            ports=built.ports,
            log_email_content=built.log_email_content,
            journal=self.journal,
        )
        starter_context = patches.lambda_context(names["starter"])
        sqs = self.client("sqs")
        queue_arn = sqs.get_queue_attributes(QueueUrl=info.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._poller = QueuePoller(
            sqs=sqs,
            queue_url=info.queue_url,
            queue_arn=queue_arn,
            region=self.region,
            handler=self.faults.around_starter(
                lambda event: starter_handler.handler(event, starter_context, starter=starter)
            ),
            batch_size=config.batch_size,
            batching_window_seconds=config.batching_window_seconds,
            max_concurrency=config.max_concurrency,
            on_deleted=self.journal.deleted,
        )
        self._poller.start()


def _bucket_location(region: str) -> dict[str, Any]:
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
