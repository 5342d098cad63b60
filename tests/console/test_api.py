"""The console's JSON API on a running twin: runs, their graph and path, the outbox and the DLQ."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.console.conftest import MISSING, TERMS, WELCOME, Scenario, page_token
from twin.console.graph import END, START, build_graph, cluster_id

ASL = json.loads((Path(__file__).parents[2] / "statemachine" / "stepmail.asl.json").read_text())


def detail(scenario: Scenario, run: dict) -> dict:
    return scenario.api(f"/executions/{quote(run['executionArn'], safe='')}")


# ---------------------------------------------------------------------------- the graph
def test_graph_has_every_state_of_the_asl_file_with_its_exits() -> None:
    # Given the ASL file
    # When it is turned into the console's graph
    graph = build_graph(ASL)

    # Then every state (the Map's own included) is a node, in a box with its iterations
    ids = {node["id"] for node in graph["nodes"]}
    nested = ASL["States"]["Resolve Attachments"]["ItemProcessor"]["States"]
    assert ids == {*ASL["States"], *nested, START, END, cluster_id("Resolve Attachments")}
    parents = {node["id"]: node["parent"] for node in graph["nodes"]}
    assert parents["Head Attachment"] == parents["Resolve Attachments"] == cluster_id("Resolve Attachments")
    # And every exit is an edge of its kind: Next, Choice, Default, Catch (with its errors), iterate
    edges = {(e["source"], e["target"], e["kind"]): e["label"] for e in graph["edges"]}
    assert (START, "Acquire Lock", "next") in edges
    assert ("Already Sent?", "Skip Duplicate", "choice") in edges
    assert edges[("Already Sent?", "Lock Busy", "default")] == "default"
    assert edges[("Resolve Attachments", "Has A Cause?", "catch")] == "States.ALL"
    assert ("Dead-Letter Or Retry?", "Send To Dead-Letter Queue", "choice") in edges
    assert ("Resolve Attachments", "Head Attachment", "iterate") in edges
    assert ("Missing Or Unavailable?", "Attachment Not Found", "choice") in edges
    assert ("Dead-Lettered", END, "next") in edges
    states = {**ASL["States"], **nested}
    catches = sum(len(state.get("Catch", [])) for state in states.values())
    assert sum(1 for e in graph["edges"] if e["kind"] == "catch") == catches


def test_graph_endpoint_serves_the_twins_definition(scenario: Scenario) -> None:
    # Given a running twin
    # When the page asks for the graph
    graph = scenario.api("/graph")

    # Then it is the graph of the definition the twin runs (the ASL file with its placeholders filled)
    assert {node["id"] for node in graph["nodes"]} == {node["id"] for node in build_graph(ASL)["nodes"]}


# ---------------------------------------------------------------------------- executions
def test_executions_list_newest_first_with_status_recipients_and_duration(scenario: Scenario) -> None:
    # Given a sent email, its duplicate, a dead-lettered one and one sent after a retry
    # When the console lists the runs
    listing = scenario.api("/executions")

    # Then each run is there, newest first, with what it was and how it ended
    runs = listing["executions"]
    assert [run["startDate"] for run in runs] == sorted((run["startDate"] for run in runs), reverse=True)
    by_status = sorted((run["mailKey"], run["status"]) for run in runs)
    assert by_status == [
        ("invoice-2", "dead-lettered"),
        ("retry-3", "succeeded"),
        ("welcome-1", "duplicate"),
        ("welcome-1", "succeeded"),
    ]
    welcome = next(run for run in runs if run["status"] == "duplicate")
    assert welcome["recipients"] == ["Jane <jane@example.org>", "ops@example.org"]
    assert all(run["durationMs"] is not None and run["durationMs"] >= 0 for run in runs)
    assert listing["counts"]["succeeded"] == 2 and listing["counts"]["dead-lettered"] == 1
    dead = next(run for run in runs if run["status"] == "dead-lettered")
    assert dead["error"] == "AttachmentMissingError" and "invoice.pdf was not found" in dead["cause"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "duplicate"}, [("welcome-1", "duplicate")]),
        ({"q": "INVOICE"}, [("invoice-2", "dead-lettered")]),
        ({"q": "carol@"}, [("retry-3", "succeeded")]),
        ({"status": "succeeded", "q": "welcome"}, [("welcome-1", "succeeded")]),
        ({"status": "failed"}, []),
    ],
)
def test_executions_filters(scenario: Scenario, params: dict, expected: list) -> None:
    # Given the four runs
    # When the list is filtered by status and/or text (mail key or recipient, any case)
    runs = scenario.api("/executions", **params)["executions"]

    # Then only the matching runs are listed, while the total still counts them all
    assert [(run["mailKey"], run["status"]) for run in runs] == expected
    assert scenario.api("/executions", **params)["total"] == 4


def test_sent_run_shows_its_path_map_iterations_and_state_data(scenario: Scenario) -> None:
    # Given the sent welcome email's run
    run = detail(scenario, scenario.run_of("welcome-1", "succeeded"))

    # Then its path is the happy path, into the Map's iteration and out of it
    path = {tuple(pair) for pair in run["path"]}
    halves = [half for half in ("First Half", "Second Half") if ("Which Half Of The Second?", half) in path]
    assert len(halves) == 1  # whichever half of a second the run took its slot in
    (half,) = halves
    assert {
        (START, "Acquire Lock"),
        ("Acquire Lock", "Resolve Attachments"),
        ("Resolve Attachments", "Head Attachment"),
        ("Resolve Attachments", "Find A Send Window"),
        ("Find A Send Window", "Which Half Of The Second?"),
        ("Which Half Of The Second?", half),
        (half, "Take A Send Slot"),
        ("Take A Send Slot", "Render And Send"),
        ("Render And Send", "Mark Sent"),
        ("Mark Sent", "Email Sent"),
        ("Email Sent", END),
    } == path
    # And each state has its input, output, attempts and time; the Map's one iteration succeeded
    visits = {visit["name"]: visit for visit in run["visits"]}
    head = visits["Head Attachment"]
    assert (head["map"], head["iteration"]) == ("Resolve Attachments", 0)
    assert head["input"] == {"name": "terms.txt", "key": "welcome-1/terms.txt"}
    assert head["output"]["size"] == len(TERMS) and set(head["output"]) == {"size", "etag"}
    assert visits["Render And Send"]["attempts"] == 1 and visits["Render And Send"]["errors"] == []
    assert visits["Email Sent"]["output"]["outcome"] == "sent"
    assert all(visit["durationMs"] >= 0 for visit in run["visits"])
    assert run["iterations"] == [{"map": "Resolve Attachments", "index": 0, "status": "succeeded"}]
    assert run["input"]["message"]["subject"] == WELCOME["subject"]


def test_duplicate_run_takes_the_choice_to_skip(scenario: Scenario) -> None:
    # Given the duplicate's run
    run = detail(scenario, scenario.run_of("welcome-1", "duplicate"))

    # Then Acquire Lock failed its condition (caught, not retried) and the Choice skipped the send
    path = {tuple(pair) for pair in run["path"]}
    assert {("Acquire Lock", "Read Lock"), ("Already Sent?", "Skip Duplicate"), ("Skip Duplicate", END)} <= (
        path
    )
    acquire = next(visit for visit in run["visits"] if visit["name"] == "Acquire Lock")
    assert acquire["attempts"] == 1
    assert [error["error"] for error in acquire["errors"]] == ["DynamoDB.ConditionalCheckFailedException"]
    assert "Render And Send" not in {visit["name"] for visit in run["visits"]}


def test_dead_lettered_run_shows_the_catch_and_the_error(scenario: Scenario) -> None:
    # Given the run whose attachment is missing
    run = detail(scenario, scenario.run_of("invoice-2", "dead-lettered"))

    # Then the failed iteration carries the S3 error, found the file missing (not retried), and the
    # path follows the failure path to the DLQ
    head = next(visit for visit in run["visits"] if visit["name"] == "Head Attachment")
    assert [error["error"] for error in head["errors"]] == ["S3.NoSuchKeyException"]
    assert run["iterations"] == [{"map": "Resolve Attachments", "index": 0, "status": "failed"}]
    assert "Head Attachment Again" not in {visit["name"] for visit in run["visits"]}
    path = {tuple(pair) for pair in run["path"]}
    assert ("Resolve Attachments", "Has A Cause?") in path
    assert ("Dead-Letter Or Retry?", "Send To Dead-Letter Queue") in path
    assert ("Send To Dead-Letter Queue", "Dead-Lettered") in path
    assert ("Resolve Attachments", "Find A Send Window") not in path


def test_retried_state_counts_its_attempts_and_errors(scenario: Scenario) -> None:
    # Given the run whose first send failed with an SES service error
    run = detail(scenario, scenario.run_of("retry-3", "succeeded"))

    # Then Render And Send shows two attempts and the error, and the run still succeeded
    send = next(visit for visit in run["visits"] if visit["name"] == "Render And Send")
    assert send["attempts"] == 2
    assert [error["error"] for error in send["errors"]] == ["SesUnavailableError"]
    assert run["outcome"] == "sent"


def test_unknown_execution_and_route_are_json_404s(scenario: Scenario) -> None:
    # When the console is asked for what does not exist
    missing = requests.get(f"{scenario.console}/api/executions/arn:nope", timeout=10)
    unknown = requests.get(f"{scenario.console}/api/nothing", timeout=10)

    # Then it answers 404 with a JSON reason, and the AWS endpoint on the same port is untouched
    assert missing.status_code == unknown.status_code == 404
    assert "no execution" in missing.json()["message"]
    assert scenario.harness.sqs.list_queues()["QueueUrls"]


# ---------------------------------------------------------------------------- the page
def test_page_and_its_layout_library_are_served_locally(scenario: Scenario) -> None:
    # When the browser loads the page and its scripts
    page = requests.get(scenario.console, timeout=10)
    dagre = requests.get(f"{scenario.console}/static/vendor/dagre.min.js", timeout=10)
    escape = requests.get(f"{scenario.console}/static/../app.py", timeout=10)

    # Then they come from the twin itself (no CDN), and nothing outside static/ is served
    assert page.status_code == 200 and "/console/static/console.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")
    assert dagre.status_code == 200 and "dagre" in dagre.text[:200], "run `make setup` to vendor dagre"
    assert escape.status_code == 404


# ---------------------------------------------------------------------------- the outbox
def test_outbox_renders_each_sent_email(scenario: Scenario) -> None:
    # Given two emails sent (the welcome email once, despite its duplicate)
    emails = scenario.api("/outbox")["emails"]
    assert sorted(email["subject"] for email in emails) == ["Later", "Welcome aboard"]
    welcome = next(email for email in emails if email["subject"] == "Welcome aboard")

    # When one is opened
    email = scenario.api(f"/outbox/{welcome['messageId']}")

    # Then its headers, text, HTML flag and attachments (with sizes) are shown
    headers = dict(email["headers"])
    assert headers["Subject"] == "Welcome aboard"
    assert headers["To"] == "Jane <jane@example.org>" and headers["Cc"] == "ops@example.org"
    assert email["text"].strip() == WELCOME["body"]
    assert email["hasHtml"] is True
    assert email["attachmentList"] == [
        {"index": 0, "filename": "terms.txt", "contentType": "text/plain", "size": len(TERMS)}
    ]


def test_outbox_html_is_sandboxed_and_attachments_download(scenario: Scenario) -> None:
    # Given the welcome email
    (welcome,) = [e for e in scenario.api("/outbox")["emails"] if e["subject"] == "Welcome aboard"]
    base = f"{scenario.console}/api/outbox/{welcome['messageId']}"

    # When its HTML part and its attachment are fetched
    html = requests.get(f"{base}/html", timeout=10)
    download = requests.get(f"{base}/attachments/0", timeout=10)

    # Then the HTML comes with a sandbox policy (its script cannot run) and the file is the original
    assert "<h1>Hello Jane</h1>" in html.text
    assert html.headers["Content-Security-Policy"].startswith("sandbox;")
    assert "script-src" not in html.headers["Content-Security-Policy"]
    assert download.content == TERMS
    assert download.headers["Content-Disposition"] == "attachment; filename=terms.txt"
    assert requests.get(f"{base}/attachments/7", timeout=10).status_code == 404


# ---------------------------------------------------------------------------- the DLQ
def test_dlq_lists_each_message_with_its_reason(scenario: Scenario) -> None:
    # Given the dead-lettered invoice
    # When the console lists the DLQ (three times: reading it must not consume it or change it)
    first = scenario.api("/dlq")
    scenario.api("/dlq")
    listing = scenario.api("/dlq")
    (letter,) = listing["messages"]

    # Then the letter names its mail key, its source, the error and the run that failed
    assert letter["mailKey"] == "invoice-2"
    assert letter["source"] == "workflow"
    assert letter["error"] == "AttachmentMissingError" and "invoice.pdf was not found" in letter["reason"]
    assert letter["executionArn"] == scenario.run_of("invoice-2", "dead-lettered")["executionArn"]
    assert letter["original"]["subject"] == MISSING["subject"]
    # And the delivery count is the letter's own, the same at every read; every letter was seen
    assert letter["deliveries"] == 1 and first["messages"] == listing["messages"]
    assert (listing["heldAtStart"], listing["seen"], listing["unseen"]) == (1, 1, 0)


# ---------------------------------------------------------------------------- who may drive it
def _token(scenario: Scenario) -> str:
    token = page_token(scenario.console)
    assert token != "__STEPMAIL_CONSOLE_TOKEN__"
    return token


def _origin(scenario: Scenario) -> str:
    return scenario.console.removesuffix("/console")


def _dlq_count(scenario: Scenario) -> int:
    return len(scenario.api("/dlq")["messages"])


def test_the_page_itself_sends_a_redrive_that_names_nothing_and_is_told_why(scenario: Scenario) -> None:
    # Given the console's own page (its origin, its token) asking for a redrive without a selection
    headers = {"Origin": _origin(scenario), "X-Stepmail-Token": _token(scenario)}
    response = requests.post(f"{scenario.console}/api/dlq/redrive", json={}, headers=headers, timeout=30)

    # Then it is a 400 that says how to name the letters, and the DLQ is as it was
    assert response.status_code == 400
    assert '{"all": true}' in response.json()["message"]
    assert _dlq_count(scenario) == 1


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("cross-origin", {"headers": {"Origin": "http://evil.example"}}),
        ("another loopback port", {"headers": {"Origin": "http://127.0.0.1:1"}}),
        ("no origin", {"headers": {"Origin": None}}),
        ("text/plain", {"headers": {"Content-Type": "text/plain"}}),
        ("form", {"headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("missing token", {"headers": {"X-Stepmail-Token": None}}),
        ("wrong token", {"headers": {"X-Stepmail-Token": "guessed"}}),
        ("rebinding host", {"headers": {"Host": "attacker.example:4750"}}),
    ],
)
def test_a_redrive_not_sent_by_the_page_is_refused(scenario: Scenario, case: str, change: dict) -> None:
    # Given a redrive of everything that the page would send (its origin, JSON, its token)...
    headers: dict[str, str | None] = {
        "Origin": _origin(scenario),
        "Content-Type": "application/json",
        "X-Stepmail-Token": _token(scenario),
    }
    # ...with one thing changed
    headers.update(change["headers"])
    sent = {name: value for name, value in headers.items() if value is not None}

    # When it is posted
    response = requests.post(
        f"{scenario.console}/api/dlq/redrive", data='{"all": true}', headers=sent, timeout=30
    )

    # Then it is refused with a 403 and a reason, and the dead letter is still there
    assert response.status_code == 403, case
    assert response.json()["error"] == "Forbidden" and response.json()["message"]
    assert _dlq_count(scenario) == 1


def test_a_dns_rebinding_page_cannot_read_the_outbox_or_the_page(scenario: Scenario) -> None:
    # Given a page whose host name was rebound to 127.0.0.1: its requests name its own host
    port = _origin(scenario).rsplit(":", 1)[1]
    foreign = {"Host": f"rebind.attacker.example:{port}"}

    # When it reads the outbox, an email, or the page (with its token)
    outbox = requests.get(f"{scenario.console}/api/outbox", headers=foreign, timeout=10)
    page = requests.get(scenario.console, headers=foreign, timeout=10)

    # Then every read is refused; the twin's own names for itself are answered
    assert outbox.status_code == page.status_code == 403
    assert "stepmail-console-token" not in page.text
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert requests.get(f"{scenario.console}/api/outbox", headers={"Host": host}, timeout=10).ok
    other_port = {"Host": f"127.0.0.1:{int(port) + 1}"}
    assert requests.get(f"{scenario.console}/api/outbox", headers=other_port, timeout=10).status_code == 403


def test_a_cross_origin_read_is_refused(scenario: Scenario) -> None:
    # When a page of another origin fetches the outbox (a browser names it in Origin)
    response = requests.get(
        f"{scenario.console}/api/outbox", headers={"Origin": "http://127.0.0.1:9"}, timeout=10
    )
    # Then it is refused, and no CORS header would let the browser show it anyway
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_page_is_not_cached_or_framed(scenario: Scenario) -> None:
    page = requests.get(scenario.console, timeout=10)
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
