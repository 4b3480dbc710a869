"""Read layer: run records kept fresh, history (long/wide), min/max down-sampling, SQL views.

Readers never take a write lock: they copy the catalog into an in-memory DuckDB, then
bring any run whose ``run.json`` is newer than its catalog row (or missing from it) up to
date from the run folder, and mark runs whose process died as ``crashed``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import segments
from ._damage import blame, readable
from ._util import flatten, sql_literal
from .catalog import DUCKDB_CONFIG, upsert_records
from .errors import NbtrackerWarning
from .store import Store, record_file

_shared: Any = None


def duck() -> Any:
    """A cursor on this process's in-memory DuckDB (opening a database costs 10-30 ms; a
    cursor is free). Cursors keep their registrations and temp tables to themselves."""
    global _shared
    if _shared is None:
        import atexit

        import duckdb

        _shared = duckdb.connect(":memory:", config=dict(DUCKDB_CONFIG))
        atexit.register(_close_shared)
    return _shared.cursor()


def _close_shared() -> None:
    """Close the shared database before interpreter teardown (else nanobind reports leaks)."""
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None


def fresh_duck() -> Any:
    """A database of its own (for user SQL, which creates tables and views)."""
    import duckdb

    return duckdb.connect(":memory:", config=dict(DUCKDB_CONFIG))


def arrow(con: Any, statement: str, params: list[Any]) -> Any:
    """Run a query and return a pyarrow Table (one copy; works on duckdb 1.x and 2.x)."""
    rel = con.sql(statement, params=params)
    fn = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fn()


# -- run records ---------------------------------------------------------------------------
_RECORD_COLS = (
    "project", "run_id", "entity", "name", "state", "notes", "group", "job_type", "tags",
    "created_at", "updated_at", "heartbeat_at", "finished_at", "last_step", "exit_code",
    "host", "pid", "dir", "config", "summary", "json_mtime", "error", "metadata", "sweep_id",
)  # fmt: skip


def load_runs(
    store: Store, project: str | None = None, *, catch_up: bool = True
) -> list[dict[str, Any]]:
    """Every run record (of one project), fresh: catalog first, run folders for the rest."""
    cached: dict[str, dict[str, Any]] = {}
    con = duck()
    try:
        cols = ", ".join(f'"{c}"' for c in _RECORD_COLS)
        where, params = ("WHERE project = ?", [project]) if project is not None else ("", [])
        rows = store.catalog.select(con, f"SELECT {cols} FROM {{cat}}.runs {where}", params)
        if rows is None and store.catalog.path.is_file():
            # a catalog from an older version (fewer columns): its rows as JSON
            found = store.catalog.select(
                con,
                f"SELECT CAST(to_json(r) AS VARCHAR) FROM {{cat}}.runs r {where}",
                params,
                retries=2,  # a held catalog was already waited for
            )
            rows = [tuple(json.loads(j).get(c) for c in _RECORD_COLS) for (j,) in found or ()]
    finally:
        con.close()
    for row in rows or ():
        rec = dict(zip(_RECORD_COLS, row, strict=True))
        rec["id"] = rec.pop("run_id")
        cached[rec["dir"]] = rec
    out: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    now = time.time()
    root = store.root
    for rel, mtime in store.scan_runs(project):
        rec = cached.get(rel)
        if rec is not None and rec.get("json_mtime") == mtime and rec.get("state") != "running":
            rec["config"] = _json(rec["config"])
            rec["summary"] = _json(rec["summary"])
            rec["metadata"] = _json(rec.get("metadata"))
            rec["tags"] = list(rec.get("tags") or [])
            out.append(rec)
            continue
        rdir = root / rel
        fresh = store.read_record(rdir)
        if fresh is None:
            if rec is not None:  # run.json unreadable (warned): the catalog's row stands in
                out.append(_from_catalog(rec, now))
            continue
        fresh = store.check_alive(rdir, fresh, now=now)
        if project is not None and fresh.get("project") != project:
            continue
        try:
            fresh["json_mtime"] = record_file(rdir).stat().st_mtime
        except OSError:
            fresh["json_mtime"] = mtime
        out.append(fresh)
        # a live run indexes itself (periodically and at finish): catch up ended runs only
        if fresh.get("state") != "running" and (
            rec is None or rec.get("json_mtime") != fresh["json_mtime"]
        ):
            stale.append(fresh)
    gone = [d for d in cached if not (root / d).exists()] if len(cached) > len(out) else []
    if catch_up and (stale or gone):
        _catch_up(store, stale, drop=gone)
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _from_catalog(rec: dict[str, Any], now: float) -> dict[str, Any]:
    """A catalog row as a run record (for a run whose run.json cannot be read)."""
    from .store import process_gone

    rec = dict(rec)
    rec["config"] = _json(rec.get("config")) or {}
    rec["summary"] = _json(rec.get("summary")) or {}
    rec["metadata"] = _json(rec.get("metadata")) or {}
    rec["tags"] = list(rec.get("tags") or [])
    if rec.get("state") == "running" and process_gone(rec, now):
        rec["state"] = "crashed"
    return rec


def catalog_record(store: Store, rdir: Path) -> dict[str, Any] | None:
    """The catalog's row for one run folder as a record, or None (read as JSON, so a
    catalog from an older version, with fewer columns, serves too)."""
    con = duck()
    try:
        rel = str(rdir.relative_to(store.root))
        rows = store.catalog.select(
            con, "SELECT CAST(to_json(r) AS VARCHAR) FROM {cat}.runs r WHERE dir = ?", [rel]
        )
    finally:
        con.close()
    if not rows:
        return None
    rec = json.loads(rows[0][0])
    rec["id"] = rec.pop("run_id", None)
    return _from_catalog(rec, time.time())


def _catch_up(store: Store, stale: list[dict[str, Any]], drop: list[str]) -> None:
    """Bring the catalog up to date, without waiting: skipped if another process writes."""
    from .catalog import CatalogBusy

    def fn(con: Any) -> None:
        upsert_records(con, stale)
        for d in drop:
            con.execute("DELETE FROM runs WHERE dir = ?", [d])

    try:
        store.catalog.write(fn, timeout=0.05)
    except CatalogBusy:
        pass
    except Exception:  # noqa: BLE001 - reading must never fail because the index is stale
        pass


def history_files(store: Store, rdir: Path, stream: str = "default") -> list[str]:
    """The run's readable history files (damaged ones are skipped with a warning)."""
    return readable(store.history_files(rdir, stream))


