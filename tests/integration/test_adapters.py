"""The boto3 adapters against moto (in process), and their error mapping to the contract."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from stepmail.adapters.s3 import S3AttachmentStore
from stepmail.adapters.ses import SesMailTransport, ses_error
from stepmail.core.errors import (
    AttachmentChangedError,
    AttachmentMissingError,
    MessageRejectedError,
    SenderNotVerifiedError,
    SendingPausedError,
    SesThrottledError,
    SesUnavailableError,
)
from stepmail.core.sending import StoredFile


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="attachments")
        yield s3


def test_store_reads_the_object_at_its_etag_with_its_content_type(bucket) -> None:
    # Given an object stored with a content type, and one without
    etag = bucket.put_object(
        Bucket="attachments", Key="k/a.txt", Body=b"\x00\xffdata", ContentType="text/plain; charset=utf-8"
    )["ETag"]
    bare = bucket.put_object(Bucket="attachments", Key="k/b.bin", Body=b"b")["ETag"]

    # When / Then each reads byte-exact, with the type the store keeps (the workflow no longer carries it)
    store = S3AttachmentStore("attachments", bucket)
    assert store.read("k/a.txt", etag) == StoredFile(b"\x00\xffdata", "text/plain; charset=utf-8")
    assert store.read("k/b.bin", bare).data == b"b"


def test_store_refuses_an_object_that_changed_since_it_was_resolved(bucket) -> None:
    # Given an ETag resolved before the object was overwritten
    etag = bucket.put_object(Bucket="attachments", Key="k/a.bin", Body=b"v1")["ETag"]
    bucket.put_object(Bucket="attachments", Key="k/a.bin", Body=b"v2")

    # When / Then
    with pytest.raises(AttachmentChangedError):
        S3AttachmentStore("attachments", bucket).read("k/a.bin", etag)


def test_store_reports_a_missing_object_by_name_and_location(bucket) -> None:
    with pytest.raises(
        AttachmentMissingError, match=r"attachment none\.bin was not found at s3://attachments/k/none\.bin"
    ):
        S3AttachmentStore("attachments", bucket).read("k/none.bin", '"x"')


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("TooManyRequestsException", 429, SesThrottledError),
        ("LimitExceededException", 400, SesThrottledError),
        ("MessageRejected", 400, MessageRejectedError),
        ("BadRequestException", 400, MessageRejectedError),
        ("MailFromDomainNotVerifiedException", 400, SenderNotVerifiedError),
        ("AccountSuspendedException", 400, SendingPausedError),
        ("SendingPausedException", 400, SendingPausedError),
        ("InternalFailure", 500, SesUnavailableError),
        ("ServiceUnavailable", 503, SesUnavailableError),
    ],
)
def test_ses_errors_map_to_the_contract(code: str, status: int, expected: type) -> None:
    assert type(ses_error(_client_error(code, status))) is expected


def test_the_default_ses_client_makes_one_attempt() -> None:
    # SES has no idempotency token: an SDK retry after a timeout could send the email twice
    assert SesMailTransport()._client.meta.config.retries["total_max_attempts"] == 1


def test_a_network_timeout_is_transient_and_attempted_once() -> None:
    # Given an SES client whose call times out
    class TimingOut:
        calls = 0

        def send_email(self, **request):
            TimingOut.calls += 1
            raise ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")

    # When / Then: transient for the workflow, one attempt only (SES has no idempotency token)
    with pytest.raises(SesUnavailableError):
        SesMailTransport(TimingOut()).send_raw(
            sender="a@example.com",
            to=["b@example.org"],
            cc=[],
            bcc=[],
            raw=b"x",
            configuration_set=None,
            tags={},
        )
    assert TimingOut.calls == 1
