"""The catalog rows of finished runs, queued and written in batches by one thread per
process (see :mod:`nbtracker.catalog` for the catalog itself)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

# Catalog rows are written in batches by one thread per process: each catalog write copies
# the whole catalog file (one process writes at a time), so one write per finished run cost
# a loop of short runs ~50 ms a run. The catalog is a cache of the run folders' run.json
# (readers catch up from any run.json newer than its row), so a row a moment late, or lost
# with a killed process, loses nothing.
CATALOG_BATCH_S = 0.5
_cat_cond = threading.Condition()
_cat_pending: dict[str, tuple[Any, dict[str, dict[str, Any]]]] = {}  # path -> (store, rows)
_cat_busy = 0  # rows taken by the flusher and not written yet
_cat_thread: threading.Thread | None = None


def _catalog_later(store: Any, rec: dict[str, Any]) -> None:
    global _cat_thread
    with _cat_cond:
        _, rows = _cat_pending.setdefault(str(store.catalog.path), (store, {}))
        rows[str(rec.get("dir"))] = rec
        if _cat_thread is None or not _cat_thread.is_alive():
            _cat_thread = threading.Thread(target=_catalog_loop, name="nbtracker-catalog",
                                           daemon=True)  # fmt: skip
            _cat_thread.start()
        _cat_cond.notify_all()


def _catalog_loop() -> None:
    cost = 0.0
    while True:
        with _cat_cond:
            while not _cat_pending:
                _cat_cond.wait()
        # let more finished runs join this write; a write copies the whole catalog, so its
        # cost grows with the store (~0.2 s at 1,000 runs): at most ~1/5 of the time on it
        time.sleep(max(CATALOG_BATCH_S, 4 * cost))
        t = time.monotonic()
        if not flush_catalog(timeout=5.0):
            time.sleep(CATALOG_BATCH_S * 4)  # busy (another process writes): a bit later
        cost = time.monotonic() - t


def flush_catalog(timeout: float = 5.0) -> bool:
    """Write the catalog rows waiting in this process now; False when some could not be
    written (they stay queued)."""
    global _cat_busy
    with _cat_cond:
        batch = list(_cat_pending.items())
        _cat_pending.clear()
        _cat_busy += 1
    ok = True
    try:
        for path, (store, rows) in batch:
            if store.catalog_upsert(list(rows.values()), timeout=timeout):
                continue
            ok = False
            with _cat_cond:  # keep them, unless a newer row of the run came meanwhile
                _, now = _cat_pending.setdefault(path, (store, {}))
                for key, rec in rows.items():
                    now.setdefault(key, rec)
    finally:
        with _cat_cond:
            _cat_busy -= 1
            _cat_cond.notify_all()
    return ok


def _wait_catalog(timeout: float) -> None:
    """At exit and for :func:`wait_for_background`: the queued catalog rows written."""
    deadline = time.monotonic() + timeout
    while True:
        with _cat_cond:
            while _cat_busy and time.monotonic() < deadline:  # the flusher's batch first
                _cat_cond.wait(max(0.0, deadline - time.monotonic()))
            if not _cat_pending or time.monotonic() >= deadline:
                return
        if not flush_catalog(timeout=max(0.1, min(5.0, deadline - time.monotonic()))):
            return  # busy or failing: the rows are in the run folders anyway


def _catalog_after_fork() -> None:
    global _cat_cond, _cat_thread, _cat_busy
    _cat_cond = threading.Condition()
    _cat_pending.clear()  # the parent writes its own rows
    _cat_thread = None
    _cat_busy = 0


os.register_at_fork(after_in_child=_catalog_after_fork)
