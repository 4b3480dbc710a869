"""Store: one storage root (run folders, history Parquet files, the DuckDB catalog)."""

from __future__ import annotations

import atexit
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import _paths, segments
from ._util import atomic_write_json, pid_alive, read_json
from .catalog import Catalog, CatalogBusy
from .errors import RunBusy, StorageWarning

RUN_FILE = "run.json"
_background: list[threading.Thread] = []
_durable: list[threading.Event] = []  # set once a finishing run's data and record are on disk
_bg_lock = threading.Lock()


def wait_for_durable(timeout: float = 10.0) -> None:
    """Wait until every run finished in this process has its last rows and final record on
    disk (what readers need; compaction and indexing may still be going on)."""
    if not _durable:
        return
    deadline = time.monotonic() + timeout
    with _bg_lock:
        pending = list(_durable)
    for ev in pending:
        ev.wait(timeout=max(0.0, deadline - time.monotonic()))
    with _bg_lock:
        _durable[:] = [ev for ev in _durable if not ev.is_set()]


@atexit.register
def wait_for_background(timeout: float = 10.0) -> None:
    """Wait for finished runs' compaction and catalog updates too (runs at exit)."""
    if not _background:
        return
    deadline = time.monotonic() + timeout
    with _bg_lock:
        pending = list(_background)
    for t in pending:
        if t is not threading.current_thread():
            t.join(timeout=max(0.0, deadline - time.monotonic()))
    with _bg_lock:
        _background[:] = [t for t in _background if t.is_alive()]
def _after_fork_child() -> None:
    """In a forked child: the parent's finishing threads do not exist here; never wait on
    them (they would keep the child from exiting)."""
    global _bg_lock
    _bg_lock = threading.Lock()
    _background.clear()
    _durable.clear()


HISTORY_DIR = "history"
WRITER_LOCK = ".writer.lock"
STALE_HEARTBEAT_S = 90.0


def process_gone(rec: dict[str, Any], now: float | None = None) -> bool:
    """True when the process writing a 'running' run is gone: its pid is dead (same host),
    or its heartbeat is older than ``STALE_HEARTBEAT_S`` (another host). Reads only."""
    from ._util import HOSTNAME

    if rec.get("host") == HOSTNAME and rec.get("pid"):
        return not pid_alive(int(rec["pid"]), rec.get("pid_start"))
    now = time.time() if now is None else now
    return now - float(rec.get("heartbeat_at") or 0) > STALE_HEARTBEAT_S


def remove_temp_files(run_dir: Path) -> int:
    """Delete the temp files a killed process left in an ended run's folder (every file
    nbtracker writes goes to ``.<name>.<pid>.tmp`` first and is renamed; a leftover one is
    never read). Returns how many were removed."""
    n = 0
    for dirpath, _, names in os.walk(run_dir):
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    n += 1
                except OSError:
                    pass
    return n


