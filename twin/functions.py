"""The stack's functions in the twin: the real handlers, built from the environment the stack gives them.

* the sender is called in process by the state machine's interpreter (:mod:`twin.patches`);
* the starter is fed real SQS batches by a poller, each result written to the twin's journal;
* the tracker receives the mailbox simulator's SES events (:mod:`twin.simulator`).

Their SDK clients come from ``clients`` (:meth:`twin.twin.LocalTwin.own_client`): served in process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from infra.config import StepmailConfig
from infra.resources import ResourceNames
from producer.deployment import Deployment
from stepmail.adapters.ses import SES_CLIENT_CONFIG
from stepmail.adapters.sfn import SYNC_CLIENT_CONFIG
from stepmail.core.starting import StartReport
from stepmail.handlers import sender as sender_handler
from stepmail.handlers import starter as starter_handler
from stepmail.settings import SenderSettings, StarterSettings
from twin import patches, simulator
from twin.faults import FaultInjector
from twin.journal import Journal
from twin.poller import QueuePoller
from twin.resources import sender_arn
from twin.ses import TwinSes

#: Makes a boto3 client for the twin: ``clients(service, config)``.
Clients = Callable[[str, Config | None], Any]


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


def wire_sender(
    config: StepmailConfig,
    deployment: Deployment,
    hooks: patches.InterpreterHooks,
    faults: FaultInjector,
    clients: Clients,
) -> None:
    """Route the state machine's calls to the sender function to the real handler."""
    sender_env = config.sender_settings(attachments_bucket=deployment.bucket).to_environment()
    sender = sender_handler.build_sender(
        SenderSettings.from_environ(sender_env),
        s3_client=faults.instrument(clients("s3", None)),
        ses_client=faults.instrument(clients("sesv2", SES_CLIENT_CONFIG)),
    )
    names = ResourceNames.for_stack(config.stack_name)
    context = patches.lambda_context(names.sender)
    hooks.functions[sender_arn(deployment.region, names)] = faults.around_sender(
        lambda payload: sender_handler.handler(payload, context, sender=sender)
    )


def start_starter(
    config: StepmailConfig, deployment: Deployment, journal: Journal, faults: FaultInjector, clients: Clients
) -> QueuePoller:
    """The real starter behind a poller of the mail queue, as the SQS event source runs it; started."""
    starter_env = config.starter_settings(
        state_machine_arn=deployment.state_machine_arn,
        dead_letter_queue_url=deployment.dlq_url,
        lock_table=deployment.table,
        mail_queue_url=deployment.queue_url,
    ).to_environment()
    built = starter_handler.build_starter(
        StarterSettings.from_environ(starter_env),
        # StartSyncExecution is served on a `sync-` host on AWS; the twin has one endpoint.
        sfn_client=clients("stepfunctions", SYNC_CLIENT_CONFIG.merge(Config(inject_host_prefix=False))),
        sqs_client=clients("sqs", None),
        dynamodb_client=clients("dynamodb", None),
        ses_client=clients("sesv2", None),
    )
    starter = ObservedStarter(
        policy=built.policy,
        ports=built.ports,
        log_email_content=built.log_email_content,
        redeliveries=built.redeliveries,
        delays=built.delays,
        journal=journal,
    )
    context = patches.lambda_context(ResourceNames.for_stack(config.stack_name).starter)
    sqs = clients("sqs", None)
    queue_arn = sqs.get_queue_attributes(QueueUrl=deployment.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    poller = QueuePoller(
        sqs=sqs,
        queue_url=deployment.queue_url,
        queue_arn=queue_arn,
        region=deployment.region,
        handler=faults.around_starter(lambda event: starter_handler.handler(event, context, starter=starter)),
        batch_size=config.batch_size,
        batching_window_seconds=config.batching_window_seconds,
        max_concurrency=config.max_concurrency,
        on_deleted=journal.deleted,
    )
    poller.start()
    return poller


def start_tracker(
    config: StepmailConfig, deployment: Deployment, ses: TwinSes, clients: Clients
) -> simulator.MailboxSimulator | None:
    """The real tracker, fed by the mailbox simulator (None when delivery tracking is off)."""
    dynamodb = clients("dynamodb", None)
    return simulator.install(config=config, table=deployment.table, ses=ses, dynamodb=dynamodb)
