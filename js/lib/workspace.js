// The runs workspace (nbtracker/widgets/workspace.py): runs table (sort, filter, search,
// group, column picker, pinned columns, visibility toggles, pages), overlay charts with a
// stable colour per run (the kernel hashes the run id), grouped mean + min-max bands,
// parallel coordinates, scatter and parameter importance.
//
// The kernel answers every table question (DuckDB); this view only sets traits and
// draws. Series arrive as {type: "series", seq, runs: {id: {key: {from, s, t, v}}}}
// (replace points with step >= from) and as the synced `_series` snapshot.
// Every user string is put in the page as text (textContent / attributes), never as HTML,
// and never inside a Vega expression: run ids and names travel as data fields.

import vegaEmbed from "vega-embed";
import * as vega from "vega";
import { AXIS_LABEL, STEP_AXIS_LABEL, fmtDuration, fmtNum, h, setText } from "./format.js";
import { ChartOpts, setForAll } from "./chart_opts.js";
import { twema } from "./smooth.js";
import { YFit, resetZoomButton, zoomRange } from "./zoom.js";
import { sectionOf } from "./panel.js";
import { lowerBound } from "./store.js";
import { hideFallback, injectStyles, vegaConfig } from "./styles.js";

const CSS = `
.nbt-ws-bar { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; margin: 6px 0; }
.nbt-ws-bar input[type=text] { font: inherit; color: inherit; background: transparent;
  border: 1px solid var(--jp-border-color2, #bbb); border-radius: 3px; padding: 1px 6px; }
.nbt-ws-filter { min-width: 22em; }
.nbt-ws-tabs button, .nbt-ws-pager button, .nbt-ws-bar button { font: inherit; cursor: pointer;
  color: inherit; background: var(--jp-layout-color2, #eee); border: 1px solid var(--jp-border-color2, #ccc);
  border-radius: 3px; padding: 1px 8px; }
.nbt-ws-tabs button[aria-pressed=true] { background: var(--jp-brand-color1, #1976d2); color: #fff; }
.nbt-ws-wrap { overflow: auto; max-height: 340px; border: 1px solid var(--jp-border-color3, #e6e6e6); }
.nbt-ws-table { border-collapse: separate; border-spacing: 0; font-size: 11px; }
.nbt-ws-table th, .nbt-ws-table td { padding: 1px 8px 1px 4px; white-space: nowrap; text-align: left;
  border-bottom: 1px solid var(--jp-border-color3, #eee); background: var(--jp-layout-color1, #fff);
  max-width: 16em; overflow: hidden; text-overflow: ellipsis; }
.nbt-ws-table th { position: sticky; top: 0; z-index: 2; cursor: pointer; user-select: none;
  background: var(--jp-layout-color2, #f3f3f3); }
.nbt-ws-table .nbt-ws-pin { position: sticky; z-index: 1; }
.nbt-ws-table th.nbt-ws-pin { z-index: 3; }
.nbt-ws-table td.nbt-ws-num { text-align: right; font-variant-numeric: tabular-nums; }
.nbt-ws-table tr[data-hl=true] td { font-weight: 600; }
.nbt-ws-pager { display: flex; gap: 8px; align-items: center; margin: 4px 0; }
.nbt-ws-cols { position: relative; }
.nbt-ws-cols > div { position: absolute; z-index: 10; max-height: 260px; overflow: auto; padding: 4px 8px;
  background: var(--jp-layout-color1, #fff); border: 1px solid var(--jp-border-color2, #ccc); }
.nbt-ws-cols label { display: block; white-space: nowrap; }
.nbt-ws-bars td { padding: 1px 8px 1px 0; }
.nbt-ws-bar-fill { display: inline-block; height: 9px; background: var(--jp-brand-color1, #1976d2); }
.nbt-ws-bar-neg { background: var(--jp-error-color1, #d32f2f); }
`;

let cssDone = false;
function styles() {
  injectStyles();
  if (cssDone || document.getElementById("nbt-ws-styles")) return;
  cssDone = true;
  document.head.append(h("style", { id: "nbt-ws-styles" }, CSS));
}

function button(text, testid, onclick) {
  const b = h("button", { type: "button", testid, text });
  b.addEventListener("click", onclick);
  return b;
}

/** Series of every drawn run, from the snapshot trait and the streamed deltas. */
class Store {
  constructor(model) {
    this.model = model;
    this.runs = new Map(); // id -> Map(key -> {s, t, v})
    this.seq = -1;
    this.seed(model.get("_series"));
  }

  seed(raw) {
    // the synced snapshot is JSON text (cheap for the kernel to sync); messages are objects
    let snap = raw;
    if (typeof raw === "string") {
      try {
        snap = raw ? JSON.parse(raw) : null;
      } catch {
        snap = null;
      }
    }
    if (!snap || !snap.runs || (snap.seq ?? -1) < this.seq) return false;
    this.runs.clear();
    for (const [rid, keys] of Object.entries(snap.runs)) {
      const m = new Map();
      for (const [k, ser] of Object.entries(keys)) m.set(k, { s: ser.s.slice(), t: ser.t.slice(), v: ser.v.slice() });
      this.runs.set(rid, m);
    }
    this.seq = snap.seq ?? -1;
    return true;
  }

