// The comparison panel: several runs in one set of charts (one line per run, one chart per
// metric). It renders the data stores of its child RunPanel models (each fed live by its
// own kernel-side pump), so following many runs needs nothing new on the Python side.

import vegaEmbed from "vega-embed";
import * as vega from "vega";
import { fmtNum, h } from "./format.js";
import { sectionOf, setText, storeFor } from "./panel.js";
import { hideFallback, injectStyles, vegaConfig } from "./styles.js";

export const PALETTE = [
  "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b",
  "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac",
]; // prettier-ignore

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The child RunPanel models and their stores (waits for their loaders' initialize). */
async function children(model, slot) {
  const refs = model.get("runs") || [];
  const out = [];
  for (const ref of refs) {
    const id = String(ref).replace(/^IPY_MODEL_/, "");
    const child = await model.widget_manager.get_model(id);
    const uid = child.get("_uid");
    let box = slot.models.get(uid);
    for (let i = 0; i < 200 && !(box && box.model); i++) {
      await sleep(25);
      box = slot.models.get(uid);
    }
    if (!box || !box.model) continue;
    out.push({ model: box.model, store: storeFor(box) });
  }
  return out;
}

class CompareChart {
  constructor(panel, key) {
    this.panel = panel;
    this.key = key;
    this.view = null;
    this.dirty = true;
    this.readout = h("span", { class: "nbt-chart-val", testid: "nbt-chart-readout" });
    this.plot = h("div", { class: "nbt-plot" });
    this.el = h(
      "div",
      { class: "nbt-chart", testid: "nbt-chart", dataset: { key, points: "0" } },
      h("div", { class: "nbt-chart-head" }, h("span", { class: "nbt-chart-key", text: key, title: key }), this.readout),
      this.plot,
    );
    this.el.addEventListener("pointermove", (ev) => this.onPointer(ev));
    this.el.addEventListener("pointerleave", () => panel.hover(null));
  }

  spec() {
    const p = this.panel;
    const spec = structuredClone(p.model.get("_spec"));
    const xaxis = p.model.get("x_axis") || "step";
    const domain = p.runs.map((_, i) => String(i));
    const color = {
      field: "r",
      type: "nominal",
      scale: { domain, range: domain.map((_, i) => PALETTE[i % PALETTE.length]) },
      legend: null,
    };
    for (const layer of spec.layer || []) {
      const enc = layer.encoding || {};
      if (enc.x && enc.x.field) enc.x.title = xaxis === "time" ? "time (s)" : xaxis;
      if (enc.y && enc.y.field) {
        enc.color = color;
        if (p.model.get("log_y")) enc.y.scale = { ...(enc.y.scale || {}), type: "log", zero: false };
      }
    }
    spec.params = (spec.params || []).map((prm) =>
      prm.name === "smooth" ? { ...prm, value: p.model.get("smoothing") || 0 } : prm,
    );
    spec.config = { ...(spec.config || {}), ...vegaConfig(p.el) };
    return spec;
  }

  async embed() {
    if (this.view) this.view.finalize();
    this.view = null;
    this.plot.textContent = "";
    try {
      const res = await vegaEmbed(this.plot, this.spec(), {
        renderer: this.panel.model.get("renderer") || "canvas",
        actions: false,
        mode: "vega-lite",
      });
      if (this.panel.closed) return res.view.finalize();
      this.view = res.view;
      this.dirty = true;
      this.flush();
    } catch (err) {
      this.plot.append(h("div", { class: "nbt-error", text: `chart error: ${err}` }));
    }
  }

  /** Every run's points of this metric (with its EMA), as vega rows. */
  rows() {
    const p = this.panel;
    const w = Math.min(Math.max(Number(p.model.get("smoothing")) || 0, 0), 0.999);
    const xaxis = p.model.get("x_axis") || "step";
    const logy = p.model.get("log_y");
    const rows = [];
    p.runs.forEach((run, r) => {
      const ser = run.store.series.get(this.key);
      if (!ser) return;
      const xs = xaxis === "step" ? ser.s : xaxis === "time" ? ser.t : ser.x[xaxis];
      if (!xs) return;
      let last = null;
      for (let j = 0; j < ser.s.length; j++) {
        const v = ser.v[j];
        if (v === null || !Number.isFinite(v)) continue;
        last = last === null ? v : last * w + (1 - w) * v;
        const x = xs[j];
        if (x === null || x === undefined) continue;
        if (logy && (v <= 0 || last <= 0)) continue;
        rows.push({ r: String(r), j, s: ser.s[j], t: ser.t[j], x, v, sv: last });
      }
    });
    return rows;
  }

  flush() {
    if (!this.view || !this.dirty) return;
    this.dirty = false;
    const rows = this.rows();
    this.view.change("points", vega.changeset().remove(() => true).insert(rows)).runAsync();
    this.el.dataset.points = String(rows.length);
    this.last = rows;
  }

  onPointer(ev) {
    const view = this.view;
    const surface = this.plot.querySelector("canvas, svg");
    if (!view || !surface) return;
    const xs = view.scale("x");
    if (!xs || !xs.invert) return;
    const rect = surface.getBoundingClientRect();
    const px = ev.clientX - rect.left - view.origin()[0];
    const [r0, r1] = xs.range();
    if (px < Math.min(r0, r1) || px > Math.max(r0, r1)) return this.panel.hover(null);
    this.panel.hover(xs.invert(px), this);
  }

  showHover(x, detail) {
    if (this.view) this.view.signal("hx", x).runAsync();
    if (x === null || !this.last) return setText(this.readout, "");
    const best = new Map();
    for (const row of this.last) {
      const d = Math.abs(row.x - x);
      const cur = best.get(row.r);
      if (!cur || d < cur.d) best.set(row.r, { d, row });
    }
    const smooth = Number(this.panel.model.get("smoothing")) > 0;
    const parts = [...best.values()].map(({ row }) => {
      const name = this.panel.runs[Number(row.r)]?.model.get("run_name") || row.r;
      return `${name} ${fmtNum(smooth ? row.sv : row.v)}`;
    });
    setText(this.readout, detail ? "" : parts.join(" · "));
    return parts;
  }
}

class ComparePanel {
  constructor(model, el, runs) {
    this.model = model;
    this.runs = runs;
    this.closed = false;
    this.charts = new Map();
    this.sections = new Map();
    this.offs = [];
    injectStyles();
    this.legend = h("div", { class: "nbt-legend", testid: "nbt-runs-legend" });
    this.smooth = h("input", { type: "range", min: "0", max: "0.99", step: "0.01", testid: "nbt-smoothing" });
    this.smoothVal = h("span", { class: "nbt-muted" });
    this.xsel = h("select", { testid: "nbt-x-axis" });
    this.logbox = h("input", { type: "checkbox", testid: "nbt-log-y" });
    this.readout = h("div", { class: "nbt-readout", testid: "nbt-hover-readout" });
    this.body = h("div", { class: "nbt-body" });
    this.el = h(
      "div",
      { class: "nbt-panel", testid: "nbt-runs-panel" },
      h("div", { class: "nbt-head" }, h("span", { class: "nbt-name", text: `${runs.length} runs` })),
      this.legend,
      h(
        "div",
        { class: "nbt-controls" },
        h("label", {}, "smoothing", this.smooth, this.smoothVal),
        h("label", {}, "x axis", this.xsel),
        h("label", {}, this.logbox, "log scale"),
      ),
      this.readout,
      this.body,
    );
    el.append(this.el);
    this.smooth.addEventListener("input", () => {
      model.set("smoothing", Number(this.smooth.value));
      model.save_changes();
    });
    this.xsel.addEventListener("change", () => {
      model.set("x_axis", this.xsel.value);
      model.save_changes();
    });
    this.logbox.addEventListener("change", () => {
      model.set("log_y", this.logbox.checked);
      model.save_changes();
    });
  }

  start() {
    const on = (m, name, fn) => {
      m.on(`change:${name}`, fn);
      this.offs.push(() => m.off(`change:${name}`, fn));
    };
    on(this.model, "smoothing", () => {
      this.controls();
      for (const c of this.charts.values()) {
        c.view?.signal("smooth", Number(this.model.get("smoothing")) || 0);
        c.dirty = true;
      }
      this.schedule();
    });
    for (const name of ["x_axis", "log_y", "renderer"]) {
      on(this.model, name, () => {
        this.controls();
        for (const c of this.charts.values()) c.embed();
      });
    }
    for (const run of this.runs) {
      for (const name of ["run_name", "state", "step"]) on(run.model, name, () => this.legendRows());
      on(run.model, "metrics", () => this.syncCharts());
      on(run.model, "x_options", () => this.controls());
      this.offs.push(
        run.store.subscribe((key) => {
          if (key === null) for (const c of this.charts.values()) c.dirty = true;
          else if (this.charts.has(key)) this.charts.get(key).dirty = true;
          this.schedule();
        }),
      );
    }
    const obs = new MutationObserver(() => {
      for (const c of this.charts.values()) c.embed();
    });
    obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
    this.offs.push(() => obs.disconnect());
    this.offs.push(hideFallback(this.model.get("_uid")));
    this.legendRows();
    this.controls();
    this.syncCharts();
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      for (const c of this.charts.values()) c.flush();
    }, 150);
  }

  legendRows() {
    this.legend.textContent = "";
    this.runs.forEach((run, i) => {
      const m = run.model;
      const state = m.get("state") || "";
      const st = h("span", { class: "nbt-state", testid: "nbt-run-state", text: state, dataset: { state } });
      this.legend.append(
        h(
          "div",
          { class: "nbt-legend-row", testid: "nbt-run-row", dataset: { runId: m.get("run_id") || "" } },
          h("span", { class: "nbt-swatch", style: `background:${PALETTE[i % PALETTE.length]}` }),
          h("span", { class: "nbt-legend-name", text: m.get("run_name") || "" }),
          h("span", { class: "nbt-muted", text: `${m.get("project") || ""} / ${m.get("run_id") || ""}` }),
          st,
          h("span", { class: "nbt-muted", text: "step " }),
          h("span", { testid: "nbt-run-step", text: String(m.get("step") ?? 0) }),
        ),
      );
    });
  }

  controls() {
    const m = this.model;
    const w = Number(m.get("smoothing")) || 0;
    if (Number(this.smooth.value) !== w) this.smooth.value = String(w);
    setText(this.smoothVal, w.toFixed(2));
    const extra = new Set();
    for (const run of this.runs) for (const o of run.model.get("x_options") || []) extra.add(o);
    const opts = ["step", "time", ...extra];
    const sig = opts.join("\u0000");
    if (this.xsel._sig !== sig) {
      this.xsel._sig = sig;
      this.xsel.textContent = "";
      for (const o of opts) this.xsel.append(h("option", { value: o, text: o }));
    }
    this.xsel.value = m.get("x_axis") || "step";
    this.logbox.checked = Boolean(m.get("log_y"));
  }

  syncCharts() {
    for (const run of this.runs) {
      for (const key of run.model.get("metrics") || []) {
        if (this.charts.has(key)) continue;
        const chart = new CompareChart(this, key);
        this.charts.set(key, chart);
        const name = sectionOf(key);
        let sec = this.sections.get(name);
        if (!sec) {
          const grid = h("div", { class: "nbt-grid" });
          const secEl = h(
            "div",
            { class: "nbt-section", testid: "nbt-section", dataset: { section: name } },
            h("div", { class: "nbt-section-title", text: name || "charts" }),
            grid,
          );
          if (name === "" && this.body.firstChild) this.body.prepend(secEl);
          else this.body.append(secEl);
          sec = { grid };
          this.sections.set(name, sec);
        }
        sec.grid.append(chart.el);
        chart.embed();
      }
    }
  }

  hover(x, source) {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      let text = "";
      for (const c of this.charts.values()) {
        const parts = c.showHover(x, c === source);
        if (c === source && parts) text = `${c.key}: ${parts.join("  ·  ")}`;
      }
      const xaxis = this.model.get("x_axis") || "step";
      setText(this.readout, x === null ? "" : `${xaxis} ${fmtNum(xaxis === "step" ? Math.round(x) : x)}  ·  ${text}`);
    });
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.timer);
    for (const off of this.offs) off();
    for (const c of this.charts.values()) c.view?.finalize();
  }
}

export async function renderRunsPanel({ model, el, slot }) {
  try {
    const runs = await children(model, slot);
    const panel = new ComparePanel(model, el, runs);
    panel.start();
    return () => panel.destroy();
  } catch (err) {
    el.textContent = "";
    el.append(h("div", { class: "nbt-error", text: `nbtracker panel error: ${err?.stack || err}` }));
    return () => {};
  }
}
