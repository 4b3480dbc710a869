"""Writer: the background thread that turns buffered rows into Parquet segments.

The training loop only appends ``(step, timestamp, row)`` tuples to a deque. This thread
drains it at least every ``interval`` seconds (sooner when ``max_rows`` pile up), writes a
segment atomically, keeps the run's ``run.json`` heartbeat fresh and, now and then, the
catalog. Any storage error becomes one warning; the rows are kept and retried.

Segments are written through DuckDB from numpy arrays (``segments.write_rows_duckdb``);
pyarrow, and the pandas it imports, load only if a single flush exceeds
``COLD_MAX_VALUES``, after which every flush goes through pyarrow.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import segments
from .errors import StorageWarning

FLUSH_INTERVAL_S = 0.4
HEARTBEAT_INTERVAL_S = 2.0
CATALOG_INTERVAL_S = 15.0
MAX_BUFFER_ROWS = 20_000
MERGE_AFTER_FILES = 64
# Segments are written through DuckDB from numpy arrays (~0.27 us a value, a little faster
# than the pyarrow path, and no pandas import). Only a flush of more values than this (very
# wide rows at a high rate) goes through pyarrow, which then loads in the background.
COLD_MAX_VALUES = 2_000_000
# The flush connection: one thread (segments are small; the other core stays with the
# training) and DuckDB's allocator handing memory back after each flush (RSS growth over
# 1M steps ~19 MB lower, measured here, for ~25 ms more per 250k values).
_FLUSH_CONFIG = {"threads": 1, "allocator_flush_threshold": "0KB",
                 "allocator_bulk_deallocation_flush_threshold": "0KB"}  # fmt: skip
BACKPRESSURE_ROWS = 50_000  # log() writes a segment itself when the thread falls this far behind


class Writer:
    """One per run; owns the run's history folder while the run is live."""

    def __init__(
        self,
        hdir: Path,
        buffer: deque[tuple[int, float, dict[str, Any]]],
        key_types: dict[str, str],
        snapshot: Callable[[], dict[str, Any]],
        save_record: Callable[[dict[str, Any]], None],
        save_catalog: Callable[[dict[str, Any]], bool],
        *,
        interval: float = FLUSH_INTERVAL_S,
        first_seq: int = 1,
    ) -> None:
        self.hdir = hdir
        self.buffer = buffer
        self.key_types = key_types
        self.snapshot = snapshot
        self.save_record = save_record
        self.save_catalog = save_catalog
        self.interval = interval
        self.seq = first_seq
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one segment write at a time (thread vs finish/flush())
        self._record_lock = threading.Lock()
        self._retry: list[tuple[int, float, dict[str, Any]]] = []
        self._warned: set[str] = set()
        self._last_catalog = time.monotonic()
        self._merged_at = 0
        self.catalog_dirty = False
        self.rows_written = 0
        self.flushes = 0
        self._merge_lock = threading.Lock()
        self._warmed = threading.Event()
        self._warm_started = False
        self._warm_start_lock = threading.Lock()
        self._flush_con: Any = None  # DuckDB, until pyarrow takes over
        self._index_wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbtracker-writer", daemon=True)
        self._indexer = threading.Thread(target=self._index_loop, name="nbtracker-index", daemon=True)

    def start(self) -> None:
        # pandas (pulled in by pyarrow) imports this; importing it first, here, keeps a
        # late import in our threads from failing at interpreter shutdown
        import concurrent.futures.thread  # noqa: F401

        self._thread.start()
        self._indexer.start()

    def _start_warmup(self) -> None:
        with self._warm_start_lock:
            if not self._warm_started:
                self._warm_started = True
                threading.Thread(target=self._warm, name="nbtracker-warmup", daemon=True).start()

    def _wait_warm(self) -> None:
        self._start_warmup()
        self._warmed.wait()

    def _warm(self) -> None:
        try:
            _warm_imports()
        finally:
            self._warmed.set()

    def _loop(self) -> None:
        """Flush history segments on a fixed rhythm, and nothing else (no waiting on locks)."""
        next_at = time.monotonic() + self.interval
        try:  # ready for the first flush before it is due
            with self._lock:
                self._flush_connection()
        except Exception:  # noqa: BLE001, S110 - the first flush reports a real problem
            pass
        while not self._stop.is_set():
            self.wake.wait(max(0.0, next_at - time.monotonic()))
            self.wake.clear()
            if self._stop.is_set():
                break
            next_at = time.monotonic() + self.interval
            try:
                self.flush_rows()
            except Exception as exc:  # noqa: BLE001 - this thread must never die
                self._warn("loop", f"nbtracker's writer hit {exc!r}; it keeps going.")

    def _index_loop(self) -> None:
        """Heartbeat (run.json), periodic catalog updates and segment merges: slow work that
        may wait on locks, kept off the flush rhythm."""
        while not self._stop.is_set():
            self._index_wake.wait(HEARTBEAT_INTERVAL_S)
            self._index_wake.clear()
            if self._stop.is_set():
                break
            try:
                self.write_record()
                if self.flushes - self._merged_at >= MERGE_AFTER_FILES:
                    self._merged_at = self.flushes
                    self.merge(recent_only=True)
            except Exception as exc:  # noqa: BLE001 - this thread must never die
                self._warn("index", f"nbtracker's indexer hit {exc!r}; it keeps going.")

    def mark_dirty(self) -> None:
        """Metadata changed (config, tags, ...): refresh run.json and the catalog soon."""
        self.catalog_dirty = True
        self._index_wake.set()

    def stop(self) -> None:
        """Ask both threads to stop; they exit on their own (the caller flushes the rest)."""
        self._stop.set()
        self.wake.set()
        self._index_wake.set()

    def close(self) -> None:
        """Release the flush connection (after the final flush)."""
        with self._lock:
            self._close_flush_connection()

    def flush_rows(self) -> int:
        """Write what is buffered now, without touching run.json or the catalog."""
        with self._lock:
            return self._flush_rows()

    def flush(self) -> int:
        """Write buffered rows and the run record now."""
        n = self.flush_rows()
        self.write_record(force=True)
        return n

    def write_record(self, *, force: bool = False) -> None:
        with self._record_lock:
            now = time.monotonic()
            snap = self.snapshot()
            try:
                self.save_record(snap)
            except OSError as exc:
                self._warn("record", f"could not write run.json ({exc})")
            if not force and (self.catalog_dirty or now - self._last_catalog >= CATALOG_INTERVAL_S):
                self._last_catalog = now
                self.catalog_dirty = not self.save_catalog(snap)

    def _flush_connection(self) -> Any:
        if self._flush_con is None:
            import duckdb

            from .catalog import DUCKDB_CONFIG

            self._flush_con = duckdb.connect(":memory:", config={**DUCKDB_CONFIG, **_FLUSH_CONFIG})
        return self._flush_con

    def _close_flush_connection(self) -> None:
        if self._flush_con is not None:
            self._flush_con.close()
            self._flush_con = None

    def merge(self, *, recent_only: bool = False) -> None:
        """Merge history segments into one file (one merge at a time per run)."""
        with self._merge_lock:
            try:
                segments.compact(self.hdir, recent_only=recent_only)
            except Exception as exc:  # noqa: BLE001
                self._warn("merge", f"could not merge history segments ({exc!r})")

    def _flush_rows(self) -> int:
        buf = self.buffer
        n = len(buf)
        rows = self._retry + [buf.popleft() for _ in range(n)]
        if not rows:
            return 0
        try:
            steps, stamps, dicts = zip(*rows)
            self.hdir.mkdir(parents=True, exist_ok=True)
            path = self.hdir / segments.segment_name(self.seq, self.seq)
            if not self._warmed.is_set() and sum(len(r[2]) for r in rows) <= COLD_MAX_VALUES:
                con = self._flush_connection()
                segments.write_rows_duckdb(
                    con, list(steps), list(stamps), list(dicts), self.key_types, path
                )
            else:  # a huge flush: pyarrow from now on (less memory per value)
                self._wait_warm()
                self._close_flush_connection()
                table = segments.rows_to_long(list(steps), list(stamps), list(dicts), self.key_types)
                segments.write_parquet_atomic(table, path)
                del table
                _release_arrow_memory()
        except Exception as exc:  # noqa: BLE001 - disk full, permissions, odd values
            self._retry = rows
            self._warn(
                "segment",
                f"nbtracker could not write history to {self.hdir} ({exc!r}). Your code "
                f"continues; {len(rows)} rows are kept in memory and retried.",
            )
            return 0
        self._retry = []
        self.seq += 1
        self.rows_written += len(rows)
        self.flushes += 1
        return len(rows)

    def _warn(self, what: str, msg: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(msg, StorageWarning, stacklevel=2)


def _warm_imports() -> None:
    """Import pyarrow, and pandas through it (only for flushes past COLD_MAX_VALUES)."""
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    pa.Table.from_pylist([{"x": 1.0}])  # the first call imports pandas (~0.3 s)


def _release_arrow_memory() -> None:
    """Hand Arrow's freed buffers back to the OS, so a long run's RSS stays flat."""
    import pyarrow as pa

    try:
        pa.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001, S110 - older pyarrow: nothing to do
        pass