  apply(msg) {
    if (msg.type === "snap") return this.seed(msg);
    if (msg.type !== "series") return false;
    this.seq = Math.max(this.seq, msg.seq);
    for (const [rid, keys] of Object.entries(msg.runs || {})) {
      let m = this.runs.get(rid);
      if (!m) this.runs.set(rid, (m = new Map()));
      for (const [k, d] of Object.entries(keys)) {
        let ser = m.get(k);
        if (!ser || d.from === null || d.from === undefined) ser = { s: [], t: [], v: [] };
        const i = d.from === null || d.from === undefined ? 0 : lowerBound(ser.s, d.from);
        ser = { s: ser.s.slice(0, i).concat(d.s), t: ser.t.slice(0, i).concat(d.t), v: ser.v.slice(0, i).concat(d.v) };
        m.set(k, ser);
      }
    }
    return true;
  }
}

/** A series re-expressed over another metric `xser` ({s, v}): {s, v, x} of the steps at
 * which the other metric's value is known (logged there, or between two steps it was
 * logged at: linear); null when no step qualifies. */
function onAxis(ser, xser) {
  if (!xser || !xser.s.length) return null;
  const out = { s: [], v: [], x: [] };
  const n = xser.s.length;
  for (let j = 0; j < ser.s.length; j++) {
    const step = ser.s[j];
    const i = lowerBound(xser.s, step);
    let x = null;
    if (i < n && xser.s[i] === step) x = xser.v[i];
    else if (i > 0 && i < n) {
      const [s0, s1, x0, x1] = [xser.s[i - 1], xser.s[i], xser.v[i - 1], xser.v[i]];
      if (Number.isFinite(x0) && Number.isFinite(x1)) x = x0 + ((x1 - x0) * (step - s0)) / (s1 - s0);
    }
    if (x === null || !Number.isFinite(x)) continue;
    out.s.push(step);
    out.v.push(ser.v[j]);
    out.x.push(x);
  }
  return out.s.length ? out : null;
}

class OverlayChart {
  constructor(ws, key) {
    this.ws = ws;
    this.key = key;
    this.view = null;
    this.rows = [];
    this.readout = h("span", { class: "nbt-chart-val", testid: "nbt-ws-readout" });
    this.plot = h("div", { class: "nbt-plot" });
    this.zoomRange = null;
    this.resetBtn = resetZoomButton(() => this.embed());
    const m = ws.model;
    this.co = new ChartOpts(m, key, {
      view: "workspace",
      // step, time, or any other metric of the runs as this chart's x axis
      choices: () => ["step", "time", ...(m.get("metrics") || []).filter((k) => k !== key)],
      defaultX: () => (m.get("x_axis") === "time" ? "time" : "step"),
    });
    this.el = h(
      "div",
      { class: "nbt-chart", testid: "nbt-ws-chart", dataset: { key, points: "0", lines: "0", zoomed: "0" } },
      h(
        "div",
        { class: "nbt-chart-head" },
        h("span", { class: "nbt-chart-key", text: key, title: key }),
        h("span", { class: "nbt-chart-tools" }, this.readout, this.resetBtn, this.co.btn),
      ),
      this.co.box,
      this.plot,
    );
    this.co.btn.addEventListener("click", () => this.co.update(this.el));
    this.co.update(this.el);
    this.el.addEventListener("pointermove", (ev) => this.hover(ev));
    this.el.addEventListener("pointerleave", () => setText(this.readout, ""));
  }

  setZoomed(range) {
    this.zoomRange = range;
    this.resetBtn.hidden = !range;
    this.el.dataset.zoomed = range ? "1" : "0";
    if (!range && this.view) this.view.signal("ylo", null).signal("yhi", null).runAsync();
  }

  /** Wheel zoom on x: y follows the lines (or group bands) inside the visible range. */
  fitY() {
    const r = this.zoomRange;
    if (!r || !this.view) return;
    const grouped = (this.ws.model.get("group") || []).length > 0;
    const smooth = this.co.smoothing() > 0;
    const fit = new YFit(this.co.logy());
    for (const row of grouped ? this.bandRows() : this.rows) {
      if (row.x < r[0] || row.x > r[1]) continue;
      if (grouped) {
        fit.add(row.lo);
        fit.add(row.hi);
      } else {
        fit.add(row.y);
        if (smooth) fit.add(row.sv);
      }
    }
    fit.apply(this.view, this.el);
  }

