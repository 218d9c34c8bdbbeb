// ecomflow's dashboard: every second it reads /api/status and /api/charts (and once
// /api/pipeline), then draws the pipeline graph with records per second on each component
// and edge, the charts that `dashboard` sinks declare, the watermarks and the checkpoints.
// Plain SVG and DOM, no library: the page works offline.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const REFRESH_MS = 1000;
const NODE_W = 196, NODE_H = 62, COL_GAP = 64, ROW_GAP = 14, PAD = 16;

const seen = { pipeline: null, layout: null, previous: null, rates: new Map(), charts: new Map() };

// ---- small helpers -------------------------------------------------------------------

function svg(name, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(name, attrs = {}, text) {
  const node = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function compact(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(0) + "k";
  if (a >= 1e3) return (n / 1e3).toFixed(1) + "k";
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(a >= 100 ? 0 : a >= 1 ? 1 : 2);
}

function whole(n) {
  return Number(n || 0).toLocaleString("en-US");
}

function shortName(path) {
  const dot = path.indexOf(".");
  return dot < 0 ? path : path.slice(dot + 1);
}

function kindOf(component) {
  return component.path === "dead_letter" ? "dead" : component.kind;
}

function timeText(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function spanText(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 1) return Math.round(ms) + " ms";
  if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 5400) return (s / 60).toFixed(0) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(0) + " days";
}

function bytesText(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

// Sorts chart x values: numbers as numbers, the rest as text.
function byValue(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

// A round upper bound for an axis of four equal, round steps.
function niceMax(max) {
  if (!(max > 0)) return 1;
  const rough = max / 4;
  const unit = Math.pow(10, Math.floor(Math.log10(rough)));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * unit >= rough) return 4 * f * unit;
  return 40 * unit;
}

// ---- the graph ------------------------------------------------------------------------

// Columns by depth (a component sits right of everything it reads), rows in file order,
// then by the average row of what each reads; the dead-letter output ends the last column.
function layoutGraph(pipeline) {
  const depth = new Map(pipeline.components.map((c) => [c.path, 0]));
  for (let pass = 0; pass < pipeline.components.length; pass++) {
    for (const e of pipeline.edges) {
      const d = (depth.get(e.from) || 0) + 1;
      if (d > (depth.get(e.to) || 0)) depth.set(e.to, d);
    }
  }
  const last = Math.max(0, ...[...depth.values()]);
  const columns = [];
  for (const c of pipeline.components) {
    const d = c.path === "dead_letter" ? last : depth.get(c.path);
    (columns[d] = columns[d] || []).push(c.path);
  }
  const at = new Map();
  columns.forEach((paths, col) => {
    const weight = (p) => {
      if (p === "dead_letter") return Infinity;
      const ins = pipeline.edges.filter((e) => e.to === p).map((e) => at.get(e.from)?.row ?? 0);
      return ins.length ? ins.reduce((a, b) => a + b, 0) / ins.length : 0;
    };
    const order = paths.map((p, i) => ({ p, w: weight(p), i }));
    order.sort((a, b) => a.w - b.w || a.i - b.i);
    order.forEach((o, row) => at.set(o.p, { col, row }));
  });
  const rows = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const place = new Map();
  for (const [p, { col, row }] of at) {
    const inColumn = columns[col].length;
    const offset = ((rows - inColumn) * (NODE_H + ROW_GAP)) / 2;
    place.set(p, { x: PAD + col * (NODE_W + COL_GAP), y: PAD + offset + row * (NODE_H + ROW_GAP) });
  }
  return {
    place,
    width: PAD * 2 + columns.length * NODE_W + (columns.length - 1) * COL_GAP,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP,
  };
}

function edgePath(from, to) {
  const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2;
  const x2 = to.x, y2 = to.y + NODE_H / 2;
  const mid = (x1 + x2) / 2;
  return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
}

function drawGraph(pipeline, status) {
  const graph = document.getElementById("graph");
  const { place, width, height } = seen.layout;
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  graph.replaceChildren();
  const byPath = new Map(status.components.map((c) => [c.path, c]));
  const fill = new Map(status.channels.map((ch) => [ch.component, ch.batches / Math.max(1, ch.capacity)]));
  const edges = svg("g");
  const dead = place.get("dead_letter");
  for (const c of status.components) {
    if (c.path === "dead_letter" || !(c.dead_lettered > 0) || !dead || !place.get(c.path)) continue;
    edges.append(svg("path", { class: "edge letters", d: edgePath(place.get(c.path), dead) }));
  }
  for (const e of pipeline.edges) {
    const from = place.get(e.from), to = place.get(e.to);
    if (!from || !to) continue;
    const f = fill.get(e.to) || 0;
    const cls = f >= 0.75 ? "edge full" : f >= 0.25 ? "edge busy" : "edge";
    const path = svg("path", { class: cls, d: edgePath(from, to) });
    path.append(svg("title", {}, `${e.from}${e.port ? "." + e.port : ""} → ${e.to}: input channel ${Math.round(f * 100)}% full`));
    edges.append(path);
    const rate = seen.rates.get(e.from);
    if (rate > 0) {
      edges.append(svg("text", { class: "edge-label", x: (from.x + NODE_W + to.x) / 2, y: (from.y + to.y + NODE_H) / 2 - 4, "text-anchor": "middle" },
        `${compact(rate)}/s${e.port ? " " + e.port : ""}`));
    }
  }
  graph.append(edges);
  for (const component of pipeline.components) {
    const at = place.get(component.path);
    const live = byPath.get(component.path);
    if (!at || !live) continue;
    const kind = kindOf(component);
    const g = svg("g", { class: `node ${kind}${live.not_ready ? " unready" : ""}`, "data-component": component.path, transform: `translate(${at.x},${at.y})` });
    g.append(svg("title", {}, `${component.path} (${component.type})\nreceived ${whole(live.received)}, sent ${whole(live.sent)}, dead-lettered ${whole(live.dead_lettered)}, dropped ${whole(live.dropped)}${live.not_ready ? "\nnot ready: " + live.not_ready : ""}`));
    g.append(svg("rect", { width: NODE_W, height: NODE_H }));
    const name = shortName(component.path);
    g.append(svg("text", { class: "name", x: 10, y: 17 }, name.length > 26 ? name.slice(0, 25) + "…" : name));
    g.append(svg("text", { class: "type", x: NODE_W - 10, y: 53, "text-anchor": "end" }, component.type));
    const rate = seen.rates.get(component.path) || 0;
    const total = kind === "source" ? live.received : kind === "sink" || kind === "dead" ? live.sent : live.sent;
    g.append(svg("text", { class: "rate", x: 10, y: 36 }, `${compact(rate)}/s · ${compact(total)} total`));
    const notes = svg("text", { x: 10, y: 53 });
    const note = (cls, text) => {
      if (notes.childNodes.length) notes.append(svg("tspan", { class: "dropped" }, " · "));
      notes.append(svg("tspan", { class: cls }, text));
    };
    if (live.dead_lettered > 0) note("letters", `${compact(live.dead_lettered)} dead letters`);
    if (live.dropped > 0) note("dropped", `${compact(live.dropped)} dropped`);
    if (live.not_ready) note("letters", "not ready");
    if (notes.childNodes.length) g.append(notes);
    graph.append(g);
  }
}

// ---- charts ---------------------------------------------------------------------------

const H = 240, M = { left: 62, right: 10, top: 14, bottom: 34 };

// The width to draw a chart at: its box's, so that text is never stretched.
function widthOf(section) {
  return Math.max(320, Math.round(section.clientWidth - 26));
}

function seriesColor(i) {
  return `var(--series-${i % 8})`;
}

function drawBars(chart, section) {
  const W = widthOf(section);
  const xs = [...new Set(chart.points.map((p) => p[chart.x]))].sort(byValue);
  const names = chart.series ? [...new Set(chart.points.map((p) => p[chart.series]))].sort(byValue) : [null];
  const value = new Map(chart.points.map((p) => [JSON.stringify([p[chart.x], chart.series ? p[chart.series] : null]), p]));
  const max = niceMax(Math.max(0, ...chart.points.map((p) => Number(p[chart.y]) || 0)));
  const plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
  const out = svg("svg", { viewBox: `0 0 ${W} ${H}` });
  axes(out, max, plotW, plotH);
  const band = plotW / Math.max(1, xs.length);
  const barW = Math.max(1, (band * 0.8) / names.length);
  const labelEvery = Math.ceil(xs.length / 10);
  xs.forEach((x, i) => {
    const left = M.left + i * band + band * 0.1;
    names.forEach((name, s) => {
      const p = value.get(JSON.stringify([x, name]));
      if (!p) return;
      const y = Number(p[chart.y]) || 0;
      const h = (Math.max(0, y) / max) * plotH;
      const rect = svg("rect", {
        class: "bar", x: left + s * barW, y: M.top + plotH - h, width: Math.max(0.5, barW - 1), height: h,
        fill: seriesColor(s), "data-x": String(x), "data-y": String(p[chart.y]), "data-series": name === null ? "" : String(name),
      });
      rect.append(svg("title", {}, `${x}${name === null ? "" : " · " + name}: ${whole(Math.round(y * 100) / 100)}`));
      out.append(rect);
    });
    if (i % labelEvery === 0) {
      out.append(svg("text", { x: M.left + i * band + band / 2, y: H - M.bottom + 16, "text-anchor": "middle" }, String(x)));
    }
    if (xs.length * names.length <= 8 && names.length === 1) {
      const p = value.get(JSON.stringify([x, null]));
      if (p) {
        const h = ((Number(p[chart.y]) || 0) / max) * plotH;
        out.append(svg("text", { class: "value", x: M.left + i * band + band / 2, y: M.top + plotH - h - 4, "text-anchor": "middle" }, compact(Number(p[chart.y]))));
      }
    }
  });
  section.append(out);
  if (chart.series) legend(section, names);
}

function drawLines(chart, section) {
  const W = widthOf(section);
  const xs = [...new Set(chart.points.map((p) => p[chart.x]))].sort(byValue);
  const names = chart.series ? [...new Set(chart.points.map((p) => p[chart.series]))].sort(byValue) : [null];
  const max = niceMax(Math.max(0, ...chart.points.map((p) => Number(p[chart.y]) || 0)));
  const plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
  const out = svg("svg", { viewBox: `0 0 ${W} ${H}` });
  axes(out, max, plotW, plotH);
  const xAt = (i) => M.left + (xs.length < 2 ? plotW / 2 : (i / (xs.length - 1)) * plotW);
  const yAt = (v) => M.top + plotH - (Math.max(0, v) / max) * plotH;
  names.forEach((name, s) => {
    const pts = chart.points
      .filter((p) => !chart.series || p[chart.series] === name)
      .map((p) => ({ p, i: xs.indexOf(p[chart.x]) }))
      .sort((a, b) => a.i - b.i);
    out.append(svg("polyline", { class: "line", stroke: seriesColor(s), points: pts.map(({ p, i }) => `${xAt(i)},${yAt(Number(p[chart.y]) || 0)}`).join(" ") }));
    for (const { p, i } of pts) {
      out.append(svg("circle", { class: "point", r: 2.5, cx: xAt(i), cy: yAt(Number(p[chart.y]) || 0), fill: seriesColor(s),
        "data-x": String(p[chart.x]), "data-y": String(p[chart.y]), "data-series": name === null ? "" : String(name) }));
    }
  });
  const labelEvery = Math.ceil(xs.length / 10);
  xs.forEach((x, i) => {
    if (i % labelEvery === 0) out.append(svg("text", { x: xAt(i), y: H - M.bottom + 16, "text-anchor": "middle" }, String(x)));
  });
  section.append(out);
  if (chart.series) legend(section, names);
}

function axes(out, max, plotW, plotH) {
  for (let k = 0; k <= 4; k++) {
    const y = M.top + plotH - (k / 4) * plotH;
    out.append(svg("line", { class: k === 0 ? "axis" : "grid", x1: M.left, x2: M.left + plotW, y1: y, y2: y }));
    out.append(svg("text", { x: M.left - 6, y: y + 4, "text-anchor": "end" }, compact((max * k) / 4)));
  }
}

function legend(section, names) {
  const box = html("div", { class: "series-legend" });
  names.forEach((name, s) => {
    const item = html("span");
    const swatch = html("i");
    swatch.style.background = seriesColor(s);
    item.append(swatch, document.createTextNode(String(name)));
    box.append(item);
  });
  section.append(box);
}

function drawTable(chart, section) {
  const columns = chart.columns.length ? chart.columns : Object.keys(chart.points[0] || {});
  const table = html("table", { class: "rows" });
  const head = html("tr");
  for (const c of columns) head.append(html("th", {}, c));
  table.append(head);
  for (const p of chart.points) {
    const tr = html("tr", { class: "row" });
    for (const c of columns) {
      const v = p[c];
      tr.append(html("td", typeof v === "number" ? { class: "num" } : {}, v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
    table.append(tr);
  }
  const scroll = html("div", { class: "scroll" });
  scroll.append(table);
  section.append(scroll);
}

function drawCharts(charts) {
  const box = document.getElementById("charts");
  document.getElementById("charts-panel").hidden = charts.length === 0;
  for (const chart of charts) {
    let section = seen.charts.get(chart.component);
    if (!section) {
      section = html("section", { class: `chart kind-${chart.chart}`, "data-component": chart.component });
      seen.charts.set(chart.component, section);
      box.append(section);
    }
    section.replaceChildren(html("h3", {}, chart.title));
    if (chart.points.length === 0) {
      section.append(html("div", { class: "empty" }, "no records yet"));
    } else if (chart.chart === "table") {
      drawTable(chart, section);
    } else if (chart.chart === "line") {
      drawLines(chart, section);
    } else {
      drawBars(chart, section);
    }
  }
}

// ---- time and checkpoints -------------------------------------------------------------

function drawWatermarks(pipeline, status) {
  const table = document.getElementById("watermarks");
  table.replaceChildren();
  const head = html("tr");
  for (const h of ["component", "watermark", "behind the clock"]) head.append(html("th", {}, h));
  table.append(head);
  let rows = 0;
  for (const c of status.components) {
    if (c.watermark_ms !== null && c.watermark_ms !== undefined) {
      const tr = html("tr");
      tr.append(html("td", {}, c.path), html("td", {}, timeText(c.watermark_ms)), html("td", {}, spanText(status.now_ms - c.watermark_ms)));
      table.append(tr);
      rows++;
    }
    for (const p of c.partitions || []) {
      const tr = html("tr");
      const lag = p.lag === null || p.lag === undefined ? "" : ` · ${whole(p.lag)} messages to read`;
      tr.append(html("td", {}, `${c.path} [${p.partition}]${p.owned ? "" : " (not owned)"}`),
        html("td", {}, timeText(p.watermark_ms)), html("td", {}, (p.watermark_ms ? spanText(status.now_ms - p.watermark_ms) : "–") + lag));
      table.append(tr);
      rows++;
    }
  }
  if (rows === 0) {
    const tr = html("tr");
    tr.append(html("td", { class: "muted", colspan: 3 }, "no event time yet"));
    table.append(tr);
  }
}

function drawCheckpoints(status) {
  const box = document.getElementById("checkpoints");
  box.replaceChildren();
  const cp = status.checkpoints;
  const history = cp.history || [];
  if (history.length === 0) {
    box.append(html("p", { class: "note" }, cp.failures ? `${cp.failures} failed, none completed` : "none completed (a pipeline keeps them with a [checkpoint] table)"));
    return;
  }
  const last = history[history.length - 1];
  box.append(html("p", { class: "note" },
    `last: #${last.id}, ${spanText(status.now_ms - last.completed_ms)} ago, took ${spanText(last.duration_ms)}, ${bytesText(last.size)} · failures: ${cp.failures}`));
  const out = svg("svg", { viewBox: "0 0 560 110", preserveAspectRatio: "none" });
  const max = Math.max(1, ...history.map((h) => h.duration_ms));
  const w = 540 / Math.max(20, history.length);
  history.forEach((h, i) => {
    const height = (h.duration_ms / max) * 90;
    const bar = svg("rect", { class: "bar", x: 10 + i * w, y: 100 - height, width: Math.max(1, w - 2), height: Math.max(1, height) });
    bar.append(svg("title", {}, `#${h.id}: ${spanText(h.duration_ms)}, ${bytesText(h.size)}`));
    out.append(bar);
  });
  box.append(out);
}

// ---- the header -----------------------------------------------------------------------

function drawHeader(pipeline, status) {
  const badge = document.getElementById("state");
  const waiting = status.state === "running" && status.not_ready.length > 0;
  badge.textContent = waiting ? "waiting" : status.state;
  badge.className = `badge ${waiting ? "waiting" : status.state}`;
  badge.title = status.not_ready.join("\n");
  const sources = status.components.filter((c) => pipeline.components.find((p) => p.path === c.path)?.kind === "source");
  const read = sources.reduce((a, c) => a + c.received, 0);
  const rate = sources.reduce((a, c) => a + (seen.rates.get(c.path) || 0), 0);
  const letters = status.components.find((c) => c.path === "dead_letter");
  const facts = document.getElementById("facts");
  facts.replaceChildren();
  const fact = (label, value) => {
    const span = html("span", {}, label + " ");
    span.append(html("b", {}, value));
    facts.append(span);
  };
  // After the run, how long it ran (the time of the last refresh that saw it running).
  if (status.state === "running" || status.state === "starting") seen.lastRunning = status.now_ms;
  const ran = (seen.lastRunning || status.now_ms) - pipeline.started_ms;
  fact(status.state === "running" || status.state === "starting" ? "running for" : "ran for", spanText(ran));
  fact("read", whole(read));
  fact("now", `${compact(rate)}/s`);
  fact("dead letters", whole(letters ? letters.received : 0));
  const last = status.checkpoints.last_id;
  fact("checkpoint", last === null || last === undefined ? "–" : `#${last}`);
}

// ---- the loop -------------------------------------------------------------------------

function updateRates(status) {
  const now = status.now_ms;
  if (seen.previous) {
    const dt = (now - seen.previous.now_ms) / 1000;
    const before = new Map(seen.previous.components.map((c) => [c.path, c]));
    for (const c of status.components) {
      const b = before.get(c.path);
      if (b && dt > 0) seen.rates.set(c.path, Math.max(0, (c.sent - b.sent) / dt));
    }
  }
  seen.previous = status;
}

// A run with a token ([http] token) gives its data only with it: open the dashboard as
// http://host:port/#token=<token> (what follows # never leaves the browser); it is kept for
// this tab only.
function token() {
  const given = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (given) {
    let token = given[1];
    try {
      token = decodeURIComponent(token);
    } catch {
      // Not %-encoded as a URL would be: taken as written.
    }
    sessionStorage.setItem("ecomflow-token", token);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("ecomflow-token");
}

async function getJson(path) {
  const t = token();
  const headers = t ? { Authorization: `Bearer ${t}` } : {};
  const response = await fetch(path, { cache: "no-store", headers });
  if (response.status === 401) {
    const e = new Error(`this run needs its token: open ${location.origin}/#token=<token>`);
    e.unauthorized = true;
    throw e;
  }
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json();
}

async function refresh() {
  const problem = document.getElementById("problem");
  try {
    if (!seen.pipeline) {
      seen.pipeline = await getJson("/api/pipeline");
      seen.layout = layoutGraph(seen.pipeline);
    }
    const [status, charts] = await Promise.all([getJson("/api/status"), getJson("/api/charts")]);
    updateRates(status);
    drawHeader(seen.pipeline, status);
    drawGraph(seen.pipeline, status);
    drawCharts(charts);
    drawWatermarks(seen.pipeline, status);
    drawCheckpoints(status);
    problem.hidden = true;
    document.body.dataset.state = status.state;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (e) {
    problem.hidden = false;
    problem.textContent = e.unauthorized
      ? `Cannot read the run: ${e.message}.`
      : `Cannot read the run (${e.message}); it may have ended. Trying again.`;
    const badge = document.getElementById("state");
    badge.textContent = "unreachable";
    badge.className = "badge unreachable";
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
