"""The local twin: the whole pipeline on this machine, no AWS account.

A moto server on 127.0.0.1 (:mod:`twin.server`) holds the queue, the dead-letter queue, the
attachments bucket, the lock table, the SES identities and the Express state machine, created from
the description the stack's constructs use (:mod:`twin.resources`).  The state machine is the ASL
file itself, run by moto's interpreter with the real handlers called in process (:mod:`twin.patches`,
:mod:`twin.functions`); SES sends land in an outbox (:mod:`twin.ses`).  Any AWS SDK or the aws CLI can
be a producer: point it at the endpoint in :attr:`LocalTwin.info`.  The twin's own clients (the
interpreter's, the handlers', the poller's) skip HTTP: the same application serves them in process
(:mod:`twin.inprocess`), behind the same fault layer.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.config import Config

from infra.config import StepmailConfig
from producer.deployment import TWIN_ACCOUNT_ID, Deployment
from twin import console, doctor_support, functions, patches, server, ses, simulator
from twin.faults import FaultInjector
from twin.inprocess import InProcessTransport
from twin.journal import Journal
from twin.poller import QueuePoller
from twin.resources import create_resources


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
        self.port = port or server.free_port()
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
        self.in_process = InProcessTransport()
        self.hooks = patches.InterpreterHooks(
            endpoint_url=self.endpoint_url, in_process=self.in_process, time_scale=time_scale
        )
        quota = ses_max_send_rate if ses_max_send_rate is not None else config.ses_max_send_rate
        self.ses = ses.TwinSes(TWIN_ACCOUNT_ID, self.region, outbox, ses.SendingRate(quota))
        self._handler_log_level = handler_log_level
        self._visibility_timeout_seconds = visibility_timeout_seconds
        self._server: server.TwinServer | None = None
        self._poller: QueuePoller | None = None
        self.info: Deployment | None = None
        self.simulator: simulator.MailboxSimulator | None = None  # SES events -> tracker (twin/simulator.py)
        #: What `stepmail doctor` reads that moto lacks (twin/doctor_support.py).
        self.doctor = doctor_support.DoctorSupport(TWIN_ACCOUNT_ID, self.region)

    @property
    def deployment(self) -> Deployment:
        """Where this twin keeps everything (known before it starts; :attr:`info` once it has)."""
        outbox = str(self.outbox) if self.outbox else None
        return Deployment.for_twin(self.config.stack_name, self.region, self.endpoint_url, outbox)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Deployment:
        self._quiet_logs()
        os.environ.setdefault("AWS_DEFAULT_REGION", self.region)
        self._server = server.TwinServer(self.port, self.layers)
        self._server.start()
        self.in_process.app = self._server.app
        patches.install(self.hooks)
        ses.install(self.ses)
        doctor_support.install(self.doctor)
        if self.outbox:
            self.outbox.mkdir(parents=True, exist_ok=True)
        deployment = self.deployment
        create_resources(
            self.config, deployment, self.client, visibility_timeout_seconds=self._visibility_timeout_seconds
        )
        functions.wire_sender(self.config, deployment, self.hooks, self.faults, self.own_client)
        self._poller = functions.start_starter(
            self.config, deployment, self.journal, self.faults, self.own_client
        )
        self.simulator = functions.start_tracker(self.config, deployment, self.ses, self.own_client)
        self.doctor.build(self.config, deployment, self.client, self._mapping_state)
        self.info = deployment
        return deployment

    def _mapping_state(self) -> str:
        """The event source mapping's State: the poller is the mapping."""
        return "Enabled" if self._poller is not None and self._poller.running else "Disabled"

    def stop_polling(self) -> None:
        """Stop reading the mail queue, as a disabled event source mapping does (the twin keeps serving)."""
        if self._poller:
            self._poller.stop()

    def _quiet_logs(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # The interpreter logs every caught failure with its whole parse tree: the journal and the
        # executions' history say the same thing readably.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        logging.getLogger("stepmail").setLevel(self._handler_log_level)

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
        return self.deployment.client(service, config)

    def own_client(self, service: str, config: Config | None = None) -> Any:
        """A boto3 client for the twin's own functions: served in process, not over HTTP."""
        return self.in_process.attach(self.deployment.client(service, config))

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
        machine = server.state_machine(self.region, self.deployment.state_machine_arn)
        for execution in machine.executions if machine else []:
            if execution.exec_arn == execution_arn:
                execution.stop(datetime.now(UTC), error="States.Runtime", cause="killed by the twin")
                return True
        return False
