// Images and histograms logged per step: one card per key under the charts, with a step
// slider. The kernel pushes entries unasked ({type: "media", media: {key: {kind, add, drop}}},
// every logged step) and answers {type: "media_snap"} with every kept entry (a
// view created after the data was sent: a reopened page). Thumbnails are data: URIs; every
// user string (keys, captions) goes in with textContent, never as HTML.

import { fmtNum, h } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";

/** Entries per key, kept in the model's box (shared by all views of one model on a page). */
export class MediaStore {
  constructor() {
    /** @type {Map<string, {kind: string, entries: any[]}>} */
    this.tracks = new Map();
    this.listeners = new Set();
    this.seeded = false;
  }

  onMsg(msg) {
    if (msg.type === "media_snap") {
      this.seeded = true;
      this.tracks.clear();
      for (const [key, tr] of Object.entries(msg.media || {})) {
        this.tracks.set(key, { kind: tr.kind, entries: (tr.entries || []).slice() });
      }
      this.emit(null);
      return;
    }
    for (const [key, d] of Object.entries(msg.media || {})) {
      let tr = this.tracks.get(key);
      if (!tr || tr.kind !== d.kind) {
        tr = { kind: d.kind, entries: [] };
        this.tracks.set(key, tr);
      }
      const gone = new Set(d.drop || []);
      let ents = tr.entries.filter((e) => !gone.has(e.step));
      for (const e of d.add || []) {
        ents = ents.filter((x) => x.step < e.step);
        ents.push(e);
      }
      tr.entries = ents;
      this.emit(key);
    }
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(key) {
    for (const fn of this.listeners) fn(key);
  }
}

export function mediaStoreFor(box) {
  if (!box.media) box.media = new MediaStore();
  return box.media;
}

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Bars of one histogram (bins = edges, values = counts). */
function histogramSvg(entry, width = 300, height = 120) {
  const bins = entry.bins || [];
  const vals = entry.values || [];
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "nbt-media-hist" });
  root.dataset.testid = "nbt-media-hist";
  root.dataset.bins = String(vals.length);
  if (!vals.length) return root;
  const lo = bins[0];
  const hi = bins[bins.length - 1];
  const span = hi - lo || 1;
  const top = Math.max(...vals, 1e-12);
  const padB = 16;
  const plotH = height - padB;
  let drawn = 0;
  vals.forEach((v, i) => {
    const x0 = ((bins[i] - lo) / span) * width;
    const x1 = ((bins[i + 1] - lo) / span) * width;
    const bh = (Math.max(0, v) / top) * (plotH - 2);
    if (bh <= 0) return;
    const r = svg("rect", { x: x0, y: plotH - bh, width: Math.max(0.5, x1 - x0 - 0.5), height: bh, class: "nbt-media-bar" });
    const t = svg("title");
    t.textContent = `[${fmtNum(bins[i])}, ${fmtNum(bins[i + 1])}): ${fmtNum(v)}`;
    r.append(t);
    root.append(r);
    drawn++;
  });
  root.dataset.bars = String(drawn);
  root.append(svg("line", { x1: 0, x2: width, y1: plotH + 0.5, y2: plotH + 0.5, class: "nbt-media-axis" }));
  const a = svg("text", { x: 0, y: height - 3, class: "nbt-media-tick" });
  a.textContent = fmtNum(lo);
  const b = svg("text", { x: width, y: height - 3, "text-anchor": "end", class: "nbt-media-tick" });
  b.textContent = fmtNum(hi);
  root.append(a, b);
  return root;
}

/** Histogram over time: one column per kept step, one row per value band, shade = count. */
function drawHeatmap(canvas, entries, sel) {
  const W = canvas.width;
  const H = canvas.height;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, W, H);
  if (!entries.length) return;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const e of entries) {
    const b = e.bins || [];
    if (!b.length) continue;
    lo = Math.min(lo, b[0]);
    hi = Math.max(hi, b[b.length - 1]);
  }
  if (!(hi > lo)) hi = lo + 1;
  const R = 48;
  const cw = W / entries.length;
  const dark = document.body.dataset.jpThemeLight === "false";
  canvas.dataset.theme = dark ? "dark" : "light";
  entries.forEach((e, c) => {
    const col = new Float64Array(R);
    const bins = e.bins || [];
    const vals = e.values || [];
    for (let i = 0; i < vals.length; i++) {
      const mid = (bins[i] + bins[i + 1]) / 2;
      const r = Math.min(R - 1, Math.max(0, Math.floor(((mid - lo) / (hi - lo)) * R)));
      col[r] += vals[i];
    }
    const top = Math.max(...col, 1e-12);
    for (let r = 0; r < R; r++) {
      if (!col[r]) continue;
      const a = col[r] / top;
      ctx.fillStyle = dark ? `rgba(120,180,255,${0.15 + 0.85 * a})` : `rgba(31,119,180,${0.1 + 0.9 * a})`;
      ctx.fillRect(c * cw, H - ((r + 1) / R) * H, Math.ceil(cw), Math.ceil(H / R));
    }
  });
  if (sel >= 0) {
    ctx.strokeStyle = dark ? "#fff" : "#d62728";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(sel * cw + 0.75, 0.75, Math.max(1, cw - 1.5), H - 1.5);
  }
}

