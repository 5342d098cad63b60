// stepmail console: plain JavaScript, no framework. Reads /console/api/* and draws the state machine
// with dagre (vendored from the pinned npm package). Every text from the API goes in via textContent.
"use strict";

const API = "/console/api";
const STATUSES = ["succeeded", "duplicate", "busy", "dead-lettered", "retry-later", "failed", "running"];
const view = () => document.getElementById("view");
let refreshTimer = null;
let filters = { status: "", q: "" };

// ---------------------------------------------------------------- helpers
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined) el.setAttribute(key, value);
  for (const child of children.flat(Infinity)) if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

// The twin served this page with a token; state-changing requests send it back (no other page has it).
const TOKEN = document.querySelector('meta[name="stepmail-console-token"]')?.content || "";

async function postJson(path, body) {
  return fetch(API + path, { method: "POST", body: JSON.stringify(body),
                             headers: { "Content-Type": "application/json", "X-Stepmail-Token": TOKEN } });
}

async function getJson(path) {
  const response = await fetch(API + path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

const badge = (status) => h("span", { class: `badge ${status}`, "data-status": status }, status);
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
const duration = (ms) => (ms === null || ms === undefined ? "" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`);
const json = (value) => h("pre", {}, value === undefined || value === null ? "—" : JSON.stringify(value, null, 2));
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
function show(...children) {
  view().replaceChildren(...children);
}

// ---------------------------------------------------------------- routing
function route() {
  clearInterval(refreshTimer);
  const [tab, id, extra] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const current = tab || "executions";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === current));
  const pages = { executions: id ? () => execution(id, extra) : executions, outbox: () => outbox(id), dlq };
  (pages[current] || executions)().catch((error) => show(h("p", { class: "error" }, String(error))));
}
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);

// ---------------------------------------------------------------- executions
async function executions() {
  const status = h("select", { id: "status-filter", onchange: (e) => { filters.status = e.target.value; load(); } },
    h("option", { value: "" }, "all statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: filters.status === s }, s)));
  const search = h("input", { id: "text-filter", type: "search", placeholder: "mail key or recipient", value: filters.q,
    oninput: (e) => { filters.q = e.target.value; load(); } });
  const counts = h("span", { class: "muted", id: "counts" });
  const body = h("tbody");
  show(h("div", { class: "filters" }, status, search, counts),
    h("table", { id: "executions" },
      h("thead", {}, h("tr", {}, ["Started", "Mail key", "Recipients", "Status", "Duration"].map((t) => h("th", {}, t)))),
      body));

  async function load() {
    const params = new URLSearchParams(filters);
    const data = await getJson(`/executions?${params}`);
    counts.textContent = `${data.executions.length} of ${data.total} runs · ` +
      STATUSES.filter((s) => data.counts[s]).map((s) => `${s} ${data.counts[s]}`).join(" · ");
    body.replaceChildren(...data.executions.map((run) =>
      h("tr", { class: "clickable", "data-arn": run.executionArn, "data-mail-key": run.mailKey,
                onclick: () => { location.hash = `#/executions/${encodeURIComponent(run.executionArn)}`; } },
        h("td", { title: run.startDate }, time(run.startDate)),
        h("td", {}, run.mailKey || "—"),
        h("td", {}, run.recipients.join(", ")),
        h("td", { title: run.cause || "" }, badge(run.status)),
        h("td", {}, duration(run.durationMs)))));
    if (!data.executions.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No runs yet.")));
  }
  await load();
  refreshTimer = setInterval(() => load().catch(() => {}), 2000);  // a live list
}

