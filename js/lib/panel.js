// The live run panel: header (name, project, state, step, elapsed, steps/s), controls
// (smoothing, x axis, log scale), a shared hover readout, one vega chart per metric grouped
// into sections by key prefix, and config/summary tables.
//
// Charts are embedded once and fed with `view.change("points", changeset)`; they are only
// re-embedded when the user changes the x axis or the log scale, or the theme changes.

import vegaEmbed from "vega-embed";
import * as vega from "vega";
import { AXIS_LABEL, fmtDuration, fmtNum, h, setText } from "./format.js";
import { ChartOpts, setForAll } from "./chart_opts.js";
import { SeriesStore, lowerBound } from "./store.js";
import { twema } from "./smooth.js";
import { YFit, resetZoomButton, zoomRange } from "./zoom.js";
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

export { setText };

function finite(v) {
  return v !== null && v !== undefined && Number.isFinite(v);
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
    this.zoomRange = null;
    this.hoverVal = h("span", { class: "nbt-chart-val", testid: "nbt-chart-readout" });
    this.plot = h("div", { class: "nbt-plot" });
    this.big = h("div", { class: "nbt-big", testid: "nbt-chart-single", hidden: "" });
    this.resetBtn = resetZoomButton(() => this.resetZoom());
    const m = panel.model;
    this.co = new ChartOpts(m, key, {
      view: "panel",
      choices: () => this.xChoices(),
      // the panel's x axis when it is not "step", else define_metric's step metric
      defaultX: () => {
        const px = m.get("x_axis") || "step";
        return (px !== "step" ? px : "") || (m.get("x_defaults") || {})[key] || "step";
      },
      fixed: () => this.isStepMetric(),
    });
    this.el = h(
      "div",
      { class: "nbt-chart", testid: "nbt-chart", dataset: { key, points: "0" } },
      h(
        "div",
        { class: "nbt-chart-head" },
        h("span", { class: "nbt-chart-key", text: key, title: key }),
        h("span", { class: "nbt-chart-tools" }, this.hoverVal, this.resetBtn, this.co.btn),
      ),
      this.co.box,
      this.big,
      this.plot,
    );
    this.el.addEventListener("pointermove", (ev) => this.onPointer(ev));
    this.el.addEventListener("pointerleave", () => panel.hover(null));
    this.co.btn.addEventListener("click", () => this.updateOpts());
  }

  // -- settings: this chart's own, else the panel's, else define_metric's step metric -------
  isStepMetric() {
    return (this.panel.model.get("x_options") || []).includes(this.key);
  }

  xChoices() {
    const m = this.panel.model;
    return ["step", "time", ...(m.get("x_options") || []).filter((o) => o !== this.key)];
  }

  xaxis() {
    return this.co.xaxis();
  }

  logy() {
    return this.co.logy();
  }

  smoothing() {
    return this.co.smoothing();
  }

  updateOpts() {
    this.co.update(this.el);
  }

  /** The panel's or this chart's settings changed: re-embed only when the axes changed. */
  refresh() {
    const sig = JSON.stringify([this.xaxis(), this.logy()]);
    if (sig !== this.sig) {
      this.embed();
    } else if (this.smoothing() !== this.w) {
      this.w = this.smoothing();
      if (this.view) this.view.signal("smooth", this.w);
      this.mark(0);
    }
    this.updateOpts();
  }

  spec() {
    const p = this.panel;
    const spec = structuredClone(p.model.get("_spec"));
    const xaxis = this.xaxis();
    const logy = this.logy();
    this.sig = JSON.stringify([xaxis, logy]);
    this.w = this.smoothing();
    const ser = p.store.series.get(this.key);
    this.intY = Boolean(ser && ser.v.length && ser.v.every((v) => v === null || Number.isInteger(v)));
    let first = true;
    for (const layer of spec.layer || []) {
      const enc = layer.encoding || {};
      if (enc.x && enc.x.field) {
        enc.x.title = xaxis === "time" ? "time (s)" : xaxis;
        if (xaxis === "time" && enc.x.axis) {
          enc.x.axis = { ...enc.x.axis, labelExpr: AXIS_LABEL };
          delete enc.x.axis.tickMinStep;
        }
      }
      if (enc.y && enc.y.field && first) {
        first = false;
        const scale = { ...(enc.y.scale || {}), domainMin: { expr: "ylo" }, domainMax: { expr: "yhi" } };
        if (logy) Object.assign(scale, { type: "log", zero: false });
        enc.y.scale = scale;
        if (this.intY && enc.y.axis) enc.y.axis = { ...enc.y.axis, tickMinStep: 1 };
      }
    }
    spec.params = (spec.params || []).map((prm) => (prm.name === "smooth" ? { ...prm, value: this.w } : prm));
    spec.params.push({ name: "ylo", value: null }, { name: "yhi", value: null });
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
      this.setZoomed(null);
      try {
        this.view.addSignalListener("zoom", (_name, value) => this.onZoom(value));
      } catch {
        // a spec without the zoom selection: no range fetches
      }
      this.js = [];
      this.pending = 0;
      this.updateOpts();
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
    const xaxis = this.xaxis();
    return xaxis === "step" ? ser.s : xaxis === "time" ? ser.t : ser.x[xaxis];
  }

  setZoomed(range) {
    this.zoomRange = range;
    this.resetBtn.hidden = !range;
    this.el.dataset.zoomed = range ? "1" : "0";
    if (!range && this.view) this.view.signal("ylo", null).signal("yhi", null).runAsync();
  }

  resetZoom() {
    this.setZoomed(null);
    this.embed(); // a fresh view: the x zoom and the fitted y range are gone
  }

  /** Rescale y to the points inside the zoomed x range (wheel zoom shows their detail). */
  fitY() {
    const r = this.zoomRange;
    if (!r || !this.view) return;
    const ser = this.source();
    if (!ser) return;
    const xs = this.xsOf(ser);
    if (!xs) return;
    const smooth = this.w > 0;
    const fit = new YFit(this.logy());
    for (let j = 0; j < xs.length; j++) {
      const x = xs[j];
      if (!finite(x) || x < r[0] || x > r[1]) continue;
      fit.add(ser.v[j]);
      if (smooth) fit.add(this.sv[j]);
    }
    fit.apply(this.view, this.el);
  }

  /** Zoom (x interval bound to the scales): fit y, fetch the range at full resolution. */
  onZoom(value) {
    const range = zoomRange(value);
    if (!range) {
      this.setZoomed(null);
    } else {
      this.setZoomed(range);
      this.fitY();
    }
    clearTimeout(this.zoomTimer);
    this.zoomTimer = setTimeout(() => {
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
      const [x0, x1] = range;
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
    const w = this.w;
    // the time-weighted average depends on the line's whole x range: redo it all
    const from = this.detail || w > 0 ? 0 : (this.pending ?? 0);
    this.pending = null;
    const cs = vega.changeset();
    const cut = lowerBound(this.js, from);
    if (cut < this.js.length) {
      cs.remove((d) => d.j >= from);
      this.js.length = cut;
    }
    const rows = [];
    const xs = ser ? this.xsOf(ser) : null;
    if (ser && xs) {
      const logy = this.logy();
      if (w > 0) this.sv = twema(xs, ser.v, w);
      else {
        this.sv.length = Math.min(this.sv.length, from);
        for (let j = from; j < ser.s.length; j++) this.sv[j] = finite(ser.v[j]) ? ser.v[j] : null;
      }
      let nonInt = false;
      for (let j = from; j < ser.s.length; j++) {
        const v = ser.v[j];
        const x = xs[j];
        const sv = this.sv[j];
        if (!finite(x) || !finite(v)) continue;
        if (!Number.isInteger(v)) nonInt = true;
        if (logy && (v <= 0 || !(sv > 0))) continue;
        rows.push({ j, s: ser.s[j], t: ser.t[j], x, v, sv });
        this.js.push(j);
      }
      if (nonInt && this.intY) {
        // integer ticks no longer fit: draw again with the general axis
        this.intY = false;
        this.embed();
        return;
      }
    }
    if (rows.length) cs.insert(rows);
    this.view.change("points", cs).runAsync();
    this.el.dataset.points = String(this.js.length);
    if (ser && ser.s.length) {
      this.el.dataset.lastStep = String(ser.s[ser.s.length - 1]);
      this.el.dataset.lastValue = String(ser.v[ser.v.length - 1]);
    }
    this.showSingle(ser, xs);
    if (this.zoomRange) this.fitY();
  }

  /** One point is a number, not a chart with a meaningless axis. */
  showSingle(ser, xs) {
    const single = this.js.length === 1 && ser;
    this.big.hidden = !single;
    this.plot.style.display = single ? "none" : "";
    this.el.dataset.single = single ? "1" : "0";
    if (!single) return;
    const j = this.js[0];
    const xname = this.xaxis();
    const where = xname === "time" ? `${fmtNum(xs[j])} s` : `${xname} ${fmtNum(xs[j])}`;
    this.big.textContent = "";
    this.big.append(
      h("div", { class: "nbt-big-val", testid: "nbt-chart-single-value", text: fmtNum(ser.v[j]) }),
      h("div", { class: "nbt-muted", text: where }),
    );
  }

  onPointer(ev) {
    const view = this.view;
    if (!view || this.plot.style.display === "none") return;
    const surface = this.plot.querySelector("canvas, svg");
    if (!surface) return;
    const xs = view.scale("x");
    if (!xs || !xs.invert) return;
    const rect = surface.getBoundingClientRect();
    const px = ev.clientX - rect.left - view.origin()[0];
    const [r0, r1] = xs.range();
    if (px < Math.min(r0, r1) || px > Math.max(r0, r1)) return this.panel.hover(null);
    const x = xs.invert(px);
    const j = this.nearest(x);
    const ser = this.source();
    this.panel.hover({ axis: this.xaxis(), x, step: j >= 0 && ser ? ser.s[j] : null });
  }

  /** Index of the point nearest to x (in this chart's x axis), -1 when none. */
  nearest(x) {
    const ser = this.source();
    if (!ser || !ser.s.length) return -1;
    const xs = this.xsOf(ser);
    if (!xs) return -1;
    let best = -1;
    let bestD = Number.POSITIVE_INFINITY;
    for (let j = 0; j < xs.length; j++) {
      if (!finite(xs[j]) || !finite(ser.v[j])) continue;
      const d = Math.abs(xs[j] - x);
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    return best;
  }

  /** Show the value under the pointer of any chart: by x on the same axis, else by step. */
  showHover(at) {
    if (at === null) {
      if (this.view) this.view.signal("hx", null).runAsync();
      return setText(this.hoverVal, "");
    }
    const ser = this.source();
    if (!ser || !ser.s.length) return setText(this.hoverVal, "");
    const xs = this.xsOf(ser);
    if (!xs) return setText(this.hoverVal, "");
    let best;
    if (at.axis === this.xaxis()) best = this.nearest(at.x);
    else {
      if (at.step === null) return setText(this.hoverVal, "");
      best = Math.min(lowerBound(ser.s, at.step), ser.s.length - 1);
      while (best > 0 && (!finite(ser.v[best]) || ser.s[best] > at.step)) best--;
    }
    if (best < 0 || !finite(xs[best])) return setText(this.hoverVal, "");
    if (this.view) this.view.signal("hx", xs[best]).runAsync();
    const val = this.w > 0 ? this.sv[best] : ser.v[best];
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

    this.smooth.addEventListener("input", () => this.setForAll("smoothing", "smoothing", Number(this.smooth.value)));
    this.xsel.addEventListener("change", () => this.setForAll("x_axis", "x", this.xsel.value));
    this.logbox.addEventListener("change", () => this.setForAll("log_y", "log_y", this.logbox.checked));
  }

  /** A panel-wide control: set it, and drop the same setting from every chart's own. */
  setForAll(trait, own, value) {
    setForAll(this.model, trait, own, value);
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
    for (const name of ["x_options", "x_defaults", "chart_opts", "smoothing", "x_axis", "log_y"]) {
      on(name, () => {
        this.updateControls();
        for (const c of this.charts.values()) c.refresh();
        this.schedule();
      });
    }
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
    // "step" leaves charts with a define_metric step metric on it (as W&B draws them)
    const defined = Object.keys(m.get("x_defaults") || {}).length > 0;
    const sig = `${opts.join("\u0000")}|${defined}`;
    if (this.xsel._sig !== sig) {
      this.xsel._sig = sig;
      this.xsel.textContent = "";
      for (const o of opts) {
        const text = o === "step" && defined ? "step (or the step metric of define_metric)" : o;
        this.xsel.append(h("option", { value: o, text }));
      }
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

  /** Pointer over a chart at {axis, x, step} (null: left): every chart shows its value. */
  hover(at) {
    if (this.hoverFrame) cancelAnimationFrame(this.hoverFrame);
    this.hoverFrame = requestAnimationFrame(() => {
      this.hoverFrame = null;
      if (at === null) {
        setText(this.readout, "");
        for (const c of this.charts.values()) c.showHover(null);
        return;
      }
      const parts = [];
      for (const c of this.charts.values()) {
        const kv = c.showHover(at);
        if (kv) parts.push(`${kv[0]} ${fmtNum(kv[1])}`);
      }
      const x = at.axis === "step" ? Math.round(at.x) : at.x;
      setText(this.readout, `${at.axis} ${fmtNum(x)}  ·  ${parts.join("  ·  ")}`);
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
