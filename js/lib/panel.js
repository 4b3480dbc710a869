// The live run panel: header (name, project, state, step, elapsed, steps/s), controls
// (smoothing, x axis, log scale), a shared hover readout, one vega chart per metric grouped
// into sections by key prefix, and config/summary tables.
//
// Charts are embedded once and fed with `view.change("points", changeset)`; they are only
// re-embedded when the user changes the x axis or the log scale, or the theme changes.

import vegaEmbed from "vega-embed";
import * as vega from "vega";
import { fmtDuration, fmtNum, h } from "./format.js";
import { SeriesStore, lowerBound } from "./store.js";
import { hideFallback, injectStyles, vegaConfig } from "./styles.js";
import { MediaSection, mediaStoreFor } from "./media.js";
import { AlertStrip } from "./alerts.js";
import { EnvTable, SystemSection } from "./system.js";
import { LogsSection } from "./logs.js";

export function storeFor(box) {
  if (!box.store) {
    box.store = new SeriesStore(box.model);
    const media = mediaStoreFor(box);
    const route = (msg) => {
      if (msg && (msg.type === "media" || msg.type === "media_snap")) media.onMsg(msg);
      else box.store.onMsg(msg);
    };
    const queued = box.q.splice(0);
    for (const msg of queued) route(msg);
    box.fn = route;
  }
  return box.store;
}