async function execution(arn, selected) {
  const [graph, run] = await Promise.all([getJson("/graph"), getJson(`/executions/${encodeURIComponent(arn)}`)]);
  const details = h("div", { class: "panel", id: "state-details" });
  const select = (name) => {
    document.querySelectorAll("svg .node").forEach((n) => n.classList.toggle("selected", n.dataset.node === name));
    details.replaceChildren(...stateDetails(name, run));
  };
  show(
    h("p", {}, h("a", { href: "#/executions" }, "← all runs")),
    h("h2", {}, run.mailKey || run.name, " ", badge(run.status)),
    h("dl", { class: "kv" },
      h("dt", {}, "Execution"), h("dd", {}, run.executionArn),
      h("dt", {}, "Recipients"), h("dd", {}, run.recipients.join(", ")),
      h("dt", {}, "Started"), h("dd", {}, run.startDate),
      h("dt", {}, "Duration"), h("dd", {}, duration(run.durationMs)),
      run.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, `${run.error}: ${run.cause || ""}`)] : []),
    h("div", { class: "split" },
      h("div", { class: "panel" }, h("p", { class: "muted legend" },
        h("span", {}, "blue: the path this run took"), h("span", {}, "dashed: Catch"), h("span", {}, "red: errors")),
        drawGraph(graph, run, select)),
      details));
  select(selected || run.visits.at(-1)?.name || "__start__");
}

function stateDetails(name, run) {
  if (name === "__start__") return [h("h3", {}, "Run input"), json(run.input)];
  if (name === "__end__") return [h("h3", {}, "Run result"), h("p", {}, badge(run.status), " ", run.outcome || run.error || ""), run.cause ? h("p", { class: "error" }, run.cause) : null];
  const visits = run.visits.filter((v) => v.name === name);
  const iterations = run.iterations.filter((i) => i.map === name);
  const out = [h("h3", {}, name)];
  if (!visits.length) return [...out, h("p", { class: "muted" }, "Not entered in this run.")];
  if (iterations.length) out.push(h("p", {}, `${iterations.length} iteration(s): `,
    iterations.map((i) => h("span", { class: `badge ${i.status === "succeeded" ? "succeeded" : "failed"}` }, `#${i.index} ${i.status}`))));
  visits.forEach((visit) => {
    out.push(h("div", { class: "visit", "data-visit": name },
      visit.iteration !== null ? h("h4", {}, `Iteration #${visit.iteration}`) : null,
      h("dl", { class: "kv" },
        h("dt", {}, "Entered"), h("dd", {}, visit.enteredAt),
        h("dt", {}, "Time"), h("dd", { "data-field": "time" }, duration(visit.durationMs)),
        h("dt", {}, "Attempts"), h("dd", { "data-field": "attempts" }, visit.attempts || "—"),
        h("dt", {}, "Errors"), h("dd", { "data-field": "errors", class: visit.errors.length ? "error" : "" },
          visit.errors.length ? visit.errors.map((e) => h("div", {}, `${e.error}: ${e.cause || ""}`)) : "none")),
      h("h4", {}, "Input"), json(visit.input),
      h("h4", {}, "Output"), json(visit.output)));
  });
  return out;
}

