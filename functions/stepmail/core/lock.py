"""The de-duplication lock: one email per ``mailKey`` + recipient set.

The key keeps addresses out of the table: it is the ``mailKey`` followed by a hash of the normalized
(lower-cased, sorted, de-duplicated) envelope recipients.  The same message delivered twice, or the
same ``mailKey`` with its recipients listed in another order or case, maps to the same key; the same
``mailKey`` to another recipient set is another email.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from stepmail.core.addresses import recipient_key


def recipients_digest(recipients: Iterable[str]) -> str:
    """A stable, address-free fingerprint of a recipient set."""
    normalized = sorted({recipient_key(address) for address in recipients})
    return hashlib.sha256("\n".join(normalized).encode("utf-8")).hexdigest()[:32]


def lock_key(mail_key: str, recipients: Iterable[str]) -> str:
    return f"{mail_key}#{recipients_digest(recipients)}"


@dataclass(frozen=True)
class LockTerms:
    """The times a run writes on its lock (epoch seconds, as the strings DynamoDB's ``N`` wants).

    ``now`` is taken once, when the run starts; a run lasts at most the workflow timeout, which is
    shorter than the lease, so a live run's lease never looks expired to another run.
    """

    key: str
    now: int
    lease_seconds: int
    dedup_window_seconds: int

    def as_state(self) -> dict[str, str]:
        return {
            "key": self.key,
            "now": str(self.now),
            "leaseExpiresAt": str(self.now + self.lease_seconds),
            "sentExpiresAt": str(self.now + self.dedup_window_seconds),
        }
