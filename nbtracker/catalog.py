"""The DuckDB catalog: an index of runs, config, summary and tags, rebuildable at any time.

No process ever holds the catalog open. A write takes an advisory file lock, copies the
closed catalog to a temp file, applies the change there and moves it into place with
``os.replace``. So a SIGKILL at any moment leaves either the old or the new catalog (never
a half-checkpointed one), and readers, who open it read-only, never meet our lock.
"""

from __future__ import annotations

import fcntl
import json
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
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    project VARCHAR, run_id VARCHAR, entity VARCHAR, name VARCHAR, state VARCHAR,
    notes VARCHAR, "group" VARCHAR, job_type VARCHAR, tags VARCHAR[],
    created_at DOUBLE, updated_at DOUBLE, heartbeat_at DOUBLE, finished_at DOUBLE,
    last_step BIGINT, exit_code INTEGER, host VARCHAR, pid INTEGER, dir VARCHAR,
    config JSON, summary JSON, json_mtime DOUBLE, error VARCHAR, metadata JSON, sweep_id VARCHAR
);
CREATE TABLE IF NOT EXISTS config (project VARCHAR, run_id VARCHAR, key VARCHAR, value JSON, num DOUBLE, text VARCHAR);
CREATE TABLE IF NOT EXISTS summary (project VARCHAR, run_id VARCHAR, key VARCHAR, value JSON, num DOUBLE, text VARCHAR);
CREATE TABLE IF NOT EXISTS tags (project VARCHAR, run_id VARCHAR, tag VARCHAR);
"""

RUN_COLUMNS = (
    "project", "run_id", "entity", "name", "state", "notes", "group", "job_type", "tags",
    "created_at", "updated_at", "heartbeat_at", "finished_at", "last_step", "exit_code",
    "host", "pid", "dir", "config", "summary", "json_mtime", "error", "metadata", "sweep_id",
)  # fmt: skip

# Our own generator (the OS's): temp names and retry jitter never draw from, or move, the
# user's seeded ``random`` stream.
_rng = random.SystemRandom()

DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}


class CatalogBusy(Exception):
    """The catalog lock could not be taken within the time budget."""


_RUN_TYPES = {
    "project": "VARCHAR", "run_id": "VARCHAR", "entity": "VARCHAR", "name": "VARCHAR",
    "state": "VARCHAR", "notes": "VARCHAR", "group": "VARCHAR", "job_type": "VARCHAR",
    "tags": "VARCHAR[]", "created_at": "DOUBLE", "updated_at": "DOUBLE",
    "heartbeat_at": "DOUBLE", "finished_at": "DOUBLE", "last_step": "BIGINT",
    "exit_code": "INTEGER", "host": "VARCHAR", "pid": "INTEGER", "dir": "VARCHAR",
    "config": "JSON", "summary": "JSON", "json_mtime": "DOUBLE", "error": "VARCHAR",
    "metadata": "JSON",
    "sweep_id": "VARCHAR",
}  # fmt: skip
_KV_TYPES = {"project": "VARCHAR", "run_id": "VARCHAR", "key": "VARCHAR", "value": "JSON",
             "num": "DOUBLE", "text": "VARCHAR"}  # fmt: skip
_TAG_TYPES = {"project": "VARCHAR", "run_id": "VARCHAR", "tag": "VARCHAR"}


def _kv_rows(project: str, run_id: str, mapping: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, value in flatten(mapping).items():
        num = float(value) if isinstance(value, (int, float)) and _finite(value) else None
        text = value if isinstance(value, str) else None
        rows.append({"project": project, "run_id": run_id, "key": key, "value": value,
                     "num": num, "text": text})  # fmt: skip
    return rows


def _finite(v: float) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


def record_row(rec: dict[str, Any]) -> dict[str, Any]:
    """The ``runs`` table row for one run record (the content of its run.json)."""
    row = {c: rec.get(c) for c in RUN_COLUMNS}
    row["run_id"] = rec["id"]
    row["tags"] = [str(t) for t in rec.get("tags") or []]
    row["config"] = rec.get("config") or {}
    row["summary"] = rec.get("summary") or {}
    row["metadata"] = rec.get("metadata") or {}
    return row


def _insert(con: Any, table: str, rows: list[dict[str, Any]], types: dict[str, str]) -> None:
    """Bulk insert through one JSON parameter (no executemany, no pyarrow/pandas import)."""
    if not rows:
        return
    structure = json.dumps([types])
    cols = ", ".join(f'"{c}"' for c in types)
    con.execute(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM "
        f"(SELECT unnest(json_transform(?, '{structure}'), recursive := true))",
        [dumps(rows)],
    )


def upsert_records(con: Any, records: Iterable[dict[str, Any]]) -> None:
    """Replace the catalog rows of the given runs (all tables) in one transaction."""
    records = list(records)
    if not records:
        return
    keys = [[r["project"], r["id"]] for r in records]
    con.execute("BEGIN")
    for table in ("runs", "config", "summary", "tags"):
        con.execute(f"DELETE FROM {table} WHERE list_contains(?, [project, run_id])", [keys])
    _insert(con, "runs", [record_row(r) for r in records], _RUN_TYPES)
    _insert(
        con,
        "config",
        [x for r in records for x in _kv_rows(r["project"], r["id"], r.get("config") or {})],
        _KV_TYPES,
    )
    _insert(
        con,
        "summary",
        [x for r in records for x in _kv_rows(r["project"], r["id"], r.get("summary") or {})],
        _KV_TYPES,
    )
    _insert(con, "tags", [{"project": r["project"], "run_id": r["id"], "tag": str(t)}
                          for r in records for t in r.get("tags") or []], _TAG_TYPES)  # fmt: skip
    con.execute("COMMIT")


class Catalog:
    """Copy-on-write access to ``<root>/nbtracker.duckdb``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name("." + path.name + ".lock")

    # -- writing ---------------------------------------------------------------------------
    def write(self, fn: Callable[[Any], None], *, timeout: float = 2.0) -> None:
        """Apply ``fn(con)`` to a copy of the catalog and swap it in; raise CatalogBusy."""
        import duckdb

        if self.path.is_dir():
            from .errors import StorageError

            msg = (
                f"the catalog path {self.path} is a folder, not a DuckDB file: move it away "
                "(runs are safe in their folders) and run `nbtracker repair` to rebuild it."
            )
            raise StorageError(msg)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            self._lock(lock, timeout)
            self._remove_stale_copies()
            tmp = self.path.with_name(
                f".{self.path.name}.{os.getpid()}.{_rng.getrandbits(32):x}.tmp"
            )
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
                    # catalogs from before the error column (a failed run's error)
                    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS error VARCHAR")
                    # ... and before the environment column (nbtracker.capture)
                    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS metadata JSON")
                    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS sweep_id VARCHAR")
                    if fresh:
                        con.execute(
                            "INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
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

    def _remove_stale_copies(self) -> None:
        """Temp copies exist only while their writer holds the lock, which we now hold:
        any left are from a writer that was killed."""
        prefix = f".{self.path.name}."
        for entry in os.scandir(self.path.parent):
            if entry.name.startswith(prefix) and ".tmp" in entry.name:
                _unlink(Path(entry.path))

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
                time.sleep(delay * (0.5 + _rng.random()))
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
    def select(
        self, con: Any, statement: str, params: list[Any], *, retries: int = 20
    ) -> list[Any] | None:
        """Run ``statement`` (``{cat}`` names the attached catalog) on a read-only attach.

        Returns None when there is no readable catalog (missing, held by an outside
        writer, or damaged): the caller then works from the run folders alone.
        """
        import duckdb

        if not self.path.is_file():  # missing, or something else (a folder) in its place
            return None
        alias = f"cat_{os.getpid()}_{_rng.getrandbits(40):x}"
        for attempt in range(retries):
            try:
                con.execute(f"ATTACH '{_sql_str(str(self.path))}' AS {alias} (READ_ONLY)")
            except duckdb.IOException:
                time.sleep(0.005 * (attempt + 1) * (0.5 + _rng.random()))
                continue
            except duckdb.Error:
                return None
            try:
                return con.execute(statement.format(cat=alias), params).fetchall()
            except duckdb.Error:
                return None
            finally:
                con.execute(f"DETACH {alias}")
        return None


def _sql_str(s: str) -> str:
    """Quote a path for a SQL string literal (paths only; user values go as parameters)."""
    return s.replace("'", "''")


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass
