"""The error contract shared by the Lambdas and the state machine.

Step Functions matches a Lambda failure by the exception's class name, so the names of the classes
below are written verbatim in ``statemachine/stepmail.asl.json`` (``ErrorEquals``).  A unit test
checks that every error name in the ASL is either one of these classes or one of the AWS names
listed in :data:`AWS_ERROR_NAMES`, and that every class is handled by the ASL or the starter.

Three families:

* permanent: the email can never be sent as requested; the workflow dead-letters it at once;
* transient: worth retrying with backoff inside the run, then worth retrying later from the queue;
* workflow outcomes: names of the ASL's ``Fail`` states, read back by the starter.
"""

from __future__ import annotations


class StepmailError(Exception):
    """Base class for every error stepmail raises on purpose."""

    #: ``True`` when retrying cannot help.
    permanent: bool = False

    @property
    def reason(self) -> str:
        """A sentence for the dead-letter queue and the logs (never contains the email body)."""
        return str(self) or type(self).__name__


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


class AttachmentChangedError(TransientError):
    """The attachment changed between Resolve Attachments and Render And Send (ETag mismatch).

    Not retried inside the run (the pinned ETag would fail again); the message goes back to the queue
    and the next run resolves the new version.
    """


# ---------------------------------------------------------------- workflow outcomes (Fail states)
class WorkflowOutcome(StepmailError):
    """How a run ended when it did not send: the Fail states' ``Error`` names, raised by the starter."""


class DeadLetteredError(WorkflowOutcome):
    """The workflow sent the message to the dead-letter queue with its reason: handled, do not retry."""


class LockBusyError(WorkflowOutcome):
    """Another run holds the lock for this email and its lease has not expired: retry later.

    The run ends in the "Lock Busy" Pass state (outcome ``busy``, not a failed run); the starter
    raises this so the record goes back to the queue."""


class RetryLaterError(WorkflowOutcome):
    """A transient failure outlasted the in-run retries: the lock was released, retry from the queue."""


PERMANENT_ERRORS: tuple[type[PermanentError], ...] = (
    InvalidMessageError,  # a last-line check while rendering; the starter validates first
    AttachmentMissingError,
    MessageTooLargeError,
    MessageRejectedError,
    SenderNotVerifiedError,
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
        # Step Functions' own names.
        "States.ALL",
        "States.Timeout",
        "States.TaskFailed",
        # lambda:invoke integration (service-side failures of the invoke itself).
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
        # dynamodb:* optimized integrations.
        "DynamoDB.ConditionalCheckFailedException",
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