// The layout is dagre's: node sizes from the text, ranks and edge routes computed, nothing hand-placed.
function drawGraph(graph, run, onSelect) {
  const measure = document.createElement("canvas").getContext("2d");
  measure.font = "12px system-ui, sans-serif";
  const textWidth = (text) => measure.measureText(text).width;
  const visited = new Map();
  run.visits.forEach((v) => visited.set(v.name, [...(visited.get(v.name) || []), v]));
  const taken = new Set(run.path.map(([a, b]) => `${a}\u0000${b}`));
  const labelOf = (node) => (node.type === "Start" ? "Start" : node.type === "End" ? "End" : node.id);

  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 26, ranksep: 34, edgesep: 10, marginx: 10, marginy: 10 });
  graph.nodes.forEach((node) => {
    if (node.type === "Iterations") g.setNode(node.id, { label: node.id, paddingTop: 18 });
    else {
      const count = (visited.get(node.id) || []).length;
      const label = labelOf(node) + (count > 1 ? `  ×${count}` : "");
      g.setNode(node.id, { label, width: textWidth(label) + 26, height: 32 });
    }
  });
  graph.nodes.forEach((node) => { if (node.parent) g.setParent(node.id, node.parent); });
  graph.edges.forEach((edge, index) => {
    const label = edge.label.length > 26 ? edge.label.slice(0, 25) + "…" : edge.label;
    g.setEdge(edge.source, edge.target,
      { label, full: edge.label, kind: edge.kind, width: label ? textWidth(label) * 0.85 + 6 : 0, height: label ? 12 : 0, labelpos: "c" },
      `e${index}`);
  });
  dagre.layout(g);

  const size = g.graph();
  const root = svg("svg", { class: "graph", viewBox: `0 0 ${size.width} ${size.height}`, "data-layout": "dagre" },
    svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#afb8c1" })),
      svg("marker", { id: "arrow-taken", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#0969da" }))));
  graph.nodes.filter((n) => n.type === "Iterations").forEach((node) => {
    const box = g.node(node.id);
    root.append(svg("g", { class: "cluster", "data-cluster": node.id },
      svg("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height }),
      svg("text", { x: box.x - box.width / 2 + 6, y: box.y - box.height / 2 + 12 }, "Map iterations")));
  });
  g.edges().forEach((e) => {
    const edge = g.edge(e);
    const isTaken = taken.has(`${e.v}\u0000${e.w}`);
    const d = edge.points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    root.append(svg("g", { class: `edge ${edge.kind}${isTaken ? " taken" : ""}`, "data-source": e.v, "data-target": e.w,
                            "data-kind": edge.kind, "data-taken": String(isTaken) },
      svg("title", {}, `${e.v} → ${e.w}${edge.full ? ` (${edge.full})` : ""}`),
      svg("path", { d }),
      edge.label ? svg("text", { x: edge.x, y: edge.y + 3, "text-anchor": "middle" }, edge.label) : null));
  });
  graph.nodes.filter((n) => n.type !== "Iterations").forEach((node) => {
    const box = g.node(node.id);
    const visits = visited.get(node.id) || [];
    const reached = visits.length || (node.type === "Start") || (node.type === "End" && run.status !== "running");
    const errored = visits.some((v) => v.errors.length);
    const group = svg("g", { class: `node ${node.type}${reached ? " visited" : ""}${errored ? " errored" : ""}`,
                             "data-node": node.id, "data-visited": String(Boolean(reached)), transform: `translate(${box.x - box.width / 2},${box.y - box.height / 2})` },
      svg("title", {}, node.comment || node.id),
      svg("rect", { width: box.width, height: box.height }),
      svg("text", { x: box.width / 2, y: box.height / 2 + 4, "text-anchor": "middle" }, box.label));
    group.addEventListener("click", () => onSelect(node.id));
    root.append(group);
  });
  return root;
}

// ---------------------------------------------------------------- outbox
async function outbox(selected) {
  const data = await getJson("/outbox");
  const detail = h("div", { class: "panel", id: "email" }, h("p", { class: "muted" }, "Select an email."));
  show(h("div", { class: "split" },
    h("table", { id: "outbox" },
      h("thead", {}, h("tr", {}, ["Sent", "From", "To", "Subject", "Size", "Files"].map((t) => h("th", {}, t)))),
      h("tbody", {}, data.emails.length ? data.emails.map((email) =>
        h("tr", { class: `clickable${email.messageId === selected ? " selected" : ""}`, "data-message-id": email.messageId,
                  onclick: () => { location.hash = `#/outbox/${encodeURIComponent(email.messageId)}`; } },
          h("td", {}, time(email.sentAt)), h("td", {}, email.from), h("td", {}, email.recipients.join(", ")),
          h("td", {}, email.subject), h("td", {}, size(email.size)), h("td", {}, email.attachments)))
        : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing sent yet.")))),
    detail));
  if (selected) detail.replaceChildren(...renderEmail(await getJson(`/outbox/${encodeURIComponent(selected)}`)));
}

function renderEmail(email) {
  const base = `${API}/outbox/${encodeURIComponent(email.messageId)}`;
  return [
    h("h3", {}, email.subject || "(no subject)"),
    h("dl", { class: "kv", id: "email-headers" },
      email.headers.map(([name, value]) => [h("dt", {}, name), h("dd", { "data-header": name }, value)]),
      email.bcc.length ? [h("dt", {}, "Bcc (envelope)"), h("dd", {}, email.bcc.join(", "))] : []),
    h("h4", {}, "Text"), h("pre", { id: "email-text" }, email.text ?? "(no text part)"),
    h("h4", {}, "HTML"),
    // The email's own HTML: an empty sandbox (no scripts, forms or same-origin), and the API sends a
    // sandbox CSP header too.
    email.hasHtml ? h("iframe", { class: "html", id: "email-html", sandbox: "", src: `${base}/html`, title: "HTML part" })
                  : h("p", { class: "muted" }, "(no HTML part)"),
    h("h4", {}, `Attachments (${email.attachmentList.length})`),
    email.attachmentList.length
      ? h("table", { id: "attachments" }, h("tbody", {}, email.attachmentList.map((a) =>
          h("tr", {}, h("td", {}, h("a", { href: `${base}/attachments/${a.index}`, download: a.filename }, a.filename)),
            h("td", {}, a.contentType), h("td", { "data-size": a.size }, size(a.size))))))
      : h("p", { class: "muted" }, "none"),
    h("details", {}, h("summary", {}, "All headers"),
      h("pre", {}, email.allHeaders.map(([n, v]) => `${n}: ${v}`).join("\n"))),
  ];
}

// ---------------------------------------------------------------- dead letters
async function dlq() {
  const status = h("p", { id: "redrive-result", class: "muted" });
  const heading = h("strong", { id: "dlq-count" });
  const unseen = h("span", { id: "dlq-unseen", class: "muted" });
  const all = h("button", { id: "redrive-all", onclick: () => redrive({ all: true }, "all") }, "Redrive all");
  const body = h("tbody");
  show(h("div", { class: "filters" }, heading, unseen, all), status,
    h("table", { id: "dlq" },
      h("thead", {}, h("tr", {}, ["Mail key", "Source", "Error", "Reason", "Deliveries", "Failed", "Run", ""].map((t) => h("th", {}, t)))),
      body));

  async function redrive(selection, label) {
    const response = await postJson("/dlq/redrive", selection);
    const result = await response.json();
    if (!response.ok) { status.textContent = `Redrive failed: ${result.message || response.status}`; status.className = "error"; return; }
    await load();
    const { redriven = [], kept = [], unseen: missed = 0 } = result.redriven;
    status.className = "muted";
    status.textContent = `Redriven ${label}: ${redriven.length} sent back to the queue` +
      kept.map((k) => `; kept ${k.mailKey || k.queueMessageId}: ${k.keptBecause}`).join("") +
      (missed ? `; ${missed} letter(s) in flight elsewhere: run again` : "");
  }

  async function load() {
    const data = await getJson("/dlq");
    heading.textContent = `${data.messages.length} message(s) in the dead-letter queue`;
    unseen.textContent = data.unseen ? ` · ${data.unseen} letter(s) in flight elsewhere (another reader holds them)` : "";
    all.hidden = !data.messages.length;
    body.replaceChildren(...(data.messages.length ? data.messages.map((m) =>
      h("tr", { "data-message-id": m.messageId, "data-mail-key": m.mailKey },
        h("td", {}, m.mailKey || "—"), h("td", {}, m.source), h("td", { class: "error" }, m.error),
        h("td", { "data-field": "reason" }, m.reason), h("td", { "data-field": "deliveries" }, m.deliveries ?? "—"),
        h("td", {}, time(m.failedAt)),
        h("td", {}, m.executionArn ? h("a", { href: `#/executions/${encodeURIComponent(m.executionArn)}` }, "run") : ""),
        h("td", {}, h("button", { class: "redrive", onclick: () => redrive({ letters: [m.originalMessageId] }, `"${m.mailKey || m.originalMessageId}"`) }, "Redrive"))))
      : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "The dead-letter queue is empty."))]));
  }
  await load();
  refreshTimer = setInterval(() => load().catch(() => {}), 3000);  // letters arrive and leave
}