export function sectionOf(key) {
  const i = key.indexOf("/");
  return i > 0 ? key.slice(0, i) : "";
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

class Chart {
  constructor(panel, key) {
    this.panel = panel;
    this.key = key;
    this.view = null;
    this.sv = [];
    this.js = []; // indices (into the store's arrays) of the points in the view
    this.pending = null;
    this.embedding = null;
    this.hoverVal = h("span", { class: "nbt-chart-val", testid: "nbt-chart-readout" });
    this.plot = h("div", { class: "nbt-plot" });
    this.el = h(
      "div",
      { class: "nbt-chart", testid: "nbt-chart", dataset: { key, points: "0" } },
      h("div", { class: "nbt-chart-head" }, h("span", { class: "nbt-chart-key", text: key, title: key }), this.hoverVal),
      this.plot,
    );
    this.el.addEventListener("pointermove", (ev) => this.onPointer(ev));
    this.el.addEventListener("pointerleave", () => panel.hover(null));
  }

  spec() {
    const p = this.panel;
    const spec = structuredClone(p.model.get("_spec"));
    const xaxis = p.model.get("x_axis") || "step";
    for (const layer of spec.layer || []) {
      const enc = layer.encoding || {};
      if (enc.x && enc.x.field) enc.x.title = xaxis === "time" ? "time (s)" : xaxis;
      if (enc.y && enc.y.field && p.model.get("log_y")) {
        enc.y.scale = { ...(enc.y.scale || {}), type: "log", zero: false };
      }
    }
    spec.params = (spec.params || []).map((prm) =>
      prm.name === "smooth" ? { ...prm, value: p.model.get("smoothing") || 0 } : prm,
    );
    spec.config = { ...(spec.config || {}), ...vegaConfig(p.el) };
    return spec;
  }

  async embed() {
    if (this.embedding) await this.embedding.catch(() => {});
    const run = async () => {
      if (this.view) {
        this.view.finalize();
        this.view = null;
      }
      this.plot.textContent = "";
      const res = await vegaEmbed(this.plot, this.spec(), {
        renderer: this.panel.model.get("renderer") || "canvas",
        actions: false,
        mode: "vega-lite",
      });
      if (this.panel.closed) {
        res.view.finalize();
        return;
      }
      this.view = res.view;
      this.detail = null;
      this.want = null;
      try {
        this.view.addSignalListener("zoom", (_name, value) => this.onZoom(value));
      } catch {
        // a spec without the zoom selection: no range fetches
      }
      this.js = [];
      this.pending = 0;
      this.flush(true);
    };
    this.embedding = run();
    try {
      await this.embedding;
    } catch (err) {
      this.plot.textContent = "";
      this.plot.append(h("div", { class: "nbt-error", text: `chart error: ${err}` }));
    }
  }

  /** The store's series of this key, with full-resolution points of a zoomed range. */
  source() {
    const ser = this.panel.store.series.get(this.key);
    const d = this.detail;
    if (!ser || !d) return ser;
    const a = lowerBound(ser.s, d.s0);
    let b = lowerBound(ser.s, d.s1 + 1);
    if (b < a) b = a;
    const x = {};
    for (const name of new Set([...Object.keys(ser.x), ...Object.keys(d.x || {})])) {
      const sx = ser.x[name] || new Array(ser.s.length).fill(null);
      const dx = (d.x || {})[name] || new Array(d.s.length).fill(null);
      x[name] = [...sx.slice(0, a), ...dx, ...sx.slice(b)];
    }
    return {
      s: [...ser.s.slice(0, a), ...d.s, ...ser.s.slice(b)],
      t: [...ser.t.slice(0, a), ...d.t, ...ser.t.slice(b)],
      v: [...ser.v.slice(0, a), ...d.v, ...ser.v.slice(b)],
      x,
    };
  }

  xsOf(ser) {
    const xaxis = this.panel.model.get("x_axis") || "step";
    return xaxis === "step" ? ser.s : xaxis === "time" ? ser.t : ser.x[xaxis];
  }

  /** Zoom (x interval bound to the scales): fetch the visible range at full resolution. */
  onZoom(value) {
    clearTimeout(this.zoomTimer);
    this.zoomTimer = setTimeout(() => {
      const range = value && Array.isArray(value.x) ? value.x : null;
      if (!range) {
        if (this.detail || this.want) {
          this.detail = null;
          this.want = null;
          this.mark(0);
          this.panel.schedule();
        }
        return;
      }
      const ser = this.panel.store.series.get(this.key);
      if (!ser || !ser.s.length) return;
      const xs = this.xsOf(ser);
      if (!xs) return;
      const [x0, x1] = [Math.min(...range), Math.max(...range)];
      let first = -1;
      let last = -1;
      for (let j = 0; j < xs.length; j++) {
        if (xs[j] === null) continue;
        if (xs[j] >= x0 && first < 0) first = j;
        if (xs[j] <= x1) last = j;
      }
      if (first < 0 || last < 0) return;
      const i0 = Math.max(first - 1, 0);
      const i1 = Math.min(last + 1, ser.s.length - 1);
      const s0 = ser.s[i0];
      const s1 = ser.s[i1];
      if (i1 - i0 >= s1 - s0) return; // every step in range is already drawn
      this.want = (this.panel.reqs = (this.panel.reqs || 0) + 1);
      this.panel.model.send({ type: "range", req: this.want, key: this.key, s0, s1 });
    }, 250);
  }

  onRange(msg) {
    if (msg.req !== this.want) return;
    this.detail = msg;
    this.mark(0);
    this.panel.schedule();
  }

  mark(from) {
    this.pending = this.pending === null ? from : Math.min(this.pending, from);
  }

  flush(force = false) {
    if (!this.view || (this.pending === null && !force)) return;
    const ser = this.source();
    const from = this.detail ? 0 : (this.pending ?? 0);
    this.pending = null;
    const cs = vega.changeset();
    const cut = lowerBound(this.js, from);
    if (cut < this.js.length) {
      cs.remove((d) => d.j >= from);
      this.js.length = cut;
    }
    const rows = [];
    if (ser) {
      const w = Math.min(Math.max(Number(this.panel.model.get("smoothing")) || 0, 0), 0.999);
      const xs = this.xsOf(ser);
      const logy = this.panel.model.get("log_y");
      this.sv.length = Math.min(this.sv.length, from);
      let last = from > 0 ? this.sv[from - 1] : null;
      for (let j = from; j < ser.s.length; j++) {
        const v = ser.v[j];
        if (v !== null && Number.isFinite(v)) last = last === null ? v : last * w + (1 - w) * v;
        this.sv[j] = last;
        const x = xs ? xs[j] : null;
        if (x === null || x === undefined || v === null || !Number.isFinite(v)) continue;
        if (logy && (v <= 0 || last <= 0)) continue;
        rows.push({ j, s: ser.s[j], t: ser.t[j], x, v, sv: last });
        this.js.push(j);
      }
    }
    if (rows.length) cs.insert(rows);
    this.view.change("points", cs).runAsync();
    this.el.dataset.points = String(this.js.length);
    if (ser && ser.s.length) {
      this.el.dataset.lastStep = String(ser.s[ser.s.length - 1]);
      this.el.dataset.lastValue = String(ser.v[ser.v.length - 1]);
    }
  }

  restyle() {
    // smoothing changed: recompute every smoothed value in place (no re-embed)
    if (!this.view) return;
    this.view.signal("smooth", Number(this.panel.model.get("smoothing")) || 0);
    this.mark(0);
  }

  onPointer(ev) {
    const view = this.view;
    if (!view) return;
    const surface = this.plot.querySelector("canvas, svg");
    if (!surface) return;
    const xs = view.scale("x");
    if (!xs || !xs.invert) return;
    const rect = surface.getBoundingClientRect();
    const px = ev.clientX - rect.left - view.origin()[0];
    const [r0, r1] = xs.range();
    if (px < Math.min(r0, r1) || px > Math.max(r0, r1)) return this.panel.hover(null);
    this.panel.hover(xs.invert(px));
  }

  /** Show the value nearest to x (in the current x axis) and move the rule there. */
  showHover(x) {
    if (this.view) this.view.signal("hx", x === null ? null : x).runAsync();
    if (x === null) return setText(this.hoverVal, "");
    const ser = this.source();
    if (!ser || !ser.s.length) return setText(this.hoverVal, "");
    const xs = this.xsOf(ser);
    if (!xs) return setText(this.hoverVal, "");
    let best = -1;
    let bestD = Number.POSITIVE_INFINITY;
    for (let j = 0; j < xs.length; j++) {
      if (xs[j] === null || ser.v[j] === null) continue;
      const d = Math.abs(xs[j] - x);
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    if (best < 0) return setText(this.hoverVal, "");
    const smooth = Number(this.panel.model.get("smoothing")) > 0;
    const val = smooth ? this.sv[best] : ser.v[best];
    setText(this.hoverVal, `${fmtNum(val)} @ ${fmtNum(xs[best])}`);
    return [this.key, val];
  }

  destroy() {
    clearTimeout(this.zoomTimer);
    if (this.view) this.view.finalize();
    this.view = null;
  }
}

class Panel {
  constructor(model, el, box) {
    this.model = model;
    this.store = storeFor(box);
    this.box = box;
    this.closed = false;
    this.charts = new Map();
    this.sections = new Map();
    injectStyles();
    this.build(el);
  }

  build(el) {
    const m = this.model;
    this.name = h("span", { class: "nbt-name", testid: "nbt-run-name" });
    this.project = h("span", { class: "nbt-muted", testid: "nbt-run-project" });
    this.state = h("span", { class: "nbt-state", testid: "nbt-run-state" });
    this.step = h("span", { testid: "nbt-run-step" });
    this.elapsed = h("span", { testid: "nbt-run-elapsed" });
    this.rate = h("span", { testid: "nbt-run-rate" });
    const head = h(
      "div",
      { class: "nbt-head" },
      this.name,
      this.project,
      this.state,
      h("span", {}, h("span", { class: "nbt-muted", text: "step " }), this.step),
      h("span", {}, h("span", { class: "nbt-muted", text: "elapsed " }), this.elapsed),
      h("span", {}, this.rate, h("span", { class: "nbt-muted", text: " steps/s" })),
    );
    this.smooth = h("input", {
      type: "range",
      min: "0",
      max: "0.99",
      step: "0.01",
      testid: "nbt-smoothing",
      "aria-label": "smoothing",
    });
    this.smoothVal = h("span", { class: "nbt-muted" });
    this.xsel = h("select", { testid: "nbt-x-axis", "aria-label": "x axis" });
    this.logbox = h("input", { type: "checkbox", testid: "nbt-log-y", "aria-label": "log scale" });
    const controls = h(
      "div",
      { class: "nbt-controls" },
      h("label", {}, "smoothing", this.smooth, this.smoothVal),
      h("label", {}, "x axis", this.xsel),
      h("label", {}, this.logbox, "log scale"),
    );
    this.readout = h("div", { class: "nbt-readout", testid: "nbt-hover-readout" });
    this.body = h("div", { class: "nbt-body" });
    this.empty = h("div", { class: "nbt-empty", text: "waiting for the first log() …" });
    this.summaryTable = h("table", { class: "nbt-kv" });
    this.configTable = h("table", { class: "nbt-kv" });
    this.summaryCount = h("span", { class: "nbt-muted" });
    this.configCount = h("span", { class: "nbt-muted" });
    const tables = h(
      "div",
      { class: "nbt-tables" },
      h("details", { testid: "nbt-summary", open: "" }, h("summary", {}, "Summary ", this.summaryCount), this.summaryTable),
      h("details", { testid: "nbt-config" }, h("summary", {}, "Config ", this.configCount), this.configTable),
      (this.env = new EnvTable(m)).el,
    );
    this.el = h(
      "div",
      { class: "nbt-panel", testid: "nbt-run-panel" },
      head,
      (this.alerts = new AlertStrip(m)).el,
      controls,
      this.readout,
      this.empty,
      this.body,
      (this.media = new MediaSection(m, this.box)).el,
      (this.system = new SystemSection(m)).el,
      (this.logs = new LogsSection(m)).el,
      tables,
    );
    el.append(this.el);

    this.smooth.addEventListener("input", () => {
      m.set("smoothing", Number(this.smooth.value));
      m.save_changes();
    });
    this.xsel.addEventListener("change", () => {
      m.set("x_axis", this.xsel.value);
      m.save_changes();
    });
    this.logbox.addEventListener("change", () => {
      m.set("log_y", this.logbox.checked);
      m.save_changes();
    });
  }

  start() {
    const m = this.model;
    const on = (name, fn) => {
      m.on(`change:${name}`, fn);
      this.offs.push(() => m.off(`change:${name}`, fn));
    };
    this.offs = [];
    const meta = () => this.updateMeta();
    for (const name of ["run_name", "project", "state", "step", "elapsed", "steps_per_s", "summary", "config"]) {
      on(name, meta);
    }
    on("metrics", () => this.syncCharts());
    on("x_options", () => this.updateControls());
    on("smoothing", () => {
      this.updateControls();
      for (const c of this.charts.values()) c.restyle();
      this.schedule();
    });
    on("x_axis", () => {
      this.updateControls();
      this.reembed();
    });
    on("log_y", () => {
      this.updateControls();
      this.reembed();
    });
    on("renderer", () => this.reembed());
    const onRange = (msg) => this.charts.get(msg.key)?.onRange(msg);
    this.store.rangeListeners.add(onRange);
    this.offs.push(() => this.store.rangeListeners.delete(onRange));
    this.offs.push(
      this.store.subscribe((key, from) => {
        if (key === null) for (const c of this.charts.values()) c.mark(0);
        else this.charts.get(key)?.mark(from);
        this.schedule();
      }),
    );
    // Follow JupyterLab's light/dark switch.
    const obs = new MutationObserver(() => this.reembed());
    obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
    this.offs.push(() => obs.disconnect());
    this.offs.push(hideFallback(m.get("_uid")));
    this.updateMeta();
    this.updateControls();
    this.syncCharts();
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      for (const c of this.charts.values()) c.flush();
    }, 60);
  }

  reembed() {
    for (const c of this.charts.values()) c.embed();
  }

  updateMeta() {
    const m = this.model;
    setText(this.name, m.get("run_name") || "");
    const id = m.get("run_id") || "";
    setText(this.project, `${m.get("project") || ""}${id ? ` / ${id}` : ""}`);
    const state = m.get("state") || "";
    setText(this.state, state);
    this.state.dataset.state = state;
    this.el.dataset.state = state;
    setText(this.step, String(m.get("step") ?? 0));
    setText(this.elapsed, fmtDuration(m.get("elapsed")));
    setText(this.rate, fmtNum(m.get("steps_per_s") ?? 0));
    this.fillTable(this.summaryTable, this.summaryCount, m.get("summary") || {});
    this.fillTable(this.configTable, this.configCount, m.get("config") || {});
  }

  fillTable(table, count, obj) {
    const entries = Object.entries(obj);
    const sig = JSON.stringify(entries);
    if (table._sig === sig) return;
    table._sig = sig;
    table.textContent = "";
    for (const [k, v] of entries) {
      const val = typeof v === "number" ? fmtNum(v) : typeof v === "string" ? v : JSON.stringify(v);
      table.append(h("tr", {}, h("td", { text: k }), h("td", { text: val })));
    }
    setText(count, `(${entries.length})`);
  }

  updateControls() {
    const m = this.model;
    const w = Number(m.get("smoothing")) || 0;
    if (Number(this.smooth.value) !== w) this.smooth.value = String(w);
    setText(this.smoothVal, w.toFixed(2));
    const opts = ["step", "time", ...(m.get("x_options") || [])];
    const sig = opts.join("\u0000");
    if (this.xsel._sig !== sig) {
      this.xsel._sig = sig;
      this.xsel.textContent = "";
      for (const o of opts) this.xsel.append(h("option", { value: o, text: o }));
    }
    this.xsel.value = m.get("x_axis") || "step";
    this.logbox.checked = Boolean(m.get("log_y"));
  }

  section(name) {
    let sec = this.sections.get(name);
    if (!sec) {
      const grid = h("div", { class: "nbt-grid" });
      const el = h(
        "div",
        { class: "nbt-section", testid: "nbt-section", dataset: { section: name } },
        h("div", { class: "nbt-section-title", text: name || "charts" }),
        grid,
      );
      // ungrouped metrics first, then sections in order of appearance
      if (name === "" && this.body.firstChild) this.body.prepend(el);
      else this.body.append(el);
      sec = { el, grid };
      this.sections.set(name, sec);
    }
    return sec;
  }

  syncCharts() {
    const keys = this.model.get("metrics") || [];
    this.empty.style.display = keys.length ? "none" : "";
    for (const key of keys) {
      if (this.charts.has(key)) continue;
      const chart = new Chart(this, key);
      this.charts.set(key, chart);
      this.section(sectionOf(key)).grid.append(chart.el);
      chart.embed();
    }
  }

  hover(x) {
    if (this.hoverFrame) cancelAnimationFrame(this.hoverFrame);
    this.hoverFrame = requestAnimationFrame(() => {
      this.hoverFrame = null;
      const xaxis = this.model.get("x_axis") || "step";
      if (x === null) {
        setText(this.readout, "");
        for (const c of this.charts.values()) c.showHover(null);
        return;
      }
      const parts = [];
      for (const c of this.charts.values()) {
        const kv = c.showHover(x);
        if (kv) parts.push(`${kv[0]} ${fmtNum(kv[1])}`);
      }
      setText(this.readout, `${xaxis} ${fmtNum(xaxis === "step" ? Math.round(x) : x)}  ·  ${parts.join("  ·  ")}`);
    });
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.timer);
    this.media?.destroy();
    this.alerts?.destroy();
    for (const part of [this.system, this.logs, this.env]) part?.destroy();
    for (const off of this.offs || []) off();
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
  }
}

export function renderRunPanel({ model, el, box }) {
  try {
    const panel = new Panel(model, el, box);
    panel.start();
    return () => panel.destroy();
  } catch (err) {
    el.textContent = "";
    el.append(h("div", { class: "nbt-error", text: `nbtracker panel error: ${err?.stack || err}` }));
    return () => {};
  }
}
