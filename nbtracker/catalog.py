"""The DuckDB catalog: an index of runs, config, summary and tags, rebuildable at any time.

No process ever holds the catalog open. A write takes an advisory file lock, copies the
closed catalog to a temp file, applies the change there and moves it into place with
``os.replace``. So a SIGKILL at any moment leaves either the old or the new catalog (never
a half-checkpointed one), and readers, who open it read-only, never meet our lock.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ._util import dumps, flatten

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    project VARCHAR, run_id VARCHAR, entity VARCHAR, name VARCHAR, state VARCHAR,
    notes VARCHAR, "group" VARCHAR, job_type VARCHAR, tags VARCHAR[],
    created_at DOUBLE, updated_at DOUBLE, heartbeat_at DOUBLE, finished_at DOUBLE,
    last_step BIGINT, exit_code INTEGER, host VARCHAR, pid INTEGER, dir VARCHAR,
    config JSON, summary JSON, json_mtime DOUBLE,
    PRIMARY KEY (project, run_id)
);
CREATE TABLE IF NOT EXISTS config (project VARCHAR, run_id VARCHAR, key VARCHAR, value JSON, num DOUBLE, text VARCHAR);
CREATE TABLE IF NOT EXISTS summary (project VARCHAR, run_id VARCHAR, key VARCHAR, value JSON, num DOUBLE, text VARCHAR);
CREATE TABLE IF NOT EXISTS tags (project VARCHAR, run_id VARCHAR, tag VARCHAR);
"""

RUN_COLUMNS = (
    "project", "run_id", "entity", "name", "state", "notes", "group", "job_type", "tags",
    "created_at", "updated_at", "heartbeat_at", "finished_at", "last_step", "exit_code",
    "host", "pid", "dir", "config", "summary", "json_mtime",
)  # fmt: skip

DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}


class CatalogBusy(Exception):
    """The catalog lock could not be taken within the time budget."""


