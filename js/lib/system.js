// The run panel's capture parts that describe the machine: a collapsed "System" section
// (one small chart per system metric, drawn only while open) and the "Environment" table
// of the run info. Data comes from the synced `system` and `env_info` traits.

import vegaEmbed from "vega-embed";
import { fmtNum, h } from "./format.js";
import { vegaConfig } from "./styles.js";

const CSS = `
.nbt-capture summary { cursor: pointer; font-weight: 600; margin: 8px 0 4px; }
.nbt-sys-chart { border: 1px solid var(--jp-border-color3, #e6e6e6); border-radius: 3px; padding: 2px 4px; }
.nbt-sys-head { display: flex; justify-content: space-between; gap: 8px; font-size: 11px; }
.nbt-sys-key { font-weight: 600; }
.nbt-sys-last { color: var(--jp-ui-font-color2, #666); font-variant-numeric: tabular-nums; }
.nbt-logs { max-height: 260px; overflow: auto; margin: 2px 0; padding: 6px 8px; font-size: 11px;
  line-height: 1.35; white-space: pre-wrap; overflow-wrap: anywhere;
  font-family: var(--jp-code-font-family, ui-monospace, monospace);
  background: var(--jp-layout-color2, #f5f5f5); color: var(--jp-ui-font-color1, inherit);
  border: 1px solid var(--jp-border-color3, #e6e6e6); border-radius: 3px; }
`;

export function injectCaptureStyles() {
  if (document.getElementById("nbt-capture-styles")) return;
  const style = document.createElement("style");
  style.id = "nbt-capture-styles";
  style.textContent = CSS;
  document.head.append(style);
}

/** W&B's unit of each metric, for the chart's y title. */
export function unitOf(key) {
  if (/percent|Percent|^system\/cpu$|memoryAllocated$|\.gpu$|\.memory$/.test(key)) return "%";
  if (/MB$|^system\/disk\.(in|out)$/.test(key)) return "MB";
  if (/GB$/.test(key)) return "GB";
  if (/^system\/network\./.test(key)) return "bytes";
  if (/Watts$/.test(key)) return "W";
  if (/temp$/.test(key)) return "°C";
  return "";
}

function spec(key, ser, el) {
  const values = ser.t.map((t, i) => ({ t, v: ser.v[i] }));
  const unit = unitOf(key);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    width: 220,
    height: 90,
    data: { values },
    mark: { type: "line", point: values.length < 3 },
    encoding: {
      x: { field: "t", type: "quantitative", title: "runtime (s)" },
      y: { field: "v", type: "quantitative", title: unit || null, scale: { zero: unit === "%" } },
      tooltip: [
        { field: "t", title: "runtime (s)", format: ".1f" },
        { field: "v", title: key, format: ".4~g" },
      ],
    },
    config: { ...vegaConfig(el), axis: { ...(vegaConfig(el).axis || {}), labelFontSize: 9, titleFontSize: 9 } },
  };
}

export class SystemSection {
  constructor(model) {
    this.model = model;
    this.views = new Map();
    injectCaptureStyles();
    this.count = h("span", { class: "nbt-muted" });
    this.grid = h("div", { class: "nbt-grid" });
    this.el = h(
      "details",
      { class: "nbt-capture nbt-system", testid: "nbt-system" },
      h("summary", {}, "System ", this.count),
      this.grid,
    );
    this.el.style.display = "none";
    this.onChange = () => this.update();
    model.on("change:system", this.onChange);
    this.el.addEventListener("toggle", () => this.update(true));
    this.obs = new MutationObserver(() => this.update(true));
    this.obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
    this.update();
  }

  update(redraw = false) {
    const data = this.model.get("system") || {};
    const keys = Object.keys(data).sort(order);
    this.el.style.display = keys.length ? "" : "none";
    this.count.textContent = keys.length ? `(${keys.length})` : "";
    this.el.dataset.keys = String(keys.length);
    if (!this.el.open) return; // collapsed: nothing drawn
    for (const key of keys) {
      let item = this.views.get(key);
      if (!item) {
        const last = h("span", { class: "nbt-sys-last" });
        const plot = h("div", {});
        const box = h(
          "div",
          { class: "nbt-sys-chart", testid: "nbt-system-chart", dataset: { key } },
          h("div", { class: "nbt-sys-head" }, h("span", { class: "nbt-sys-key", text: key.replace(/^system\//, "") }), last),
          plot,
        );
        this.grid.append(box);
        item = { box, plot, last, sig: null, view: null };
        this.views.set(key, item);
      }
      const ser = data[key];
      const sig = `${ser.t.length}:${ser.t[ser.t.length - 1]}:${ser.v[ser.v.length - 1]}`;
      if (!redraw && item.sig === sig) continue;
      item.sig = sig;
      const unit = unitOf(key);
      item.last.textContent = `${fmtNum(ser.v[ser.v.length - 1])}${unit ? ` ${unit}` : ""}`;
      item.box.dataset.points = String(ser.t.length);
      this.draw(key, ser, item);
    }
  }

  async draw(key, ser, item) {
    try {
      const res = await vegaEmbed(item.plot, spec(key, ser, this.el), { actions: false, renderer: "svg" });
      if (item.view) item.view.finalize();
      item.view = res.view;
    } catch (err) {
      item.plot.textContent = `chart error: ${err}`;
    }
  }

  destroy() {
    this.model.off("change:system", this.onChange);
    this.obs.disconnect();
    for (const item of this.views.values()) item.view?.finalize();
    this.views.clear();
  }
}

/** cpu and memory first, then disks, network, GPUs; per kind in name order. */
function order(a, b) {
  const rank = (k) =>
    /^system\/cpu$/.test(k) ? 0 : /memory/.test(k) && !/gpu/.test(k) ? 1 : /threads/.test(k) ? 2 : /disk/.test(k) ? 3 : /network/.test(k) ? 4 : 5;
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

export class EnvTable {
  constructor(model) {
    this.model = model;
    this.table = h("table", { class: "nbt-kv" });
    this.count = h("span", { class: "nbt-muted" });
    this.el = h("details", { testid: "nbt-environment" }, h("summary", {}, "Environment ", this.count), this.table);
    this.onChange = () => this.update();
    model.on("change:env_info", this.onChange);
    this.update();
  }

  update() {
    const entries = Object.entries(this.model.get("env_info") || {});
    this.el.style.display = entries.length ? "" : "none";
    this.count.textContent = `(${entries.length})`;
    this.table.textContent = "";
    for (const [k, v] of entries) this.table.append(h("tr", {}, h("td", { text: k }), h("td", { text: String(v) })));
  }

  destroy() {
    this.model.off("change:env_info", this.onChange);
  }
}