  spec() {
    const m = this.ws.model;
    const grouped = (m.get("group") || []).length > 0; // group bands are drawn over steps
    const xa = grouped ? "step" : this.co.xaxis();
    const xaxis = xa === "time" ? "time (s)" : xa;
    const logy = this.co.logy();
    const smooth = this.co.smoothing() > 0;
    const runs = m.get("runs") || {};
    const vis = m.get("drawn") || [];
    const domain = vis.slice();
    const range = vis.map((id) => (runs[id] || {}).color || "#888");
    const bands = (m.get("bands") || {})[this.key];
    const y = {
      field: "y",
      type: "quantitative",
      title: null,
      // ylo / yhi: the y range fitted to a wheel-zoomed x range (null: the data's)
      scale: { ...(logy ? { type: "log" } : { zero: false }), domainMin: { expr: "ylo" }, domainMax: { expr: "yhi" } },
      axis: { tickCount: 4, labelExpr: AXIS_LABEL },
    };
    const xAxis = xaxis === "step" ? { tickMinStep: 1, labelExpr: STEP_AXIS_LABEL } : { labelExpr: AXIS_LABEL };
    const x = { field: "x", type: "quantitative", title: xaxis, axis: { tickCount: 5, ...xAxis } };
    const layers = [];
    if (bands && (m.get("group") || []).length) {
      const gd = Object.keys(bands);
      const gr = gd.map((g) => bands[g].color);
      const color = { field: "g", type: "nominal", scale: { domain: gd, range: gr }, legend: null };
      layers.push({
        data: { name: "bands" },
        mark: { type: "area", opacity: 0.18, clip: true },
        encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color },
      });
      layers.push({
        data: { name: "bands" },
        mark: { type: "line", strokeWidth: 2, clip: true },
        encoding: { x, y: { ...y, field: "mean" }, color, detail: { field: "g" } },
      });
    } else {
      const color = { field: "r", type: "nominal", scale: { domain, range }, legend: null };
      const width = { field: "hl", type: "nominal", scale: { domain: [false, true], range: [1.3, 2.6] }, legend: null };
      if (smooth) {
        layers.push({
          data: { name: "points" },
          mark: { type: "line", opacity: 0.2, clip: true },
          encoding: { x, y, color, detail: { field: "r" } },
        });
      }
      layers.push({
        data: { name: "points" },
        mark: { type: "line", clip: true },
        encoding: { x, y: { ...y, field: smooth ? "sv" : "y" }, color, strokeWidth: width, detail: { field: "r" } },
      });
    }
    return {
      width: 300,
      height: 150,
      autosize: { type: "pad", resize: true },
      params: [
        { name: "zoom", select: { type: "interval", encodings: ["x"] }, bind: "scales" },
        { name: "ylo", value: null },
        { name: "yhi", value: null },
      ],
      layer: layers.map((l, i) => (i === 0 ? l : { ...l, params: undefined })),
      config: vegaConfig(this.ws.el),
    };
  }

  async embed() {
    if (this.view) this.view.finalize();
    this.view = null;
    this.plot.textContent = "";
    this.co.update(this.el);
    try {
      const spec = this.spec();
      // the zoom selection belongs to the first layer (vega-lite wants it on a unit); the
      // plain values (ylo, yhi) stay at the top
      spec.layer[0] = { ...spec.layer[0], params: spec.params.filter((p) => p.select) };
      spec.params = spec.params.filter((p) => !p.select);
      const res = await vegaEmbed(this.plot, spec, {
        renderer: this.ws.model.get("renderer") || "canvas",
        actions: false,
        mode: "vega-lite",
      });
      if (this.ws.closed) return res.view.finalize();
      this.view = res.view;
      this.setZoomed(null);
      try {
        this.view.addSignalListener("zoom", (_name, value) => {
          this.setZoomed(zoomRange(value));
          this.fitY();
        });
      } catch {
        // no zoom selection in this spec
      }
      this.flush();
    } catch (err) {
      this.plot.append(h("div", { class: "nbt-error", text: `chart error: ${err}` }));
    }
  }

  data() {
    const m = this.ws.model;
    const w = this.co.smoothing();
    const xa = this.co.xaxis();
    const logy = this.co.logy();
    const hl = m.get("highlight") || "";
    const rows = [];
    let lines = 0;
    for (const rid of m.get("drawn") || []) {
      const got = this.ws.store.runs.get(rid);
      let ser = got?.get(this.key);
      if (!ser) continue;
      let xs = ser.s;
      if (xa === "time") xs = ser.t;
      else if (xa !== "step") {
        // another metric as x (an epoch counter, tokens seen): its value at each step,
        // interpolated between the steps it was logged at; a run without it is not drawn
        ser = onAxis(ser, got.get(xa));
        if (!ser) continue;
        xs = ser.x;
      }
      lines++;
      const sv = twema(xs, ser.v, w);
      for (let j = 0; j < ser.s.length; j++) {
        const v = ser.v[j];
        if (v === null || !Number.isFinite(v)) continue; // NaN/inf: a gap, kept in the series
        if (logy && (v <= 0 || sv[j] <= 0)) continue;
        rows.push({ r: rid, hl: rid === hl, x: xs[j], s: ser.s[j], y: v, sv: sv[j] });
      }
    }
    return { rows, lines };
  }

  bandRows() {
    const b = (this.ws.model.get("bands") || {})[this.key] || {};
    const rows = [];
    for (const [g, d] of Object.entries(b)) {
      for (let j = 0; j < d.s.length; j++) rows.push({ g, x: d.s[j], mean: d.mean[j], lo: d.lo[j], hi: d.hi[j] });
    }
    return rows;
  }

  flush() {
    if (!this.view) return;
    const { rows, lines } = this.data();
    this.rows = rows;
    const grouped = (this.ws.model.get("group") || []).length > 0;
    try {
      if (grouped) {
        const b = this.bandRows();
        this.view.change("bands", vega.changeset().remove(() => true).insert(b)).runAsync();
        this.el.dataset.lines = String(Object.keys((this.ws.model.get("bands") || {})[this.key] || {}).length);
        this.el.dataset.points = String(b.length);
      } else {
        this.view.change("points", vega.changeset().remove(() => true).insert(rows)).runAsync();
        this.el.dataset.points = String(rows.length);
        this.el.dataset.lines = String(lines);
      }
    } catch (err) {
      /* a spec without that dataset (re-embedding): the next flush fills it */
    }
    if (this.zoomRange) this.fitY();
  }

  hover(ev) {
    const view = this.view;
    const surface = this.plot.querySelector("canvas, svg");
    if (!view || !surface || !this.rows.length) return;
    const xs = view.scale("x");
    if (!xs || !xs.invert) return;
    const rect = surface.getBoundingClientRect();
    const px = ev.clientX - rect.left - view.origin()[0];
    const x = xs.invert(px);
    const best = new Map();
    for (const row of this.rows) {
      const d = Math.abs(row.x - x);
      const cur = best.get(row.r);
      if (!cur || d < cur.d) best.set(row.r, { d, row });
    }
    const smooth = this.co.smoothing() > 0;
    const runs = this.ws.model.get("runs") || {};
    const items = [...best.values()].map(({ row }) => ({ row, v: smooth ? row.sv : row.y }));
    items.sort((a, b) => b.v - a.v);
    this.ws.showReadout(this.key, items.map(({ row, v }) => ({ color: (runs[row.r] || {}).color, name: (runs[row.r] || {}).name || row.r, v, s: row.s })));
  }
}