def _kv_rows(project: str, run_id: str, mapping: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for key, value in flatten(mapping).items():
        num = float(value) if isinstance(value, (int, float)) else None
        text = value if isinstance(value, str) else None
        rows.append((project, run_id, key, dumps(value), num, text))
    return rows


def record_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    """The ``runs`` table row for one run record (the content of its run.json)."""
    return (
        rec["project"], rec["id"], rec.get("entity"), rec.get("name"), rec.get("state"),
        rec.get("notes"), rec.get("group"), rec.get("job_type"), list(rec.get("tags") or []),
        rec.get("created_at"), rec.get("updated_at"), rec.get("heartbeat_at"),
        rec.get("finished_at"), rec.get("last_step"), rec.get("exit_code"), rec.get("host"),
        rec.get("pid"), rec.get("dir"), dumps(rec.get("config") or {}),
        dumps(rec.get("summary") or {}), rec.get("json_mtime"),
    )  # fmt: skip


def upsert_records(con: Any, records: Iterable[dict[str, Any]]) -> None:
    """Replace the catalog rows of the given runs (all tables) in one transaction."""
    import pyarrow as pa

    records = list(records)
    if not records:
        return
    keys = pa.table(
        {"project": [r["project"] for r in records], "run_id": [r["id"] for r in records]}
    )
    run_rows = [record_row(r) for r in records]
    runs = pa.table({c: [row[i] for row in run_rows] for i, c in enumerate(RUN_COLUMNS)})
    cfg = [row for r in records for row in _kv_rows(r["project"], r["id"], r.get("config") or {})]
    summ = [row for r in records for row in _kv_rows(r["project"], r["id"], r.get("summary") or {})]
    tags = [(r["project"], r["id"], str(t)) for r in records for t in (r.get("tags") or [])]
    kv_cols = ("project", "run_id", "key", "value", "num", "text")

    def kv_table(rows: list[tuple[Any, ...]]) -> Any:
        return pa.table(
            {c: pa.array([row[i] for row in rows], pa.float64() if c == "num" else pa.string())
             for i, c in enumerate(kv_cols)}
        )  # fmt: skip

    cfg_t, summ_t = kv_table(cfg), kv_table(summ)
    tags_t = pa.table({"project": [t[0] for t in tags], "run_id": [t[1] for t in tags],
                       "tag": [t[2] for t in tags]}, schema=pa.schema(
        [("project", pa.string()), ("run_id", pa.string()), ("tag", pa.string())]))  # fmt: skip
    con.register("_keys", keys)
    con.register("_runs", runs)
    con.register("_cfg", cfg_t)
    con.register("_summ", summ_t)
    con.register("_tags", tags_t)
    con.execute("BEGIN")
    for table in ("runs", "config", "summary", "tags"):
        con.execute(
            f"DELETE FROM {table} WHERE (project, run_id) IN (SELECT (project, run_id) FROM _keys)"
        )
    cols = ", ".join(f'"{c}"' for c in RUN_COLUMNS)
    con.execute(f"INSERT INTO runs ({cols}) SELECT {cols} FROM _runs")
    con.execute("INSERT INTO config SELECT * FROM _cfg")
    con.execute("INSERT INTO summary SELECT * FROM _summ")
    con.execute("INSERT INTO tags SELECT * FROM _tags")
    con.execute("COMMIT")
    for name in ("_keys", "_runs", "_cfg", "_summ", "_tags"):
        con.unregister(name)


class Catalog:
    """Copy-on-write access to ``<root>/nbtracker.duckdb``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name("." + path.name + ".lock")

    # -- writing ---------------------------------------------------------------------------
    def write(self, fn: Callable[[Any], None], *, timeout: float = 2.0) -> None:
        """Apply ``fn(con)`` to a copy of the catalog and swap it in; raise CatalogBusy."""
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            self._lock(lock, timeout)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{random.getrandbits(32):x}.tmp")
            try:
                fresh = not self.path.exists()
                if not fresh:
                    shutil.copyfile(self.path, tmp)
                    wal = self.path.with_name(self.path.name + ".wal")
                    if wal.exists():  # left by an outside writer: let DuckDB replay it
                        shutil.copyfile(wal, tmp.with_name(tmp.name + ".wal"))
                try:
                    con = duckdb.connect(str(tmp), config=DUCKDB_CONFIG)
                except duckdb.Error:
                    # the copy does not open (damaged catalog): start over, caller rebuilds
                    _unlink(tmp)
                    fresh = True
                    con = duckdb.connect(str(tmp), config=DUCKDB_CONFIG)
                try:
                    con.execute(DDL)
                    con.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                        [str(SCHEMA_VERSION)],
                    )
                    fn(con)
                finally:
                    con.close()
                os.replace(tmp, self.path)
                _unlink(self.path.with_name(self.path.name + ".wal"))
            finally:
                _unlink(tmp)
                _unlink(tmp.with_name(tmp.name + ".wal"))
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _lock(lock: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CatalogBusy(str(lock.name)) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)

    def upsert(self, records: Iterable[dict[str, Any]], *, timeout: float = 2.0) -> None:
        records = list(records)
        self.write(lambda con: upsert_records(con, records), timeout=timeout)

    def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Rebuild the catalog from scratch with the given records."""
        records = list(records)

        def fn(con: Any) -> None:
            for table in ("runs", "config", "summary", "tags"):
                con.execute(f"DELETE FROM {table}")
            upsert_records(con, records)

        _unlink(self.path)
        self.write(fn, timeout=10.0)

    # -- reading ---------------------------------------------------------------------------
    def load_into(self, con: Any, *, retries: int = 20) -> bool:
        """Copy the catalog tables into the in-memory connection ``con``.

        Returns False when there is no readable catalog (missing, held by an outside
        writer, or damaged): the caller then works from the run folders alone.
        """
        import duckdb

        if not self.path.exists():
            return False
        for attempt in range(retries):
            try:
                con.execute(f"ATTACH '{_sql_str(str(self.path))}' AS cat (READ_ONLY)")
            except duckdb.IOException:
                time.sleep(0.005 * (attempt + 1) * (0.5 + random.random()))
                continue
            except duckdb.Error:
                return False
            try:
                for table in ("runs", "config", "summary", "tags"):
                    con.execute(f"CREATE OR REPLACE TABLE {table} AS FROM cat.{table}")
                return True
            except duckdb.Error:
                return False
            finally:
                con.execute("DETACH cat")
        return False


def _sql_str(s: str) -> str:
    """Quote a path for a SQL string literal (paths only; user values go as parameters)."""
    return s.replace("'", "''")


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass
