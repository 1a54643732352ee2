/* capsim web app: the page over the JSON API (sim/web/app.py). Plain JS, no build step.
 *
 * State: the loaded scenario (its knobs and their initial values), the run being viewed (its rows so
 * far, polled every 500 ms while queued or running) and the runs list. Every text from the server
 * goes in with textContent; only the topology SVG (sim/diagram.py, XML-escaped there) is inserted
 * as markup. */
"use strict";

const POLL_MS = 500;
const ACTIVE = new Set(["queued", "running"]);
const KNOB_GROUPS = ["load", "fleet", "consistency", "cache", "fan-out", "policy", "fault", "run"];
const GROUP_TITLES = {
  "load": "Load", "fleet": "Fleets", "consistency": "Consistency", "cache": "Cache",
  "fan-out": "Fan-out", "policy": "Retry and timeout", "fault": "Fault", "run": "Run settings",
};
// the report's colours (sim/chart_style.OP_COLORS, sim/report/charts.PALETTE): a flow keeps its colour
// in every chart here and in report.html
const OP_COLORS = { send: "#1f77b4", read: "#ff7f0e", delivery: "#2ca02c" };
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
  "#17becf", "#d62728"];
const PLOT_CONFIG = {
  displaylogo: false, responsive: true,
  modeBarButtons: [["toImage", "zoom2d", "resetScale2d"]],
};
const LOG_TICKS = [0.01, 0.1, 1, 10, 100, 1000, 10000, 100000].flatMap((d) => [d, 2 * d, 5 * d]);
const FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif", size: 12 };

const state = {
  scenario: null,        // the POST /api/scenarios answer
  initial: {},           // knob path -> its value in the scenario as loaded
  view: null,            // {runId, status, rows, next, summary, verdict, utilization, error, progress}
  viewToken: 0,          // bumped on every switch of the viewed run: late answers for an old one are dropped
  pollTimer: null,
  pendingRun: null,      // the body of a run that got a 409, until confirmed or dismissed
  runMeta: {},           // run id -> {warmup_s}: what the page knows of runs it started
  runsTimer: null,       // the runs list's refresh while any run is queued or running
};

const $ = (id) => document.getElementById(id);

/* ---------- small helpers ---------- */

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function knobId(path) {
  return "knob-" + path.replace(/[^A-Za-z0-9]/g, "-");
}

/** One line for a failed request: the server's {"error"} if it sent one, else the HTTP status. */
async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (exc) {
    return { ok: false, status: 0, data: { error: `cannot reach the capsim server (${exc.message})` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_exc) {
    data = response.ok ? null : { error: `${method} ${url}: HTTP ${response.status}` };
  }
  if (!response.ok && (data === null || typeof data.error !== "string")) {
    data = { error: `${method} ${url}: HTTP ${response.status}` };
  }
  return { ok: response.ok, status: response.status, data };
}

function isNum(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** A figure in 4 significant digits with thousands separators; "-" for none. */
function fmt(x, digits = 4) {
  if (!isNum(x)) return x === null || x === undefined ? "-" : String(x);
  if (x === 0) return "0";
  const magnitude = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, Math.min(6, digits - 1 - magnitude));
  return x.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: decimals });
}

