"""The console in a real browser: headless Chromium (Debian's) driven by Playwright.

Clicks through the runs list, one run's graph, the outbox and the DLQ, checks what is shown, and saves
screenshots under ``test-artifacts/console/``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.console.conftest import TERMS, Scenario

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "console"
#: Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make setup` installs it"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == [], f"the page threw: {errors}"


def test_runs_list_and_a_runs_graph(scenario: Scenario, page: Page) -> None:
    # Given a sent email, its duplicate, a dead-lettered one and one retried
    # When the console opens
    page.goto(scenario.console)

    # Then the runs are listed with their statuses
    rows = page.locator("#executions tbody tr")
    expect(rows).to_have_count(4)
    statuses = page.locator("#executions .badge").all_inner_texts()
    assert sorted(statuses) == ["dead-lettered", "duplicate", "succeeded", "succeeded"]
    page.screenshot(path=ARTIFACTS / "executions.png", full_page=True)

    # When filtered to dead-lettered runs
    page.select_option("#status-filter", "dead-lettered")

    # Then only the invoice remains
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-mail-key", "invoice-2")
    page.select_option("#status-filter", "")
    page.fill("#text-filter", "welcome")
    expect(rows).to_have_count(2)

    # When the sent welcome email's run is opened
    page.locator("#executions tbody tr", has=page.locator(".badge.succeeded")).first.click()

    # Then its state machine is drawn by dagre, every state a node, the path taken highlighted
    graph = page.locator("svg.graph[data-layout=dagre]")
    expect(graph).to_be_visible()
    expect(graph.locator("g.node")).to_have_count(len(scenario.api("/graph")["nodes"]) - 1)  # boxes apart
    expect(graph.locator("g.cluster")).to_have_count(1)
    taken = graph.locator("g.edge[data-taken=true]")
    expect(taken).to_have_count(11)
    expect(graph.locator('g.edge[data-source="Mark Sent"][data-target="Email Sent"]')).to_have_attribute(
        "data-taken", "true"
    )
    expect(graph.locator('g.edge[data-kind="catch"]').first).to_have_attribute("data-taken", "false")
    expect(graph.locator('g.node[data-node="Read Lock"]')).to_have_attribute("data-visited", "false")
    positions = {node.get_attribute("transform") for node in graph.locator("g.node").all()}
    assert len(positions) == graph.locator("g.node").count(), "every node has its own place"

    # When a state in the Map's iteration is clicked
    graph.locator('g.node[data-node="Head Attachment"]').click()

    # Then its details show the iteration, its input and output, attempts and errors
    details = page.locator("#state-details")
    expect(details.locator("h3")).to_have_text("Head Attachment")
    expect(details).to_contain_text("Iteration #0")
    expect(details.locator('[data-field="attempts"]')).to_have_text("1")
    expect(details.locator('[data-field="errors"]')).to_have_text("none")
    expect(details).to_contain_text(f'"size": {len(TERMS)}')
    page.screenshot(path=ARTIFACTS / "execution.png", full_page=True)


def test_a_dead_lettered_and_a_retried_run(scenario: Scenario, page: Page) -> None:
    # Given the dead-lettered invoice's run
    arn = scenario.run_of("invoice-2", "dead-lettered")["executionArn"]
    page.goto(f"{scenario.console}#/executions/{arn.replace(':', '%3A')}")

    # Then the Catch edge to the DLQ is highlighted and the failing state is red with its error
    graph = page.locator("svg.graph")
    catch = graph.locator('g.edge[data-source="Resolve Attachments"][data-target="Has A Cause?"]')
    expect(catch).to_have_attribute("data-taken", "true")
    expect(catch).to_have_attribute("data-kind", "catch")
    head = graph.locator('g.node[data-node="Head Attachment"]')
    expect(head).to_have_class("node Task visited errored")
    head.click()
    expect(page.locator("#state-details [data-field=errors]")).to_contain_text("S3.NoSuchKeyException")
    page.screenshot(path=ARTIFACTS / "dead-lettered.png", full_page=True)

    # When the retried run's sending state is clicked
    arn = scenario.run_of("retry-3", "succeeded")["executionArn"]
    page.goto(f"{scenario.console}#/executions/{arn.replace(':', '%3A')}")
    expect(page.locator("h2")).to_contain_text("retry-3")
    page.locator('svg.graph g.node[data-node="Render And Send"]').click()

    # Then it shows two attempts and the SES error
    expect(page.locator("#state-details [data-field=attempts]")).to_have_text("2")
    expect(page.locator("#state-details [data-field=errors]")).to_contain_text("SesUnavailableError")


def test_outbox_renders_the_email(scenario: Scenario, page: Page) -> None:
    # Given the sent emails
    page.goto(f"{scenario.console}#/outbox")
    rows = page.locator("#outbox tbody tr")
    expect(rows).to_have_count(2)

    # When the welcome email is opened
    rows.filter(has_text="Welcome aboard").click()

    # Then its headers, text, HTML (sandboxed: its script does not run) and attachment are shown
    email = page.locator("#email")
    expect(email.locator('[data-header="Subject"]')).to_have_text("Welcome aboard")
    expect(email.locator('[data-header="Cc"]')).to_have_text("ops@example.org")
    expect(email.locator("#email-text")).to_contain_text("Hello Jane, the terms are attached.")
    frame = page.frame_locator("#email-html")
    expect(frame.locator("h1")).to_have_text("Hello Jane")
    assert page.locator("#email-html").get_attribute("sandbox") == ""
    assert page.title() == "stepmail console"
    link = email.locator("#attachments a")
    expect(link).to_have_text("terms.txt")
    expect(email.locator("#attachments [data-size]")).to_have_text("1.3 KB")
    page.screenshot(path=ARTIFACTS / "outbox.png", full_page=True)

    # When the attachment is downloaded
    with page.expect_download() as download:
        link.click()

    # Then it is the file that was attached
    assert Path(download.value.path()).read_bytes() == TERMS
    assert download.value.suggested_filename == "terms.txt"


ATTACK = """<!doctype html><html><body><script>
window.results = {};
const target = "%(console)s/api/dlq/redrive";
const all = JSON.stringify({ all: true });
// As JSON (the browser asks first: a preflight), then as a "simple" text/plain request (no preflight).
fetch(target, { method: "POST", headers: { "Content-Type": "application/json" }, body: all })
  .then((r) => { results.json = r.status; }, (e) => { results.json = "blocked"; })
  .then(() => fetch(target, { method: "POST", mode: "no-cors", body: all,
                              headers: { "Content-Type": "text/plain" } }))
  .then((r) => { results.plain = r.type; }, (e) => { results.plain = "blocked"; })
  .then(() => fetch("%(console)s/api/outbox"))
  .then((r) => { results.outbox = r.status; }, (e) => { results.outbox = "blocked"; })
  .finally(() => { results.done = true; });
