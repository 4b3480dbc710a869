// TableView's `_esm`: a paged view of a logged table. Self-contained (~7 KB, no chart
// library, so nothing is shared through the page-wide loader); the fallback rule comes
// from lib/styles.js at build time.
//
// The kernel runs every query (DuckDB over the table's Parquet) and syncs one page in the
// `page` trait: rows of plain values, image thumbnails as PNG bytes (binary buffers, which
// arrive here as DataViews; `src` data: URIs instead where buffers are off, as in Colab).
// The view only sets the `query` trait (sort, filter, search, page) and asks for a
// full-size image with a custom message when a thumbnail is clicked. Every user string is
// put in the page with textContent / attribute properties, never as HTML, so cells and
// captions cannot run code.

import { fmtNum } from "./lib/format.js";
import { hideFallback } from "./lib/styles.js";

const CSS = `
.nbt-tv{font:12px/1.4 system-ui,-apple-system,sans-serif;color:var(--jp-ui-font-color1,#222)}
.nbt-tv-bar{display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin:0 0 6px}
.nbt-tv-bar input{font:inherit;padding:2px 6px;border:1px solid #bbb;border-radius:3px;background:transparent;color:inherit}
.nbt-tv-bar .nbt-tv-filter{min-width:16em}
.nbt-tv-bar button,.nbt-tv-pager button{font:inherit;padding:1px 8px;cursor:pointer}
.nbt-tv-err{color:#c00;white-space:pre-wrap}
.nbt-tv-wrap{overflow:auto;max-height:560px}
.nbt-tv table{border-collapse:collapse}
.nbt-tv th,.nbt-tv td{border:1px solid rgba(128,128,128,.35);padding:2px 6px;vertical-align:top;text-align:left}
.nbt-tv th{position:sticky;top:0;background:var(--jp-layout-color2,#f3f3f3);cursor:pointer;user-select:none;white-space:nowrap}
.nbt-tv th.nbt-tv-nosort{cursor:default}
.nbt-tv td.nbt-tv-num{text-align:right;font-variant-numeric:tabular-nums}
.nbt-tv td .nbt-tv-txt{max-width:28em;max-height:6em;overflow:auto;white-space:pre-wrap;word-break:break-word}
.nbt-tv img{image-rendering:pixelated;display:block;cursor:zoom-in}
.nbt-tv .nbt-tv-cap{opacity:.7;font-size:11px;max-width:10em}
.nbt-tv-pager{display:flex;gap:8px;align-items:center;margin-top:6px}
.nbt-tv-zoom{position:fixed;inset:0;background:rgba(0,0,0,.75);display:flex;flex-direction:column;align-items:center;justify-content:center;z-index:10000;cursor:zoom-out}
.nbt-tv-zoom img{max-width:90vw;max-height:80vh;min-width:min(280px,90vw);object-fit:contain;image-rendering:pixelated;background:#fff;cursor:zoom-out}
.nbt-tv-zoom div{color:#fff;margin-top:8px;font:13px system-ui,sans-serif;max-width:80vw}
`;

function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c); // strings become text nodes
  return e;
}


/** An image source for PNG bytes (a DataView / ArrayBuffer from a binary buffer); the URL
 * is remembered in `urls` so that it can be revoked when the page is redrawn. */
function pngURL(bytes, urls) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  urls.push(url);
  return url;
}