class WorkspaceView {
  constructor(model, el, box) {
    this.model = model;
    this.closed = false;
    this.charts = new Map();
    this.sections = new Map();
    this.offs = [];
    this.store = new Store(model);
    styles();
    this.build(el);
    const route = (msg) => {
      if (msg && this.store.apply(msg)) this.scheduleFlush();
    };
    for (const msg of box.q.splice(0)) route(msg);
    box.fn = route;
  }

  on(name, fn) {
    this.model.on(`change:${name}`, fn);
    this.offs.push(() => this.model.off(`change:${name}`, fn));
  }

  set(name, value) {
    this.model.set(name, value);
    this.model.save_changes();
  }

  build(el) {
    const m = this.model;
    this.titleEl = h("span", { class: "nbt-name", testid: "nbt-ws-title" });
    this.countEl = h("span", { class: "nbt-muted", testid: "nbt-ws-count" });
    this.filterIn = h("input", { type: "text", class: "nbt-ws-filter", testid: "nbt-ws-filter", placeholder: "filter: config.lr < 0.01 and state = 'finished'", "aria-label": "filter" });
    this.searchIn = h("input", { type: "text", testid: "nbt-ws-search", placeholder: "search names", "aria-label": "search" });
    this.groupSel = h("select", { testid: "nbt-ws-group", "aria-label": "group by" });
    this.groupSel2 = h("select", { testid: "nbt-ws-group2", "aria-label": "then group by" });
    this.group2 = h("label", { hidden: "" }, " then ", this.groupSel2);
    this.colsBtn = button("columns", "nbt-ws-columns", () => this.toggleColumns());
    this.colsBox = h("span", { class: "nbt-ws-cols" }, this.colsBtn);
    this.errorEl = h("div", { class: "nbt-error", testid: "nbt-ws-error" });
    this.filterIn.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") this.set("filter", this.filterIn.value);
    });
    this.filterIn.addEventListener("change", () => this.set("filter", this.filterIn.value));
    this.searchIn.addEventListener("input", () => this.set("search", this.searchIn.value));
    // group by one column, then optionally by a second (one line and one table row per pair)
    const setGroup = () => {
      const first = this.groupSel.value;
      const second = first && this.groupSel2.value !== first ? this.groupSel2.value : "";
      this.set("group", [first, second].filter(Boolean));
    };
    this.groupSel.addEventListener("change", setGroup);
    this.groupSel2.addEventListener("change", setGroup);
    this.smooth = h("input", { type: "range", min: "0", max: "0.99", step: "0.01", testid: "nbt-smoothing", "aria-label": "smoothing" });
    this.smooth.addEventListener("input", () => setForAll(m, "smoothing", "smoothing", Number(this.smooth.value)));
    this.xsel = h("select", { testid: "nbt-x-axis", "aria-label": "x axis" }, h("option", { value: "step", text: "step" }), h("option", { value: "time", text: "time" }));
    this.xsel.addEventListener("change", () => setForAll(m, "x_axis", "x", this.xsel.value));
    this.logbox = h("input", { type: "checkbox", testid: "nbt-log-y", "aria-label": "log scale" });
    this.logbox.addEventListener("change", () => setForAll(m, "log_y", "log_y", this.logbox.checked));
    this.tabs = h("span", { class: "nbt-ws-tabs" });
    for (const [name, label] of [["charts", "charts"], ["parallel", "parallel coordinates"], ["scatter", "scatter"], ["importance", "importance"]]) {
      this.tabs.append(button(label, `nbt-ws-tab-${name}`, () => this.set("tab", name)));
    }
    this.tableEl = h("table", { class: "nbt-ws-table", testid: "nbt-ws-table" });
    this.pager = h("div", { class: "nbt-ws-pager" });
    this.groupsEl = h("div", { testid: "nbt-ws-groups" });
    this.readout = h("div", { class: "nbt-readout", testid: "nbt-hover-readout" });
    this.body = h("div", { class: "nbt-body", testid: "nbt-ws-charts" });
    this.analysis = h("div", { testid: "nbt-ws-analysis" });
    this.el = h(
      "div",
      { class: "nbt-panel", testid: "nbt-workspace" },
      h("div", { class: "nbt-head" }, this.titleEl, this.countEl),
      h("div", { class: "nbt-ws-bar" }, this.filterIn, this.searchIn, h("label", {}, "group ", this.groupSel), this.group2, this.colsBox),
      this.errorEl,
      h("div", { class: "nbt-ws-wrap" }, this.tableEl),
      this.pager,
      this.groupsEl,
      h(
        "div",
        { class: "nbt-controls" },
        this.tabs,
        h("label", {}, "smoothing", this.smooth),
        h("label", {}, "x axis", this.xsel),
        h("label", {}, this.logbox, "log scale"),
      ),
      this.readout,
      this.body,
      this.analysis,
    );
    el.append(this.el);
    for (const n of ["title", "total", "matched", "error"]) this.on(n, () => this.head());
    for (const n of ["rows", "shown", "pinned", "sort", "visible", "drawn", "runs", "highlight", "offset", "page_size", "columns"]) this.on(n, () => this.table());
    this.on("groups", () => this.groupTable());
    for (const n of ["columns", "group"]) this.on(n, () => this.groupOptions());
    this.on("metrics", () => this.syncCharts());
    for (const n of ["drawn", "x_axis", "log_y", "group", "runs", "bands", "chart_opts"]) this.on(n, () => this.reembed());
    this.on("smoothing", () => this.reembed());
    this.on("highlight", () => this.scheduleFlush());
    this.on("_series", () => {
      if (this.store.seed(m.get("_series"))) this.scheduleFlush();
    });
    for (const n of ["tab", "points", "importance", "target", "scatter", "brush"]) this.on(n, () => this.drawAnalysis());
    const obs = new MutationObserver(() => this.reembed());
    obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
    this.offs.push(() => obs.disconnect());
    this.offs.push(hideFallback(m.get("_uid")));
    this.head();
    this.groupOptions();
    this.table();
    this.groupTable();
    this.syncCharts();
    this.drawAnalysis();
  }

  head() {
    const m = this.model;
    setText(this.titleEl, m.get("title") || "runs");
    const total = m.get("total");
    const matched = m.get("matched");
    setText(this.countEl, matched === total ? `${total} runs` : `${matched} of ${total} runs`);
    setText(this.errorEl, m.get("error") || "");
    if (document.activeElement !== this.filterIn) this.filterIn.value = m.get("filter") || "";
    this.smooth.value = String(m.get("smoothing") || 0);
    this.xsel.value = m.get("x_axis") || "step";
    this.logbox.checked = !!m.get("log_y");
    for (const b of this.tabs.children) b.setAttribute("aria-pressed", String(b.dataset.testid === `nbt-ws-tab-${m.get("tab")}`));
  }

  groupOptions() {
    const [cur = "", cur2 = ""] = this.model.get("group") || [];
    const names = (this.model.get("columns") || [])
      .map((c) => c.name)
      .filter((n) => n.startsWith("config.") || ["group", "job_type", "state", "sweep", "tags"].includes(n));
    for (const sel of [this.groupSel, this.groupSel2]) {
      sel.textContent = "";
      sel.append(h("option", { value: "", text: "(none)" }));
      for (const n of names) sel.append(h("option", { value: n, text: n }));
    }
    this.groupSel.value = cur;
    this.groupSel2.value = cur2;
    this.group2.hidden = !cur;
  }

  toggleColumns() {
    if (this.colsMenu) {
      this.colsMenu.remove();
      this.colsMenu = null;
      return;
    }
    const shown = new Set(this.model.get("shown") || []);
    const pinned = new Set(this.model.get("pinned") || []);
    const menu = h("div", { testid: "nbt-ws-column-menu" });
    for (const c of this.model.get("columns") || []) {
      if (c.name === "run_id" || c.name === "name") continue;
      const box = h("input", { type: "checkbox", "aria-label": `show ${c.name}` });
      box.checked = shown.has(c.name);
      box.addEventListener("change", () => {
        const cur = (this.model.get("shown") || []).filter((n) => n !== c.name);
        this.set("shown", box.checked ? [...cur, c.name] : cur);
      });
      const pin = h("input", { type: "checkbox", "aria-label": `pin ${c.name}`, title: "pin" });
      pin.checked = pinned.has(c.name);
      pin.addEventListener("change", () => {
        const cur = (this.model.get("pinned") || []).filter((n) => n !== c.name);
        this.set("pinned", pin.checked ? [...cur, c.name] : cur);
      });
      menu.append(h("label", {}, box, ` ${c.name} `, pin, h("span", { class: "nbt-muted", text: " pin" })));
    }
    this.colsMenu = menu;
    this.colsBox.append(menu);
  }

  table() {
    const m = this.model;
    const shown = m.get("shown") || [];
    const pinned = (m.get("pinned") || []).filter((c) => shown.includes(c));
    const order = [...pinned, ...shown.filter((c) => !pinned.includes(c))];
    const idx = order.map((c) => shown.indexOf(c));
    const sort = (m.get("sort") || [])[0] || null;
    const visible = new Set(m.get("visible") || []);
    const runs = m.get("runs") || {};
    const kinds = Object.fromEntries((m.get("columns") || []).map((c) => [c.name, c.kind]));
    const hl = m.get("highlight") || "";
    const head = h("tr");
    const lefts = [0, 22, 62];
    const pinStyle = (i) => `left:${lefts[i] ?? 62 + 110 * (i - 2)}px`;
    head.append(h("th", { class: "nbt-ws-pin", style: pinStyle(0) }), h("th", { class: "nbt-ws-pin", style: pinStyle(1), title: "drawn on the charts" }, "show"));
    const nameTh = h("th", { class: "nbt-ws-pin", style: pinStyle(2), testid: "nbt-ws-sort-name" }, "name");
    nameTh.addEventListener("click", () => this.sortBy("name"));
    head.append(nameTh);
    order.forEach((c, i) => {
      const mark = sort && sort[0] === c ? (sort[1] ? " ▼" : " ▲") : "";
      const attrs = { testid: `nbt-ws-sort`, dataset: { col: c }, title: c };
      if (i < pinned.length) Object.assign(attrs, { class: "nbt-ws-pin", style: pinStyle(3 + i) });
      const th = h("th", attrs, c.replace(/^(config|summary)\./, "") + mark);
      th.addEventListener("click", () => this.sortBy(c));
      head.append(th);
    });
    const rows = [head];
    for (const r of m.get("rows") || []) {
      const info = runs[r.id] || {};
      const eye = h("input", { type: "checkbox", testid: "nbt-ws-visible", "aria-label": `draw ${info.name || r.id}` });
      eye.checked = visible.has(r.id);
      eye.addEventListener("change", () => {
        const cur = (this.model.get("visible") || []).filter((x) => x !== r.id);
        this.set("visible", eye.checked ? [...cur, r.id] : cur);
      });
      const tr = h("tr", { testid: "nbt-ws-row", dataset: { id: r.id, runId: r.id, hl: String(r.id === hl) } });
      tr.append(
        h("td", { class: "nbt-ws-pin", style: pinStyle(0) }, h("span", { class: "nbt-swatch", style: `background:${/^#[0-9a-fA-F]{3,8}$/.test(r.color) ? r.color : "#888"}` })),
        h("td", { class: "nbt-ws-pin", style: pinStyle(1) }, eye),
        h("td", { class: "nbt-ws-pin", style: pinStyle(2), title: r.id, text: info.name || r.id }),
      );
      order.forEach((c, i) => {
        const v = r.cells[idx[i]];
        let text;
        if (c === "created") text = v ? new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ") : "";
        else if (c === "runtime") text = v === null || v === undefined ? "" : fmtDuration(v);
        else text = v === null || v === undefined ? "" : typeof v === "number" ? fmtNum(v) : String(v);
        const attrs = { text, title: text };
        if (kinds[c] === "number") attrs.class = "nbt-ws-num";
        if (c === "state") Object.assign(attrs, { testid: "nbt-run-state", dataset: { state: text } });
        if (i < pinned.length) Object.assign(attrs, { class: `${attrs.class || ""} nbt-ws-pin`, style: pinStyle(3 + i) });
        tr.append(h("td", attrs));
      });
      rows.push(tr);
    }
    this.tableEl.replaceChildren(...rows);
    const off = m.get("offset") || 0;
    const size = m.get("page_size") || 50;
    const matched = m.get("matched") || 0;
    this.pager.replaceChildren(
      button("‹ prev", "nbt-ws-prev", () => this.set("offset", Math.max(0, off - size))),
      h("span", { testid: "nbt-ws-page", text: matched ? `${off + 1}–${Math.min(off + size, matched)} of ${matched}` : "no runs" }),
      button("next ›", "nbt-ws-next", () => off + size < matched && this.set("offset", off + size)),
      h("span", { class: "nbt-muted", testid: "nbt-ws-drawn", text: `${(m.get("drawn") || []).length} drawn` }),
    );
    this.head();
  }

  sortBy(col) {
    const cur = (this.model.get("sort") || [])[0];
    const desc = cur && cur[0] === col ? !cur[1] : true;
    this.set("sort", [[col, desc]]);
  }

  groupTable() {
    const g = this.model.get("groups") || {};
    if (!g.head || !g.head.length) return this.groupsEl.replaceChildren();
    const head = h("tr", {}, ...g.head.map((c) => h("th", { text: c })));
    const rows = g.rows.map((r) => h("tr", { testid: "nbt-ws-group-row" }, ...r.map((v) => h("td", { text: typeof v === "number" ? fmtNum(v) : String(v ?? "–") }))));
    this.groupsEl.replaceChildren(h("div", { class: "nbt-section-title", text: "groups" }), h("div", { class: "nbt-ws-wrap" }, h("table", { class: "nbt-ws-table" }, head, ...rows)));
  }

  showReadout(key, items) {
    this.readout.replaceChildren(
      h("b", { text: `${key}: ` }),
      ...items.slice(0, 12).map((it) => h("span", { style: "margin-right:10px" }, h("span", { class: "nbt-swatch", style: `background:${it.color || "#888"}` }), ` ${it.name} ${fmtNum(it.v)}`)),
    );
  }

  syncCharts() {
    const keys = this.model.get("metrics") || [];
    for (const [key, c] of this.charts) {
      if (!keys.includes(key)) {
        c.view?.finalize();
        c.el.remove();
        this.charts.delete(key);
      }
    }
    for (const key of keys) {
      if (this.charts.has(key)) continue;
      const sec = sectionOf(key);
      let grid = this.sections.get(sec);
      if (!grid) {
        grid = h("div", { class: "nbt-grid" });
        this.sections.set(sec, grid);
        this.body.append(h("div", { class: "nbt-section", testid: "nbt-section", dataset: { section: sec } }, h("div", { class: "nbt-section-title", text: sec || "charts" }), grid));
      }
      const c = new OverlayChart(this, key);
      this.charts.set(key, c);
      grid.append(c.el);
      c.embed();
    }
  }

  reembed() {
    if (this.reembedTimer) return;
    this.reembedTimer = setTimeout(() => {
      this.reembedTimer = null;
      this.head();
      for (const c of this.charts.values()) c.embed();
    }, 30);
  }

  scheduleFlush() {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      for (const c of this.charts.values()) c.flush();
    }, 60);
  }

  async drawAnalysis() {
    const m = this.model;
    this.head();
    const tab = m.get("tab");
    this.body.style.display = tab === "charts" ? "" : "none";
    if (this.aview) this.aview.finalize();
    this.aview = null;
    this.analysis.replaceChildren();
    if (tab === "charts") return;
    const cols = (m.get("columns") || []).filter((c) => c.kind === "number").map((c) => c.name);
    const pick = (label, value, on, testid) => {
      const sel = h("select", { testid, "aria-label": label });
      for (const c of cols) sel.append(h("option", { value: c, text: c }));
      sel.value = value || "";
      sel.addEventListener("change", () => on(sel.value));
      return h("label", {}, `${label} `, sel);
    };
    const summaries = cols.filter((c) => c.startsWith("summary."));
    const target = m.get("target") || summaries[0] || "";
    const bar = h("div", { class: "nbt-ws-bar" });
    this.analysis.append(bar);
    if (tab === "parallel" || tab === "importance") bar.append(pick("metric", target, (v) => this.set("target", v), "nbt-ws-target"));
    const pts = m.get("points") || {};
    const runs = m.get("runs") || {};
    if (tab === "importance") {
      const rows = m.get("importance") || [];
      if (!rows.length) return this.analysis.append(h("div", { class: "nbt-empty", text: "needs 3 runs or more with numeric config parameters and the metric" }));
      const max = Math.max(...rows.map((r) => r.importance), 1e-9);
      const table = h("table", { class: "nbt-ws-bars", testid: "nbt-ws-importance" }, h("tr", {}, h("th", { text: "parameter" }), h("th", { text: "importance" }), h("th", { text: "correlation" })));
      for (const r of rows) {
        table.append(
          h(
            "tr",
            {},
            h("td", { text: r.param }),
            h("td", {}, h("span", { class: "nbt-ws-bar-fill", style: `width:${Math.round((120 * r.importance) / max)}px` }), ` ${fmtNum(r.importance)}`),
            h("td", {}, h("span", { class: `nbt-ws-bar-fill ${r.correlation < 0 ? "nbt-ws-bar-neg" : ""}`, style: `width:${Math.round(60 * Math.abs(r.correlation))}px` }), ` ${fmtNum(r.correlation)}`),
          ),
        );
      }
      return this.analysis.append(table);
    }
    const names = pts.names || [];
    const data = (pts.rows || []).map((r) => {
      const o = { run: (runs[r[0]] || {}).name || r[0], id: r[0], inb: r[1] !== false };
      names.forEach((n, i) => (o[`c${i}`] = r[i + 2]));
      return o;
    });
    let spec;
    if (tab === "scatter") {
      const sc = m.get("scatter") || {};
      const setSc = (k) => (v) => this.set("scatter", { ...(m.get("scatter") || {}), [k]: v });
      bar.append(pick("x", sc.x, setSc("x"), "nbt-ws-scatter-x"), pick("y", sc.y, setSc("y"), "nbt-ws-scatter-y"), pick("colour", sc.color, setSc("color"), "nbt-ws-scatter-color"));
      const f = (k) => (names.indexOf(sc[k]) >= 0 ? `c${names.indexOf(sc[k])}` : null);
      if (!f("x") || !f("y")) return this.analysis.append(h("div", { class: "nbt-empty", text: "pick two columns" }));
      spec = {
        width: 420,
        height: 260,
        data: { values: data },
        mark: { type: "point", filled: true, size: 50 },
        encoding: {
          x: { field: f("x"), type: "quantitative", title: sc.x, scale: { zero: false } },
          y: { field: f("y"), type: "quantitative", title: sc.y, scale: { zero: false } },
          tooltip: [{ field: "run", type: "nominal" }],
          ...(f("color") ? { color: { field: f("color"), type: "quantitative", title: sc.color } } : {}),
        },
      };
    } else {
      if (!names.length) return this.analysis.append(h("div", { class: "nbt-empty", text: "no numeric config parameters" }));
      const fields = names.map((_, i) => `c${i}`);
      const tIdx = names.indexOf(target);
      spec = {
        width: Math.max(300, 110 * names.length),
        height: 240,
        data: { values: data },
        transform: [
          { window: [{ op: "count", as: "index" }] },
          { fold: fields },
          { joinaggregate: [{ op: "min", field: "value", as: "min" }, { op: "max", field: "value", as: "max" }], groupby: ["key"] },
          { calculate: "datum.max === datum.min ? 0.5 : (datum.value - datum.min) / (datum.max - datum.min)", as: "norm" },
          { lookup: "key", from: { data: { values: names.map((n, i) => ({ key: `c${i}`, label: n })) }, key: "key", fields: ["label"] } },
        ],
        layer: [
          { mark: { type: "rule", opacity: 0.3 }, encoding: { x: { field: "label", type: "nominal", sort: names, title: null } } },
          {
            mark: { type: "line", opacity: 0.8 },
            encoding: {
              x: { field: "label", type: "nominal", sort: names, title: null, axis: { labelAngle: 0, labelLimit: 120 } },
              y: { field: "norm", type: "quantitative", axis: null },
              detail: { field: "index", type: "nominal" },
              color: {
                condition: { test: "!datum.inb", value: "#9e9e9e" },
                ...(tIdx >= 0 ? { field: fields[tIdx], type: "quantitative", title: target } : { value: "#4c78a8" }),
              },
              opacity: { condition: { test: "!datum.inb", value: 0.25 }, value: 0.85 },
              tooltip: [{ field: "run", type: "nominal" }, { field: "label", type: "nominal" }, { field: "value", type: "quantitative" }],
            },
          },
        ],
      };
    }
    spec.config = vegaConfig(this.el);
    const plot = h("div", { testid: `nbt-ws-${tab}` });
    this.analysis.append(plot);
    try {
      const res = await vegaEmbed(plot, spec, { actions: false, mode: "vega-lite", renderer: m.get("renderer") || "canvas" });
      this.aview = res.view;
      if (tab === "parallel") {
        this.analysis.append(button("clear brushes", "nbt-ws-brush-clear", () => this.set("brush", {})));
        this.brushAxes(plot, res.view, names, data);
      }
    } catch (err) {
      plot.append(h("div", { class: "nbt-error", text: `chart error: ${err}` }));
    }
  }

  /** Brushing: drag along an axis of the parallel coordinates to keep the runs whose value
   * lies in that range (the kernel filters the table, the charts and the other views);
   * a click without a drag clears that axis. Ranges go to the `brush` trait as values. */
  brushAxes(plot, view, names, data) {
    const surface = plot.querySelector("canvas, svg");
    const xs = view.scale("x");
    const ys = view.scale("y");
    if (!surface || !xs || !ys || !ys.invert) return;
    plot.style.position = "relative";
    const pr = plot.getBoundingClientRect();
    const sr = surface.getBoundingClientRect();
    const [ox, oy] = view.origin();
    const left = sr.left - pr.left + ox;
    const top = sr.top - pr.top + oy;
    const [y0, y1] = ys.range();
    const height = Math.abs(y0 - y1);
    const half = xs.bandwidth ? xs.bandwidth() / 2 : 0;
    const brush = this.model.get("brush") || {};
    names.forEach((name, i) => {
      const vals = data.map((d) => d[`c${i}`]).filter((v) => typeof v === "number" && Number.isFinite(v));
      if (!vals.length) return;
      const lo = Math.min(...vals);
      const hi = Math.max(...vals);
      const toValue = (py) => {
        const norm = Math.min(1, Math.max(0, ys.invert(py)));
        return lo + norm * (hi - lo);
      };
      const toPx = (v) => ys(hi === lo ? 0.5 : (v - lo) / (hi - lo));
      const x = left + xs(name) + half;
      const axis = h("div", {
        testid: "nbt-ws-brush-axis",
        dataset: { col: name },
        title: `drag to keep a range of ${name}`,
        style: `position:absolute;left:${x - 9}px;top:${top}px;width:18px;height:${height}px;cursor:crosshair;touch-action:none`,
      });
      const rect = h("div", { style: "position:absolute;left:2px;width:14px;background:rgba(25,118,210,.25);border:1px solid #1976d2;display:none" });
      axis.append(rect);
      const show = (a, b) => {
        rect.style.display = "";
        rect.style.top = `${Math.min(a, b)}px`;
        rect.style.height = `${Math.max(2, Math.abs(b - a))}px`;
      };
      if (brush[name]) show(toPx(brush[name][1]), toPx(brush[name][0]));
      let start = null;
      axis.addEventListener("pointerdown", (ev) => {
        start = ev.clientY - axis.getBoundingClientRect().top;
        try {
          axis.setPointerCapture?.(ev.pointerId); // (fails for a pointer already gone)
        } catch {
          /* the drag still ends on this axis */
        }
        show(start, start);
        ev.preventDefault();
      });
      axis.addEventListener("pointermove", (ev) => {
        if (start === null) return;
        show(start, ev.clientY - axis.getBoundingClientRect().top);
      });
      axis.addEventListener("pointerup", (ev) => {
        if (start === null) return;
        const end = ev.clientY - axis.getBoundingClientRect().top;
        const a = start;
        start = null;
        const next = { ...(this.model.get("brush") || {}) };
        if (Math.abs(end - a) < 3) delete next[name];
        else {
          const v1 = toValue(a);
          const v2 = toValue(end);
          next[name] = [Math.min(v1, v2), Math.max(v1, v2)];
        }
        this.set("brush", next);
      });
      plot.append(axis);
    });
  }

  close() {
    this.closed = true;
    for (const off of this.offs) off();
    for (const c of this.charts.values()) c.view?.finalize();
    this.aview?.finalize();
  }
}

export function renderWorkspace({ model, el, box }) {
  const ws = new WorkspaceView(model, el, box);
  return () => ws.close();
}