def read_history(
    store: Store, rdir: Path, fn: Callable[[list[str]], Any], stream: str = "default"
) -> Any:
    """``fn(files)`` over the run's readable history files, tried again when a file changes
    under it: a compaction removed one (listed again), or one proves damaged (skipped)."""
    import duckdb

    for attempt in range(8):
        files = history_files(store, rdir, stream)
        try:
            return fn(files)
        except (OSError, duckdb.Error) as exc:
            if attempt == 7 or not blame(files, exc):
                raise
            time.sleep(0.005 * attempt)
    raise AssertionError  # pragma: no cover


def history_long(
    store: Store,
    rdir: Path,
    keys: Sequence[str] | None = None,
    since_step: int | None = None,
    until_step: int | None = None,
) -> Any:
    """A run's history in long form as a pyarrow Table ``(step, ts, key, value, text)``."""

    def read(files: list[str]) -> Any:
        if not files:
            return segments._schema().empty_table()
        con = duck()
        try:
            where, params = _filters(keys, since_step, until_step)
            return arrow(
                con,
                f"SELECT step, ts, key, value, text FROM read_parquet(?) {where} ORDER BY step, key",
                [files, *params],
            )
        finally:
            con.close()

    return read_history(store, rdir, read)


def _filters(keys: Sequence[str] | None, lo: int | None, hi: int | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if keys is not None:
        clauses.append("list_contains(?, key)")
        params.append(list(keys))
    if lo is not None:
        clauses.append("step >= ?")
        params.append(int(lo))
    if hi is not None:
        clauses.append("step <= ?")
        params.append(int(hi))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def downsample(
    con: Any, files: list[str], keys: Sequence[str] | None, samples: int,
    lo: int | None = None, hi: int | None = None, span: tuple[int, int] | None = None,
) -> Any:  # fmt: skip
    """Long Arrow table of the points that keep each key's shape, by the one rule of
    :mod:`nbtracker.sampling` (per bucket of steps the finite minimum and maximum and the
    first NaN/inf/text row, so no spike and no NaN is dropped), plus each key's first and
    last row. One scan. About ``samples`` rows per key at most."""
    from .sampling import bucket_width, reduce_sql

    where, params = _filters(keys, lo, hi)
    if span is None:
        span = con.execute(
            f"SELECT min(step), max(step) FROM read_parquet(?) {where}", [files, *params]
        ).fetchall()[0]
    lo_, hi_ = span
    if lo_ is None:
        return segments._schema().empty_table()
    width = bucket_width(int(lo_), int(hi_), max(1, samples // 3))
    sql = reduce_sql("read_parquet(?)", where, ends=True)
    return arrow(
        con,
        f"SELECT step, ts, key, value, text FROM ({sql}) ORDER BY step",
        [files, *params, width],
    )


# -- long -> wide ----------------------------------------------------------------------------
# The wide form is built in numpy, key by key, from the long rows: no PIVOT (whose column
# names mangle keys such as "" or "a\x00b"), no string column of every row in memory, and a
# key's numbers and text both kept (a key logged as 1, "text", 2.5 reads back all three).
BATCH_ROWS = 1_000_000  # long rows per query when several keys are read together
SCAN_ROWS = 250_000  # long rows per page of scan_history (its memory bound)
SYSTEM_COLUMNS = ("_step", "_timestamp", "_runtime")


class Wide:
    """A history in wide form: sorted ``steps``, each step's ``ts`` (the latest of its
    rows) and per key ``(kind, values, present)``: numbers in a float array (text keys: an
    object array) and a mask of the steps where the key was logged."""

    __slots__ = ("cols", "steps", "ts")

    def __init__(self, steps: Any, ts: Any, cols: dict[str, tuple[str, Any, Any]]) -> None:
        self.steps, self.ts, self.cols = steps, ts, cols


def _stats(
    con: Any,
    source: str,
    sparams: list[Any],
    keys: Sequence[str] | None,
    lo: int | None,
    hi: int | None,
) -> list[tuple[Any, ...]]:
    """``(key, rows, text rows, first step, last step)`` per key."""
    where, params = _filters(keys, lo, hi)
    return con.execute(  # type: ignore[no-any-return]
        f"SELECT key, count(*), count(text), min(step), max(step) FROM {source} {where} GROUP BY key",
        [*sparams, *params],
    ).fetchall()


def gather(
    con: Any, source: str, sparams: list[Any], key_types: dict[str, str],
    lo: int | None = None, hi: int | None = None, stats: list[tuple[Any, ...]] | None = None,
    keys: Sequence[str] | None = None,
) -> Wide:  # fmt: skip
    """Read the rows of ``source`` (``read_parquet(?)`` with ``sparams`` = [files], or a
    registered table) between steps ``lo`` and ``hi`` into a :class:`Wide`.

    One query per key (per batch of small keys), each placed into the step grid at once,
    so memory holds the result and one key's rows, never every row as Python objects.
    """
    import numpy as np

    if stats is None:
        stats = _stats(con, source, sparams, keys, lo, hi)
    if not stats:
        return Wide(np.empty(0, np.int64), np.empty(0, np.float64), {})
    first = min(s[3] for s in stats)
    last = max(s[4] for s in stats)
    textual = {s[0] for s in stats if s[2] or _textual(key_types.get(s[0], "float"))}
    # a key logged at every step of the range gives the grid without a DISTINCT query
    dense = [s for s in stats if s[3] == first and s[4] == last and s[1] == last - first + 1]
    lead = dense[0][0] if dense else None
    ordered = sorted(stats, key=lambda s: (s[0] != lead, s[0] in textual, s[0]))
    batches: list[list[str]] = []
    rows = BATCH_ROWS
    for key, n, *_ in ordered:
        if (
            batches
            and rows + n <= BATCH_ROWS
            and (key in textual) == (batches[-1][0] in textual)
            and batches[-1][0] != lead
        ):
            batches[-1].append(key)
            rows += n
        else:
            batches.append([key])
            rows = n
    range_sql, range_params = "", []
    if lo is not None:
        range_sql += " AND step >= ?"
        range_params.append(int(lo))
    if hi is not None:
        range_sql += " AND step <= ?"
        range_params.append(int(hi))
    steps = None
    grid_is_range = False
    ts = None
    cols: dict[str, tuple[str, Any, Any]] = {}
    for batch in batches:
        text = batch[0] in textual
        want = "step, ts, value" + (", text" if text else "")
        if len(batch) == 1:
            got = con.execute(
                f"SELECT {want} FROM {source} WHERE key = ?{range_sql}",
                [*sparams, batch[0], *range_params],
            ).fetchnumpy()
            parts = {batch[0]: got}
        else:
            got = con.execute(
                f"SELECT list_position(?, key)::INTEGER AS code, {want} FROM {source} "
                f"WHERE list_contains(?, key){range_sql}",
                [batch, *sparams, batch, *range_params],
            ).fetchnumpy()
            parts = _split_by_code(got, batch)
        if steps is None:
            if lead is not None and _covers(np.ma.getdata(parts[lead]["step"]), first, last):
                steps = np.arange(first, last + 1, dtype=np.int64)
                grid_is_range = True
            else:
                where, params = _filters(keys, lo, hi)
                steps = np.ma.getdata(
                    con.execute(
                        f"SELECT DISTINCT step FROM {source} {where} ORDER BY step",
                        [*sparams, *params],
                    ).fetchnumpy()["step"]
                ).astype(np.int64, copy=False)
            ts = np.full(len(steps), np.nan)
        for key, got in parts.items():
            cols[key] = _place(
                got, steps, first if grid_is_range else None, ts, key_types.get(key), text
            )
            del got
    return Wide(steps, ts, cols)


def _place(
    got: dict[str, Any], steps: Any, first: int | None, ts: Any, kind: str | None, text: bool
) -> tuple[str, Any, Any]:
    """One key's fetched rows placed on the step grid ``steps`` (``first``: the grid is
    ``first, first + 1, ...``): ``(kind, values, present)``; ``ts`` takes each step's latest
    time."""
    import numpy as np

    s = np.ma.getdata(got["step"]).astype(np.int64, copy=False)
    idx = s - first if first is not None else np.searchsorted(steps, s)
    t = np.ma.getdata(got["ts"]).astype(np.float64, copy=False)
    cur = ts[idx]
    np.fmax(cur, t, out=cur)
    ts[idx] = cur
    v, v_ok = _data_and_valid(got["value"])
    present = np.zeros(len(steps), bool)
    if text:
        x, x_ok = _data_and_valid(got["text"])
        values = np.full(len(steps), None, dtype=object)
        values[idx[v_ok]] = v[v_ok]
        kind = kind if kind is not None and _textual(kind) else "str"
        if kind == "json":  # a logged list, stored as JSON text: a list again
            for i, item in zip(idx[x_ok].tolist(), x[x_ok].tolist(), strict=True):
                values[i] = _json_or_text(item)
        else:
            values[idx[x_ok]] = x[x_ok]
        present[idx[v_ok | x_ok]] = True
        return kind, values, present
    values = np.full(len(steps), np.nan)
    values[idx[v_ok]] = v[v_ok]
    present[idx[v_ok]] = True
    return kind or "float", values, present


def window(
    con: Any, files: list[str], names: list[str], textual: set[str], key_types: dict[str, str],
    lo: int, hi: int, cap: int | None,
) -> Wide | None:  # fmt: skip
    """The rows of keys ``names`` with steps ``lo``..``hi`` as a :class:`Wide`, in one
    query; None when there are more than ``cap`` rows (a narrower window is needed)."""
    import numpy as np

    want = "step, ts, value" + (", text" if textual else "")
    limit = f" LIMIT {int(cap) + 1}" if cap is not None else ""
    got = con.execute(
        f"SELECT list_position(?, key)::INTEGER AS code, {want} FROM read_parquet(?) "
        f"WHERE list_contains(?, key) AND step >= ? AND step <= ?{limit}",
        [names, files, names, int(lo), int(hi)],
    ).fetchnumpy()
    n = len(got["step"])
    if cap is not None and n > cap:
        return None
    if n == 0:
        return Wide(np.empty(0, np.int64), np.empty(0, np.float64), {})
    s = np.ma.getdata(got["step"]).astype(np.int64, copy=False)
    first = int(s.min())
    span = int(s.max()) - first + 1
    if span <= 4 * n:  # the steps present, without a sort
        seen = np.zeros(span, bool)
        seen[s - first] = True
        steps = first + np.flatnonzero(seen)
        dense = len(steps) == span
    else:
        steps, dense = np.unique(s), False
    ts = np.full(len(steps), np.nan)
    cols = {}
    for key, part in _split_by_code(got, names).items():
        cols[key] = _place(
            part, steps, first if dense else None, ts, key_types.get(key), key in textual
        )
    return Wide(steps, ts, cols)


def _covers(s: Any, first: int, last: int) -> bool:
    """True when the steps ``s`` hold every step from ``first`` to ``last``."""
    import numpy as np

    if len(s) != last - first + 1:
        return False
    seen = np.zeros(len(s), bool)
    seen[s - first] = True
    return bool(seen.all())


def _data_and_valid(a: Any) -> tuple[Any, Any]:
    import numpy as np

    return np.ma.getdata(a), ~np.ma.getmaskarray(a)


def _split_by_code(got: dict[str, Any], batch: list[str]) -> dict[str, dict[str, Any]]:
    """One fetched batch of several keys -> each key's columns."""
    import numpy as np

    code = np.ma.getdata(got.pop("code"))
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(1, len(batch) + 2))
    out = {}
    for i, key in enumerate(batch):
        sel = order[bounds[i] : bounds[i + 1]]
        if len(sel):
            out[key] = {c: a[sel] for c, a in got.items()}
    return out


def _textual(kind: str) -> bool:
    return kind in ("str", "json") or kind.startswith("media:")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def labels(names: Sequence[str]) -> dict[str, str]:
    """Column name per key: the key itself, but a logged ``_step``, ``_timestamp`` or
    ``_runtime`` (reserved for the system columns) becomes ``"_step (logged)"``, one
    warning."""
    out = {}
    taken = set(names) | set(SYSTEM_COLUMNS)
    for name in names:
        if name in SYSTEM_COLUMNS:
            label = f"{name} (logged)"
            while label in taken:
                label += "'"
            taken.add(label)
            warnings.warn(
                f"history key {name!r} clashes with the system column of that name; its "
                f"logged values read back as {label!r}.",
                NbtrackerWarning,
                stacklevel=4,
            )
            out[name] = label
        else:
            out[name] = name
    return out


def _column(kind: str, values: Any, present: Any) -> Any:
    """A key's values as a pandas-ready column of its logged type: int64 (Int64 with gaps),
    boolean, float64, or objects for text and media (numbers kept as numbers)."""
    import numpy as np

    if values.dtype == object:
        return values
    if kind in ("int", "bool"):
        got = values[present]
        whole = got.size == 0 or (
            np.isfinite(got).all() and np.abs(got).max() < 2.0**63 and (got == np.round(got)).all()
        )
        if whole and kind == "int":
            ints = np.where(present, values, 0).astype(np.int64)
            if present.all():
                return ints
            import pandas as pd

            return pd.arrays.IntegerArray(ints, ~present)
        if whole and kind == "bool" and np.isin(got, (0.0, 1.0)).all():
            import pandas as pd

            return pd.arrays.BooleanArray(values == 1.0, ~present)
    return values  # float64, NaN where the key was not logged; beyond int64: floats


def _python_values(kind: str, values: Any, present: Any) -> list[Any]:
    """A key's values as Python objects (the row dicts of scan_history)."""
    import numpy as np

    col = _column(kind, values, present)
    if isinstance(col, np.ndarray):
        if col.dtype == np.float64 and kind in ("int", "bool"):
            return col.tolist()  # beyond int64, or not whole: floats
        return col.tolist()
    # a pandas masked array: its data as Python values (gaps are removed by the caller)
    data = col._data  # noqa: SLF001 - the values beneath the mask
    return data.tolist()


def frame(w: Wide, names: Sequence[str], t0: float) -> Any:
    """A :class:`Wide` as the DataFrame of ``history()``: ``_step``, ``_timestamp``,
    ``_runtime`` and one column per name (a name never logged: a column of None)."""
    import numpy as np
    import pandas as pd

    n = len(w.steps)
    data: dict[str, Any] = {"_step": w.steps, "_timestamp": w.ts, "_runtime": w.ts - t0}
    for name, label in labels(names).items():
        col = w.cols.get(name)
        data[label] = np.full(n, None, dtype=object) if col is None else _column(*col)
    return pd.DataFrame(data, copy=False)


def rows(
    w: Wide, names: Sequence[str], t0: float, *, fill: bool, chunk: int = 4096
) -> Iterator[dict[str, Any]]:
    """A :class:`Wide` as row dicts (``scan_history``): ``_step``, ``_runtime``,
    ``_timestamp`` and the keys logged at that step (``fill``: every name, None where
    not logged). A NaN that was logged stays NaN. Dicts are made ``chunk`` rows at a time."""
    import numpy as np

    n = len(w.steps)
    heads = ["_step", "_runtime", "_timestamp"]
    lists = [w.steps.tolist(), (w.ts - t0).tolist(), w.ts.tolist()]
    gaps: list[tuple[str, Any]] = []
    for name, label in labels(names).items():
        col = w.cols.get(name)
        if col is None:
            if fill:
                heads.append(label)
                lists.append([None] * n)
            continue
        kind, values, present = col
        heads.append(label)
        lists.append(_python_values(kind, values, present))
        missing = np.flatnonzero(~present)
        if len(missing):
            gaps.append((label, missing))
    make = _row_maker(tuple(heads))
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        out = make([c[a:b] for c in lists])
        for label, missing in gaps:
            lo, hi = np.searchsorted(missing, (a, b))
            for i in (missing[lo:hi] - a).tolist():
                if fill:
                    out[i][label] = None
                else:
                    del out[i][label]
        yield from out


_makers: dict[tuple[str, ...], Callable[[list[list[Any]]], list[dict[str, Any]]]] = {}


def _row_maker(heads: tuple[str, ...]) -> Callable[[list[list[Any]]], list[dict[str, Any]]]:
    """A function that turns columns (lists) into row dicts with keys ``heads``.

    For up to 256 columns it is compiled with a dict display (``{'_step': v0, ...}``), 3-5x
    faster per row than ``dict(zip(heads, row))``; the keys are ``repr()`` literals, which
    is exact for any string."""
    fn = _makers.get(heads)
    if fn is not None:
        return fn
    if len(heads) > 256:

        def fn(cols: list[list[Any]]) -> list[dict[str, Any]]:
            return [dict(zip(heads, r, strict=True)) for r in zip(*cols, strict=True)]

    else:
        names = [f"v{i}" for i in range(len(heads))]
        display = ", ".join(f"{h!r}: {v}" for h, v in zip(heads, names, strict=True))
        src = f"def make(cols):\n    return [{{{display}}} for {', '.join(names)}, in zip(*cols)]\n"
        scope: dict[str, Any] = {}
        exec(compile(src, "<nbtracker rows>", "exec"), scope)  # noqa: S102 - see docstring
        fn = scope["make"]
    if len(_makers) > 1000:
        _makers.clear()
    _makers[heads] = fn
    return fn


def history_frame(
    store: Store,
    rdir: Path,
    record: dict[str, Any],
    keys: Sequence[str] | None = None,
    samples: int | None = None,
    min_step: int | None = None,
    max_step: int | None = None,
    stream: str = "default",
) -> Any:
    """A run's history as a wide pandas DataFrame (``_step``, ``_timestamp``, ``_runtime``,
    one column per key), optionally down-sampled to about ``samples`` rows per key.
    ``stream="system"``: the system metrics (``system/cpu``, ...; ``_step`` counts samples)."""
    import pandas as pd

    key_types: dict[str, str] = record.get("history_keys") or {} if stream == "default" else {}

    def read(files: list[str]) -> Wide | None:
        if not files:
            return None
        con = duck()
        try:
            src = "read_parquet(?)"
            stats = _stats(con, src, [files], keys, min_step, max_step)
            total = sum(s[1] for s in stats)
            if samples and stats and total > samples * max(1, len(stats)):
                span = (min(s[3] for s in stats), max(s[4] for s in stats))
                long = downsample(con, files, keys, samples, min_step, max_step, span)
                con.register("nbt_long", long)
                try:
                    return gather(con, "nbt_long", [], key_types)
                finally:
                    con.unregister("nbt_long")
            return gather(con, src, [files], key_types, min_step, max_step, stats, keys)
        finally:
            con.close()

    w = read_history(store, rdir, read, stream)
    if w is None:
        return pd.DataFrame(columns=[*SYSTEM_COLUMNS, *(keys or [])])
    names = list(keys) if keys is not None else sorted(w.cols)
    return frame(w, names, float(record.get("created_at") or 0.0))


def scan_history(
    store: Store,
    rdir: Path,
    record: dict[str, Any],
    keys: Sequence[str] | None = None,
    min_step: int | None = None,
    max_step: int | None = None,
    page_size: int = 1000,
    stream: str = "default",
) -> Iterator[dict[str, Any]]:
    """Every row of a run's history as dicts, read a window of steps at a time (about
    ``SCAN_ROWS`` logged values per window, at least ``page_size`` steps), so memory stays
    bounded however long the run is. Rows hold the keys logged at their step; with
    ``keys``, every key asked for (None where it was not logged)."""
    key_types: dict[str, str] = record.get("history_keys") or {} if stream == "default" else {}
    t0 = float(record.get("created_at") or 0.0)

    def overview(files: list[str]) -> list[tuple[Any, ...]]:
        if not files:
            return []
        con = duck()
        try:
            return _stats(con, "read_parquet(?)", [files], keys, min_step, max_step)
        finally:
            con.close()

    stats = read_history(store, rdir, overview, stream)
    if not stats:
        return
    names = sorted(s[0] for s in stats)
    textual = {s[0] for s in stats if s[2] or _textual(key_types.get(s[0], "float"))}
    first, last = min(s[3] for s in stats), max(s[4] for s in stats)
    total = sum(s[1] for s in stats)
    shown = list(keys) if keys is not None else names
    page_size = max(1, int(page_size or 1))
    width = max(page_size, int(SCAN_ROWS * (last - first + 1) / max(1, total)))
    pos = first
    while pos <= last:
        end = min(last, pos + width - 1)

        def read(files: list[str], lo: int = pos, hi: int = end) -> Wide | None:
            con = duck()
            try:
                cap = 2 * SCAN_ROWS if hi > lo else None  # one step cannot be split
                return window(con, files, names, textual, key_types, lo, hi, cap)
            finally:
                con.close()

        w = read_history(store, rdir, read, stream)
        if w is None:  # denser than the window guessed: a narrower one
            width = max(1, (end - pos + 1) // 2)
            continue
        yield from rows(w, shown, t0, fill=keys is not None)
        pos = end + 1
        if sum(int(c[2].sum()) for c in w.cols.values()) < SCAN_ROWS // 4:
            width *= 2  # sparse steps (or a gap): wider windows


def count_steps(
    store: Store, rdir: Path, keys: Sequence[str] | None, lo: int | None, hi: int | None
) -> int:
    """How many steps have a row (of ``keys``) between ``lo`` and ``hi``."""

    def count(files: list[str]) -> int:
        if not files:
            return 0
        con = duck()
        try:
            where, params = _filters(keys, lo, hi)
            return int(
                con.execute(
                    f"SELECT count(DISTINCT step) FROM read_parquet(?) {where}", [files, *params]
                ).fetchall()[0][0]
            )
        finally:
            con.close()

    return read_history(store, rdir, count)  # type: ignore[no-any-return]


def history_facts(store: Store, rdir: Path) -> dict[str, Any]:
    """What a run's history tells about the run, to rebuild a lost run.json: each key's type
    (``int``/``float``/``str``/``media:<kind>``; a bool key reads as ``int``), the last step,
    the first and last row times, and a summary of last values."""

    def read(files: list[str]) -> list[tuple[Any, ...]]:
        if not files:
            return []
        con = duck()
        try:
            return con.execute(  # type: ignore[no-any-return]
                "SELECT key, count(text), max(step), min(ts), max(ts), "
                "bool_and(value IS NULL OR (isfinite(value) AND value = round(value) "
                "AND abs(value) < 9.2e18)), "
                "arg_max(struct_pack(v := value, x := text), step), any_value(text) "
                "FROM read_parquet(?) GROUP BY key ORDER BY key",
                [files],
            ).fetchall()
        finally:
            con.close()

    key_types: dict[str, str] = {}
    summary: dict[str, Any] = {}
    last_step, first_ts, last_ts = -1, None, None
    for key, texts, step, ts0, ts1, whole, last, sample in read_history(store, rdir, read):
        kind = "int" if whole else "float"
        if texts:
            kind = "str"
            try:
                ref = json.loads(sample)
                if isinstance(ref, dict) and isinstance(ref.get("_type"), str):
                    kind = "media:" + ref["_type"].removesuffix("-file")
            except ValueError:
                pass
        key_types[key] = kind
        value, text = last["v"], last["x"]
        if text is not None:
            summary[key] = json.loads(text) if kind.startswith("media:") else text
        elif value is not None:
            summary[key] = int(value) if kind == "int" else value
        last_step = max(last_step, step)
        first_ts = ts0 if first_ts is None else min(first_ts, ts0)
        last_ts = ts1 if last_ts is None else max(last_ts, ts1)
    if key_types:
        summary["_step"] = last_step
        summary["_runtime"] = (last_ts or 0.0) - (first_ts or 0.0)
    return {"key_types": key_types, "summary": summary, "last_step": last_step,
            "first_ts": first_ts, "last_ts": last_ts}  # fmt: skip


# -- SQL -----------------------------------------------------------------------------------
def sql_connection(store: Store, project: str | None = None) -> Any:
    """In-memory DuckDB with views ``runs``, ``config``, ``summary``, ``tags``, ``history``,
    ``metadata`` (the environment: ``git.commit``, ``python``, ...) and ``system`` (system
    metrics, laid out as ``history``)."""
    import pyarrow as pa

    records = load_runs(store, project)
    con = fresh_duck()
    runs = pa.Table.from_pylist([
        {
            "project": r["project"], "run_id": r["id"], "name": r.get("name"),
            "entity": r.get("entity"), "state": r.get("state"), "notes": r.get("notes"),
            "group": r.get("group"), "job_type": r.get("job_type"),
            "tags": [str(t) for t in r.get("tags") or []],
            "created_at": r.get("created_at"), "finished_at": r.get("finished_at"),
            "last_step": r.get("last_step"), "error": r.get("error"), "sweep_id": r.get("sweep_id"),
            "config": json.dumps(r.get("config") or {}, default=str),
            "summary": json.dumps(r.get("summary") or {}, default=str),
            "metadata": json.dumps(r.get("metadata") or {}, default=str),
        }
        for r in records
    ], schema=_RUNS_SCHEMA())  # fmt: skip
    con.register("_runs", runs)
    con.execute(
        "CREATE TABLE runs AS SELECT * EXCLUDE (created_at, finished_at), "
        "to_timestamp(created_at) AS created_at, to_timestamp(finished_at) AS finished_at, "
        "CAST(config AS JSON) AS config_json, CAST(summary AS JSON) AS summary_json FROM _runs"
    )
    con.execute("ALTER TABLE runs ALTER metadata TYPE JSON")
    con.execute("ALTER TABLE runs DROP COLUMN config")
    con.execute("ALTER TABLE runs DROP COLUMN summary")
    con.execute("ALTER TABLE runs RENAME config_json TO config")
    con.execute("ALTER TABLE runs RENAME summary_json TO summary")
    con.unregister("_runs")
    for name in ("config", "summary", "metadata"):
        kv = [
            (r["project"], r["id"], k, v)
            for r in records for k, v in flatten(r.get(name) or {}).items()
        ]  # fmt: skip
        con.register("_kv", pa.table({
            "project": [x[0] for x in kv], "run_id": [x[1] for x in kv], "key": [x[2] for x in kv],
            "value": pa.array([float(x[3]) if isinstance(x[3], (int, float)) else None for x in kv], pa.float64()),
            "text": pa.array([None if isinstance(x[3], (int, float)) and not isinstance(x[3], bool)
                              else json.dumps(x[3], default=str) if not isinstance(x[3], str) else x[3]
                              for x in kv], pa.string()),
        }))  # fmt: skip
        con.execute(f"CREATE TABLE {name} AS FROM _kv")
        con.unregister("_kv")
    tags = [(r["project"], r["id"], str(t)) for r in records for t in r.get("tags") or []]
    con.register("_tags", pa.table({"project": pa.array([t[0] for t in tags], pa.string()),
                                    "run_id": pa.array([t[1] for t in tags], pa.string()),
                                    "tag": pa.array([t[2] for t in tags], pa.string())}))  # fmt: skip
    con.execute("CREATE TABLE tags AS FROM _tags")
    con.unregister("_tags")
    from .artifacts import sql_tables  # artifacts, artifact_files, artifact_usage, alerts

    sql_tables(con, store, project, records)
    listed = [(r, store.history_files(store.root / r["dir"])) for r in records]
    _history_view(con, listed)
    listed = [(r, store.history_files(store.root / r["dir"], "system")) for r in records]
    _history_view(con, listed, "system")
    return con


def _history_view(
    con: Any, listed: list[tuple[dict[str, Any], list[Path]]], name: str = "history"
) -> None:
    """The ``history`` view over every run's readable files (and ``history_files``, which
    names each file's run). DuckDB reads footers as the view is made: a damaged file found
    then is skipped (warned) and the view made again without it."""
    import duckdb
    import pyarrow as pa

    for attempt in range(8):
        files = readable(f for _, fs in listed for f in fs)  # one pass over every run's files
        ok = set(files)
        owners = [(str(f), r["project"], r["id"]) for r, fs in listed for f in fs if str(f) in ok]
        con.register("_files", pa.table({"filename": [o[0] for o in owners],
                                         "project": [o[1] for o in owners],
                                         "run_id": [o[2] for o in owners]}))  # fmt: skip
        con.execute(f"CREATE OR REPLACE TABLE {name}_files AS FROM _files")
        con.unregister("_files")
        if not files:
            con.execute(
                f"CREATE OR REPLACE TABLE {name} (project VARCHAR, run_id VARCHAR, step BIGINT, "
                "ts TIMESTAMP WITH TIME ZONE, key VARCHAR, value DOUBLE, text VARCHAR)"
            )
            return
        # a view cannot hold parameters: the file list is our own paths, quoted
        listing = ", ".join(sql_literal(f) for f in files)
        try:
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT f.project, f.run_id, h.step, "
                "to_timestamp(h.ts) AS ts, h.key, h.value, h.text "
                f"FROM read_parquet([{listing}], filename = true) h "
                f"JOIN {name}_files f USING (filename)"
            )
            return
        except duckdb.Error as exc:
            if attempt == 7 or not blame(files, exc):
                raise


def view_files(con: Any) -> list[str]:
    """The history files behind the ``history`` view of a :func:`sql_connection`."""
    try:
        return [r[0] for r in con.execute("SELECT filename FROM history_files").fetchall()]
    except Exception:  # noqa: BLE001 - the user's SQL dropped or replaced it
        return []


def _RUNS_SCHEMA() -> Any:  # noqa: N802
    import pyarrow as pa

    s, f = pa.string(), pa.float64()
    return pa.schema([
        ("project", s), ("run_id", s), ("name", s), ("entity", s), ("state", s), ("notes", s),
        ("group", s), ("job_type", s), ("tags", pa.list_(s)), ("created_at", f),
        ("finished_at", f), ("last_step", pa.int64()), ("error", s), ("config", s),
        ("summary", s), ("metadata", s), ("sweep_id", s),
    ])  # fmt: skip


_fork_leaks: list[Any] = []


def _after_fork_child() -> None:
    """In a forked child: the parent's in-memory DuckDB is unusable here (its threads are
    gone, its locks may be held); keep it referenced, never closed, and open a new one."""
    global _shared
    if _shared is not None:
        _fork_leaks.append(_shared)
        _shared = None


# -- capture (system metrics, console log) -------------------------------------------------
def system_series(rdir: Path, points: int = 240) -> dict[str, dict[str, list[Any]]]:
    """A run's system metrics for charts: ``{key: {"t": runtime seconds, "v": values}}``,
    at most about ``points`` per key (each bucket of samples keeps its highest value, so a
    spike stays visible). Reads the run folder alone (no catalog)."""
    from .store import RUN_FILE, stream_dir

    files = readable(segments.list_files(stream_dir(rdir, "system"))[0])
    if not files:
        return {}
    try:
        t0 = float(json.loads((rdir / RUN_FILE).read_text(encoding="utf-8"))["created_at"])
    except (OSError, ValueError, KeyError, TypeError):
        t0 = 0.0
    con = duck()
    try:
        rows = con.execute(
            "WITH s AS (SELECT key, step, ts, value FROM read_parquet(?) WHERE value IS NOT NULL),"
            " n AS (SELECT max(step) + 1 AS n FROM s) "
            "SELECT key, min(ts), max(value) FROM s, n "
            "GROUP BY key, CAST(floor(step * ? / greatest(n.n, ?)) AS BIGINT) ORDER BY 1, 2",
            [files, points, points],
        ).fetchall()
    except Exception:  # noqa: BLE001 - a file replaced under us (merge): next poll
        return {}
    finally:
        con.close()
    out: dict[str, dict[str, list[Any]]] = {}
    for key, ts, value in rows:
        s = out.setdefault(key, {"t": [], "v": []})
        s["t"].append(round(float(ts) - t0, 3))
        s["v"].append(float(value))
    return out


def console_tail(rdir: Path, max_bytes: int = 16_384) -> str:
    """The end of a run's console log (``output.log``), as a terminal shows it. A shared
    (multi-rank) run shows each rank's log under a line naming the rank."""
    from ._shared import console_files
    from .capture.console import tail
    from .store import capture_path

    main = capture_path(rdir, "console")
    ranks = console_files(rdir)
    if len(ranks) <= 1:
        return tail(main, max_bytes=max_bytes)
    each = max(1024, max_bytes // len(ranks))
    parts = []
    for label, path in ranks:
        text = tail(path, path.with_name(path.name + ".1"), max_bytes=each)
        parts.append(f"── {label} ──\n{text.rstrip()}")
    return "\n".join(parts) + "\n"