function render({ model, el }) {
  const uid = String(model.get("_uid") || "").replace(/[^0-9a-f]/g, "");
  const unhide = uid ? hideFallback(uid) : () => {};
  const style = h("style", { textContent: CSS });
  const root = h("div", { class: "nbt-tv" });
  root.dataset.testid = "nbt-tv";
  el.append(style, root);
  const search = h("input", { type: "search", placeholder: "search text…", className: "nbt-tv-search" });
  search.dataset.testid = "nbt-tv-search";
  const filter = h("input", { type: "text", placeholder: "filter, e.g. pred != target", className: "nbt-tv-filter" });
  filter.dataset.testid = "nbt-tv-filter";
  const apply = h("button", { textContent: "apply", title: "run the filter and search" });
  const stepSel = h("select", { title: "version of the table (step it was logged at)" });
  const title = h("b");
  const bar = h("div", { class: "nbt-tv-bar" }, title, search, filter, apply, stepSel);
  const err = h("div", { class: "nbt-tv-err" });
  err.dataset.testid = "nbt-tv-error";
  const table = h("table");
  const wrap = h("div", { class: "nbt-tv-wrap" }, table);
  const info = h("span");
  info.dataset.testid = "nbt-tv-info";
  const prev = h("button", { textContent: "‹ prev" });
  const next = h("button", { textContent: "next ›" });
  next.dataset.testid = "nbt-tv-next";
  const sizeSel = h("select", { title: "rows per page" });
  sizeSel.dataset.testid = "nbt-tv-size";
  for (const n of [10, 25, 50, 100]) sizeSel.append(h("option", { value: String(n), textContent: `${n} / page` }));
  sizeSel.addEventListener("change", () => {
    model.set("page_size", Number(sizeSel.value));
    setQuery({ page: 0 });
  });
  const pager = h("div", { class: "nbt-tv-pager" }, prev, next, info, sizeSel);
  root.append(bar, err, wrap, pager);

  let shownSeq = null;
  const busy = (on) => {
    root.style.opacity = on ? "0.6" : "";
    root.dataset.busy = on ? "1" : "0";
  };
  let pending = new Map(); // id -> overlay waiting for its full-size image
  let nextId = 1;
  let pageURLs = []; // blob: URLs of the thumbnails drawn now
  let zoomURLs = []; // blob: URL of the enlarged image

  const query = () => ({ ...(model.get("query") || {}) });
  const setQuery = (patch) => {
    model.set("query", { ...query(), ...patch });
    model.save_changes();
    busy(true);
  };
  const submit = () => setQuery({ filter: filter.value, search: search.value, page: 0 });
  apply.addEventListener("click", submit);
  for (const inp of [search, filter]) {
    inp.addEventListener("keydown", (e) => {
      if (e.key === "Enter") submit();
    });
  }
  prev.addEventListener("click", () => setQuery({ page: Math.max(0, (query().page || 0) - 1) }));
  next.addEventListener("click", () => setQuery({ page: (query().page || 0) + 1 }));
  stepSel.addEventListener("change", () => {
    model.set("step", Number(stepSel.value));
    model.save_changes();
    busy(true);
  });

  function zoom(row, col, thumb) {
    const id = nextId++;
    const img = h("img", { src: thumb.src, alt: thumb.alt });
    const cap = h("div", { textContent: thumb.alt || "" });
    const close = () => {
      overlay.remove();
      pending.delete(id);
      for (const u of zoomURLs.splice(0)) URL.revokeObjectURL(u);
      document.removeEventListener("keydown", onKey);
    };
    const onKey = (e) => {
      if (e.key === "Escape") close();
    };
    const overlay = h("div", { class: "nbt-tv-zoom", onclick: close }, img, cap);
    overlay.dataset.testid = "nbt-tv-zoom";
    document.addEventListener("keydown", onKey);
    document.body.append(overlay);
    pending.set(id, img);
    model.send({ type: "image", id, row, col });
  }

  function onMsg(msg, buffers) {
    if (!msg || msg.type !== "image") return;
    const img = pending.get(msg.id);
    if (!img) return;
    if (buffers && buffers.length) img.src = pngURL(buffers[0], zoomURLs);
    else if (msg.src) img.src = msg.src;
  }
  model.on("msg:custom", onMsg);

  function cell(v, type, row, col) {
    const td = h("td");
    if (v == null) return td;
    if (type === "image") {
      const src = v.png ? pngURL(v.png, pageURLs) : v.src || "";
      const img = h("img", { src, alt: v.caption || "", title: v.caption || "", width: v.w, height: v.h, className: "nbt-tv-thumb" });
      img.addEventListener("click", () => zoom(row, col, img));
      td.append(img);
      if (v.caption) td.append(h("div", { class: "nbt-tv-cap", textContent: v.caption }));
    } else if (type === "number") {
      td.className = "nbt-tv-num";
      td.textContent = fmtNum(v);
    } else if (type === "bool") {
      td.textContent = v ? "true" : "false";
    } else {
      td.append(h("div", { class: "nbt-tv-txt", textContent: typeof v === "string" ? v : JSON.stringify(v) }));
    }
    return td;
  }

  function draw() {
    const page = model.get("page") || {};
    if (page.seq !== shownSeq) busy(false); // the kernel answered
    shownSeq = page.seq;
    const cols = model.get("columns") || [];
    const q = query();
    title.textContent = model.get("title") || "";
    if (document.activeElement !== search) search.value = q.search || "";
    if (document.activeElement !== filter) filter.value = q.filter || "";
    const steps = model.get("steps") || [];
    stepSel.style.display = steps.length > 1 ? "" : "none";
    stepSel.replaceChildren(...steps.map((s) => h("option", { value: String(s), textContent: `step ${s}` })));
    stepSel.value = String(model.get("step"));
    const size = String(model.get("page_size"));
    if (![...sizeSel.options].some((o) => o.value === size)) sizeSel.append(h("option", { value: size, textContent: `${size} / page` }));
    sizeSel.value = size;
    err.textContent = page.error || "";
    const head = h("tr");
    for (const c of cols) {
      const sortable = c.type !== "image";
      const arrow = q.sort === c.name ? (q.desc ? " ▼" : " ▲") : "";
      const th = h("th", { class: sortable ? "" : "nbt-tv-nosort", title: sortable ? "sort" : "" }, c.name + arrow);
      th.dataset.col = c.name;
      if (sortable) {
        th.addEventListener("click", () => {
          const desc = q.sort === c.name ? !q.desc : false;
          setQuery({ sort: c.name, desc, page: 0 });
        });
      }
      head.append(th);
    }
    const body = h("tbody");
    const oldURLs = pageURLs;
    pageURLs = [];
    for (const r of page.rows || []) {
      const tr = h("tr");
      cols.forEach((c, j) => tr.append(cell(r.cells[j], c.type, r.row, c.name)));
      body.append(tr);
    }
    table.replaceChildren(h("thead", {}, head), body);
    for (const u of oldURLs) URL.revokeObjectURL(u);
    const total = page.total ?? 0;
    const first = total ? page.offset + 1 : 0;
    const last = page.offset + (page.rows || []).length;
    info.textContent = `rows ${first}–${last} of ${total}` + (total !== model.get("nrows") ? ` (filtered from ${model.get("nrows")})` : "");
    prev.disabled = page.offset <= 0;
    next.disabled = last >= total;
  }

  const TRAITS = ["page", "query", "columns", "title", "steps", "step", "page_size"];
  for (const name of TRAITS) model.on(`change:${name}`, draw);
  draw();
  return () => {
    unhide();
    model.off("msg:custom", onMsg);
    for (const name of TRAITS) model.off(`change:${name}`, draw);
    pending = new Map();
    for (const u of [...pageURLs.splice(0), ...zoomURLs.splice(0)]) URL.revokeObjectURL(u);
  };
}

export default { render };
