// The run panel's "Logs" section: the live tail of the run's console log (output.log),
// from the synced `log_tail` trait. Text only (textContent), kept scrolled to the end
// unless the reader scrolled up.

import { h } from "./format.js";
import { injectCaptureStyles } from "./system.js";

export class LogsSection {
  constructor(model) {
    this.model = model;
    injectCaptureStyles();
    this.count = h("span", { class: "nbt-muted" });
    this.pre = h("pre", { class: "nbt-logs", testid: "nbt-logs-text" });
    this.el = h("details", { class: "nbt-capture", testid: "nbt-logs" }, h("summary", {}, "Logs ", this.count), this.pre);
    this.onChange = () => this.update();
    model.on("change:log_tail", this.onChange);
    this.el.addEventListener("toggle", () => this.update());
    this.update();
  }

  update() {
    const text = this.model.get("log_tail") || "";
    this.el.style.display = text ? "" : "none";
    const lines = text ? text.replace(/\n$/, "").split("\n").length : 0;
    this.count.textContent = lines ? `(last ${lines} lines)` : "";
    if (this.pre.textContent === text) return;
    const pre = this.pre;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = text;
    if (atEnd || !this.seen) pre.scrollTop = pre.scrollHeight;
    this.seen = this.el.open;
  }

  destroy() {
    this.model.off("change:log_tail", this.onChange);
  }
}
