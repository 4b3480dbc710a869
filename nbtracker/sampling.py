"""The one down-sampler of every reader: the Api's ``history(samples=)``, ``charts``,
the run panel, the runs workspace.

The rule (the same in :class:`Envelope`, :func:`reduce_indices` and :func:`reduce_sql`):
steps are grouped into buckets of ``w`` steps (``w`` a power of two, aligned at 0). Each
bucket keeps its minimum and its maximum point over finite values, and its first point
whose value is not a finite number (NaN, inf, or text: shown, never taken for a minimum or
maximum); the newest bucket also keeps its latest point. So a chart never holds more than
about ``2 * max_buckets + 1`` points (plus one per bucket that saw NaN) and no spike, and no
NaN, is ever hidden. When there are more than ``max_buckets`` buckets, ``w`` doubles and
neighbours merge. Adding a point is O(1) amortised; :meth:`Envelope.take_delta` tells what
changed since the last call as "replace every point with step >= from with these".
"""

from __future__ import annotations

import itertools
import math
from typing import Any

_INF = math.inf
_NINF = -math.inf


def _step_of(p: Any) -> int:
    return p[0]  # type: ignore[no-any-return]


# A point: (step, seconds since start, value, x-metric values dict or None)
Point = tuple[int, float, float, Any]

DEFAULT_BUCKETS = 512


