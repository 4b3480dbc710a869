// Smoothing of metric lines: the time-weighted exponential moving average with debiasing
// that W&B draws by default (TWEMA). The weight of a point decays with the distance along
// x, not with the number of points, so lines of different density smooth alike; dividing
// by the accumulated weight keeps the first values from being pulled towards zero.
// nbtracker/charts.py `twema` is the same rule for static charts (a test keeps them equal).

const VIEWPORT = 1000; // x range in "points" the weight is defined for

/**
 * @param {(number|null)[]} xs x value of each point (step, time, or a step metric)
 * @param {(number|null)[]} ys values; null / non-finite are gaps (carry the last smoothed value)
 * @param {number} param the slider's value in [0, 1); 0 returns the values unchanged
 * @returns {(number|null)[]}
 */
export function twema(xs, ys, param) {
  const p = Number(param) || 0;
  const out = new Array(ys.length).fill(null);
  if (p <= 0) {
    for (let i = 0; i < ys.length; i++) out[i] = ys[i] !== null && Number.isFinite(ys[i]) ? ys[i] : null;
    return out;
  }
  const w = Math.min(Math.sqrt(Math.min(p, 1)), 0.999);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (x !== null && Number.isFinite(x) && ys[i] !== null && Number.isFinite(ys[i])) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  const range = hi > lo ? hi - lo : 1;
  let acc = 0;
  let norm = 0;
  let prev = null;
  let last = null;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    const x = xs[i];
    if (y === null || !Number.isFinite(y) || x === null || !Number.isFinite(x)) {
      out[i] = last;
      continue;
    }
    const dx = prev === null ? 0 : Math.max(x - prev, 0);
    const a = Math.pow(w, (dx / range) * VIEWPORT);
    acc = acc * a + y;
    norm = norm * a + 1;
    last = acc / norm;
    prev = x;
    out[i] = last;
  }
  return out;
}
