"""Read layer: run records kept fresh, history (long/wide), min/max down-sampling, SQL views.

Readers never take a write lock: they copy the catalog into an in-memory DuckDB, then
bring any run whose ``run.json`` is newer than its catalog row (or missing from it) up to
date from the run folder, and mark runs whose process died as ``crashed``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import segments
from ._util import flatten, sql_literal
from .catalog import DUCKDB_CONFIG, upsert_records
from .store import Store


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
    "host", "pid", "dir", "config", "summary", "json_mtime",
)  # fmt: skip


def load_runs(store: Store, project: str | None = None, *, catch_up: bool = True) -> list[dict[str, Any]]:
    """Every run record (of one project), fresh: catalog first, run folders for the rest."""
    cached: dict[str, dict[str, Any]] = {}
    con = duck()
    try:
        cols = ", ".join(f'"{c}"' for c in _RECORD_COLS)
        where, params = ("WHERE project = ?", [project]) if project is not None else ("", [])
        rows = store.catalog.select(con, f"SELECT {cols} FROM {{cat}}.runs {where}", params)
    finally:
        con.close()
    for row in rows or ():
        rec = dict(zip(_RECORD_COLS, row))
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
            rec["tags"] = list(rec.get("tags") or [])
            out.append(rec)
            continue
        rdir = root / rel
        fresh = store.read_record(rdir)
        if fresh is None:
            continue
        fresh = store.check_alive(rdir, fresh, now=now)
        if project is not None and fresh.get("project") != project:
            continue
        try:
            fresh["json_mtime"] = rdir.joinpath("run.json").stat().st_mtime
        except OSError:
            fresh["json_mtime"] = mtime
        out.append(fresh)
        # a live run indexes itself (periodically and at finish): catch up ended runs only
        if fresh.get("state") != "running" and (rec is None or rec.get("json_mtime") != fresh["json_mtime"]):
            stale.append(fresh)
    gone = [d for d in cached if not (root / d).exists()] if len(cached) > len(out) else []
    if catch_up and (stale or gone):
        _catch_up(store, stale, drop=gone)
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


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


# -- history -------------------------------------------------------------------------------
def history_files(store: Store, rdir: Path) -> list[str]:
    return [str(p) for p in store.history_files(rdir)]


def _retrying(fn: Any, *args: Any) -> Any:
    """Run a read; a compaction may delete a file under us: list again and retry."""
    import duckdb

    for attempt in range(5):
        try:
            return fn(*args)
        except (FileNotFoundError, duckdb.IOException):
            if attempt == 4:
                raise
            time.sleep(0.01 * (attempt + 1))
    return None


def history_long(
    store: Store,
    rdir: Path,
    keys: Sequence[str] | None = None,
    since_step: int | None = None,
    until_step: int | None = None,
) -> Any:
    """A run's history in long form as a pyarrow Table ``(step, ts, key, value, text)``."""

    def read() -> Any:
        files = history_files(store, rdir)
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

    return _retrying(read)


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
    """Long Arrow table of the points that keep each key's shape: per bucket of steps,
    the rows with the minimum and the maximum value (NaN counts as a maximum, so it shows),
    plus each key's first and last row. One scan; no spike is ever dropped."""
    where, params = _filters(keys, lo, hi)
    if span is None:
        span = con.execute(
            f"SELECT min(step), max(step) FROM read_parquet(?) {where}", [files, *params]
        ).fetchall()[0]
    lo_, hi_ = span
    if lo_ is None:
        return segments._schema().empty_table()
    buckets = max(1, samples // 2)
    width = max(1, -(-(hi_ - lo_ + 1) // buckets))  # ceil: at most `buckets` buckets
    row = "{'step': step, 'ts': ts, 'key': key, 'value': value, 'text': text}"
    order = "coalesce(value, 0)"  # text/media keys: any row of the bucket
    return arrow(
        con,
        f"""
        WITH h AS (SELECT step, ts, key, value, text FROM read_parquet(?) {where}),
        picked AS (
            SELECT unnest([arg_min({row}, {order}), arg_max({row}, {order})]) AS p
            FROM h GROUP BY key, (step - ?) // ?
            UNION ALL
            SELECT {row} FROM h WHERE step = ? OR step = ?
        )
        SELECT DISTINCT p.step AS step, p.ts AS ts, p.key AS key, p.value AS value, p.text AS text
        FROM picked ORDER BY step
        """,
        [files, *params, lo_, width, lo_, hi_],
    )


def history_frame(
    store: Store,
    rdir: Path,
    record: dict[str, Any],
    keys: Sequence[str] | None = None,
    samples: int | None = None,
    min_step: int | None = None,
    max_step: int | None = None,
) -> Any:
    """A run's history as a wide pandas DataFrame (``_step``, ``_timestamp``, ``_runtime``,
    one column per key), optionally down-sampled to about ``samples`` rows per key."""
    return _retrying(_history_frame, store, rdir, record, keys, samples, min_step, max_step)


def _history_frame(store, rdir, record, keys, samples, min_step, max_step):  # type: ignore[no-untyped-def]
    import pandas as pd

    files = history_files(store, rdir)
    key_types: dict[str, str] = record.get("history_keys") or {}
    if not files:
        return pd.DataFrame(columns=["_step", "_timestamp", "_runtime", *(keys or [])])
    con = duck()
    try:
        where, params = _filters(keys, min_step, max_step)
        long = None
        if samples:
            distinct = "count(DISTINCT key)" if keys is None else "0"  # known when keys given
            (rows, nkeys, first, last), = con.execute(
                f"SELECT count(*), {distinct}, min(step), max(step) "
                f"FROM read_parquet(?) {where}", [files, *params]
            ).fetchall()
            nkeys = nkeys or len(keys or ())
            if rows > samples * max(1, nkeys):
                long = downsample(con, files, keys, samples, min_step, max_step, (first, last))
        if long is None:
            long = arrow(
                con, f"SELECT step, ts, key, value, text FROM read_parquet(?) {where}", [files, *params]
            )
    finally:
        con.close()
    return _pivot(long, key_types, float(record.get("created_at") or 0.0), keys)


def _pivot(long: Any, key_types: dict[str, str], t0: float, keys: Sequence[str] | None) -> Any:
    """Long Arrow table -> wide DataFrame, numbers as numbers and text/media as text."""
    import pandas as pd

    con = duck()
    try:
        con.register("long", long)
        frame = con.execute(
            'SELECT step AS "_step", max(ts) AS "_timestamp" FROM long GROUP BY step ORDER BY step'
        ).df()
        frame["_runtime"] = frame["_timestamp"] - t0
        present = [r[0] for r in con.execute("SELECT DISTINCT key FROM long").fetchall()]
        names = list(keys) if keys is not None else sorted(present)
        numeric = [k for k in names if not _textual(key_types.get(k, "float")) and k in present]
        textual = [k for k in names if _textual(key_types.get(k, "float")) and k in present]
        for subset, column in ((numeric, "value"), (textual, "text")):
            if not subset:
                continue
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE part AS SELECT step, key, {column} AS v "
                "FROM long WHERE list_contains(?, key)",
                [subset],
            )
            wide = con.execute("PIVOT part ON key USING first(v) GROUP BY step").df()
            frame = frame.merge(wide.rename(columns={"step": "_step"}), on="_step", how="left")
    finally:
        con.close()
    for name in names:
        if name not in frame.columns:
            frame[name] = pd.Series([None] * len(frame), dtype="object")
        else:
            frame[name] = _typed(frame[name], key_types.get(name, "float"))
    return frame[["_step", "_timestamp", "_runtime", *names]]


def _textual(kind: str) -> bool:
    return kind == "str" or kind.startswith("media:")


def _typed(col: Any, kind: str) -> Any:
    if kind == "int":
        if col.notna().all():
            return col.astype("int64")
        return col.astype("Int64")
    if kind == "bool":
        return col.map(lambda v: None if v != v or v is None else bool(v)).astype("boolean")
    if kind == "float":
        return col.astype("float64")
    return col.astype("object").where(col.notna(), None)


# -- SQL -----------------------------------------------------------------------------------
def sql_connection(store: Store, project: str | None = None) -> Any:
    """In-memory DuckDB with views ``runs``, ``config``, ``summary``, ``tags``, ``history``."""
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
            "last_step": r.get("last_step"),
            "config": json.dumps(r.get("config") or {}, default=str),
            "summary": json.dumps(r.get("summary") or {}, default=str),
        }
        for r in records
    ], schema=_RUNS_SCHEMA())  # fmt: skip
    con.register("_runs", runs)
    con.execute(
        "CREATE TABLE runs AS SELECT * EXCLUDE (created_at, finished_at), "
        "to_timestamp(created_at) AS created_at, to_timestamp(finished_at) AS finished_at, "
        "CAST(config AS JSON) AS config_json, CAST(summary AS JSON) AS summary_json FROM _runs"
    )
    con.execute("ALTER TABLE runs DROP COLUMN config")
    con.execute("ALTER TABLE runs DROP COLUMN summary")
    con.execute("ALTER TABLE runs RENAME config_json TO config")
    con.execute("ALTER TABLE runs RENAME summary_json TO summary")
    con.unregister("_runs")
    for name in ("config", "summary"):
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
    files, owners = [], []
    for r in records:
        for f in history_files(store, store.root / r["dir"]):
            files.append(f)
            owners.append((f, r["project"], r["id"]))
    con.register("_files", pa.table({"filename": [o[0] for o in owners],
                                     "project": [o[1] for o in owners],
                                     "run_id": [o[2] for o in owners]}))  # fmt: skip
    con.execute("CREATE TABLE history_files AS FROM _files")
    con.unregister("_files")
    if files:
        # a view cannot hold parameters: the file list is our own paths, quoted
        listing = ", ".join(sql_literal(f) for f in files)
        con.execute(
            "CREATE VIEW history AS SELECT f.project, f.run_id, h.step, to_timestamp(h.ts) AS ts, "
            f"h.key, h.value, h.text FROM read_parquet([{listing}], filename = true) h "
            "JOIN history_files f USING (filename)"
        )
    else:
        con.execute(
            "CREATE TABLE history (project VARCHAR, run_id VARCHAR, step BIGINT, "
            "ts TIMESTAMP WITH TIME ZONE, key VARCHAR, value DOUBLE, text VARCHAR)"
        )
    return con


def _RUNS_SCHEMA() -> Any:  # noqa: N802
    import pyarrow as pa

    s, f = pa.string(), pa.float64()
    return pa.schema([
        ("project", s), ("run_id", s), ("name", s), ("entity", s), ("state", s), ("notes", s),
        ("group", s), ("job_type", s), ("tags", pa.list_(s)), ("created_at", f),
        ("finished_at", f), ("last_step", pa.int64()), ("config", s), ("summary", s),
    ])  # fmt: skip
