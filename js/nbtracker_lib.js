// The library the kernel sends once per page (see run_panel.js): vega, vega-lite and
// vega-embed bundled (no CDN), plus the panel UI and the runs workspace. Imported from a Blob URL by the loader.
export { renderRunPanel } from "./lib/panel.js";
export { renderWorkspace } from "./lib/workspace.js";
export { default as vegaEmbed } from "vega-embed";
export * as vega from "vega";
