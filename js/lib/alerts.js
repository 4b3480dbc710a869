// A run's alerts (run.alert()): a strip of notifications under the run panel's header,
// newest first. Fed by the RunPanel's synced `alerts` trait (the last 20). Every user
// string goes through textContent (format.js's h), never HTML.

import { h } from "./format.js";

const SHOWN = 3; // newest alerts shown open; the rest behind "N earlier"
const LEVELS = ["INFO", "WARN", "ERROR"];

const CSS = `
.nbt-alerts { display: flex; flex-direction: column; gap: 3px; margin: 6px 0 2px; }
.nbt-alert { display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 8px; padding: 3px 8px;
  border-radius: 3px; border-left: 4px solid var(--nbt-alert-color);
  background: color-mix(in srgb, var(--nbt-alert-color) 10%, transparent); }
.nbt-alert[data-level="INFO"] { --nbt-alert-color: var(--jp-info-color1, #0288d1); }
.nbt-alert[data-level="WARN"] { --nbt-alert-color: var(--jp-warn-color1, #f57c00); }
.nbt-alert[data-level="ERROR"] { --nbt-alert-color: var(--jp-error-color1, #d32f2f); }
.nbt-alert-level { font-size: 10px; font-weight: 700; color: var(--nbt-alert-color); }
.nbt-alert-title { font-weight: 600; overflow-wrap: anywhere; }
.nbt-alert-text { white-space: pre-wrap; overflow-wrap: anywhere; flex: 1 1 200px; }
.nbt-alert-meta { font-size: 11px; color: var(--jp-ui-font-color2, #666); }
.nbt-alerts details summary { cursor: pointer; font-size: 11px; color: var(--jp-ui-font-color2, #666); }
`;

function injectAlertStyles() {
  if (document.getElementById("nbt-alert-styles")) return;
  const style = document.createElement("style");
  style.id = "nbt-alert-styles";
  style.textContent = CSS;
  document.head.append(style);
}

function when(at) {
  const d = new Date(Number(at) * 1000);
  return Number.isFinite(d.getTime()) ? d.toLocaleTimeString() : "";
}

function row(a) {
  const level = LEVELS.includes(a?.level) ? a.level : "INFO";
  return h(
    "div",
    { class: "nbt-alert", testid: "nbt-alert", role: level === "ERROR" ? "alert" : "status", dataset: { level } },
    h("span", { class: "nbt-alert-level", text: level }),
    h("span", { class: "nbt-alert-title", text: String(a?.title ?? "") }),
    h("span", { class: "nbt-alert-text", text: String(a?.text ?? "") }),
    h("span", { class: "nbt-alert-meta", text: `step ${a?.step ?? "–"} · ${when(a?.at)}` }),
  );
}

export class AlertStrip {
  constructor(model) {
    injectAlertStyles();
    this.model = model;
    this.el = h("div", { class: "nbt-alerts", testid: "nbt-alerts" });
    this.onChange = () => this.render();
    model.on("change:alerts", this.onChange);
    this.render();
  }

  render() {
    const alerts = [...(this.model.get("alerts") || [])].reverse();
    const sig = JSON.stringify(alerts);
    if (sig === this.sig) return;
    this.sig = sig;
    this.el.textContent = "";
    this.el.style.display = alerts.length ? "" : "none";
    for (const a of alerts.slice(0, SHOWN)) this.el.append(row(a));
    if (alerts.length > SHOWN) {
      const rest = alerts.slice(SHOWN);
      this.el.append(h("details", {}, h("summary", { text: `${rest.length} earlier` }), ...rest.map(row)));
    }
  }

  destroy() {
    this.model.off("change:alerts", this.onChange);
  }
}
