"""The stepmail stack: composes the constructs and publishes what producers need as outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants, resources
from infra.bundling import lambda_code
from infra.config import StepmailConfig
from infra.constructs.dashboard import Dashboard
from infra.constructs.functions import SenderFunction, StarterFunction
from infra.constructs.monitoring import Monitoring
from infra.constructs.queueing import Queueing
from infra.constructs.sending_domain import SendingDomain
from infra.constructs.storage import Storage
from infra.constructs.tracking import Tracking
from infra.constructs.workflow import Workflow


class StepmailStack(Stack):
    """SQS -> starter Lambda -> Express state machine (DynamoDB lock, S3 lookups, sender Lambda) -> SES."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StepmailConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description="stepmail: serverless email sending (SQS, Step Functions, SES)",
            **kwargs,
        )
        self.config = config
        Tags.of(self).add("service", constants.SERVICE_NAME)

        self.storage = Storage(self, constants.STORAGE_ID, config=config)
        self.queueing = Queueing(self, constants.QUEUEING_ID, config=config)
        code = lambda_code()  # one asset shared by both functions, so it is bundled once
        self.sender = SenderFunction(
            self,
            constants.SENDER_ID,
            config=config,
            code=code,
            attachments_bucket=self.storage.attachments_bucket,
        )
        self.workflow = Workflow(
            self,
            constants.WORKFLOW_ID,
            config=config,
            lock_table=self.storage.lock_table,
            attachments_bucket=self.storage.attachments_bucket,
            sender=self.sender.function,
            dead_letter_queue=self.queueing.dead_letter_queue,
        )
        self.starter = StarterFunction(
            self,
            constants.STARTER_ID,
            config=config,
            code=code,
            queue=self.queueing.queue,
            dead_letter_queue=self.queueing.dead_letter_queue,
            state_machine=self.workflow.state_machine,
            lock_table=self.storage.lock_table,
        )
        self.sending_domain: SendingDomain | None = None
        if config.sending_domain:
            self.sending_domain = SendingDomain(self, constants.SENDING_DOMAIN_ID, config=config)
        self.tracking: Tracking | None = None
        if config.delivery_tracking:
            self.tracking = Tracking(
                self, constants.TRACKING_ID, config=config, code=code, lock_table=self.storage.lock_table
            )
        # The sender is a workflow task: its errors are the workflow's contract (monitoring.py).
        functions: dict[str, lambda_.IFunction] = {"Starter": self.starter.function}
        workflow_tasks: dict[str, lambda_.IFunction] = {"Sender": self.sender.function}
        tracker_dead_letters = None
        if self.tracking:
            functions["Tracker"] = self.tracking.function
            tracker_dead_letters = self.tracking.dead_letter_queue
        queue, dead_letters, state_machine = (
            self.queueing.queue,
            self.queueing.dead_letter_queue,
            self.workflow.state_machine,
        )
        self.monitoring = Monitoring(
            self,
            constants.MONITORING_ID,
            config=config,
            queue=queue,
            dead_letter_queue=dead_letters,
            state_machine=state_machine,
            functions=functions,
            workflow_tasks=workflow_tasks,
            tracker_dead_letter_queue=tracker_dead_letters,
        )
        self.dashboard = Dashboard(
            self,
            constants.DASHBOARD_ID,
            config=config,
            queue=queue,
            dead_letter_queue=dead_letters,
            state_machine=state_machine,
            functions={**functions, **workflow_tasks},
            tracker_dead_letter_queue=tracker_dead_letters,
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        storage, queueing, workflow = self.storage, self.queueing, self.workflow
        outputs = {
            resources.QUEUE_URL_OUTPUT: (queueing.queue.queue_url, "Where producers send messages"),
            resources.DEAD_LETTER_QUEUE_URL_OUTPUT: (
                queueing.dead_letter_queue.queue_url,
                "Messages that could not be sent, each with its reason",
            ),
            resources.ATTACHMENTS_BUCKET_OUTPUT: (
                storage.attachments_bucket.bucket_name,
                "Where producers upload attachments, under <mailKey>/",
            ),
            resources.LOCK_TABLE_OUTPUT: (
                storage.lock_table.table_name,
                "One record per email: lock and dedup",
            ),
            resources.STATE_MACHINE_ARN_OUTPUT: (
                workflow.state_machine.state_machine_arn,
                "The Express workflow",
            ),
            resources.ALARM_TOPIC_OUTPUT: (
                self.monitoring.topic.topic_arn,
                "Where alarms go (stepmail doctor checks its subscriptions are confirmed)",
            ),
        }
        if self.tracking:
            outputs[resources.CONFIGURATION_SET_OUTPUT] = (
                self.tracking.configuration_set.configuration_set_name,
                "The SES configuration set whose delivery events are recorded (the default for messages)",
            )
            outputs[resources.TRACKER_DEAD_LETTER_QUEUE_URL_OUTPUT] = (
                self.tracking.dead_letter_queue.queue_url,
                "SES delivery events the tracker could not record",
            )
        if self.sending_domain and self.sending_domain.zone is None:
            # No hosted zone: the records to publish at the domain's DNS provider.
            for record in self.sending_domain.records:
                outputs[f"{resources.DNS_RECORD_OUTPUT_PREFIX}{record.key}"] = (
                    record.as_text(),
                    record.description,
                )
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