class MediaCard {
  constructor(section, key) {
    this.section = section;
    this.key = key;
    this.index = -1; // -1: follow the latest entry
    this.slider = h("input", { type: "range", min: "0", max: "0", step: "1", value: "0", testid: "nbt-media-slider", "aria-label": `step of ${key}` });
    this.stepLabel = h("span", { class: "nbt-muted", testid: "nbt-media-step" });
    this.body = h("div", { class: "nbt-media-body", testid: "nbt-media-view" });
    this.heat = null;
    this.el = h(
      "div",
      { class: "nbt-media-item", testid: "nbt-media-item", dataset: { key } },
      h("div", { class: "nbt-chart-head" }, h("span", { class: "nbt-chart-key", text: key, title: key }), this.stepLabel),
      this.body,
      h("div", { class: "nbt-media-controls" }, h("span", { class: "nbt-muted", text: "step" }), this.slider),
    );
    this.slider.addEventListener("input", () => {
      const tr = this.track();
      const n = tr ? tr.entries.length : 0;
      const i = Number(this.slider.value);
      this.index = i >= n - 1 ? -1 : i; // at the right end: follow new entries again
      this.draw();
    });
  }

  track() {
    return this.section.store.tracks.get(this.key);
  }

  draw() {
    const tr = this.track();
    const ents = tr ? tr.entries : [];
    const n = ents.length;
    this.el.dataset.kind = tr ? tr.kind : "";
    this.el.dataset.entries = String(n);
    this.slider.max = String(Math.max(0, n - 1));
    this.slider.disabled = n <= 1;
    const i = this.index < 0 || this.index >= n ? n - 1 : this.index;
    if (Number(this.slider.value) !== i) this.slider.value = String(Math.max(0, i));
    const e = ents[i];
    this.el.dataset.step = e ? String(e.step) : "";
    this.stepLabel.textContent = e ? `step ${e.step}${n > 1 ? ` (${i + 1} of ${n} kept)` : ""}` : "";
    this.body.textContent = "";
    if (!e) return;
    if (tr.kind === "histogram") {
      this.body.append(histogramSvg(e));
      if (n > 1) {
        if (!this.heat) {
          this.heat = h("canvas", { width: "300", height: "60", class: "nbt-media-heat", testid: "nbt-media-heatmap", title: "histogram over time (kept steps, left to right)" });
          this.heat.addEventListener("click", (ev) => {
            const rect = this.heat.getBoundingClientRect();
            const m = this.track()?.entries.length || 0;
            if (!m) return;
            const j = Math.min(m - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) / rect.width) * m)));
            this.index = j >= m - 1 ? -1 : j;
            this.draw();
          });
        }
        this.body.append(this.heat);
        drawHeatmap(this.heat, ents, i);
      }
    } else {
      const row = h("div", { class: "nbt-media-imgs" });
      for (const im of e.images || []) {
        const fig = h("figure", { class: "nbt-media-fig" });
        const img = h("img", { src: im.src, width: String(im.w), height: String(im.h), testid: "nbt-media-image" });
        img.alt = im.caption || "";
        img.title = im.caption || "";
        fig.append(img);
        if (im.caption) fig.append(h("figcaption", { text: im.caption }));
        row.append(fig);
      }
      if (e.count && e.count > (e.images || []).length) row.append(h("span", { class: "nbt-muted", text: `+${e.count - e.images.length} more` }));
      this.body.append(row);
    }
  }
}

/** The media section of one run panel. */
export class MediaSection {
  constructor(model, box) {
    this.model = model;
    this.store = mediaStoreFor(box);
    this.cards = new Map();
    this.grid = h("div", { class: "nbt-grid" });
    this.el = h(
      "div",
      { class: "nbt-section nbt-media", testid: "nbt-media", dataset: { section: "media" } },
      h("div", { class: "nbt-section-title", text: "media" }),
      this.grid,
    );
    this.el.style.display = "none";
    this.off = this.store.subscribe((key) => this.sync(key));
    const onMeta = () => this.maybeAsk();
    model.on("change:media", onMeta);
    this.offMeta = () => model.off("change:media", onMeta);
    // Follow JupyterLab's light/dark switch (the heatmap's colours are drawn, not styled).
    this.theme = new MutationObserver(() => this.sync(null));
    this.theme.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light"] });
    this.sync(null);
    this.maybeAsk();
  }

  /** The model says it has entries we never got (a view created later): ask for them. */
  maybeAsk() {
    const meta = this.model.get("media") || {};
    const missing = Object.entries(meta).some(([k, m]) => (this.store.tracks.get(k)?.entries.length || 0) < Math.min(m.n || 0, 1));
    if (missing && !this.store.seeded && !this.asked) {
      this.asked = true;
      this.model.send({ type: "media_snap" });
    }
  }

  sync(key) {
    for (const k of this.store.tracks.keys()) {
      if (!this.cards.has(k)) {
        const card = new MediaCard(this, k);
        this.cards.set(k, card);
        this.grid.append(card.el);
      }
    }
    this.el.style.display = this.cards.size ? "" : "none";
    if (key === null) for (const c of this.cards.values()) c.draw();
    else this.cards.get(key)?.draw();
  }

  destroy() {
    this.off();
    this.offMeta();
    this.theme.disconnect();
  }
}
