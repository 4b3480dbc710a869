// One chart's own settings (x axis, log scale, smoothing) over those of the view it is in
// (the run panel, the runs workspace): kept in the view model's `chart_opts` trait as
// {key: {x, log_y, smoothing}}, so they survive a re-render and Python reads them back.
// The ⚙ button opens a small form; "use <view> settings" drops the chart's own.

import { h, setText } from "./format.js";

export class ChartOpts {
  /**
   * model: the view's model; key: the chart's metric; view: its name in the reset button;
   * choices(): the x axes this chart offers; defaultX(): its x axis without one of its own;
   * fixed(): true when the chart is never smoothed (a step metric).
   */
  constructor(model, key, { view, choices, defaultX, fixed = () => false }) {
    this.model = model;
    this.key = key;
    this.choices = choices;
    this.defaultX = defaultX;
    this.fixed = fixed;
    this.btn = h(
      "button",
      {
        class: "nbt-chart-btn",
        testid: "nbt-chart-opts-btn",
        title: "this chart's x axis, log scale and smoothing",
        "aria-label": `settings of ${key}`,
        "aria-expanded": "false",
      },
      "⚙",
    );
    this.x = h("select", { testid: "nbt-chart-x", "aria-label": "x axis of this chart" });
    this.log = h("input", { type: "checkbox", testid: "nbt-chart-log", "aria-label": "log scale of this chart" });
    this.smooth = h("input", {
      type: "range",
      min: "0",
      max: "0.99",
      step: "0.01",
      testid: "nbt-chart-smoothing",
      "aria-label": "smoothing of this chart",
    });
    this.smoothVal = h("span", { class: "nbt-muted" });
    const reset = h("button", { class: "nbt-chart-btn", testid: "nbt-chart-opts-reset" }, `use ${view} settings`);
    this.box = h(
      "div",
      { class: "nbt-chart-opts", testid: "nbt-chart-opts", hidden: "" },
      h("label", {}, "x", this.x),
      h("label", {}, this.log, "log"),
      h("label", {}, "smoothing", this.smooth, this.smoothVal),
      reset,
    );
    this.x.addEventListener("change", () => this.set("x", this.x.value));
    this.log.addEventListener("change", () => this.set("log_y", this.log.checked));
    this.smooth.addEventListener("input", () => this.set("smoothing", Number(this.smooth.value)));
    reset.addEventListener("click", () => this.write(undefined));
    this.btn.addEventListener("click", () => {
      const open = this.box.hidden;
      this.box.hidden = !open;
      this.btn.setAttribute("aria-expanded", String(open));
    });
  }

  own() {
    return (this.model.get("chart_opts") || {})[this.key] || {};
  }

  xaxis() {
    const x = this.own().x || this.defaultX();
    return this.choices().includes(x) ? x : "step";
  }

  logy() {
    const own = this.own();
    return "log_y" in own ? Boolean(own.log_y) : Boolean(this.model.get("log_y"));
  }

  smoothing() {
    if (this.fixed()) return 0; // a step metric is an axis: never smoothed
    const own = this.own();
    const w = Number("smoothing" in own ? own.smoothing : this.model.get("smoothing")) || 0;
    return Math.min(Math.max(w, 0), 0.99);
  }

  set(name, value) {
    this.write({ ...this.own(), [name]: value });
  }

  /** This chart's settings become `mine` (undefined or empty: the view's again). */
  write(mine) {
    const all = { ...(this.model.get("chart_opts") || {}) };
    if (mine && Object.keys(mine).length) all[this.key] = mine;
    else delete all[this.key];
    this.model.set("chart_opts", all);
    this.model.save_changes();
  }

  /** The form shows the settings in force; `el` (the chart) carries them as data-*. */
  update(el) {
    const choices = this.choices();
    const sig = choices.join("\u0000");
    if (this.x._sig !== sig) {
      this.x._sig = sig;
      this.x.textContent = "";
      for (const o of choices) this.x.append(h("option", { value: o, text: o }));
    }
    this.x.value = this.xaxis();
    this.log.checked = this.logy();
    const w = this.smoothing();
    if (Number(this.smooth.value) !== w) this.smooth.value = String(w);
    this.smooth.disabled = this.fixed();
    this.smooth.title = this.fixed() ? "a step metric is never smoothed" : "";
    setText(this.smoothVal, w.toFixed(2));
    el.dataset.x = this.xaxis();
    el.dataset.logY = String(this.logy());
    el.dataset.smoothing = String(w);
    el.dataset.own = Object.keys(this.own()).sort().join(",");
  }
}

/** A view-wide control (trait `trait`): set it, and drop the same setting (`own`: "x",
 * "log_y" or "smoothing") from every chart's own, so the control speaks for all charts. */
export function setForAll(model, trait, own, value) {
  const all = {};
  for (const [key, opts] of Object.entries(model.get("chart_opts") || {})) {
    const rest = { ...opts };
    delete rest[own];
    if (Object.keys(rest).length) all[key] = rest;
  }
  model.set("chart_opts", all);
  model.set(trait, value);
  model.save_changes();
}
