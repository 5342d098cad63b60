"""What ``stepmail doctor`` reads that moto lacks, so the doctor runs against the twin as against AWS.

The doctor reads a deployed stack through CloudFormation, SES v2, Lambda, SNS and SQS.  moto 5.2.5
answers part of it; the twin supplies the rest, each as the deployed stack would show it:

* **the stack's outputs**: a CloudFormation stack named as the configuration's, holding the twin's
  outputs (one inert resource; moto's CloudFormation keeps the outputs), so ``DescribeStacks`` works;
* **the sender identities, verified**: moto creates them unverified (``VerifiedForSendingStatus``
  false) and without MAIL FROM attributes; the twin's are verified, a domain's DKIM signs (``SUCCESS``)
  and the ``sending_domain`` has its MAIL FROM domain (:meth:`DoctorSupport.set_identity` changes
  that, e.g. to a pending verification);
* **the configuration sets and the tracked set's EventBridge destination**: moto has the sets but no
  ``GetConfigurationSetEventDestinations``;
* **the alarm topic** (moto's SNS), with the ``alarm_email`` subscription when one is configured;
* **the event source mapping**: the twin's poller (twin/poller.py) is it, so ``ListEventSourceMappings``
  answers with the poller: ``Enabled`` while it polls, ``Disabled`` once stopped.

The SES account (``GetAccount``) is twin/ses.py's.  DNS is not emulated: the doctor skips DMARC on a twin.
"""

from __future__ import annotations

import json
import re
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.responses import LambdaResponse
from moto.ses.models import ses_backends
from moto.sesv2 import urls as sesv2_urls
from moto.sesv2.responses import SESV2Response

from infra import resources
from infra.config import StepmailConfig
from producer.deployment import Deployment, twin_arn

#: The tracked configuration set's event types (infra/constructs/tracking.py's TRACKED_EVENTS, as SES
#: v2 spells them): SES_DETAIL_TYPES' keys in upper snake case.
TRACKED_EVENT_TYPES = tuple(
    re.sub(r"(?<!^)([A-Z])", r"_\1", name).upper() for name in resources.SES_DETAIL_TYPES
)


def alarm_topic_name(stack_name: str) -> str:
    return f"{stack_name.lower()}-alarms"