</script></body></html>"""


@pytest.fixture
def other_origin(scenario: Scenario) -> Iterator[str]:
    """A page on another loopback port: another origin, as any site open in the browser is."""
    html = (ATTACK % {"console": scenario.console}).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_of_another_origin_cannot_redrive_or_read(
    scenario: Scenario, page: Page, other_origin: str
) -> None:
    # Given the dead-lettered invoice, and a page of another origin open in the same browser
    statuses: list[tuple[str, str, int]] = []
    page.on("response", lambda r: statuses.append((r.request.method, r.url, r.status)))

    # When that page posts a redrive of everything (as JSON, and as text/plain) and reads the outbox
    page.goto(other_origin)
    page.wait_for_function("window.results && window.results.done")
    results = page.evaluate("window.results")

    # Then the browser got nothing: the JSON POST and the read failed (the twin refuses the preflight
    # and sends no CORS header), and the simple text/plain POST, which needs no preflight, was a 403
    assert results["json"] == "blocked" and results["outbox"] == "blocked"
    answered = [(method, status) for method, url, status in statuses if url.startswith(scenario.console)]
    assert answered == [("POST", 403)]
    # And the letter is still in the DLQ
    assert len(scenario.api("/dlq")["messages"]) == 1

    # When the console's own page sends a redrive naming no letter that exists
    page.goto(f"{scenario.console}#/dlq")
    expect(page.locator('#dlq tr[data-mail-key="invoice-2"]')).to_have_count(1)
    answer = page.evaluate("postJson('/dlq/redrive', { letters: ['no-such-letter'] }).then((r) => r.json())")

    # Then it passes the guard (its origin, JSON, its token) and redrives nothing
    assert answer["redriven"]["redriven"] == [] and answer["redriven"]["otherKeys"] == 1


def test_dlq_lists_and_redrives(scenario: Scenario, page: Page) -> None:
    # Given the dead-lettered invoice, whose missing attachment is then uploaded
    harness = scenario.harness
    page.goto(f"{scenario.console}#/dlq")
    row = page.locator('#dlq tr[data-mail-key="invoice-2"]')
    expect(row.locator('[data-field="reason"]')).to_contain_text("invoice.pdf was not found")
    page.screenshot(path=ARTIFACTS / "dlq.png", full_page=True)
    harness.s3.put_object(Bucket=harness.info.bucket, Key="invoice-2/invoice.pdf", Body=b"%PDF-1.7")

    # When its Redrive button is pressed
    row.locator("button.redrive").click()

    # Then the DLQ is empty and the invoice is sent
    expect(page.locator("#redrive-result")).to_have_text('Redriven "invoice-2": 1 sent back to the queue')
    expect(page.locator("#dlq tbody")).to_contain_text("The dead-letter queue is empty.")
    harness.idle()
    assert sorted(email.to[0] for email in harness.emails) == [
        "bob@example.org",
        "carol@example.org",
        "jane@example.org",
    ]
    page.goto(f"{scenario.console}#/executions")
    expect(page.locator("#executions tbody tr")).to_have_count(5)
