// The RunPanel's `_esm`: a tiny loader. anywidget copies `_esm` into every widget's
// comm-open message and saved state, so the heavy part (vega + vega-lite + vega-embed +
// the panel UI, ~1 MB) is NOT here: the kernel pushes it once per page as a custom
// message, and it is kept in a `globalThis` slot and imported from a Blob URL.
//
// initialize() runs before anywidget dispatches any custom message to this model, so the
// library message and early rows are never lost. Rows that arrive before the library are
// queued per model and handed to it when it loads.

const HASH = "__NBT_LIB_HASH__"; // replaced by Python with the library's content hash

/** @returns {{promise: Promise<any>, resolve: (m: any) => void, state: string, models: Map<string, any>}} */
function slot() {
  const key = `__nbtracker_lib_${HASH}`;
  let s = globalThis[key];
  if (!s) {
    let resolve;
    const promise = new Promise((r) => {
      resolve = r;
    });
    s = { promise, resolve, state: "missing", models: new Map() };
    globalThis[key] = s;
  }
  return s;
}

async function install(s, code) {
  if (s.state !== "missing") return;
  s.state = "loading";
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  try {
    const lib = await import(/* webpackIgnore: true */ url);
    s.state = "ready";
    s.resolve(lib);
  } catch (err) {
    s.state = "missing";
    console.error("nbtracker: could not load the chart library", err);
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Per-model inbox: messages wait here until the library's model store takes them. */
function inbox(s, model) {
  const uid = model.get("_uid");
  let box = s.models.get(uid);
  if (!box) {
    box = { q: [], fn: null, store: null };
    s.models.set(uid, box);
  }
  return box;
}

export default {
  initialize({ model }) {
    const s = slot();
    const box = inbox(s, model);
    box.model = model; // the model-lifetime proxy: the library's data store listens on it
    const onMsg = (msg) => {
      if (msg && msg.type === "lib") {
        if (msg.hash === HASH) install(s, msg.code);
        return;
      }
      if (box.fn) box.fn(msg);
      else box.q.push(msg);
    };
    model.on("msg:custom", onMsg);
    return () => {
      model.off("msg:custom", onMsg);
      s.models.delete(model.get("_uid"));
    };
  },
  async render({ model, el }) {
    const s = slot();
    const box = inbox(s, model);
    let asked = null;
    if (s.state !== "ready") {
      el.textContent = "nbtracker: loading charts…";
      // The kernel pushes the library on the first display; a page opened later (reload,
      // second tab) asks for it. That request waits while a cell runs, so ask only if the
      // pushed copy has not arrived soon.
      asked = setTimeout(() => {
        model.send({ type: "need_lib", hash: HASH });
        el.textContent =
          "nbtracker: waiting for the kernel to send the chart library (after the running cell; with no kernel, see the snapshot below).";
      }, 1500);
    }
    const lib = await s.promise;
    clearTimeout(asked);
    el.textContent = "";
    const entry = lib[model.get("_entry") || "renderRunPanel"] || lib.renderRunPanel;
    return entry({ model, el, box, slot: s });
  },
};
