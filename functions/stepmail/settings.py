"""Lambda settings: the environment each function is deployed with, validated at cold start.

The field aliases are the environment variable names.  ``infra`` builds each function's
``environment=`` from these same models (:meth:`to_environment`), and the local twin does the same,
so a name exists once from the configuration model to the running handler.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    log_email_content: bool = Field(default=False, alias="LOG_EMAIL_CONTENT")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]):  # type: ignore[no-untyped-def]
        return cls.model_validate(dict(environ))

    def to_environment(self) -> dict[str, str]:
        """The ``environment=`` mapping of the function (all values as strings)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump(by_alias=True).items():
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                out[name] = ",".join(value)
            else:
                out[name] = str(value)
        return out


class StarterSettings(_Settings):
    """Environment of the starter Lambda."""

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    sender_identities: tuple[str, ...] = Field(alias="SENDER_IDENTITIES", min_length=1)
    default_sender: str = Field(alias="DEFAULT_SENDER")
    configuration_sets: tuple[str, ...] = Field(default=(), alias="CONFIGURATION_SETS")
    lease_seconds: int = Field(alias="LEASE_SECONDS", gt=0)
    dedup_window_seconds: int = Field(alias="DEDUP_WINDOW_SECONDS", gt=0)
    lock_table: str = Field(alias="LOCK_TABLE")
    #: The queue's maxReceiveCount: on the last delivery the starter dead-letters with the reason.
    max_receive_count: int = Field(alias="MAX_RECEIVE_COUNT", ge=1)
    failure_note_ttl_seconds: int = Field(alias="FAILURE_NOTE_TTL_SECONDS", gt=0)
    #: Pacing (stepmail.core.pacing): the mail queue (for redeliveries), the cap (0: none), how often
    #: the SES quota is read again, how many seconds a run may wait for a slot.
    mail_queue_url: str = Field(alias="MAIL_QUEUE_URL")
    ses_max_send_rate: float = Field(default=0, alias="SES_MAX_SEND_RATE", ge=0)
    quota_refresh_seconds: int = Field(alias="QUOTA_REFRESH_SECONDS", gt=0)
    pacing_max_waits: int = Field(alias="PACING_MAX_WAITS", ge=0)
    retry_later_base_seconds: int = Field(alias="RETRY_LATER_BASE_SECONDS", gt=0)
    retry_later_max_seconds: int = Field(alias="RETRY_LATER_MAX_SECONDS", gt=0)

    @field_validator("sender_identities", "configuration_sets", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value


class SenderSettings(_Settings):
    """Environment of the sender Lambda."""

    attachments_bucket: str = Field(alias="ATTACHMENTS_BUCKET")
    default_configuration_set: str = Field(default="", alias="DEFAULT_CONFIGURATION_SET")


class TrackerSettings(_Settings):
    """Environment of the tracker Lambda (SES delivery events -> the email's record)."""

    lock_table: str = Field(alias="LOCK_TABLE")
    index_ttl_seconds: int = Field(alias="INDEX_TTL_SECONDS", gt=0)
