"""The twin's console: executions drawn from the ASL, the outbox and the DLQ, on the twin's own port.

``stepmail local serve`` prints its address (``http://127.0.0.1:<port>/console``).
"""

from twin.console.app import middleware

__all__ = ["middleware"]
