// Wheel zoom shared by the run panel's and the workspace's charts: the x interval is bound
// to the scales (vega-lite), and y is refitted to what the zoomed range shows through the
// `ylo` / `yhi` signals on the y scale's domainMin / domainMax (null: the data's own).

import { h } from "./format.js";

const PAD = 0.05; // room above and below the fitted range (log scale: 10% either way)

/** The "reset zoom" button of a chart's head (hidden until the chart is zoomed). */
export function resetZoomButton(onClick) {
  const b = h(
    "button",
    { class: "nbt-chart-btn", testid: "nbt-reset-zoom", title: "reset zoom (or double-click the chart)", hidden: "" },
    "reset zoom",
  );
  b.addEventListener("click", onClick);
  return b;
}

/** The y range of the values inside a zoomed x range: add() them, then apply(). */
export class YFit {
  constructor(logy) {
    this.logy = logy;
    this.lo = Number.POSITIVE_INFINITY;
    this.hi = Number.NEGATIVE_INFINITY;
  }

  add(v) {
    if (v === null || v === undefined || !Number.isFinite(v) || (this.logy && v <= 0)) return;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
  }

  /** Set the view's y range (and the chart element's data-y-domain) with some room. */
  apply(view, el) {
    let { lo, hi } = this;
    if (!(lo <= hi)) return;
    if (this.logy) {
      lo /= 1.1;
      hi *= 1.1;
    } else {
      const pad = (hi - lo) * PAD || Math.abs(hi) * PAD || 1;
      lo -= pad;
      hi += pad;
    }
    el.dataset.yDomain = `${lo},${hi}`;
    view.signal("ylo", lo).signal("yhi", hi).runAsync();
  }
}

/** The x interval of a zoom selection's value, or null when not zoomed. */
export function zoomRange(value) {
  return value && Array.isArray(value.x) ? [Math.min(...value.x), Math.max(...value.x)] : null;
}
