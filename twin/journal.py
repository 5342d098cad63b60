"""The twin's journal: what the starter made of each queue message, and when the pipeline was done with it.

A message can be handled more than once: SQS redelivers it after a starter died, and the event
source may hand the same batch to two starters at once.  So the journal keeps, per SQS message id,

* its *history*: every result of every delivery, in the order they finished (a report, or the
  exception that sent the message back to the queue);
* its *outcome*: the first handled report (sent, duplicate, dead-lettered, rejected).  Once the
  pipeline has reached a handled outcome for a message, nothing that finishes later (a concurrent
  delivery that found the lock busy, a redelivery that found the email sent) can replace it;
* whether the poller has *deleted* it from the queue.

A message is *done* when it has an outcome and is no longer on the queue: only then can nothing
more happen to it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from stepmail.core.starting import StartReport

Result = StartReport | BaseException


@dataclass
class Journal:
    _history: dict[str, list[Result]] = field(default_factory=lambda: defaultdict(list))
    _outcomes: dict[str, StartReport] = field(default_factory=dict)
    _deleted: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, queue_message_id: str, result: Result) -> None:
        """One delivery's result: a report (a handled outcome) or the exception it raised."""
        with self._lock:
            self._history[queue_message_id].append(result)
            if isinstance(result, StartReport):
                self._outcomes.setdefault(queue_message_id, result)

    def deleted(self, queue_message_id: str) -> None:
        """The poller deleted the message from the queue (its delivery's answer said it was handled)."""
        with self._lock:
            self._deleted.add(queue_message_id)

    def history(self, queue_message_id: str) -> list[Result]:
        with self._lock:
            return list(self._history.get(queue_message_id, ()))

    def results(self) -> list[Result]:
        """Every delivery's result, of every message."""
        with self._lock:
            return [result for history in self._history.values() for result in history]

    def outcome(self, queue_message_id: str) -> StartReport | None:
        """The first handled outcome, or None while the message has none."""
        with self._lock:
            return self._outcomes.get(queue_message_id)

    def done(self, queue_message_id: str) -> bool:
        """True when the message has a handled outcome and has left the queue."""
        with self._lock:
            return queue_message_id in self._outcomes and queue_message_id in self._deleted

    def is_deleted(self, queue_message_id: str) -> bool:
        with self._lock:
            return queue_message_id in self._deleted
