"""The error contract shared by the Lambdas and the state machine.

Step Functions matches a Lambda failure by the exception's class name, so the names of the classes
below are written verbatim in ``statemachine/stepmail.asl.json`` (``ErrorEquals``).  A unit test
checks that every error name in the ASL is either one of these classes or one of the AWS names
listed in :data:`AWS_ERROR_NAMES`, and that every class is handled by the ASL or the starter.

Three families:

* permanent: the email can never be sent as requested; the workflow dead-letters it at once;
* transient: worth retrying with backoff inside the run, then worth retrying later from the queue;
* outcomes the starter raises so that SQS delivers the message again (lock busy, retry later).

A reason is at most :data:`MAX_REASON_CHARS` characters: the sender's errors become the error cause a
run carries, and the run's size budget (:mod:`stepmail.core.budget`) counts on that bound.
"""

from __future__ import annotations

MAX_REASON_CHARS = 1_000


class StepmailError(Exception):
    """Base class for every error stepmail raises on purpose."""

    #: ``True`` when retrying cannot help.
    permanent: bool = False

    @property
    def reason(self) -> str:
        """A sentence for the dead-letter queue and the logs (never contains the email body)."""
        return _bounded(str(self)) or type(self).__name__


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "\u2026"


def bounded_error(error: BaseException) -> StepmailError:
    """``error`` as the contract's error with a bounded reason, to raise from a Lambda handler.

    A contract error keeps its class (the ASL matches it by name); anything else (a bug, a library's
    error) becomes :class:`SenderFailedError` naming it.  Raised ``from None`` by the handler, it carries
    a one-frame stack trace: the error cause a run carries stays within its budget.
    """
    if isinstance(error, StepmailError):
        return type(error)(error.reason)
    return SenderFailedError(_bounded(f"{type(error).__name__}: {error}"))


# ---------------------------------------------------------------- permanent: dead-letter at once
class PermanentError(StepmailError):
    permanent = True


class InvalidMessageError(PermanentError):
    """The queue message is not a valid stepmail message (bad JSON, schema, unsafe key, sender...)."""


class AttachmentMissingError(PermanentError):
    """An attachment listed in ``attachedFileKeys`` does not exist under ``<mailKey>/``."""


class MessageTooLargeError(PermanentError):
    """The encoded MIME message would exceed the SES v2 limit."""


class MessageRejectedError(PermanentError):
    """SES rejected the message (bad content, invalid recipient, suppressed...)."""


class SenderNotVerifiedError(PermanentError):
    """SES does not allow sending from this address (identity not verified or not authorized)."""


class SendingNotAuthorizedError(PermanentError):
    """SES refused the send as not authorized (AccessDenied): the sender's IAM policy does not allow
    this sender, configuration set or (in the SES sandbox) recipient identity."""


class SendingPausedError(PermanentError):
    """Sending is paused for the account or the configuration set; redrive once it is resumed."""


class TemplateError(PermanentError):
    """The message's template does not exist, needs a variable ``templateData`` lacks, or fails to render."""


# ---------------------------------------------------------------- transient: retry with backoff
class TransientError(StepmailError):
    permanent = False


class SesThrottledError(TransientError):
    """SES refused because the sending rate or daily quota was exceeded."""


class SesUnavailableError(TransientError):
    """SES failed with a server error, a timeout or a connection error."""


class AttachmentUnavailableError(TransientError):
    """S3 failed with a server error or throttling while streaming an attachment."""


class SendRateFullError(TransientError):
    """Every second of a run's waiting budget was taken by other sends (the workflow's pacing): the
    message goes back to the queue (the name the "Send Rate Full" state gives the run's error)."""


class AttachmentChangedError(TransientError):
    """The attachment changed between Resolve Attachments and Render And Send (ETag mismatch).

    Not retried inside the run (the pinned ETag would fail again); the message goes back to the queue
    and the next run resolves the new version.
    """


class SenderFailedError(StepmailError):
    """The sender failed for a reason outside the contract (a bug, a library's error): the workflow gives
    the message back to the queue, and after the queue's last delivery the starter dead-letters it with
    this reason."""


# ---------------------------------------------------------------- outcomes the starter raises
class WorkflowOutcome(StepmailError):
    """A run ended without sending and the message must come back from the queue: the starter raises
    one of these so SQS delivers it again (see :class:`stepmail.core.contract.RunOutcome`)."""


class LockBusyError(WorkflowOutcome):
    """Another run holds the lock for this email and its lease has not expired: retry later (the run
    ended in the "Lock Busy" state, outcome ``busy``)."""


class RetryLaterError(WorkflowOutcome):
    """A transient failure outlasted the in-run retries: the lock was released, retry from the queue
    (the run ended in the "Retry Later" state, outcome ``retry-later``)."""


PERMANENT_ERRORS: tuple[type[PermanentError], ...] = (
    InvalidMessageError,  # a last-line check while rendering; the starter validates first
    AttachmentMissingError,
    MessageTooLargeError,
    MessageRejectedError,
    SenderNotVerifiedError,
    SendingNotAuthorizedError,
    SendingPausedError,
    TemplateError,
)
"""Permanent errors the sender Lambda can raise (the ASL catches each by name)."""

TRANSIENT_ERRORS: tuple[type[TransientError], ...] = (
    SesThrottledError,
    SesUnavailableError,
    AttachmentUnavailableError,
)
"""Transient errors the ASL retries inside the run."""

AWS_ERROR_NAMES: frozenset[str] = frozenset(
    {
        # Step Functions' own names (States.DataLimitExceeded and States.Runtime are never caught:
        # the starter handles them, see stepmail.core.starting.UNCATCHABLE_ERRORS).
        "States.ALL",
        "States.Timeout",
        "States.TaskFailed",
        # lambda:invoke integration (service-side failures of the invoke itself).
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",  # AWS's guidance: retry it with the other three
        "Lambda.Unknown",
        # dynamodb:* optimized integrations.
        # AWS's documentation spells DynamoDB errors both ways (the SDK's class and the error code):
        # where the ASL must tell one error from the rest, it lists both.
        "DynamoDB.ConditionalCheckFailedException",
        "DynamoDB.ConditionalCheckFailed",
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.InternalServerErrorException",
        "DynamoDB.AmazonDynamoDBException",
        # aws-sdk:s3:headObject.
        "S3.NoSuchKeyException",
        "S3.S3Exception",
        "S3.SdkClientException",
        # sqs:sendMessage optimized integration.
        "SQS.AmazonSQSException",
        "SQS.SdkClientException",
    }
)
"""AWS error names the ASL may use besides our classes (as AWS spells them)."""
