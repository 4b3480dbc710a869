"""Read layer for charts: down-sampled series of a live ``Run`` (``run.subscribe``) or a
run folder, for the run panel, ``charts``, and the runs workspace.

Both feed the same :class:`Feed`: one :class:`~nbtracker.sampling.Envelope` per numeric
metric plus the "x metric" values (``epoch``, define_metric step metrics) each point was
logged with. Every reduction follows the one rule of :mod:`nbtracker.sampling`. Files are
read through :func:`nbtracker._damage.readable` / :func:`~nbtracker._damage.blame`, so a torn or
damaged segment is skipped with one warning and the rest of the run reads on.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from .sampling import DEFAULT_BUCKETS, Envelope, bucket_width, columns, reduce_indices, reduce_sql

NUMERIC = ("float", "int", "bool")
X_NAMES = ("epoch", "global_step", "trainer/global_step")


def x_candidates(record: dict[str, Any], key_types: dict[str, str]) -> list[str]:
    """Metrics offered as x axes: define_metric step metrics, and ``epoch``-like keys."""
    names = []
    for m in record.get("metrics") or []:
        sm = m.get("step_metric")
        if sm and sm not in names and "*" not in sm:
            names.append(sm)
    for n in X_NAMES:
        if n in key_types and n not in names:
            names.append(n)
    return [n for n in names if key_types.get(n, "float") in NUMERIC]


def hidden_keys(record: dict[str, Any], keys: list[str]) -> set[str]:
    import fnmatch

    pats = [m["name"] for m in record.get("metrics") or [] if m.get("hidden")]
    return {k for k in keys if any(fnmatch.fnmatchcase(k, p) for p in pats)}


def x_defaults(record: dict[str, Any], keys: list[str], x_names: list[str]) -> dict[str, str]:
    """Each key's default x axis from ``define_metric(name, step_metric=...)`` (globs too,
    the latest matching rule wins, as W&B charts them); only step metrics that are logged
    as numbers (``x_names``) count."""
    import fnmatch

    rules = [
        (m["name"], m["step_metric"])
        for m in record.get("metrics") or []
        if m.get("step_metric") and m.get("name")
    ]
    out: dict[str, str] = {}
    if not rules:
        return out
    for k in keys:
        for name, sm in reversed(rules):
            glob = any(c in name for c in "*?[")
            if (fnmatch.fnmatchcase(k, name) if glob else k == name) and sm != k:
                if sm in x_names:
                    out[k] = sm
                break
    return out


class Feed:
    """Envelopes of every metric of one run, in first-seen key order."""

    def __init__(self, max_buckets: int = DEFAULT_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self.env: dict[str, Envelope] = {}
        self.x_names: list[str] = []
        self.xcur: dict[str, Any] | None = (
            None  # current x-metric values (shared, replaced on change)
        )
        self.last_step = -1
        self.rows = 0

    def envelope(self, key: str) -> Envelope:
        e = self.env.get(key)
        if e is None:
            e = self.env[key] = Envelope(self.max_buckets)
        return e

    def add_row(self, step: int, t: float, row: dict[str, Any], key_types: dict[str, str]) -> None:
        """Live path: one committed row (called from the panel's pump thread)."""
        self.rows += 1
        if step > self.last_step:
            self.last_step = step
        for n in X_NAMES:
            if n in row and n not in self.x_names:
                self.x_names = [*self.x_names, n]
        if self.x_names:
            changed = None
            for n in self.x_names:
                if n in row:
                    if changed is None:
                        changed = dict(self.xcur or {})
                    changed[n] = row[n]
            if changed is not None:
                self.xcur = changed
        xv = self.xcur
        for k, v in row.items():
            cls = v.__class__
            if cls is float or cls is int or cls is bool:
                self.envelope(k).add(step, t, float(v), xv)

    def add_rows(self, rows: list[tuple[int, float, dict[str, Any]]]) -> None:
        """Live path, many rows at once (a fast loop): transpose to numpy columns, keep
        each bucket's min/max/last with numpy, and only those reach the envelopes."""
        if len(rows) < 256:
            for step, t, row in rows:
                self.add_row(step, t, row, {})
            return
        import numpy as np

        dicts = [r[2] for r in rows]
        n = len(rows)
        steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        ts = np.fromiter((r[1] for r in rows), dtype=np.float64, count=n)
        nan = math.nan
        numeric = {}
        present: dict[str, Any] = {}
        union = set().union(*dicts)
        first = [k for k in dicts[0] if k in union]
        for name in first + sorted(union.difference(first)):
            sample = next(d[name] for d in dicts if name in d)
            if sample.__class__ not in (float, int, bool):  # strings, media: not charted
                continue
            col = [d.get(name, nan) for d in dicts]  # C-speed transpose, one key at a time
            try:
                arr = np.asarray(col, dtype=np.float64)
            except (TypeError, ValueError):  # strings, media: not charted
                continue
            numeric[name] = arr
            if np.isnan(arr).any():  # a logged NaN is a point; a key not logged is not
                present[name] = np.fromiter((name in d for d in dicts), bool, count=n)
        for name in X_NAMES:
            if name in numeric and name not in self.x_names:
                self.x_names = [*self.x_names, name]
        xcols: dict[str, Any] = {}
        carry = dict(self.xcur or {})
        for name in self.x_names:
            before = carry.get(name)
            fill = np.nan if before is None else float(before)
            arr = numeric.get(name)
            if arr is None:
                xcols[name] = np.full(n, fill)
                continue
            pos = np.where(~np.isnan(arr), np.arange(n), -1)
            np.maximum.accumulate(pos, out=pos)
            xcols[name] = np.where(pos >= 0, arr[np.clip(pos, 0, None)], fill)
            last = xcols[name][-1]
            if last == last:
                carry[name] = int(last) if float(last).is_integer() else float(last)
        if self.x_names:
            self.xcur = carry
        self.rows += n
        self.last_step = max(self.last_step, int(steps[-1]))
        names = list(xcols)
        for key, vals in numeric.items():
            mask = present[key] if key in present else ~np.isnan(vals)
            s, t, v = steps[mask], ts[mask], vals[mask]
            if not len(s):
                continue
            e = self.envelope(key)
            if len(s) > 64:
                w = max(e.w, bucket_width(int(s[0]), int(s[-1]), self.max_buckets))
                idx = reduce_indices(s, v, w)
            else:
                idx = np.arange(len(s))
            src = np.flatnonzero(mask)[idx]
            add = e.add
            for j, st, tt, vv in zip(src.tolist(), s[idx].tolist(), t[idx].tolist(),
                                     v[idx].tolist(), strict=True):  # fmt: skip
                xv = {nm: _py(xcols[nm][j]) for nm in names} if names else None
                add(st, tt, vv, xv)

    def add_columns(self, key: str, steps: Any, ts: Any, vals: Any, xcols: dict[str, Any]) -> None:
        """Bulk path (numpy arrays sorted by step): reduce, then add."""
        n = len(steps)
        if not n:
            return
        e = self.envelope(key)
        w = max(e.w, bucket_width(int(steps[0]), int(steps[-1]), self.max_buckets))
        idx = reduce_indices(steps, vals, w) if n > 4 * self.max_buckets else range(n)
        names = list(xcols)
        for i in idx:
            xv = {nm: _py(xcols[nm][i]) for nm in names} if names else None
            e.add(int(steps[i]), float(ts[i]), float(vals[i]), xv)
        self.last_step = max(self.last_step, int(steps[-1]))


def _py(v: Any) -> Any:
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class FolderReader:
    """Reads a run folder's history incrementally (new segment files only).

    The segment files are the truth: every numeric row of a file is read when the file
    is first seen, whether or not ``run.json`` (rewritten every few seconds, so behind
    the segments of a run being written) lists its key yet. ``history_keys`` in the
    record only orders the metrics and rules out keys it says hold text or media.
    ``keys`` limits the reader to those keys (one chart's series).
    """

    def __init__(
        self, rdir: Path, max_buckets: int = DEFAULT_BUCKETS, keys: list[str] | None = None
    ) -> None:
        self.rdir = Path(rdir)
        self.max_buckets = max_buckets
        self.keys = None if keys is None else list(keys)
        self.read_files: list[Path] = []
        self.feed = Feed(max_buckets)
        self.xlast: dict[str, tuple[int, float]] = {}
        self.t0 = 0.0

    def poll(self, record: dict[str, Any]) -> bool:
        """Read what is new; returns True when the feed was rebuilt from scratch (then
        ``feed`` is a new object). A read that fails (a file a compaction removed
        meanwhile: ``FileNotFoundError``) changes nothing; the next poll tries again."""
        self.t0 = float(record.get("created_at") or 0.0)
        key_types = record.get("history_keys") or {}
        x_names = x_candidates(record, key_types)
        files = _segments(self.rdir)
        if (
            x_names != self.feed.x_names
            or any(f not in files for f in self.read_files)
            or any(key_types.get(k, "float") not in NUMERIC for k in self.feed.env)
        ):
            # compaction/merge replaced files, a new x metric, or a charted key turned out
            # to hold text: start over, and switch only once everything was read
            fresh = FolderReader(self.rdir, self.max_buckets, self.keys)
            fresh.t0 = self.t0
            fresh.feed.x_names = x_names
            if files:
                fresh._read(files, key_types)
            self.feed, self.xlast, self.read_files = fresh.feed, fresh.xlast, list(files)
            return True
        new = [f for f in files if f not in self.read_files]
        if new:
            self._read(new, key_types)  # reads everything before changing anything
            self.read_files += new
        return False

    def _read(self, files: list[Path], key_types: dict[str, str]) -> None:
        import numpy as np

        known = [k for k, kind in key_types.items() if kind in NUMERIC]
        if self.keys is not None:
            known = [k for k in self.keys if key_types.get(k, "float") in NUMERIC]
            unlisted: list[str] | None = None
        else:
            unlisted = list(key_types)  # the rows of any other key are read too
        r, numeric = _query(files, known, unlisted, self.feed.x_names, self.max_buckets)
        codes, steps, vals = r["code"], r["step"], r["value"]
        ts = r["ts"] - self.t0
        if not len(codes):
            return
        dc, ds = np.diff(codes), np.diff(steps)
        if not np.all((dc > 0) | ((dc == 0) & (ds >= 0))):  # not grouped by key, step
            order = np.lexsort((steps, codes))
            codes, steps, ts, vals = codes[order], steps[order], ts[order], vals[order]
        bounds = np.r_[0, np.flatnonzero(np.diff(codes)) + 1, len(codes)]
        groups = {
            numeric[int(codes[a])]: (a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        }
        # x metric lookup: value in force at each step (carried over from earlier files)
        xs: dict[str, tuple[Any, Any]] = {}
        for nm in self.feed.x_names:
            a, b = groups.get(nm, (0, 0))
            s_m, v_m = steps[a:b], vals[a:b]
            if nm in self.xlast:
                ps, pv = self.xlast[nm]
                s_m, v_m = np.r_[ps, s_m], np.r_[pv, v_m]
            if len(s_m):
                self.xlast[nm] = (int(s_m[-1]), float(v_m[-1]))
            xs[nm] = (s_m, v_m)
        for key in numeric:  # the record's order, then keys it does not list yet
            if key not in groups:
                continue
            a, b = groups[key]
            s = steps[a:b]
            xcols = {}
            for nm, (s_m, v_m) in xs.items():
                pos = np.searchsorted(s_m, s, side="right") - 1
                col = np.where(pos >= 0, v_m[np.clip(pos, 0, None)] if len(v_m) else np.nan, np.nan)
                xcols[nm] = col
            self.feed.add_columns(key, s, ts[a:b], vals[a:b], xcols)


BULK_ROWS = 300_000  # above this, DuckDB pre-reduces the files (a finished 1M-step run)

# numbers only (a text row of a key that also holds numbers is not a point); a logged NaN is
_PLAIN_SQL = """
SELECT list_position(?, key) - 1 AS code, step, ts, value
FROM read_parquet(?) WHERE list_contains(?, key) AND value IS NOT NULL
"""
_REDUCE_SQL = (
    "SELECT list_position(?, key) - 1 AS code, step, ts, value FROM ("
    + reduce_sql("read_parquet(?)", "WHERE list_contains(?, key) AND value IS NOT NULL", whole=True)
    + ")"
)


# Numeric keys in the files that the record does not list (yet): in the order they were
# logged (first step, then place in the file: segments hold a step's keys in log order).
_UNLISTED_SQL = """
SELECT key FROM read_parquet(?, file_row_number = true)
WHERE value IS NOT NULL AND NOT list_contains(?, key)
GROUP BY key ORDER BY min(step), min(file_row_number), key
"""


def _segments(rdir: Path) -> list[Path]:
    """The run folder's history files that can be read (a torn or damaged one is left out
    with one warning naming it: the rest of the run reads on)."""
    from . import query
    from .store import history_segments

    return [Path(f) for f in query.readable(history_segments(rdir))]


def _read_files(files: list[Path], fn: Any) -> Any:
    """``fn(con, files)`` on a cursor of the shared DuckDB. A file that proves damaged in
    the read is skipped from then on (warned) and the read done again without it; a file
    a compaction removed meanwhile raises ``FileNotFoundError`` (the caller lists again)."""
    import duckdb

    from . import query

    fl = [str(f) for f in files]
    for attempt in range(8):
        con = query.duck()
        try:
            return fn(con, fl)
        except duckdb.Error as exc:
            if any(not Path(f).exists() for f in fl):
                raise FileNotFoundError(str(exc)) from None
            if attempt == 7 or not query.blame(fl, exc):
                if isinstance(exc, duckdb.IOException):
                    raise FileNotFoundError(str(exc)) from None
                raise
            fl = query.readable(fl)
        finally:
            con.close()
    raise AssertionError  # pragma: no cover


def _query(
    files: list[Path],
    numeric: list[str],
    unlisted: list[str] | None,
    x_names: list[str],
    max_buckets: int,
) -> tuple[Any, list[str]]:
    """``({code, step, ts, value}, keys)``: numpy columns of the numeric keys in
    ``files`` (``code`` indexes ``keys``). ``keys`` is ``numeric``, then, unless
    ``unlisted`` is None, every other key with numbers in the files that is not in
    ``unlisted`` (keys the record does not list yet). Big histories (a finished 1M-step
    run) are reduced by DuckDB (:func:`nbtracker.sampling.reduce_sql`: parallel, and the
    same points as the numpy path); step metrics (x axes) are read whole, since their
    value at any step is needed. DuckDB's ``fetchnumpy`` also keeps pandas (1-2 s to
    import) out of the way. ``FileNotFoundError`` when a compaction removed a file.
    """

    def read(con: Any, fl: list[str]) -> tuple[Any, list[str]]:
        keys = list(numeric)
        if not fl:
            return con.execute(_PLAIN_SQL, [keys, [], keys]).fetchnumpy(), keys
        if unlisted is not None:
            extra = con.execute(_UNLISTED_SQL, [fl, list(unlisted)]).fetchall()
            keys += [k for (k,) in extra]
        rows = con.execute(
            "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [fl]
        ).fetchall()[0][0]
        if rows <= BULK_ROWS:
            return con.execute(_PLAIN_SQL, [keys, fl, keys]).fetchnumpy(), keys
        span = con.execute("SELECT min(step), max(step) FROM read_parquet(?)", [fl]).fetchall()[0]
        w = bucket_width(int(span[0] or 0), int(span[1] or 0), max_buckets)
        xn = [n for n in x_names if n in keys]
        return con.execute(_REDUCE_SQL, [keys, fl, keys, w, xn]).fetchnumpy(), keys

    return _read_files(files, read)  # type: ignore[no-any-return]


def _record(rdir: Path) -> dict[str, Any]:
    from ._util import read_json
    from .store import record_file

    return read_json(record_file(rdir))  # type: ignore[no-any-return]


def read_series(
    run: Any, key: str, *, max_points: int = 2000, x_metrics: list[str] | None = None
) -> dict[str, Any]:
    """Down-sampled points of one metric of a run (``Run`` or run folder) as columns
    (``{"s", "t", "v", "x"}``, see :func:`nbtracker.sampling.columns`)."""
    rdir = Path(getattr(run, "dir", run))
    if hasattr(run, "flush") and getattr(run, "state", None) == "running":
        run.flush()
    record = _record(rdir)
    wanted = [key, *[n for n in x_metrics or [] if n != key]]
    reader = FolderReader(rdir, max_buckets=max(2, max_points // 2), keys=wanted)
    kt = record.get("history_keys") or {}
    record = dict(record)
    record["history_keys"] = {k: v for k, v in kt.items() if k in wanted}
    for _ in range(8):  # a compaction may replace files while they are read
        try:
            reader.poll(record)
            break
        except FileNotFoundError:
            time.sleep(0.01)
    env = reader.feed.env.get(key)
    names = [n for n in (x_metrics or []) if n in reader.feed.x_names]
    return columns(env.points() if env else [], names)


def read_range(
    rdir: Path, key: str, s0: int, s1: int, x_names: list[str], max_buckets: int = DEFAULT_BUCKETS
) -> dict[str, Any]:
    """Points of ``key`` with ``s0 <= step <= s1`` at full resolution (down-sampled only
    past ``2 * max_buckets`` points), with the step metrics in force at each point."""
    import numpy as np

    record = _record(Path(rdir))
    t0 = float(record.get("created_at") or 0.0)
    files = _segments(Path(rdir))
    env = Envelope(max_buckets)
    if not files:
        return columns([], x_names)
    wanted = [key, *[n for n in x_names if n != key]]
    r = _read_files(
        files,
        lambda con, fl: con.execute(
            "SELECT list_position(?, key) - 1 AS code, step, ts, value FROM read_parquet(?) "
            "WHERE list_contains(?, key) AND value IS NOT NULL AND step <= ?",
            [wanted, fl, wanted, int(s1)],
        ).fetchnumpy(),
    )
    order = np.lexsort((r["code"] == 0, r["step"]))  # by step; step metrics before the key
    codes = r["code"][order].tolist()
    steps = r["step"][order].tolist()
    ts = (r["ts"][order] - t0).tolist()
    vals = r["value"][order].tolist()
    xcur: dict[str, Any] | None = None
    for c, s, t, v in zip(codes, steps, ts, vals, strict=True):
        name = wanted[c]
        if name in x_names:
            xcur = {**(xcur or {}), name: None if v != v else v}
        if c == 0 and s >= s0:
            env.add(s, t, v, xcur)
    return columns(env.points(), x_names)
