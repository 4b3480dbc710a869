// Panel styles, injected once per page. JupyterLab theme variables with fallbacks for
// frontends that do not define them (VS Code, Colab, nbconvert).

export const CSS = `
.nbt-panel { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 12px;
  color: var(--jp-ui-font-color1, inherit); background: var(--jp-layout-color1, transparent);
  border: 1px solid var(--jp-border-color2, #d0d0d0); border-radius: 4px; padding: 8px 10px;
  box-sizing: border-box; max-width: 100%; }
.nbt-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 14px; }
.nbt-name { font-size: 14px; font-weight: 600; }
.nbt-muted { color: var(--jp-ui-font-color2, #666); }
.nbt-state { font-weight: 600; padding: 0 6px; border-radius: 8px; border: 1px solid currentColor; }
.nbt-state[data-state="running"] { color: var(--jp-success-color1, #2e7d32); }
.nbt-state[data-state="finished"] { color: var(--jp-brand-color1, #1976d2); }
.nbt-state[data-state="failed"], .nbt-state[data-state="crashed"] { color: var(--jp-error-color1, #d32f2f); }
.nbt-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 16px; margin: 6px 0; }
.nbt-controls label { display: inline-flex; align-items: center; gap: 4px; }
.nbt-controls select, .nbt-controls input { font: inherit; color: inherit;
  background: var(--jp-layout-color1, transparent); }
.nbt-readout { min-height: 1.4em; color: var(--jp-ui-font-color2, #666); font-variant-numeric: tabular-nums; }
.nbt-section-title { font-weight: 600; margin: 8px 0 4px; color: var(--jp-ui-font-color1, inherit); }
.nbt-grid { display: flex; flex-wrap: wrap; gap: 8px; }
.nbt-chart { border: 1px solid var(--jp-border-color3, #e6e6e6); border-radius: 3px; padding: 2px 4px; }
.nbt-chart-head { display: flex; justify-content: space-between; gap: 8px; font-size: 11px; }
.nbt-chart-key { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 200px; }
.nbt-chart-val { color: var(--jp-ui-font-color2, #666); font-variant-numeric: tabular-nums; }
.nbt-chart-tools { display: inline-flex; align-items: baseline; gap: 6px; }
.nbt-chart-btn { font: inherit; font-size: 11px; padding: 0 4px; cursor: pointer; border-radius: 3px;
  color: var(--jp-ui-font-color2, #666); background: transparent; border: 1px solid var(--jp-border-color2, #ccc); }
.nbt-chart-btn:hover { color: var(--jp-ui-font-color1, inherit); }
.nbt-chart-btn[hidden], .nbt-chart-opts[hidden], .nbt-big[hidden] { display: none; }
.nbt-chart-opts { display: flex; flex-wrap: wrap; align-items: center; gap: 2px 10px; font-size: 11px; padding: 2px 0 4px;
  width: 0; min-width: 100%; } /* as wide as the chart: the form wraps, the chart keeps its size */
.nbt-chart-opts label { display: inline-flex; align-items: center; gap: 3px; }
.nbt-chart-opts select, .nbt-chart-opts input { font: inherit; color: inherit; background: var(--jp-layout-color1, transparent); }
.nbt-chart-opts input[type="range"] { width: 80px; }
.nbt-big { width: 300px; height: 150px; display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 4px; }
.nbt-big-val { font-size: 28px; font-weight: 600; font-variant-numeric: tabular-nums; }
.nbt-media-item { border: 1px solid var(--jp-border-color3, #e6e6e6); border-radius: 3px; padding: 2px 6px; min-width: 200px; }
.nbt-media-body { min-height: 40px; padding: 4px 0; }
.nbt-media-controls { display: flex; align-items: center; gap: 6px; font-size: 11px; }
.nbt-media-controls input { flex: 1; }
.nbt-media-imgs { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-end; }
.nbt-media-fig { margin: 0; }
.nbt-media-fig img { display: block; image-rendering: pixelated; }
.nbt-media-fig figcaption { font-size: 11px; color: var(--jp-ui-font-color2, #666); max-width: 12em; overflow-wrap: anywhere; }
.nbt-media-hist { display: block; }
.nbt-media-bar { fill: #1f77b4; }
body[data-jp-theme-light="false"] .nbt-media-bar { fill: #78b4ff; }
.nbt-media-axis { stroke: var(--jp-ui-font-color2, #888); }
.nbt-media-tick { font-size: 10px; fill: var(--jp-ui-font-color2, #666); }
.nbt-media-heat { display: block; margin-top: 4px; width: 300px; height: 60px; cursor: pointer;
  border: 1px solid var(--jp-border-color3, #e6e6e6); }
.nbt-empty { color: var(--jp-ui-font-color2, #666); padding: 8px 0; }
.nbt-tables { display: flex; flex-wrap: wrap; gap: 8px 24px; margin-top: 6px; }
.nbt-tables details { min-width: 180px; }
.nbt-tables summary { cursor: pointer; font-weight: 600; }
.nbt-kv { border-collapse: collapse; font-size: 11px; margin-top: 2px; }
.nbt-kv td { padding: 1px 8px 1px 0; vertical-align: top; max-width: 320px; overflow-wrap: anywhere; }
.nbt-kv td:first-child { color: var(--jp-ui-font-color2, #666); }
.nbt-legend { display: flex; flex-direction: column; gap: 2px; margin: 4px 0; }
.nbt-legend-row { display: flex; align-items: baseline; gap: 8px; }
.nbt-legend-name { font-weight: 600; }
.nbt-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; align-self: center; }
.nbt-error { color: var(--jp-error-color1, #d32f2f); white-space: pre-wrap; }
`;

