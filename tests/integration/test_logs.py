"""No email addresses, subjects or bodies in the logs of a full run — unless asked for."""

from __future__ import annotations

import json
import logging

import pytest

SECRET_ADDRESS = "secret.person@customer.example"
SECRET_SUBJECT = "TOPSECRETSUBJECT"
SECRET_BODY = "TOPSECRETBODY"


def _full_run(twin) -> None:
    """Sent, duplicate, lock busy, invalid with the address in its reason, dead-lettered by SES."""
    message = {
        "mailKey": "log-1",
        "to": [f"Secret Person <{SECRET_ADDRESS}>"],
        "subject": SECRET_SUBJECT,
        "body": SECRET_BODY,
        "html": f"<p>{SECRET_BODY}</p>",
    }
    twin.wait_for(*twin.send_batch([json.dumps(message)] * 2))
    twin.wait_for(twin.send(message))
    twin.wait_for(
        twin.send_raw(json.dumps({"mailKey": "log-2", "to": [f"{SECRET_ADDRESS}@"], "body": SECRET_BODY}))
    )
    twin.twin.faults.add("ses.send:reject:times=1")
    twin.wait_for(twin.send({**message, "mailKey": "log-3"}))
    twin.idle()


@pytest.mark.parametrize("include", [False, True], ids=["default", "log_email_content"])
def test_logs_carry_email_content_only_when_switched_on(make_twin, capfd, caplog, include: bool) -> None:
    # Given the handlers logging at DEBUG, with content logging at its default (off) or switched on
    caplog.set_level(logging.DEBUG, logger="stepmail")
    twin = make_twin(handler_log_level="DEBUG", visibility_timeout_seconds=1, log_email_content=include)

    # When a run covering every outcome happens
    _full_run(twin)

    # Then the logs say what happened...
    out, err = capfd.readouterr()
    # every field of every record (Powertools puts `extra=` fields on the record), and what was printed
    logs = out + err + "\n".join(str(record.__dict__) for record in caplog.records)
    assert "message handled" in logs and "email sent" in logs and "log-1" in logs
    # ...and carry no subject or body, and an address only when content logging is on
    assert SECRET_SUBJECT not in logs and SECRET_BODY not in logs
    assert (SECRET_ADDRESS in logs) is include
