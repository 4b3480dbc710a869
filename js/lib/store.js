// One data store per widget model (shared by all views of it): the down-sampled series
// of every metric, kept from the synced `_series` snapshot plus the streamed deltas.
//
// Messages from Python (see nbtracker/widgets/run_panel.py):
//   {type: "rows", seq, series: {key: {from, s, t, v, x}}}
//       replace the points of `key` whose step is >= `from` (all when from is null)
//   {type: "snap", seq, series: {key: {s, t, v, x}}}   a full snapshot (after a resync)
//   {type: "range", req, key, s, t, v, x}              full-resolution points of a zoom range

/** @typedef {{s: number[], t: number[], v: (number|null)[], x: Record<string, (number|null)[]>}} Series */

/** First index i with arr[i] >= value (arr sorted ascending). */
export function lowerBound(arr, value) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function copySeries(src) {
  const x = {};
  for (const [name, vals] of Object.entries(src.x || {})) x[name] = vals.slice();
  return { s: src.s.slice(), t: src.t.slice(), v: src.v.slice(), x };
}

export class SeriesStore {
  constructor(model) {
    this.model = model;
    /** @type {Map<string, Series>} */
    this.series = new Map();
    this.seq = -1;
    this.listeners = new Set();
    this.rangeListeners = new Set();
    this._resyncAsked = false;
    this.seed(model.get("_series"));
    model.on("change:_series", () => {
      const snap = model.get("_series");
      if (snap && snap.seq > this.seq) this.seed(snap);
    });
  }

  seed(snap) {
    if (!snap || !snap.series) return;
    this.series.clear();
    for (const [key, ser] of Object.entries(snap.series)) this.series.set(key, copySeries(ser));
    this.seq = snap.seq ?? -1;
    this._resyncAsked = false;
    this.emit(null, 0);
  }

  onMsg(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "snap") {
      if (msg.seq >= this.seq) this.seed(msg);
      return;
    }
    if (msg.type === "range") {
      for (const fn of this.rangeListeners) fn(msg);
      return;
    }
    if (msg.type !== "rows") return;
    if (msg.seq <= this.seq) return; // already in the snapshot we were seeded with
    if (this.seq >= 0 && msg.seq !== this.seq + 1 && !this._resyncAsked) {
      // A gap (this page connected late): apply what we have and ask for a snapshot.
      this._resyncAsked = true;
      this.model.send({ type: "resync" });
    }
    this.seq = msg.seq;
    for (const [key, d] of Object.entries(msg.series || {})) {
      let ser = this.series.get(key);
      if (!ser || d.from === null || d.from === undefined) {
        ser = copySeries({ s: [], t: [], v: [], x: {} });
        this.series.set(key, ser);
      }
      const i = lowerBound(ser.s, d.from ?? Number.NEGATIVE_INFINITY);
      const n0 = ser.s.length;
      ser.s.length = i;
      ser.t.length = i;
      ser.v.length = i;
      for (const name of Object.keys(ser.x)) ser.x[name].length = i;
      for (let j = 0; j < d.s.length; j++) {
        ser.s.push(d.s[j]);
        ser.t.push(d.t[j]);
        ser.v.push(d.v[j]);
      }
      for (const [name, vals] of Object.entries(d.x || {})) {
        const col = ser.x[name] || (ser.x[name] = new Array(i).fill(null));
        col.length = i;
        for (const val of vals) col.push(val);
      }
      for (const name of Object.keys(ser.x)) {
        const col = ser.x[name];
        while (col.length < ser.s.length) col.push(null);
      }
      this.emit(key, Math.min(i, n0));
    }
  }

  /** fn(key | null, fromIndex): key null means everything changed. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(key, from) {
    for (const fn of this.listeners) fn(key, from);
  }
}