class Store:
    """Everything under one root folder.

    Parameters
    ----------
    root : path, optional
        The storage folder. Default: ``$NBTRACKER_DIR`` or ``./nbruns``.

    Layout::

        <root>/nbtracker.duckdb                      catalog (derived; ``nbtracker repair``)
        <root>/runs/<project>/<run_id>/run.json      the run's own record (source of truth)
        <root>/runs/<project>/<run_id>/history/      h-<first>-<last>.parquet segments
        <root>/runs/<project>/<run_id>/media/        images, tables, files
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = _paths.resolve_root(root)
        self.catalog = Catalog(self.root / _paths.CATALOG_NAME)
        self.removed_temp_files = 0  # by the last repair()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- run folders -----------------------------------------------------------------------
    def run_dir(self, project: str, run_id: str) -> Path:
        return _paths.run_dir(self.root, project, run_id)

    def history_dir(self, rdir: Path) -> Path:
        return rdir / HISTORY_DIR

    def write_record(self, rdir: Path, rec: dict[str, Any]) -> None:
        atomic_write_json(rdir / RUN_FILE, rec)

    def lock_run(self, rdir: Path) -> Callable[[], None]:
        """Take the run's writer lock (one live writing process per run; a forked child
        shares its parent's); return the function that releases it.

        Raises
        ------
        RunBusy
            Another live process writes this run (the lock dies with its process, so a
            crashed run can always be resumed).
        """
        import fcntl

        rdir.mkdir(parents=True, exist_ok=True)
        path = rdir / WRITER_LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a run this process just finished: wait until stored
                wait_for_durable()
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            msg = (
                f"run {rdir.name} in {self.root} is being written by another process "
                f"({holder}). Wait for it to finish, or leave id= out to start a new run."
            )
            raise RunBusy(msg) from None
        except OSError:
            os.close(fd)
            raise
        from ._util import HOSTNAME

        info = f"pid {os.getpid()} on {HOSTNAME}".encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
        except OSError:  # a full disk: the lock itself still holds
            pass
        state = {"fd": fd}

        def release() -> None:
            fd_ = state.pop("fd", None)
            if fd_ is not None and os.getpid() == owner:
                try:
                    os.close(fd_)
                except OSError:
                    pass

        owner = os.getpid()
        return release

    def discard_run_dir(self, rdir: Path) -> None:
        """Remove a run folder that ``init()`` created and then could not use (it holds
        at most the writer lock and an unfinished first record)."""
        for name in (WRITER_LOCK, RUN_FILE):
            try:
                (rdir / name).unlink()
            except OSError:
                pass
        try:
            rdir.rmdir()
        except OSError:  # something else is in it: leave it
            pass

    def read_record(self, rdir: Path) -> dict[str, Any] | None:
        wait_for_durable()
        try:
            rec = read_json(rdir / RUN_FILE)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except ValueError:  # never written torn (atomic), but be safe with hand edits
            return None
        rec["dir"] = str(rdir.relative_to(self.root))
        return rec

    def project_dirs(self) -> list[Path]:
        base = self.root / "runs"
        try:
            return [Path(e.path) for e in os.scandir(base) if e.is_dir()]
        except FileNotFoundError:
            return []

    def iter_run_dirs(self, project: str | None = None) -> Iterator[tuple[Path, float]]:
        """Yield ``(run folder, run.json mtime)`` for every run (of one project)."""
        wait_for_durable()
        pdirs = [_paths.project_dir(self.root, project)] if project else self.project_dirs()
        for pdir in pdirs:
            try:
                entries = list(os.scandir(pdir))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                if not e.is_dir():
                    continue
                try:
                    mtime = os.stat(os.path.join(e.path, RUN_FILE)).st_mtime
                except FileNotFoundError:
                    continue
                yield Path(e.path), mtime

    def scan_runs(self, project: str | None = None) -> list[tuple[str, float]]:
        """``(folder relative to the root, run.json mtime)`` of every run; fast (strings)."""
        wait_for_durable()
        base = os.path.join(self.root, "runs")
        if project is not None:
            pnames = [_paths.slug(project)]
        else:
            try:
                pnames = [e.name for e in os.scandir(base) if e.is_dir()]
            except FileNotFoundError:
                return []
        out = []
        for pname in pnames:
            try:
                entries = list(os.scandir(os.path.join(base, pname)))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                try:
                    mtime = os.stat(e.path + "/" + RUN_FILE).st_mtime
                except (FileNotFoundError, NotADirectoryError):
                    continue
                out.append((f"runs/{pname}/{e.name}", mtime))
        return out

    def history_files(self, rdir: Path) -> list[Path]:
        wait_for_durable()
        return segments.list_files(rdir / HISTORY_DIR)[0]

    # -- liveness --------------------------------------------------------------------------
    def check_alive(self, rdir: Path, rec: dict[str, Any], *, now: float | None = None) -> dict[str, Any]:
        """Mark a 'running' run whose process is gone as 'crashed' (in its run.json too)."""
        if rec.get("state") != "running":
            return rec
        now = time.time() if now is None else now
        if process_gone(rec, now):
            fresh = self.read_record(rdir) or rec
            if fresh.get("state") == "running":
                fresh["state"] = "crashed"
                fresh["updated_at"] = now
                fresh.pop("dir", None)
                try:
                    self.write_record(rdir, fresh)
                except OSError:
                    pass
                fresh["dir"] = str(rdir.relative_to(self.root))
            rec = fresh
        return rec

    # -- catalog ---------------------------------------------------------------------------
    def catalog_upsert(self, records: list[dict[str, Any]], *, timeout: float = 2.0) -> bool:
        """Best-effort catalog update; False (and nothing raised) when it is busy or fails."""
        try:
            self.catalog.upsert(records, timeout=timeout)
            return True
        except CatalogBusy:
            return False
        except Exception as exc:  # noqa: BLE001 - the catalog is derived; never fatal
            warnings.warn(
                f"nbtracker could not update the catalog {self.catalog.path} ({exc}); runs are "
                "safe in their folders, run `nbtracker repair` to rebuild it.",
                StorageWarning,
                stacklevel=2,
            )
            return False

    def finalize_background(
        self,
        rdir: Path,
        final: Callable[[], dict[str, Any]],
        compact: Callable[[], None],
        *,
        sync: bool = False,
        done: Callable[[], None] | None = None,
    ) -> None:
        """Finish a run off the caller's thread: ``final()`` flushes the last rows and
        returns the final record; then run.json, compaction and the catalog follow.

        ``finish()`` thus returns at once. Readers in this process wait until the rows and
        the final record are on disk (:func:`wait_for_durable`); the process waits for the
        rest at exit (:func:`wait_for_background`). Killed before the record is written,
        the run is reported as crashed and at most the last rows are lost; killed later,
        nothing is lost (compaction is atomic, the catalog is derived).
        """

        durable = threading.Event()

        def work() -> None:
            try:
                rec = final()
                try:
                    self.write_record(rdir, rec)
                except OSError as exc:
                    warnings.warn(f"nbtracker could not write {rdir / RUN_FILE} ({exc})", StorageWarning, stacklevel=1)
            finally:
                if done is not None:
                    done()  # the run may be resumed now (compaction is this writer's own)
                durable.set()  # all rows and the final state are on disk: readers may go
            compact()
            rec = dict(rec, dir=str(rdir.relative_to(self.root)))
            try:
                rec["json_mtime"] = os.stat(rdir / RUN_FILE).st_mtime
            except OSError:
                rec["json_mtime"] = None
            self.catalog_upsert([rec], timeout=5.0)

        if sync:  # at interpreter exit no new thread may import anything
            work()
            return
        # not a daemon: a script that ends right after finish() waits for it
        t = threading.Thread(target=work, name="nbtracker-finalize", daemon=False)
        with _bg_lock:
            _background.append(t)
            _durable.append(durable)
        t.start()

    def all_records(self, project: str | None = None) -> list[dict[str, Any]]:
        out = []
        for rdir, mtime in self.iter_run_dirs(project):
            rec = self.read_record(rdir)
            if rec is not None:
                rec["json_mtime"] = mtime
                out.append(self.check_alive(rdir, rec))
        return out

    def repair(self) -> int:
        """Rebuild the catalog from the run folders (compacting ended runs' history and
        removing the temp files killed processes left there, counted in
        ``removed_temp_files``); return the number of runs indexed."""
        records = self.all_records()
        self.removed_temp_files = 0
        for rec in records:
            if rec.get("state") != "running":
                rdir = self.root / rec["dir"]
                segments.compact_all(rdir / HISTORY_DIR)
                self.removed_temp_files += remove_temp_files(rdir)
        self.catalog.replace_all(records)
        return len(records)