function usd(x) {
  if (!isNum(x)) return "-";
  const decimals = Math.abs(x) < 10 ? 2 : 0;
  return "$" + x.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function setError(id, message) {
  $(id).textContent = message || "";
}

/* ---------- designs, upload, scenario ---------- */

async function loadDesigns() {
  const { ok, data } = await api("GET", "/api/designs");
  const select = $("design-select");
  select.replaceChildren();
  if (!ok) {
    setError("upload-error", data.error);
    return;
  }
  for (const d of data) {
    const option = el("option", { value: d.id, text: d.name, title: d.path });
    option.dataset.description = [d.description, d.path].filter(Boolean).join(" · ");
    select.append(option);
  }
  const wanted = new URLSearchParams(window.location.search).get("design");
  if (wanted && data.some((d) => d.id === wanted)) select.value = wanted;
  if (select.value) await loadScenario({ design: select.value });
}

let scenarioRequests = 0;  // only the newest request's answer is shown (a slow one may come last)

async function loadScenario(body) {
  const ticket = ++scenarioRequests;
  const { ok, data } = await api("POST", "/api/scenarios", body);
  if (ticket !== scenarioRequests) return null;  // a newer pick or upload superseded this one
  if (!ok) return data.error;
  state.scenario = data;
  renderScenario(data);
  return null;
}

async function onDesignChange() {
  const select = $("design-select");
  setError("upload-error", "");
  const error = await loadScenario({ design: select.value });
  if (error) setError("upload-error", error);
}

async function onUpload() {
  const input = $("upload-input");
  const file = input.files && input.files[0];
  if (!file) return;
  let text;
  try {
    text = await file.text();
  } catch (exc) {
    setError("upload-error", `${file.name}: cannot be read (${exc.message})`);
    return;
  }
  const error = await loadScenario({ yaml: text });
  setError("upload-error", error);
  if (!error) {
    // the picker says what is loaded: an entry for the upload, chosen; picking a design leaves it
    const select = $("design-select");
    let option = select.querySelector("option[data-upload]");
    if (!option) {
      option = el("option", { value: "" });
      option.dataset.upload = "1";
      option.disabled = true;
      select.prepend(option);
    }
    option.textContent = `uploaded: ${file.name}`;
    select.value = "";
    $("design-description").textContent = `${state.scenario.name}, uploaded from ${file.name}`;
  }
  input.value = "";  // the same file can be picked again after an edit
}

function flowColor(flow, flows) {
  if (OP_COLORS[flow]) return OP_COLORS[flow];
  const i = flows.indexOf(flow);
  return i >= 0 ? PALETTE[i % PALETTE.length] : PALETTE[PALETTE.length - 1];
}

function renderScenario(sc) {
  $("scenario-name").textContent = sc.name;
  document.title = `capsim: ${sc.name}`;
  const option = $("design-select").selectedOptions[0];
  $("design-description").textContent = option && option.dataset.description ? option.dataset.description : "";
  $("diagram").innerHTML = sc.diagram_svg;  // sim/diagram.svg: every text XML-escaped
  $("describe").textContent = sc.describe;
  const names = sc.flows.map((f) => f.name);
  const list = $("flows");
  list.replaceChildren();
  for (const f of sc.flows) {
    const rate = f.triggered ? "triggered by its records" : `${fmt(f.rate_per_sec)} requests/s`;
    list.append(el("li", {},
      el("span", { class: "swatch", style: `background:${flowColor(f.name, names)}` }),
      el("span", { class: "flow-name", text: f.name }),
      el("span", { class: "flow-rate", text: rate })));
    list.lastChild.dataset.flow = f.name;
  }
  renderKnobs(sc.knobs);
}

/* ---------- knobs ---------- */

function renderKnobs(knobs) {
  const box = $("knobs");
  box.replaceChildren();
  state.initial = {};
  const groups = [...KNOB_GROUPS, ...new Set(knobs.map((k) => k.group).filter((g) => !KNOB_GROUPS.includes(g)))];
  for (const group of groups) {
    const members = knobs.filter((k) => k.group === group);
    if (members.length === 0) continue;
    const fieldset = el("fieldset", {}, el("legend", { text: GROUP_TITLES[group] || group }));
    fieldset.dataset.group = group;
    for (const knob of members) fieldset.append(knobRow(knob));
    box.append(fieldset);
  }
}

function knobRow(knob) {
  const id = knobId(knob.path);
  let input;
  if (knob.type === "choice") {
    input = el("select", { id });
    for (const choice of knob.choices || []) input.append(el("option", { value: String(choice), text: String(choice) }));
    input.value = String(knob.value);
  } else {
    input = el("input", { id, type: "number" });
    input.step = knob.type === "int" ? "1" : "any";
    if (isNum(knob.min)) input.min = String(knob.min);
    if (isNum(knob.max)) input.max = String(knob.max);
    input.value = knob.value === null || knob.value === undefined ? "" : String(knob.value);
  }
  input.dataset.path = knob.path;
  input.dataset.type = knob.type;
  state.initial[knob.path] = input.value;
  const row = el("div", { class: "knob" }, el("label", { htmlFor: id, text: knob.label, title: knob.path }), input);
  const mark = () => row.classList.toggle("changed", input.value !== state.initial[knob.path]);
  input.addEventListener("input", mark);
  input.addEventListener("change", mark);
  return row;
}

/** The knobs moved from the scenario's values, as {path: value}; a number that does not parse goes as
 * typed, so the server's one-line message names it. */
function overrides() {
  const out = {};
  for (const input of $("knobs").querySelectorAll("[data-path]")) {
    const path = input.dataset.path;
    if (input.value === state.initial[path]) continue;
    const raw = input.value.trim();
    if (input.dataset.type === "choice") out[path] = raw;
    else {
      const n = Number(raw);
      out[path] = raw !== "" && Number.isFinite(n) ? n : raw;
    }
  }
  return out;
}

function resetKnobs() {
  for (const input of $("knobs").querySelectorAll("[data-path]")) {
    input.value = state.initial[input.dataset.path];
    input.closest(".knob").classList.remove("changed");
  }
}

function knobValue(path) {
  const input = $("knobs").querySelector(`[data-path="${CSS.escape(path)}"]`);
  return input ? Number(input.value) : NaN;
}

/* ---------- starting, confirming, cancelling ---------- */

async function startRun(confirm) {
  setError("run-error", "");
  if (!state.scenario) {
    setError("run-error", "no scenario loaded: pick a design or upload one");
    return;
  }
  const warmup = knobValue("warmup_s");  // the run's own, read before any await lets a knob move
  const body = state.pendingRun && confirm
    ? { ...state.pendingRun, confirm: true }
    : { scenario_id: state.scenario.scenario_id, overrides: overrides(), confirm: false };
  state.pendingRun = null;
  $("run-button").disabled = true;
  // from the click on, the status is no longer the previous run's: a "done" left on screen while the
  // POST is under way would read as this run's
  $("run-status").textContent = "";
  $("run-status").className = "status";
  const { ok, status, data } = await api("POST", "/api/runs", body);
  $("run-button").disabled = false;
  if (!ok) renderStatus();  // not started: the viewed run's status again
  if (status === 409 && data.needs_confirm) {
    state.pendingRun = body;
    $("confirm-message").textContent = data.error;
    $("confirm-dialog").showModal();
    return;
  }
  if (!ok) {
    setError("run-error", data.error);
    return;
  }
  state.runMeta[data.run_id] = { warmup_s: isNum(warmup) ? warmup : null };
  await viewRun(data.run_id);
  refreshRuns();
}

async function cancelRun() {
  const view = state.view;
  if (!view || !ACTIVE.has(view.status)) return;
  $("cancel-button").disabled = true;
  const { ok, data } = await api("POST", `/api/runs/${encodeURIComponent(view.runId)}/cancel`);
  if (!ok) {
    setError("run-error", data.error);
    $("cancel-button").disabled = false;
    return;
  }
  if (state.view && state.view.runId === view.runId) {
    view.status = data.status || "cancelled";
    renderStatus();
  }
  refreshRuns();
}

/* ---------- the viewed run: polling and rendering ---------- */

async function viewRun(runId) {
  clearTimeout(state.pollTimer);
  state.viewToken += 1;
  state.view = { runId, status: "queued", rows: [], next: 0, summary: null, verdict: null, utilization: null,
    error: null, progress: { t: 0, duration: 0 } };
  setError("run-error", "");
  $("viewed-run").textContent = runId;
  renderDownloads();
  renderStatus();
  renderCharts();
  renderVerdict();
  markSelectedRun();
  await poll(state.viewToken);
}

async function poll(token) {
  const view = state.view;
  if (!view || token !== state.viewToken) return;
  const { ok, status, data } = await api("GET", `/api/runs/${encodeURIComponent(view.runId)}?since=${view.next}`);
  if (token !== state.viewToken) return;  // the user switched to another run meanwhile
  if (!ok) {
    setError("run-error", data.error);
    if (status === 0 || status >= 500) state.pollTimer = setTimeout(() => poll(token), 2 * POLL_MS);
    return;
  }
  const wasActive = ACTIVE.has(view.status);
  const fresh = Array.isArray(data.rows) ? data.rows : [];
  const changed = fresh.length > 0 || data.status !== view.status;
  view.rows.push(...fresh);
  if (Number.isInteger(data.next)) view.next = data.next;
  view.status = data.status;
  view.progress = data.progress || view.progress;
  view.error = data.error || null;
  view.summary = data.summary || null;
  view.verdict = data.verdict || null;
  view.utilization = data.utilization || null;
  view.utilizationLive = Boolean(data.utilization_live);
  if (view.error) setError("run-error", view.error);
  renderStatus();
  if (changed) {  // redraw only on news: the page stays light however long the run
    renderCharts();
    renderVerdict();
    renderDownloads();
  }
  if (ACTIVE.has(view.status)) {
    state.pollTimer = setTimeout(() => poll(token), POLL_MS);
  } else if (wasActive) {
    refreshRuns();
  }
}

function renderStatus() {
  const view = state.view;
  const status = view ? view.status : "";
  const badge = $("run-status");
  badge.textContent = status;
  badge.className = `status ${status}`;
  const t = view && isNum(view.progress.t) ? view.progress.t : 0;
  const duration = view && isNum(view.progress.duration) ? view.progress.duration : 0;
  const progress = $("progress");
  progress.dataset.t = String(t);
  progress.textContent = view ? `${t.toFixed(1)} / ${duration > 0 ? fmt(duration) : "-"} s` : "";
  $("cancel-button").disabled = !(view && ACTIVE.has(status));
}

function renderDownloads() {
  const view = state.view;
  const yaml = $("download-yaml");
  const report = $("download-report");
  const setLink = (a, href, filename) => {
    if (href) {
      a.href = href;
      a.download = filename;
      a.classList.remove("disabled");
      a.removeAttribute("aria-disabled");
    } else {
      a.removeAttribute("href");
      a.classList.add("disabled");
      a.setAttribute("aria-disabled", "true");
    }
  };
  const base = view ? `/api/runs/${encodeURIComponent(view.runId)}` : null;
  setLink(yaml, base && `${base}/scenario.yaml`, view ? `${view.runId}.yaml` : "");
  setLink(report, base && view.status === "done" && `${base}/report.html`, view ? `${view.runId}-report.html` : "");
}

/* ---------- charts ---------- */

/** The run's flows, from its timeseries columns `<flow>_p99_ms`, in column order. */
function flowsOf(rows) {
  const seen = [];
  for (const row of rows.slice(0, 3)) {
    for (const key of Object.keys(row)) {
      const m = /^(.*)_p99_ms$/.exec(key);
      if (m && !seen.includes(m[1])) seen.push(m[1]);
    }
  }
  return seen;
}

function column(rows, key) {
  return rows.map((r) => (isNum(r[key]) ? r[key] : null));
}

function hasData(rows, key) {
  return rows.some((r) => isNum(r[key]));
}

function layout(title, yTitle, extra = {}) {
  const warmup = warmupOf(state.view);
  const shapes = isNum(warmup) && warmup > 0 ? [{
    type: "rect", xref: "x", yref: "paper", x0: 0, x1: warmup, y0: 0, y1: 1,
    fillcolor: "#e6e6e6", opacity: 0.5, line: { width: 0 }, layer: "below",
  }] : [];
  return {
    title: { text: title, font: { size: 14 }, x: 0.02, xanchor: "left" },
    font: FONT,
    margin: { l: 60, r: 16, t: 40, b: 70 },
    xaxis: { title: { text: "simulated time (s)" }, zeroline: false, rangemode: "tozero" },
    yaxis: { title: { text: yTitle }, zeroline: false, rangemode: "tozero", automargin: true },
    legend: { orientation: "h", x: 0, y: -0.28, font: { size: 11 } },
    hovermode: "x unified",
    plot_bgcolor: "#fff", paper_bgcolor: "#fff",
    shapes,
    ...extra,
  };
}

function warmupOf(view) {
  if (!view) return null;
  if (view.summary && isNum(view.summary.warmup_seconds)) return view.summary.warmup_seconds;
  const meta = state.runMeta[view.runId];
  return meta ? meta.warmup_s : null;
}

/** An empty chart that says why it is empty, with its title and axes all the same. */
function note(layoutObj, text) {
  return { ...layoutObj, shapes: [],
    xaxis: { ...layoutObj.xaxis, showticklabels: false, range: [0, 1] },
    yaxis: { ...layoutObj.yaxis, showticklabels: false, type: "linear", range: [0, 1], tickvals: null,
      ticktext: null },
    annotations: [{ text, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
      font: { size: 13, color: "#5d6675" } }] };
}

function plot(id, traces, layoutObj) {
  Plotly.react($(id), traces, layoutObj, PLOT_CONFIG);
}

function renderCharts() {
  const view = state.view;
  const rows = view ? view.rows : [];
  const flows = flowsOf(rows);
  const t = column(rows, "t_s");
  const waiting = view ? (view.status === "queued" ? "queued: waiting for the run to start"
    : "waiting for the first simulated second") : "run the scenario to see it here";
  const done = view && view.status === "done";

  // latency: p99 solid, p50 dashed, one colour per flow; the legend names each flow once
  const latency = [];
  for (const f of flows) {
    const color = flowColor(f, flows);
    latency.push({ x: t, y: column(rows, `${f}_p99_ms`), name: f, legendgroup: f, type: "scatter",
      mode: "lines", line: { color, width: 2 }, hovertemplate: "p99 %{y:.3g} ms" });
    latency.push({ x: t, y: column(rows, `${f}_p50_ms`), name: f, legendgroup: f, showlegend: false,
      type: "scatter", mode: "lines", line: { color, width: 1.4, dash: "dash" }, hovertemplate: "p50 %{y:.3g} ms" });
  }
  const latencyLayout = layout("Latency per flow (p99 solid, p50 dashed)", "latency (ms, log scale)");
  latencyLayout.yaxis.type = "log";
  latencyLayout.yaxis.rangemode = "normal";
  latencyLayout.yaxis.tickvals = LOG_TICKS;  // 1, 2, 5 a decade, each labelled in full
  latencyLayout.yaxis.ticktext = LOG_TICKS.map((v) => v.toLocaleString("en-US"));
  plot("chart-latency", latency, rows.length ? latencyLayout : note(latencyLayout, waiting));
  $("chart-latency").setAttribute("data-points", String(rows.length));

  // throughput: offered dotted, goodput solid
  const throughput = [];
  for (const f of flows) {
    const color = flowColor(f, flows);
    throughput.push({ x: t, y: column(rows, `${f}_succeeded_per_sec`), name: f, legendgroup: f,
      mode: "lines", line: { color, width: 2 }, hovertemplate: "goodput %{y:,.0f} req/s" });
    throughput.push({ x: t, y: column(rows, `${f}_offered_per_sec`), name: f, legendgroup: f, showlegend: false,
      mode: "lines", line: { color, width: 1.2, dash: "dot" }, hovertemplate: "offered %{y:,.0f} req/s" });
  }
  const throughputLayout = layout("Offered load (dotted) vs goodput (solid)", "requests/s");
  plot("chart-throughput", throughput, rows.length ? throughputLayout : note(throughputLayout, waiting));

  renderErrors(view, rows, flows, t, waiting);
  renderUtilization(view, done);

  const lagLayout = layout("Kafka consumer lag (max)", "lag (s)");
  lagLayout.yaxis.tickformat = "~r";  // 0.00002, not the SI "20µ"
  if (hasData(rows, "kafka_lag_max_s")) {
    plot("chart-kafka-lag", [{ x: t, y: column(rows, "kafka_lag_max_s"), name: "max lag", mode: "lines",
      line: { color: "#4c78a8", width: 2 }, hovertemplate: "%{y:.3g} s" }], lagLayout);
  } else {
    plot("chart-kafka-lag", [], note(lagLayout, rows.length ? "no Kafka lag recorded in this run" : waiting));
  }

  const cacheLayout = layout("Cache hit ratio", "hit ratio (%)");
  cacheLayout.yaxis.range = [0, 100];
  if (hasData(rows, "cache_hit_ratio")) {
    const hits = column(rows, "cache_hit_ratio").map((v) => (v === null ? null : 100 * v));
    plot("chart-cache", [{ x: t, y: hits, name: "hit ratio", mode: "lines", line: { color: "#e45756", width: 2 },
      hovertemplate: "%{y:.1f} %" }], cacheLayout);
  } else {
    plot("chart-cache", [], note(cacheLayout, rows.length ? "no cache hit ratio recorded in this run" : waiting));
  }
}

/** Live: failed requests per second per flow. Done: the summary's errors by cause as bars. */
function renderErrors(view, rows, flows, t, waiting) {
  const summary = view && view.status === "done" ? view.summary : null;
  if (summary) {
    const errors = summary.errors || {};
    const asyncErrors = summary.async_errors || {};
    const causes = [...new Set(Object.keys(errors).map((k) => k.slice(k.indexOf(":") + 1)))].sort();
    const byFlow = {};
    for (const [key, count] of Object.entries(errors)) {
      const at = key.indexOf(":");
      const flow = at >= 0 ? key.slice(0, at) : "all";
      (byFlow[flow] = byFlow[flow] || {})[key.slice(at + 1)] = count;
    }
    const names = flows.length ? flows : Object.keys(byFlow);
    // horizontal bars: a cause's name ("cassandra.rejected") reads along its bar, however many there are
    const traces = Object.keys(byFlow).map((flow) => ({
      type: "bar", orientation: "h", name: flow, y: causes, x: causes.map((c) => byFlow[flow][c] || 0),
      marker: { color: flowColor(flow, names) }, hovertemplate: "%{y}: %{x:,} requests",
    }));
    const asyncCauses = Object.keys(asyncErrors).sort();
    if (asyncCauses.length) {
      traces.push({ type: "bar", orientation: "h", name: "async (no client waiting)",
        y: asyncCauses.map((c) => `async ${c}`), x: asyncCauses.map((c) => asyncErrors[c]),
        marker: { color: "#9aa1ab" }, hovertemplate: "%{y}: %{x:,} operations" });
    }
    const categories = [...causes, ...asyncCauses.map((c) => `async ${c}`)];
    const barLayout = layout("Errors by cause (measured window)", "", {
      barmode: "stack", shapes: [], hovermode: "closest",
      margin: { l: 60, r: 16, t: 40, b: 50 },
      legend: { orientation: "v", x: 1.02, y: 1, font: { size: 11 } },
      xaxis: { title: { text: "failed requests" }, zeroline: false },
      yaxis: { automargin: true, autorange: "reversed", tickmode: "array", tickvals: categories,
        ticktext: categories, tickfont: { size: categories.length > 10 ? 10 : 11, family: "monospace" } },
    });
    plot("chart-errors", traces, traces.length ? barLayout : note(barLayout, "no errors in the measured window"));
    return;
  }
  const traces = flows.filter((f) => hasData(rows, `${f}_failed_per_sec`)).map((f) => ({
    x: t, y: column(rows, `${f}_failed_per_sec`), name: f, mode: "lines",
    line: { color: flowColor(f, flows), width: 2 }, hovertemplate: "%{y:,.0f} /s",
  }));
  const live = layout("Failed requests per second (by cause when done)", "failures/s");
  plot("chart-errors", traces, rows.length ? live : note(live, waiting));
}

/** Per-instance utilization as a heat map: a row per component, a column per instance, 0-100 %. */
function renderUtilization(view, done) {
  const util = view && view.utilization;
  const live = view && view.utilizationLive;
  const title = live ? "Utilization per instance (the last simulated second)"
    : "Utilization per instance (measured period)";
  const heat = layout(title, "component", {
    shapes: [], hovermode: "closest",
    xaxis: { title: { text: "instance" }, zeroline: false, dtick: undefined },
    yaxis: { title: { text: "" }, automargin: true, autorange: "reversed" },
  });
  if (!util || Object.keys(util).length === 0) {
    const why = !view ? "run the scenario to see it here"
      : done || !ACTIVE.has(view.status) ? "no utilization for this run" : "after the first simulated second";
    plot("chart-utilization", [], note(heat, why));
    return;
  }
  const names = Object.keys(util);
  const width = Math.max(...names.map((n) => util[n].length));
  const z = names.map((n) => Array.from({ length: width }, (_, i) => (isNum(util[n][i]) ? 100 * util[n][i] : null)));
  plot("chart-utilization", [{
    type: "heatmap", z, x: Array.from({ length: width }, (_, i) => i), y: names,
    zmin: 0, zmax: 100, colorscale: "YlOrRd", reversescale: true,  // plotly's YlOrRd runs red to yellow
    colorbar: { title: { text: "%" }, thickness: 12 }, xgap: width > 60 ? 0 : 1, ygap: 2,
    hovertemplate: "%{y} #%{x}: %{z:.1f} %<extra></extra>",
  }], heat);
}

/* ---------- verdict ---------- */

function renderVerdict() {
  const view = state.view;
  const verdict = view && view.status === "done" ? view.verdict : null;
  const box = $("verdict");
  box.classList.toggle("empty", !verdict);
  const findings = $("findings");
  const slos = $("slos").querySelector("tbody");
  const cost = $("cost");
  const warnings = $("plan-warnings");
  findings.replaceChildren();
  slos.replaceChildren();
  cost.replaceChildren();
  warnings.replaceChildren();
  $("verdict-empty").textContent = !view ? "The verdict appears when a run is done."
    : view.status === "done" ? "This run has no verdict." : `The verdict appears when the run is done (${view.status}).`;
  if (!verdict) return;
  for (const line of verdict.findings || []) findings.append(el("li", { text: line }));
  for (const slo of verdict.slos || []) {
    slos.append(el("tr", {},
      el("td", { text: slo.name }),
      el("td", { class: slo.met ? "met" : "missed", text: slo.met ? "met" : "missed" }),
      el("td", { class: "num", text: fmt(slo.actual) }),
      el("td", { class: "num", text: String(slo.target) })));
  }
  $("slos-none").hidden = (verdict.slos || []).length > 0;
  const c = verdict.cost || {};
  cost.append(
    el("div", {}, el("span", { class: "figure", text: usd(c.monthly_usd) }), " per month"),
    el("div", {}, el("span", { class: "figure", text: usd(c.usd_per_million) }), " per million requests"));
  for (const line of verdict.plan_warnings || []) {
    warnings.append(el("li", { text: line, class: /^\s*CRITICAL/.test(line) ? "critical" : "" }));
  }

}

/* ---------- runs list and compare ---------- */

async function refreshRuns() {
  const { ok, data } = await api("GET", "/api/runs");
  if (!ok) return;
  const picked = new Set([...document.querySelectorAll(".compare-pick:checked")].map((c) => c.dataset.runId));
  const body = $("runs-list").querySelector("tbody");
  body.replaceChildren();
  for (const run of data) {
    const pick = el("input", { type: "checkbox", class: "compare-pick", "data-run-id": run.run_id,
      title: "pick for compare" });
    pick.checked = picked.has(run.run_id);
    pick.addEventListener("click", (event) => event.stopPropagation());
    pick.addEventListener("change", updateCompareButton);
    const changed = Object.entries(run.overrides || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    const row = el("tr", {},
      el("td", {}, pick),
      el("td", { class: "mono", text: run.run_id }),
      el("td", { text: run.name }),
      el("td", {}, el("span", { class: `status ${run.status}`, text: run.status })),
      el("td", { text: (run.created || "").replace("T", " ").slice(0, 19) }),
      el("td", { class: "overrides", text: changed || "as loaded" }));
    row.dataset.runId = run.run_id;
    row.addEventListener("click", () => viewRun(run.run_id));
    body.append(row);
  }
  markSelectedRun();
  updateCompareButton();
  // a run the page did not start (another tab) can still be going: keep the list fresh while any is
  if (data.some((r) => ACTIVE.has(r.status))) {
    clearTimeout(state.runsTimer);
    state.runsTimer = setTimeout(refreshRuns, 4 * POLL_MS);
  }
}

function markSelectedRun() {
  const id = state.view ? state.view.runId : null;
  for (const row of $("runs-list").querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", row.dataset.runId === id);
  }
}

function updateCompareButton() {
  $("compare-button").disabled = document.querySelectorAll(".compare-pick:checked").length !== 2;
}

async function compareRuns() {
  const picked = [...document.querySelectorAll(".compare-pick:checked")].map((c) => c.dataset.runId);
  setError("compare-error", "");
  const body = $("compare-table").querySelector("tbody");
  body.replaceChildren();
  if (picked.length !== 2) {
    setError("compare-error", "pick exactly two runs to compare");
    return;
  }
  // the list is newest first: A is the older run, B the newer, so B - A is what the change did
  const [b, a] = picked;
  const { ok, data } = await api("GET", `/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  if (!ok) {
    setError("compare-error", data.error);
    return;
  }
  $("compare-table").querySelector("thead tr").cells[1].textContent = `A (${a})`;
  $("compare-table").querySelector("thead tr").cells[2].textContent = `B (${b})`;
  for (const row of data.rows || []) {
    const ci = Array.isArray(row.ci95) ? `[${fmt(row.ci95[0])}, ${fmt(row.ci95[1])}]` : "-";
    body.append(el("tr", {},
      el("td", { text: row.figure }),
      el("td", { class: "num", text: fmt(row.a) }),
      el("td", { class: "num", text: fmt(row.b) }),
      el("td", { class: "num", text: isNum(row.diff) && row.diff > 0 ? `+${fmt(row.diff)}` : fmt(row.diff) }),
      el("td", { class: "num", text: ci })));
  }
  if (!(data.rows || []).length) body.append(el("tr", {}, el("td", { colSpan: 5, text: "no figures to compare" })));
}

/* ---------- wiring ---------- */

function init() {
  $("design-select").addEventListener("change", onDesignChange);
  $("upload-input").addEventListener("change", onUpload);
  $("reset-knobs").addEventListener("click", resetKnobs);
  $("run-button").addEventListener("click", () => startRun(false));
  $("cancel-button").addEventListener("click", cancelRun);
  $("compare-button").addEventListener("click", compareRuns);
  $("confirm-yes").addEventListener("click", () => {
    $("confirm-dialog").close();
    startRun(true);
  });
  $("confirm-no").addEventListener("click", () => {
    state.pendingRun = null;
    $("confirm-dialog").close();
  });
  $("confirm-dialog").addEventListener("cancel", () => { state.pendingRun = null; });
  renderStatus();
  renderCharts();
  renderVerdict();
  loadDesigns();
  refreshRuns();
}

document.addEventListener("DOMContentLoaded", init);