@dataclass
class DoctorSupport:
    """The twin's answers to the doctor's questions moto cannot answer (see the module's docstring)."""

    account_id: str
    region: str
    #: The configuration set's name -> its event destinations (GetConfigurationSetEventDestinations).
    event_destinations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: An identity -> its MailFromAttributes (added to GetEmailIdentity's answer).
    mail_from: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Event source mappings: each a queue ARN, the mapping's configuration and a function for its State.
    event_sources: list[tuple[str, dict[str, Any], Callable[[], str]]] = field(default_factory=list)

    # ------------------------------------------------------------------ what the twin creates
    def build(
        self,
        config: StepmailConfig,
        deployment: Deployment,
        client: Callable[[str], Any],
        mapping_state: Callable[[], str],
    ) -> None:
        """Everything above for a twin of ``config``, once its resources exist."""
        for identity in config.sender_identities:
            self.set_identity(identity)
            if identity == config.sending_domain:
                self.mail_from[identity] = {
                    "MailFromDomain": config.mail_from_domain,
                    "MailFromDomainStatus": "SUCCESS",
                    "BehaviorOnMxFailure": "USE_DEFAULT_VALUE",
                }
        self._configuration_sets(config, client("sesv2"))
        topic_arn = self._alarm_topic(config, client("sns"))
        self._event_source(config, deployment, client("sqs"), mapping_state)
        self._stack(config, deployment, topic_arn, client("cloudformation"))

    def set_identity(self, identity: str, *, verified: bool = True, dkim: str = "SUCCESS") -> None:
        """Show ``identity`` verified (or pending verification) and, for a domain, its DKIM status."""
        found = ses_backends[self.account_id][self.region].email_identities[identity]
        found.verified_for_sending_status = verified
        found.verification_status = "SUCCESS" if verified else "PENDING"
        if "@" not in identity:
            found.dkim_attributes.update({"SigningEnabled": True, "Status": dkim})

    def _configuration_sets(self, config: StepmailConfig, sesv2: Any) -> None:
        for name in config.sendable_configuration_sets:
            sesv2.create_configuration_set(ConfigurationSetName=name, SendingOptions={"SendingEnabled": True})
            # moto keeps the whole SendingOptions object where v2 answers its boolean: set the boolean.
            found: Any = ses_backends[self.account_id][self.region].config_sets[name]
            found.enabled = True
            self.event_destinations[name] = []
        if config.delivery_tracking:
            self.event_destinations[config.tracking_configuration_set] = [
                {
                    "Name": "ToEventBridge",
                    "Enabled": True,
                    "MatchingEventTypes": list(TRACKED_EVENT_TYPES),
                    "EventBridgeDestination": {
                        "EventBusArn": twin_arn("events", self.region, "event-bus/default")
                    },
                }
            ]

    def _alarm_topic(self, config: StepmailConfig, sns: Any) -> str:
        topic_arn = str(sns.create_topic(Name=alarm_topic_name(config.stack_name))["TopicArn"])
        if config.alarm_email:  # moto lists it confirmed (as once its link was clicked)
            sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=config.alarm_email)
        return topic_arn

    def _event_source(
        self, config: StepmailConfig, deployment: Deployment, sqs: Any, state: Callable[[], str]
    ) -> None:
        queue_arn = sqs.get_queue_attributes(QueueUrl=deployment.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        starter = resources.ResourceNames.for_stack(config.stack_name).starter
        mapping = {
            "UUID": str(uuid.uuid4()),
            "EventSourceArn": queue_arn,
            "FunctionArn": twin_arn("lambda", self.region, f"function:{starter}"),
            "BatchSize": config.batch_size,
            "MaximumBatchingWindowInSeconds": config.batching_window_seconds,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": config.max_concurrency},
            "StateTransitionReason": "USER_INITIATED",
        }
        self.event_sources.append((queue_arn, mapping, state))

    def _stack(
        self, config: StepmailConfig, deployment: Deployment, topic_arn: str, cloudformation: Any
    ) -> None:
        outputs = {
            resources.QUEUE_URL_OUTPUT: deployment.queue_url,
            resources.DEAD_LETTER_QUEUE_URL_OUTPUT: deployment.dlq_url,
            resources.ATTACHMENTS_BUCKET_OUTPUT: deployment.bucket,
            resources.LOCK_TABLE_OUTPUT: deployment.table,
            resources.STATE_MACHINE_ARN_OUTPUT: deployment.state_machine_arn,
            resources.ALARM_TOPIC_OUTPUT: topic_arn,
        }
        if config.delivery_tracking:
            outputs[resources.CONFIGURATION_SET_OUTPUT] = config.tracking_configuration_set
        template = {
            "Description": "The local twin's outputs (the resources are the twin's own)",
            "Resources": {"Twin": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        with warnings.catch_warnings():  # moto does not model the inert resource, and says so
            warnings.simplefilter("ignore", UserWarning)
            cloudformation.create_stack(StackName=config.stack_name, TemplateBody=json.dumps(template))

    # ------------------------------------------------------------------ the answers
    def identity_details(self, identity: str, details: dict[str, Any]) -> dict[str, Any]:
        if identity in self.mail_from:
            return {**details, "MailFromAttributes": self.mail_from[identity]}
        return details

    def mappings(self, queue_arn: str | None) -> list[dict[str, Any]]:
        return [
            {**mapping, "State": state()}
            for arn, mapping, state in self.event_sources
            if queue_arn in (None, arn)
        ]


_support: DoctorSupport | None = None


def install(support: DoctorSupport) -> None:
    """Answer the doctor's reads from ``support`` (idempotent; the last twin started wins).

    Call it before the twin's server first serves SES v2: the event destinations' route is read then.
    """
    global _support
    first = _support is None
    _support = support
    if not first:
        return
    original_identity = SESV2Response.get_email_identity
    original_mappings = LambdaResponse.list_event_source_mappings

    def get_email_identity(self: SESV2Response) -> str:
        answer = json.loads(original_identity(self))
        if _support is None:
            return json.dumps(answer)
        return json.dumps(_support.identity_details(self._get_param("EmailIdentity"), answer))

    def get_configuration_set_event_destinations(self: SESV2Response) -> str:
        name = self.path.rstrip("/").split("/")[-2]
        destinations = _support.event_destinations.get(name, []) if _support else []
        return json.dumps({"EventDestinations": destinations})

    def list_event_source_mappings(self: LambdaResponse) -> str:
        answer = json.loads(original_mappings(self))
        if _support is not None:
            queue_arn = self.querystring.get("EventSourceArn", [None])[0]
            answer["EventSourceMappings"] += _support.mappings(queue_arn)
        return json.dumps(answer)

    SESV2Response.get_email_identity = get_email_identity  # type: ignore[method-assign]
    SESV2Response.get_configuration_set_event_destinations = get_configuration_set_event_destinations  # type: ignore[attr-defined]
    LambdaResponse.list_event_source_mappings = list_event_source_mappings  # type: ignore[method-assign]
    # As for GetAccount (twin/ses.py): moto's catch-all "/v2/.*" is literal to its server's router.
    sesv2_urls.url_paths[
        "{0}/v2/email/configuration-sets/(?P<ConfigurationSetName>[^/]+)/event-destinations$"
    ] = SESV2Response.dispatch
