"""Writer: the background thread that turns buffered rows into Parquet segments.

The training loop only appends rows (``segments.buffered``: the logged dict with its step and
time) to a deque. This thread
drains it at least every ``interval`` seconds (sooner when ``max_rows`` pile up), writes a
segment atomically, keeps the run's ``run.json`` heartbeat fresh and, now and then, the
catalog. Any storage error becomes one warning; the rows are kept and retried.

Rows with the same numeric keys (the usual training rows) and flushes of a few values are
written by nbtracker's own Parquet writer (``segments.write_own``); other rows (text, mixed
keys) through DuckDB from numpy arrays; pyarrow, and the pandas it imports, load only if
such a flush exceeds ``COLD_MAX_VALUES``, after which those go through pyarrow.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from itertools import repeat, starmap
from pathlib import Path
from typing import Any

from . import segments
from ._util import _safe_str, clean_int, clean_text
from .errors import StorageWarning

FLUSH_INTERVAL_S = 0.4
HEARTBEAT_INTERVAL_S = 2.0
CATALOG_INTERVAL_S = 15.0
# log() wakes the writer once this many rows wait (else it writes every FLUSH_INTERVAL_S).
# Numeric rows are written by nbtracker's own Parquet writer: a few GIL hand-offs a flush
# (DuckDB's COPY took 20-40, each up to the switch interval, so the writer kept up only with
# batches of 32k rows). Smaller batches now cost no more per row and leave finish() a short
# tail: rows durable ~10-20 ms after finish() of 100k steps (was 70-180 ms; measured here).
MAX_BUFFER_ROWS = 8_192
MERGE_AFTER_FILES = 64
# Rows of text or mixed keys are written through DuckDB from numpy arrays (~0.27 us a value,
# a little faster than the pyarrow path, and no pandas import). Only a flush of more values
# than this (very wide rows at a high rate) goes through pyarrow, which then loads in the
# background.
COLD_MAX_VALUES = 2_000_000
# The flush connection: one thread (segments are small; the other core stays with the
# training) and DuckDB's allocator handing memory back after each flush (RSS growth over
# 1M steps ~19 MB lower, measured here, for ~25 ms more per 250k values).
# One in-memory DuckDB per process for every writer's flushes, a cursor each: a new
# database per run (and its first COPY, ~40-50 ms) made back-to-back short runs slow.
_flush_db: tuple[int, Any] | None = None  # (pid, database); a forked child makes its own
_flush_db_lock = threading.Lock()
_warm_pid = -1  # the process whose flush database did its first COPY
_fork_leaks: list[Any] = []  # a forked child never closes its parent's DuckDB
_FLUSH_CONFIG = {"threads": 1}
# The allocator handing memory back after each statement doubles the cost of a tiny flush
# (measured ~3.5 -> ~7 ms for a one-row segment): set once the process writes a big batch.
_LEAN_SETTINGS = ("SET allocator_flush_threshold = '0KB'",
                  "SET allocator_bulk_deallocation_flush_threshold = '0KB'")  # fmt: skip
LEAN_AFTER_VALUES = 20_000
BACKPRESSURE_ROWS = 50_000  # log() helps the writer when the thread falls this far behind
CHUNK_ROWS = 65_536  # the writer thread writes at most this many rows per segment
RELIEVE_ROWS = 5_000  # ... by writing this many rows itself (a few ms), unless it is busy
HARD_CAP_ROWS = 4 * BACKPRESSURE_ROWS  # past this, log() waits for the writer (memory first)
MAX_RETRY_ROWS = 200_000  # rows kept in memory while storage fails; older ones thinned past it
MAX_BACKOFF_S = 5.0
FINAL_WIDE_ROWS = 4_096  # finish()'s last flush uses FINAL_THREADS threads past this many rows
FINAL_THREADS = max(1, min(4, os.cpu_count() or 1))


class Writer:
    """One per run; owns the run's history folder while the run is live."""

    def __init__(
        self,
        hdir: Path,
        buffer: deque[dict[Any, Any]],
        key_types: dict[str, str],
        snapshot: Callable[[], dict[str, Any]],
        save_record: Callable[[dict[str, Any]], None],
        save_catalog: Callable[[dict[str, Any]], bool],
        *,
        interval: float = FLUSH_INTERVAL_S,
        first_seq: int = 1,
        writer_id: str | None = None,
        text_keys: set[str] | None = None,
    ) -> None:
        self.hdir = hdir
        # keys that have ever held text in this run (log() adds a key before buffering
        # such a row): their rows skip the all-numbers path
        self.text_keys: set[str] = set() if text_keys is None else text_keys
        self.buffer = buffer
        self.key_types = key_types
        self.snapshot = snapshot
        self.save_record = save_record
        self.save_catalog = save_catalog
        self.interval = interval
        self.seq = first_seq
        self.wid = writer_id or segments.new_writer_id()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one segment write at a time (thread vs finish/flush())
        self._record_lock = threading.Lock()
        self._retry: list[dict[Any, Any]] = []
        self._warned: set[str] = set()
        self._last_catalog = time.monotonic()
        self._merged_at = 0
        self.catalog_dirty = False
        self.rows_written = 0
        self.rows_dropped = 0  # rows given up on (bad values, or thinned while storage failed)
        self.values_dropped = 0
        self.flushes = 0
        self._retry_at = 0.0  # monotonic time of the next write attempt after a failure
        self._backoff = 0.0
        self._merge_lock = threading.Lock()
        self._warmed = threading.Event()
        self._warm_started = False
        self._warm_start_lock = threading.Lock()
        self._flush_con: Any = None  # DuckDB, until pyarrow takes over
        self._wide = False  # the final flush set more DuckDB threads
        self._lean = False  # _LEAN_SETTINGS sent
        # the flush and index work run on the process's lanes (_lanes): no thread per run
        self.wake: Any = _Idle()  # log() sets it when rows pile up: the flush job then
        self._index_wake: Any = _Idle()

    def prepare(self) -> None:
        """Import DuckDB and open the flush connection in the caller's thread (``init()``),
        so the writer thread's start never holds the GIL while training runs."""
        global _warm_pid
        with self._lock:
            con = self._flush_connection()
            if _warm_pid == os.getpid():
                return
            _warm_pid = os.getpid()
            # one tiny COPY now: DuckDB's first one (planning, the parquet writer) costs
            # ~100 ms that would otherwise land on the first flush, mid-training
            try:
                with tempfile.TemporaryDirectory(prefix="nbt-warm-") as tmp:
                    segments.write_rows_duckdb(
                        con, [0], [0.0], [{"x": 0.0}], {}, Path(tmp) / "warm.parquet"
                    )
            except Exception:  # noqa: BLE001, S110 - only a warm-up: the real flush reports
                pass

    def start(self, *, index: bool = True) -> None:
        """Schedule the flush job (and the heartbeat/merge job unless ``index`` is False,
        as for a forked child, which leaves the run's record to its parent)."""
        # pandas (pulled in by pyarrow) imports this; importing it first, here, keeps a
        # late import in our threads from failing at interpreter shutdown
        import concurrent.futures.thread  # noqa: F401

        from . import _lanes

        self.wake = _lanes.FLUSH.every(self._flush_tick, self.interval, name="history writer",
                                       period=self.interval)  # fmt: skip
        if index:
            self._index_wake = _lanes.INDEX.every(
                self._index_tick, HEARTBEAT_INTERVAL_S, name="run indexer",
                period=HEARTBEAT_INTERVAL_S,
            )  # fmt: skip

    def _start_warmup(self) -> None:
        with self._warm_start_lock:
            if not self._warm_started:
                self._warm_started = True
                threading.Thread(target=self._warm, name="nbtracker-warmup", daemon=True).start()

    def _wait_warm(self) -> None:
        self._start_warmup()
        self._warmed.wait()

    def _warm(self) -> None:
        _importing.append(self._warmed)
        try:
            _warm_imports()
        finally:
            self._warmed.set()
            _importing.remove(self._warmed)

    def _flush_tick(self) -> float | None:
        """Flush history segments on a fixed rhythm, and nothing else (no waiting on locks)."""
        if self._stop.is_set():
            return None
        try:
            # in chunks, the lock let go between them: each holds the GIL briefly and
            # log()'s backpressure can step in; a failing store stops the loop at once
            while self.flush_rows(limit=CHUNK_ROWS) and len(self.buffer) >= CHUNK_ROWS:
                pass
        except Exception as exc:  # noqa: BLE001 - the lane must never die
            self._warn("loop", f"nbtracker's writer hit {exc!r}; it keeps going.")
        return None if self._stop.is_set() else self.interval

    def _index_tick(self) -> float | None:
        """Heartbeat (run.json), periodic catalog updates and segment merges: slow work that
        may wait on locks, kept off the flush rhythm (another lane)."""
        if self._stop.is_set():
            return None
        try:
            self.write_record()
            if self.flushes - self._merged_at >= MERGE_AFTER_FILES:
                self._merged_at = self.flushes
                self.merge(recent_only=True)
        except Exception as exc:  # noqa: BLE001 - the lane must never die
            self._warn("index", f"nbtracker's indexer hit {exc!r}; it keeps going.")
        return None if self._stop.is_set() else HEARTBEAT_INTERVAL_S

    def mark_dirty(self) -> None:
        """Metadata changed (config, tags, ...): refresh run.json and the catalog soon."""
        self.catalog_dirty = True
        self._index_wake.set()

    def stop(self) -> None:
        """Stop the flush and index jobs (the caller flushes the rest)."""
        self._stop.set()
        self.wake.cancel()
        self._index_wake.cancel()

    def close(self) -> None:
        """Release the flush connection (after the final flush)."""
        with self._lock:
            self._close_flush_connection()

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
            self._flush_con = _flush_database().cursor()
        return self._flush_con

    def _close_flush_connection(self) -> None:
        con, self._flush_con = self._flush_con, None
        if con is None:
            return
        if self._wide:  # the database is shared: back to one thread after a wide final flush
            self._wide = False
            try:
                con.execute(f"SET threads = {_FLUSH_CONFIG['threads']:d}")
            except Exception:  # noqa: BLE001, S110 - closed below
                pass
        con.close()

    def merge(self, *, recent_only: bool = False) -> None:
        """Merge history segments into one file (one merge at a time per run)."""
        with self._merge_lock:
            try:
                segments.compact(self.hdir, recent_only=recent_only, writer=self.wid)
            except Exception as exc:  # noqa: BLE001
                self._warn("merge", f"could not merge history segments ({exc!r})")

    def flush_rows(self, *, final: bool = False, limit: int | None = None) -> int:
        """Write what is buffered now, without touching run.json or the catalog.

        While storage fails (a full disk, a folder gone read-only), rows wait in memory and
        are retried with a growing pause (up to ``MAX_BACKOFF_S``); ``final`` tries at once.
        """
        with self._lock:
            if final and self._flush_con is not None and len(self.buffer) >= FINAL_WIDE_ROWS:
                # the run is over: its last big batch may use more than one core
                try:
                    self._wide = True
                    self._flush_con.execute(f"SET threads = {FINAL_THREADS:d}")
                except Exception:  # noqa: BLE001, S110 - only a speed-up
                    pass
            if threading.current_thread() is threading.main_thread() or len(self.buffer) < 512:
                return self._flush_rows(final, limit)
            with _QuickSwitches():
                return self._flush_rows(final, limit)

    def relieve(self) -> None:
        """Called by ``log()`` when the writer thread has fallen ``BACKPRESSURE_ROWS`` behind:
        keep memory bounded without a long stall in the training loop. While storage
        fails, the waiting rows are only thinned (never a write attempt here); otherwise
        ``log()`` writes the oldest ``RELIEVE_ROWS`` rows itself, unless the writer thread
        is writing right now (then it returns at once, up to ``HARD_CAP_ROWS``)."""
        failing = bool(self._retry) or time.monotonic() < self._retry_at
        blocking = len(self.buffer) >= HARD_CAP_ROWS
        if not self._lock.acquire(blocking=blocking):
            return
        try:
            if failing:
                buf = self.buffer
                self._retry = self._bounded(self._retry + _take(buf, len(buf)))
            else:
                self._flush_rows(limit=RELIEVE_ROWS)
        finally:
            self._lock.release()

    def pending_rows(self) -> int:
        """Rows logged but not stored yet (buffered, or waiting for storage to recover)."""
        return len(self._retry) + len(self.buffer)

    def _flush_rows(self, final: bool = False, limit: int | None = None) -> int:
        buf = self.buffer
        n = len(buf) if limit is None or self._retry else min(limit, len(buf))
        rows = self._retry + _take(buf, n)
        if not rows:
            return 0
        if (
            not final
            and self._retry
            and (time.monotonic() < self._retry_at or not _has_space(self.hdir))
        ):
            self._retry = self._bounded(rows)  # storage failed a moment ago: wait
            return 0
        try:
            written = self._write_isolating(rows)
        except OSError as exc:  # disk full, permissions, folder gone: keep and retry
            self._backoff = min(MAX_BACKOFF_S, max(self._backoff * 2, 0.5))
            self._retry_at = time.monotonic() + self._backoff
            self._retry = self._bounded(rows)
            self._warn(
                "segment",
                f"nbtracker could not write history to {self.hdir} ({exc}). Your code "
                f"continues; {len(self._retry)} rows are kept in memory and retried (older "
                f"rows are thinned past {MAX_RETRY_ROWS:,}; a warning says how many).",
            )
            return 0
        if self._retry and self._backoff:
            self._warned.discard("segment")  # a later failure is news again
        self._retry = []
        self._backoff = 0.0
        return written

    def _bounded(self, rows: list[dict[Any, Any]]) -> list[dict[Any, Any]]:
        """Keep memory bounded while storage fails: past ``MAX_RETRY_ROWS`` rows, the older
        half is thinned to every other row (a coarser history of the past, the recent rows
        kept whole), with a warning saying how many rows were dropped."""
        if len(rows) <= MAX_RETRY_ROWS:
            return rows
        before = len(rows)
        while len(rows) > MAX_RETRY_ROWS:
            half = len(rows) // 2
            rows = rows[:half:2] + rows[half:]
        self.rows_dropped += before - len(rows)
        self._warned.discard("thinned")
        self._warn(
            "thinned",
            f"nbtracker still cannot write history to {self.hdir}; to bound memory, "
            f"{self.rows_dropped:,} older rows were dropped so far (every other row of the "
            "oldest half is kept). Free disk space to keep the rest.",
        )
        return rows

    def _write_isolating(self, rows: list[dict[Any, Any]]) -> int:
        """Write ``rows``; when a value breaks the write (an int DuckDB cannot hold, text that
        is not UTF-8, an odd type), clean the rows value by value and, if that still fails,
        split them until the rows that fail are found: those are dropped with one warning
        naming their keys, and every other row is stored."""
        try:
            self._write(rows)
            return len(rows)
        except OSError:
            raise
        except Exception:  # noqa: BLE001 - a value, not the disk: find it
            pass
        cleaned = [self._clean_row(r) for r in rows]
        return self._write_split(cleaned)

    def _write_split(self, rows: list[dict[Any, Any]]) -> int:
        try:
            self._write(rows)
            return len(rows)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001
            if len(rows) > 1:
                mid = len(rows) // 2
                return self._write_split(rows[:mid]) + self._write_split(rows[mid:])
            row = rows[0]
            step, keys = row[segments.STEP_KEY], segments.user_keys(row)
            self.rows_dropped += 1
            self.values_dropped += len(keys)
            self._warned.discard("badrow")
            self._warn(
                "badrow",
                f"nbtracker could not store the row of step {step} (keys "
                f"{', '.join(map(repr, keys[:10]))}): {exc!r}; it was skipped "
                f"({self.rows_dropped} rows skipped so far), every other row is stored.",
            )
            return 0

    def _clean_row(self, row: dict[Any, Any]) -> dict[Any, Any]:
        out = {}
        for k, v in row.items():
            if k.__class__ is int:  # the row's step and time
                out[k] = v
                continue
            name = clean_text(k, f"the key {k!r}") if k.__class__ is str else str(k)
            cls = v.__class__
            if cls is str:
                v = clean_text(v, f"the value of {name!r}")
            elif cls is int:
                v = clean_int(v, f"the value of {name!r}")
            elif cls not in (float, bool):
                v = _safe_str(v)
            out[name] = v
        return out

    def _write(self, rows: list[dict[Any, Any]]) -> None:
        self.hdir.mkdir(parents=True, exist_ok=True)
        path = self.hdir / segments.segment_name(self.seq, self.seq, self.wid)
        if segments.write_own(rows, self.key_types, path, self.text_keys):
            pass  # a few values, or numbers only
        elif (
            not self._warmed.is_set() and (values := segments.value_count(rows)) <= COLD_MAX_VALUES
        ):
            con = self._flush_connection()
            import duckdb

            if values > LEAN_AFTER_VALUES and not self._lean:
                self._lean = True  # (a database-wide setting: once is enough)
                _make_lean(con)
            try:
                segments.write_buffered(con, rows, self.key_types, path)
            except duckdb.IOException as exc:  # storage trouble, not a value: retry later
                raise OSError(str(exc)) from exc
        else:  # a huge flush: pyarrow from now on (less memory per value)
            self._wait_warm()
            self._close_flush_connection()
            steps, stamps, dicts = segments.unpack(rows)
            table = segments.rows_to_long(steps, stamps, dicts, self.key_types)
            del dicts
            segments.write_parquet_atomic(table, path)
            del table
            _release_arrow_memory()
        self.seq += 1
        self.rows_written += len(rows)
        self.flushes += 1

    def _warn(self, what: str, msg: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(msg, StorageWarning, stacklevel=2)


def _take(buf: deque[dict[Any, Any]], n: int) -> list[dict[Any, Any]]:
    """The ``n`` oldest rows of ``buf``, in one C-level loop: a Python loop here would hand
    the GIL back and forth with the training thread every few ms while it runs."""
    return list(starmap(buf.popleft, repeat((), n)))


class _Idle:
    """The writer's jobs before ``start()``: waking or stopping them does nothing."""

    def set(self) -> None:
        pass

    def is_set(self) -> bool:
        return True

    def cancel(self, *, wait: bool = False) -> None:
        pass


# While a background flush runs beside a busy training thread, every time the flush takes
# the GIL back (between numpy steps, around each DuckDB call and its scan) it waits for the
# interpreter's switch interval (5 ms by default): a 20k-row flush took ~370 ms beside a
# busy thread instead of ~75 ms. During a flush the interval is 0.5 ms (~100 ms), then the
# process's own value comes back. A thread that does not compete for the GIL is unaffected.
FLUSH_SWITCH_INTERVAL_S = 0.0005
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


class _QuickSwitches:
    def __enter__(self) -> None:
        global _switch_users, _switch_saved
        with _switch_lock:
            _switch_users += 1
            if _switch_users == 1:
                _switch_saved = sys.getswitchinterval()
                if _switch_saved > FLUSH_SWITCH_INTERVAL_S:
                    sys.setswitchinterval(FLUSH_SWITCH_INTERVAL_S)

    def __exit__(self, *exc: object) -> None:
        global _switch_users
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0 and sys.getswitchinterval() == FLUSH_SWITCH_INTERVAL_S:
                sys.setswitchinterval(_switch_saved)  # (unless the program set its own since)


def _has_space(path: Path, need: int = 1 << 20) -> bool:
    """A cheap check before retrying a big write on storage that failed: at least ``need``
    bytes free (True when it cannot be told: then the write itself decides)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return True
    return st.f_bavail * st.f_frsize >= need


_importing: list[threading.Event] = []  # warm-up imports running in a thread


def _flush_database() -> Any:
    global _flush_db
    with _flush_db_lock:
        if _flush_db is None or _flush_db[0] != os.getpid():
            import duckdb

            from .catalog import DUCKDB_CONFIG

            if _flush_db is not None:
                _fork_leaks.append(_flush_db[1])
            db = duckdb.connect(":memory:", config={**DUCKDB_CONFIG, **_FLUSH_CONFIG})
            _flush_db = (os.getpid(), db)
        return _flush_db[1]


def _make_lean(con: Any) -> None:
    """Big batches from this writer: its database gives memory back after each statement
    (RSS over 1M steps ~19 MB lower, for ~25 ms more per 250k values)."""
    for stmt in _LEAN_SETTINGS:
        try:
            con.execute(stmt)
        except Exception:  # noqa: BLE001, S110 - only memory: an older DuckDB
            pass


def _before_fork() -> None:
    """A fork() while a thread imports would leave the child's module lock held forever:
    let a running warm-up import finish first (at most a few seconds, once per process)."""
    for ev in list(_importing):
        ev.wait(10.0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)


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