class Envelope:
    __slots__ = ("bk", "dirty", "max_buckets", "reset", "w", "n")

    def __init__(self, max_buckets: int = DEFAULT_BUCKETS) -> None:
        self.max_buckets = max(2, int(max_buckets))
        self.w = 1
        self.bk: list[list[Any]] = []  # [bucket, min point, max point, last, first non-finite]
        self.dirty: int | None = None  # first bucket position changed since take_delta()
        self.reset = False
        self.n = 0  # points seen

    def add(self, s: int, t: float, v: float, xv: Any = None) -> None:
        self.n += 1
        pt = (s, t, v, xv)
        finite = v == v and v != _INF and v != _NINF
        b = s // self.w
        bk = self.bk
        if bk and bk[-1][0] == b:
            cur = bk[-1]
            if finite:
                if cur[1] is None or v < cur[1][2]:
                    cur[1] = pt
                if cur[2] is None or v > cur[2][2]:
                    cur[2] = pt
            elif cur[4] is None:
                cur[4] = pt
            cur[3] = pt
            pos = len(bk) - 1
        else:
            if finite:
                bk.append([b, pt, pt, pt, None])
            else:
                bk.append([b, None, None, pt, pt])
            pos = max(len(bk) - 2, 0)  # the previous bucket loses its "latest" point
            if len(bk) > self.max_buckets:
                self._coarsen()
                return
        if self.dirty is None or pos < self.dirty:
            self.dirty = pos

    def _coarsen(self) -> None:
        while len(self.bk) > self.max_buckets:
            self.w *= 2
            out: list[list[Any]] = []
            for b, lo, hi, last, odd in self.bk:
                nb = b // 2
                if out and out[-1][0] == nb:
                    cur = out[-1]
                    if lo is not None and (cur[1] is None or lo[2] < cur[1][2]):
                        cur[1] = lo
                    if hi is not None and (cur[2] is None or hi[2] > cur[2][2]):
                        cur[2] = hi
                    cur[3] = last
                    if cur[4] is None:
                        cur[4] = odd
                else:
                    out.append([nb, lo, hi, last, odd])
            self.bk = out
        self.reset = True
        self.dirty = None

    @classmethod
    def from_arrays(
        cls, steps: Any, ts: Any, vals: Any, max_buckets: int = DEFAULT_BUCKETS
    ) -> Envelope:
        """The envelope of a whole series at once (numpy arrays sorted by step), with the
        points :meth:`add` would keep, found with numpy: for finished runs, whose series
        never changes (the runs workspace reads hundreds of them in one go)."""
        import numpy as np

        self = cls(max_buckets)
        n = len(steps)
        self.n = n
        if not n:
            return self
        steps = np.asarray(steps, dtype=np.int64)
        vals = np.asarray(vals, dtype=np.float64)
        w = 1
        w = bucket_width(0, int(steps[-1] - steps[0]), self.max_buckets) // 2 or 1
        while np.count_nonzero(np.diff(steps // w)) + 1 > self.max_buckets:  # sorted steps
            w *= 2
        self.w = w
        b = steps // w
        starts = np.r_[0, np.flatnonzero(np.diff(b)) + 1]
        ends = np.r_[starts[1:], n]
        group = np.repeat(np.arange(len(starts)), ends - starts)
        finite = np.isfinite(vals)
        lo_i = np.full(len(starts), -1)
        hi_i = np.full(len(starts), -1)
        odd_i = np.full(len(starts), -1)
        if finite.any():
            for out, fill, red in ((lo_i, np.inf, np.minimum), (hi_i, -np.inf, np.maximum)):
                vv = np.where(finite, vals, fill)
                ext = red.reduceat(vv, starts)
                hit = np.flatnonzero((vv == ext[group]) & finite)
                g = group[hit]
                first = np.r_[True, g[1:] != g[:-1]]
                out[g[first]] = hit[first]
        bad = np.flatnonzero(~finite)
        if len(bad):
            g = group[bad]
            first = np.r_[True, g[1:] != g[:-1]]
            odd_i[g[first]] = bad[first]
        pts: list[Any] = list(
            zip(steps.tolist(), np.asarray(ts, dtype=np.float64).tolist(), vals.tolist(),
                itertools.repeat(None), strict=False)
        )  # fmt: skip
        pts.append(None)  # index -1: no such point
        self.bk = [
            [bb, pts[lo], pts[hi], pts[e - 1], pts[od]]
            for bb, lo, hi, e, od in zip(
                (steps[starts] // w).tolist(), lo_i.tolist(), hi_i.tolist(), ends.tolist(),
                odd_i.tolist(), strict=True,
            )
        ]  # fmt: skip
        self.reset = True
        return self

    @classmethod
    def from_buckets(cls, w: int, rows: Any, max_buckets: int = DEFAULT_BUCKETS) -> Envelope:
        """The envelope from buckets reduced elsewhere (DuckDB, :data:`BUCKET_AGGS`): rows
        ``(bucket, lo step, lo ts, lo value, hi step, hi ts, hi value, last step, last ts,
        last value, odd step, odd ts, odd value)`` sorted by bucket, None where a bucket has
        no such point. The same points :meth:`add` keeps at width ``w``."""
        self = cls(max_buckets)
        self.w = max(int(w), 1)
        bk = []
        n = 0
        for b, ls, lt, lv, hs, ht, hv, as_, at, av, os_, ot, ov in rows:
            lo = None if ls is None else (ls, lt, lv, None)
            hi = None if hs is None else lo if hs == ls else (hs, ht, hv, None)
            odd = None if os_ is None else (os_, ot, ov, None)
            if as_ == ls:
                last = lo
            elif as_ == hs:
                last = hi
            elif as_ == os_:
                last = odd
            else:
                last = (as_, at, av, None)
            n += 1 + (hi is not lo) + (odd is not None) + (last is not lo and last is not hi)
            bk.append([b, lo, hi, last, odd])
        self.bk = bk
        self.n = n
        self.reset = True
        return self

    def points(self, start: int = 0) -> list[Point]:
        out: list[Point] = []
        last_pos = len(self.bk) - 1
        for i in range(start, len(self.bk)):
            _, lo, hi, last, odd = self.bk[i]
            if odd is None:  # the common case: finite values only
                if lo is hi:
                    out.append(lo)
                elif lo[0] < hi[0]:
                    out += (lo, hi)
                else:
                    out += (hi, lo)
                if i == last_pos and last is not lo and last is not hi:
                    out.append(last)
                continue
            pts = [p for p in (lo, hi, odd) if p is not None]
            if i == last_pos:
                pts.append(last)
            seen: set[int] = set()
            for p in sorted(pts, key=_step_of):
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def take_delta(self) -> tuple[int | None, list[Point]] | None:
        """``(from_step, points)`` changed since the last call (``from_step`` None: all),
        or None when nothing changed."""
        if self.reset:
            self.reset = False
            self.dirty = None
            return None, self.points(0)
        if self.dirty is None:
            return None
        i = self.dirty
        self.dirty = None
        return self.bk[i][0] * self.w, self.points(i)

    def __len__(self) -> int:
        return sum(1 for _ in self.points())


# One row per key and bucket of what :class:`Envelope` keeps (``from_buckets``): over
# ``h(key, step, ts, value, fv, os)`` where ``fv`` is the value when finite (else NULL)
# and ``os`` the step when the value is not finite (else NULL). Scalar aggregates, not
# structs (2x faster in DuckDB); ties pick the same row for step, ts and value alike.
BUCKET_AGGS = (
    "min(fv) AS lo_v, arg_min(step, fv) AS lo_s, arg_min(ts, fv) AS lo_t, "
    "max(fv) AS hi_v, arg_max(step, fv) AS hi_s, arg_max(ts, fv) AS hi_t, "
    "max(step) AS la_s, arg_max(value, step) AS la_v, arg_max(ts, step) AS la_t, "
    "min(os) AS od_s, arg_min(value, os) AS od_v, arg_min(ts, os) AS od_t"
)
# The same buckets merged into wider ones (``b`` regrouped): over rows of BUCKET_AGGS.
BUCKET_MERGE = (
    "min(lo_v) AS lo_v, arg_min(lo_s, lo_v) AS lo_s, arg_min(lo_t, lo_v) AS lo_t, "
    "max(hi_v) AS hi_v, arg_max(hi_s, hi_v) AS hi_s, arg_max(hi_t, hi_v) AS hi_t, "
    "max(la_s) AS la_s, arg_max(la_v, la_s) AS la_v, arg_max(la_t, la_s) AS la_t, "
    "min(od_s) AS od_s, arg_min(od_v, od_s) AS od_v, arg_min(od_t, od_s) AS od_t"
)
BUCKET_COLS = ("b", "lo_s", "lo_t", "lo_v", "hi_s", "hi_t", "hi_v", "la_s", "la_t", "la_v",
               "od_s", "od_t", "od_v")  # fmt: skip
FINITE_COLS = (
    "CASE WHEN isfinite(value) THEN value END AS fv, "
    "CASE WHEN isfinite(value) THEN NULL ELSE step END AS os"
)


def reduce_indices(steps: Any, values: Any, w: int) -> Any:
    """Indices of the min, max, last and first non-finite point of every ``w``-step bucket
    (numpy, sorted).

    ``steps`` must be sorted. Feeding only these points to :meth:`Envelope.add` gives the
    same envelope as feeding them all, so bulk loads (a finished 1M-step run) stay fast:
    O(n), no sorting.
    """
    import numpy as np

    n = len(steps)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    b = np.asarray(steps, dtype=np.int64) // max(int(w), 1)
    v = np.asarray(values, dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(b)) + 1]
    counts = np.diff(np.r_[starts, n])
    group = np.repeat(np.arange(len(starts)), counts)
    finite = np.isfinite(v)
    picks = [starts + counts - 1]  # the last point of each bucket
    for vv, reduce in ((np.where(finite, v, np.inf), np.minimum),
                       (np.where(finite, v, -np.inf), np.maximum)):  # fmt: skip
        ext = reduce.reduceat(vv, starts)
        hit = np.flatnonzero(vv == ext[group])
        g = group[hit]
        first = np.r_[True, g[1:] != g[:-1]]
        picks.append(hit[first])
    odd = np.flatnonzero(~finite)  # the first NaN/inf of each bucket is kept too
    if len(odd):
        g = group[odd]
        picks.append(odd[np.r_[True, g[1:] != g[:-1]]])
    return np.unique(np.concatenate(picks))


def bucket_width(first: int, last: int, max_buckets: int) -> int:
    """Smallest power-of-two bucket width that spans ``first..last`` in ``max_buckets``."""
    w = 1
    while last // w - first // w + 1 > max_buckets:
        w *= 2
    return w


def columns(points: list[Point], x_names: list[str]) -> dict[str, Any]:
    """Points as compact JSON columns: ``{"s": [...], "t": [...], "v": [...], "x": {...}}``."""
    out: dict[str, Any] = {
        "s": [p[0] for p in points],
        "t": [round(p[1], 3) for p in points],
        "v": [_compact(p[2]) for p in points],
    }
    if x_names:
        out["x"] = {
            name: [None if p[3] is None else _compact(p[3].get(name)) for p in points]
            for name in x_names
        }
    return out


def _compact(v: Any) -> Any:
    """JSON-safe value: NaN/inf -> None. Values stay exact (what was logged is drawn and
    read out; rounding would save ~40% of the bytes of a series, but change values)."""
    if v is None or isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if f != f or f in (math.inf, -math.inf):
        return None
    return f


STATIC_BUCKETS = 100  # per chart of the static snapshot (220 px wide): ~2 points per pixel


def small_columns(env: Envelope) -> dict[str, Any]:
    """A series re-bucketed to ``STATIC_BUCKETS`` for the static snapshot charts."""
    small = Envelope(STATIC_BUCKETS)
    for p in env.points():
        small.add(*p)
    return columns(small.points(), [])


def reduce_sql(
    source: str, where: str = "", *, whole: bool = False, ends: bool = False, by: str = ""
) -> str:
    """SQL of the same rule for DuckDB (parallel, one scan): the rows of ``source`` (columns
    ``key, step, ts, value, text``; ``where`` filters them) reduced per key and ``?``-step
    bucket to the minimum and maximum point over finite values and the first row whose
    value is not finite (NaN, inf, or a text row: NULL value), and the last row of each
    bucket (``ends``: instead, each key's first and last row: what the Api keeps).
    Parameters: those of ``source`` and ``where``, the bucket width, then (``whole``) a
    list of keys whose rows are all kept (x-axis step metrics).

    ``by`` names one more column of ``source`` that splits the rows (a file or run code,
    when many runs are read in one scan); it is returned first.

    Returns rows ``([by,] key, step, ts, value, text)`` (distinct; unordered)."""
    part = f"'{by}': {by}, " if by else ""
    row = "{" + part + "'key': key, 'step': step, 'ts': ts, 'value': value, 'text': text}"
    fin = "value IS NOT NULL AND isfinite(value)"
    last = "NULL" if ends else f"arg_max({row}, step)"
    grp = f"{by}, key" if by else "key"
    extra = (
        f"UNION ALL SELECT unnest([arg_min({row}, step), arg_max({row}, step)]) FROM h GROUP BY {grp}"
        if ends
        else ""
    )
    sel = f"p.{by} AS {by}, " if by else ""
    keep = "UNION ALL SELECT " + row + " FROM h WHERE list_contains(?, key)" if whole else ""
    return f"""
    WITH h AS (SELECT {grp}, step, ts, value, text FROM {source} {where}),
    g AS (
        SELECT arg_min({row}, value) FILTER (WHERE {fin}) AS lo,
               arg_max({row}, value) FILTER (WHERE {fin}) AS hi,
               {last} AS last,
               arg_min({row}, step) FILTER (WHERE NOT ({fin})) AS odd
        FROM h GROUP BY {grp}, step // ?
    ),
    p AS (SELECT unnest([lo, hi, last, odd]) AS p FROM g {extra} {keep})
    SELECT DISTINCT {sel}p.key AS key, p.step AS step, p.ts AS ts, p.value AS value,
           p.text AS text FROM p WHERE p IS NOT NULL
    """