export function injectStyles() {
  if (document.getElementById("nbt-styles")) return;
  const style = document.createElement("style");
  style.id = "nbt-styles";
  style.textContent = CSS;
  document.head.append(style);
}

/** Hide the static fallback of one widget (a second output under it) while a view lives. */
export function hideFallback(uid) {
  const id = `nbt-hide-${uid}`;
  let style = document.getElementById(id);
  if (!style) {
    style = document.createElement("style");
    style.id = id;
    style.dataset.refs = "0";
    // uid is [0-9a-f] only (made by Python), so it is safe inside the selector.
    style.textContent = `[data-nbt-fallback="${uid}"] { display: none !important; }`;
    document.head.append(style);
  }
  style.dataset.refs = String(Number(style.dataset.refs) + 1);
  return () => {
    const n = Number(style.dataset.refs) - 1;
    style.dataset.refs = String(n);
    if (n <= 0) style.remove();
  };
}

/** Vega config that follows the page's theme (read from the element's CSS variables). */
export function vegaConfig(el) {
  const cs = getComputedStyle(el);
  const v = (name, dflt) => cs.getPropertyValue(name).trim() || dflt;
  const fg = v("--jp-ui-font-color1", cs.color || "#333");
  const fg2 = v("--jp-ui-font-color2", fg);
  const grid = v("--jp-border-color2", "#ddd");
  const font = v("--jp-ui-font-family", "sans-serif");
  const accent = v("--jp-brand-color1", "#1976d2");
  return {
    background: null,
    font,
    view: { stroke: null },
    axis: {
      labelColor: fg2,
      titleColor: fg2,
      gridColor: grid,
      domainColor: grid,
      tickColor: grid,
      labelFontSize: 10,
      titleFontSize: 10,
    },
    line: { color: accent },
    rule: { color: fg2 },
  };
}

export function isDarkTheme() {
  const light = document.body?.dataset?.jpThemeLight;
  if (light === "false") return true;
  if (light === "true") return false;
  return globalThis.matchMedia?.("(prefers-color-scheme: dark)")?.matches ?? false;
}
