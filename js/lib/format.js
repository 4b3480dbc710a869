// Number, time and DOM helpers. Every user string goes through textContent, never HTML.

// One number format for every widget, the static snapshots (nbtracker/widgets/_fallback.py
// `fmt`) and chart axes (nbtracker/charts.py AXIS_LABEL): integers exactly, other numbers
// with 5 significant digits, exponent notation below 1e-3 and from 1e5 on.
export function fmtNum(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "boolean") return String(v);
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

// Axis labels in the same format (a test keeps them equal to nbtracker/charts.py's).
export const AXIS_LABEL =
  "isValid(datum.value) && abs(datum.value) >= 10000 ? format(datum.value, '~s') : format(datum.value, '~g')";
export const STEP_AXIS_LABEL = AXIS_LABEL;

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || !Number.isFinite(sec)) return "–";
  sec = Math.max(0, Math.floor(sec));
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

/** Make an element: h("div", {class: "x", testid: "y", dataset: {...}}, children...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") el.className = v;
    else if (k === "testid") el.dataset.testid = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** Set an element's text only when it changes (no needless layout work). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
