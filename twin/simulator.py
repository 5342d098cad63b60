"""SES's mailbox simulator and event publishing, as the twin emulates them.

On AWS, an email sent through the stack's configuration set makes SES publish events to EventBridge,
whose rule invokes the tracker Lambda.  Here, every email the twin's SES accepts through that
configuration set produces the same events (EventBridge-shaped, ``detail`` as SES writes it), handed
to the real tracker handler in process, a moment later and on another thread, as on AWS:

* a ``Send`` event for the email;
* per recipient, by the simulator's addresses (``name+label@`` works too):
  ``success@simulator.amazonses.com`` -> ``Delivery``; ``bounce@`` -> a permanent ``Bounce``;
  ``complaint@`` -> ``Delivery`` then ``Complaint``; ``suppressionlist@`` -> a permanent ``Bounce``
  of sub-type ``OnAccountSuppressionList`` (SES does not even try); ``ooto@`` -> ``Delivery`` (the
  auto-reply is not modelled); any other address -> ``Delivery`` (the twin has no real mailboxes).

An event that overtakes Mark Sent waits for the record inside the tracker (on the twin's scale,
:data:`RECORD_WAIT`); one it still cannot record is delivered again with backoff, as Lambda's
asynchronous invoke retries it; :attr:`MailboxSimulator.results` keeps each event's final outcome.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.config import StepmailConfig
from infra.resources import SES_DETAIL_TYPES
from stepmail.core.tracking import DeliveryRecordNotFoundError, RecordOutcome, RecordWait
from stepmail.handlers import tracker as tracker_handler
from stepmail.settings import TrackerSettings
from twin import patches
from twin.ses import SentEmail, TwinSes

SIMULATOR_DOMAIN = "simulator.amazonses.com"
#: The first delivery comes a moment after the send (as EventBridge's does); then retries back off.
FIRST_DELAY_SECONDS = 0.02
RETRY_DELAYS_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
#: The tracker's wait for Mark Sent, scaled down: the simulator delivers events one at a time.
RECORD_WAIT = RecordWait(deadline_seconds=0.3, first_pause_seconds=0.01, max_pause_seconds=0.05)

logger = logging.getLogger("twin.simulator")


@dataclass(frozen=True)
class Published:
    """One event the simulator published, and what became of it."""

    event: dict[str, Any]
    outcome: RecordOutcome | None  # None: never matched a record (retries exhausted) or failed
    attempts: int
    error: str | None = None

    @property
    def event_type(self) -> str:
        return str(self.event["detail"]["eventType"])

    @property
    def message_id(self) -> str:
        return str(self.event["detail"]["mail"]["messageId"])


def recipient_events(address: str) -> list[tuple[str, dict[str, Any]]]:
    """The (eventType, body) pairs SES would publish for one recipient of an accepted email."""
    local, _, domain = address.lower().rpartition("@")
    mailbox = local.split("+", 1)[0] if domain == SIMULATOR_DOMAIN else ""
    delivery = ("Delivery", {"recipients": [address], "smtpResponse": "250 2.6.0 Message received"})
    if mailbox == "bounce":
        return [("Bounce", _bounce(address, "General", "5.1.1", "smtp; 550 5.1.1 user unknown"))]
    if mailbox == "suppressionlist":
        return [
            (
                "Bounce",
                _bounce(
                    address,
                    "OnAccountSuppressionList",
                    "5.1.1",
                    "Amazon SES did not send the message "
                    "to this address because it is on the suppression list for your account.",
                ),
            )
        ]
    if mailbox == "complaint":
        return [
            delivery,
            (
                "Complaint",
                {"complainedRecipients": [{"emailAddress": address}], "complaintFeedbackType": "abuse"},
            ),
        ]
    return [delivery]


def _bounce(address: str, sub_type: str, status: str, diagnostic: str) -> dict[str, Any]:
    return {
        "bounceType": "Permanent",
        "bounceSubType": sub_type,
        "bouncedRecipients": [{"emailAddress": address, "status": status, "diagnosticCode": diagnostic}],
    }


class MailboxSimulator:
    """Publishes the events of each accepted email to the tracker, on its own thread."""

    def __init__(
        self, *, tracker: tracker_handler.Tracker, configuration_set: str, account: str, region: str
    ):
        self.configuration_set = configuration_set
        self.account = account
        self.region = region
        self.results: list[Published] = []
        self._tracker = tracker
        self._context = patches.lambda_context("tracker")
        self._due: list[tuple[float, int, int, dict[str, Any]]] = []  # (when, seq, attempt, event)
        self._seq = itertools.count()
        self._pending = 0
        self._cv = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="twin-ses-events", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the SES side
    def accepted(self, email: SentEmail) -> None:
        """Called by the twin's SES for every accepted email; only the tracked configuration set publishes."""
        if email.configuration_set != self.configuration_set:
            return
        events = [self._event(email, "Send", {})]
        for address in email.recipients:
            events += [self._event(email, kind, body) for kind, body in recipient_events(address)]
        with self._cv:
            for event in events:
                self._schedule(event, attempt=1, delay=FIRST_DELAY_SECONDS)
            self._cv.notify()

    def _event(self, email: SentEmail, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        key = {"Send": "send", "Delivery": "delivery", "Bounce": "bounce", "Complaint": "complaint"}[
            event_type
        ]
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": SES_DETAIL_TYPES[event_type],
            "source": "aws.ses",
            "account": self.account,
            "time": now,
            "region": self.region,
            "resources": [
                f"arn:aws:ses:{self.region}:{self.account}:configuration-set/{self.configuration_set}"
            ],
            "detail": {
                "eventType": event_type,
                "mail": {
                    "timestamp": email.sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "source": email.sender,
                    "sendingAccountId": self.account,
                    "messageId": email.message_id,
                    "destination": email.recipients,
                    "tags": {"ses:configuration-set": [self.configuration_set]},
                },
                key: {"timestamp": now, **body},
            },
        }

    # ------------------------------------------------------------------ the EventBridge + Lambda side
    def _schedule(self, event: dict[str, Any], *, attempt: int, delay: float) -> None:
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), attempt, event))
        self._pending += 1 if attempt == 1 else 0

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    self._cv.wait(timeout=self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopped:
                    return
                _, _, attempt, event = heapq.heappop(self._due)
            self._deliver(event, attempt)

    def _deliver(self, event: dict[str, Any], attempt: int) -> None:
        try:
            answer = tracker_handler.handler(event, self._context, tracker=self._tracker)
        except DeliveryRecordNotFoundError as error:
            if attempt <= len(RETRY_DELAYS_SECONDS):
                with self._cv:
                    self._schedule(event, attempt=attempt + 1, delay=RETRY_DELAYS_SECONDS[attempt - 1])
                return
            self._finish(Published(event, None, attempt, str(error)))
            return
        except Exception as error:
            logger.warning("tracker failed on an SES event: %s", error)
            self._finish(Published(event, None, attempt, f"{type(error).__name__}: {error}"))
            return
        self._finish(Published(event, RecordOutcome(answer["outcome"]), attempt))

    def _finish(self, published: Published) -> None:
        with self._cv:
            self.results.append(published)
            self._pending -= 1
            self._cv.notify_all()

    def wait_until_idle(self, timeout: float = 15.0) -> bool:
        """Wait until every event published so far has reached its final outcome."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(timeout=min(remaining, 0.05))
        return True

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        self._thread.join(timeout=5)


def install(*, config: StepmailConfig, table: str, ses: TwinSes, dynamodb: Any) -> MailboxSimulator | None:
    """Give the twin's SES the simulator, publishing to the real tracker (None when tracking is off).

    The functions' EMF metric lines are silenced too: in the twin they would only clutter stdout.
    """
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if not config.delivery_tracking:
        return None
    settings = TrackerSettings.from_environ(config.tracker_settings(lock_table=table).to_environment())
    simulator = MailboxSimulator(
        tracker=tracker_handler.build_tracker(settings, dynamodb_client=dynamodb, wait=RECORD_WAIT),
        configuration_set=config.tracking_configuration_set,
        account=ses.account_id,
        region=ses.region,
    )
    ses.on_accept = simulator.accepted
    return simulator
