"""Store: one storage root (run folders, history Parquet files, the DuckDB catalog)."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import _paths, segments
from ._catalog_queue import _catalog_later, _wait_catalog
from ._util import atomic_write_json, pid_alive, read_json
from .catalog import Catalog, CatalogBusy
from .errors import RunBusy, StorageWarning

RUN_FILE = "run.json"
_background: list[threading.Event] = []  # set once a finishing run's work is all done
_durable: list[threading.Event] = []  # set once a finishing run's data and record are on disk
_released: list[threading.Event] = []  # ... once its writer lock is let go (may be resumed)
_bg_lock = threading.Lock()


def wait_for_durable(timeout: float = 10.0) -> None:
    """Wait until every run finished in this process has its last rows and final record on
    disk (what readers need; compaction and indexing may still be going on)."""
    _wait_all(_durable, timeout)


def wait_for_released(timeout: float = 15.0) -> None:
    """Wait until every run finished in this process is completely written and may be
    changed by others (resumed, edited through the Api)."""
    _wait_all(_released, timeout)


def _on_finish_lane() -> bool:
    """Called from the thread that finishes runs (``_lanes.FINISH``)."""
    lanes = sys.modules.get("nbtracker._lanes")
    return lanes is not None and lanes.FINISH.is_current()


def _wait_all(events: list[threading.Event], timeout: float) -> None:
    if not events:
        return
    if _on_finish_lane():
        return  # a finishing run's job: those before it are done, those after wait for it
    deadline = time.monotonic() + timeout
    with _bg_lock:
        pending = list(events)
    for ev in pending:
        ev.wait(timeout=max(0.0, deadline - time.monotonic()))
    with _bg_lock:
        events[:] = [ev for ev in events if not ev.is_set()]


@atexit.register
def wait_for_background(timeout: float = 10.0) -> None:
    """Wait for finished runs' compaction and catalog updates too (runs at exit)."""
    deadline = time.monotonic() + timeout
    _wait_all(_background, timeout)
    _wait_catalog(max(0.5, deadline - time.monotonic()))


# Finishing runs' work runs on the FINISH lane (one daemon thread per process: a thread
# started per finish() cost a loop of short runs ~1.4 ms a run, waiting for the GIL). A
# program that ends right after finish() must still wait for it, as it would for a
# non-daemon thread: the interpreter's shutdown calls _drain_finishing before it stops.
FINISH_DRAIN_S = 600.0
MAX_PENDING_FINISHES = 16  # finish() waits for the oldest past this many (~0.1 s of work)
_lane_finish = hasattr(threading, "_register_atexit")


def _drain_finishing() -> None:
    _wait_all(_background, FINISH_DRAIN_S)


if _lane_finish:
    try:
        threading._register_atexit(_drain_finishing)  # type: ignore[attr-defined]
    except RuntimeError:  # imported while the interpreter shuts down
        _lane_finish = False


def _after_fork_child() -> None:
    """In a forked child: the parent's finishing threads do not exist here; never wait on
    them (they would keep the child from exiting)."""
    global _bg_lock
    _bg_lock = threading.Lock()
    _background.clear()
    _durable.clear()


HISTORY_DIR = "history"
WORKSPACE_VIEW_FILE = ".workspace-view.json"  # a project's saved workspace view (dot: no run)
FILES_DIR = "files"
ALERTS_FILE = "alerts.jsonl"
ARTIFACTS_DIR = "artifacts"
WRITER_LOCK = ".writer.lock"
SWEEPS_DIR = "sweeps"
SWEEP_FILES = {"record": "sweep.json", "journal": "optuna.journal", "lock": ".sweep.lock",
               "args": "args"}  # fmt: skip
# What nbtracker.capture writes into a run folder (as W&B keeps them among a run's files)
SYSTEM_DIR = "system"  # system metrics: history segments of their own (stream="system")
CAPTURE_FILES = {
    "console": "output.log", "console_old": "output.log.1", "diff": "diff.patch",
    "requirements": "requirements.txt", "code": "code",
}  # fmt: skip


def capture_path(rdir: Path, what: str) -> Path:
    """Where the capture keeps ``what`` (a key of ``CAPTURE_FILES``) in a run folder."""
    return rdir / FILES_DIR / CAPTURE_FILES[what]


def stream_dir(rdir: Path, stream: str = "default") -> Path:
    """The folder of a run's history stream: ``default`` (logged metrics) or ``system``."""
    if stream in ("default", "history"):
        return rdir / HISTORY_DIR
    if stream in ("system", "events"):
        return rdir / SYSTEM_DIR
    from .errors import UsageError

    msg = f"stream={stream!r}: use 'default' (logged metrics) or 'system' (system metrics)"
    raise UsageError(msg)


STALE_HEARTBEAT_S = 90.0


def alerts_path(rdir: str | os.PathLike[str]) -> Path:
    """A run folder's alerts file (readers outside this module ask here)."""
    return Path(rdir) / ALERTS_FILE


def record_file(rdir: str | os.PathLike[str]) -> Path:
    """The file holding a run folder's record (readers outside this module ask here)."""
    return Path(rdir) / RUN_FILE


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / RUN_FILE).is_file()


def root_of(rdir: str | os.PathLike[str]) -> Path:
    """The store root a run folder lives in (``<root>/runs/<project>/<run>``)."""
    return Path(rdir).resolve().parents[2]


def history_segments(rdir: str | os.PathLike[str]) -> list[Path]:
    """A run folder's history files, listed now (no wait for this process's pending
    writes: for followers polling a run another thread or process writes)."""
    return segments.list_files(Path(rdir) / HISTORY_DIR)[0]


OVERVIEW_PREFIX = "overview-"  # overview-<signature>-w<width>-t<top step>.parquet


def history_signature(files: list[Path]) -> str:
    """A short fingerprint of a run's history files (names, sizes, times): an overview
    built from them is only used while they are exactly these."""
    import hashlib

    h = hashlib.sha1(usedforsecurity=False)
    for f in sorted(map(Path, files)):
        st = os.stat(f)
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}|".encode())
    return h.hexdigest()[:16]


def overview_path(rdir: str | os.PathLike[str], signature: str, width: int, top: int) -> Path:
    """Where a run's history overview (its buckets of ``width`` steps, built after it
    finished; see :func:`nbtracker.overlay.write_overview`) is kept."""
    return Path(rdir) / f"{OVERVIEW_PREFIX}{signature}-w{int(width)}-t{int(top)}.parquet"


def find_overview(rdir: str | os.PathLike[str], signature: str) -> tuple[Path, int, int] | None:
    """``(path, width, top step)`` of the run's overview built from the history files
    with ``signature``, or None (none, or built from other files: stale)."""
    want = f"{OVERVIEW_PREFIX}{signature}-w"
    try:
        entries = list(os.scandir(rdir))
    except OSError:
        return None
    for e in entries:
        if e.name.startswith(want) and e.name.endswith(".parquet"):
            try:
                w, t = e.name[len(want) : -len(".parquet")].split("-t")
                return Path(e.path), int(w), int(t)
            except ValueError:
                continue
    return None


def stale_overviews(rdir: str | os.PathLike[str], keep: Path | None = None) -> list[Path]:
    try:
        return [
            Path(e.path)
            for e in os.scandir(rdir)
            if e.name.startswith(OVERVIEW_PREFIX) and (keep is None or e.path != str(keep))
        ]
    except OSError:
        return []


def process_gone(rec: dict[str, Any], now: float | None = None) -> bool:
    """True when the process writing a 'running' run is gone: its pid is dead (same host),
    or its heartbeat is older than ``STALE_HEARTBEAT_S`` (another host). Reads only."""
    from ._util import HOSTNAME

    if rec.get("host") == HOSTNAME and rec.get("pid"):
        return not pid_alive(int(rec["pid"]), rec.get("pid_start"))
    now = time.time() if now is None else now
    return now - float(rec.get("heartbeat_at") or 0) > STALE_HEARTBEAT_S


def remove_temp_files(run_dir: Path, older_than_s: float | None = None) -> int:
    """Delete the temp files a killed process left in an ended run's folder (every file
    nbtracker writes goes to ``.<name>.<pid>.tmp`` first and is renamed; a leftover one is
    never read); with ``older_than_s``, only those not touched for that long (a folder
    that live processes share: the artifact store). Returns how many were removed."""
    n = 0
    cutoff = time.time() - older_than_s if older_than_s is not None else None
    for dirpath, _, names in os.walk(run_dir):
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                try:
                    if (
                        cutoff is not None
                        and os.stat(os.path.join(dirpath, name)).st_mtime > cutoff
                    ):
                        continue
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
        <root>/runs/<project>/<run_id>/files/        what save() copied
        <root>/runs/<project>/<run_id>/alerts.jsonl  alert() calls
        <root>/artifacts/objects/ab/<sha256>         artifact contents, stored once
        <root>/artifacts/projects/<project>/<name>/  v<N>.json manifests, aliases, usage
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = _paths.resolve_root(root)
        self.catalog = Catalog(self.root / _paths.CATALOG_NAME)
        self.removed_temp_files = 0  # by the last repair()
        self.last_repair: RepairReport | None = None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- run folders -----------------------------------------------------------------------
    def run_dir(self, project: str, run_id: str) -> Path:
        return _paths.run_dir(self.root, project, run_id)

    def history_dir(self, rdir: Path) -> Path:
        return rdir / HISTORY_DIR

    # -- a project's saved workspace view (filter, sort, groups, chart settings) -----------
    def read_view(self, project: str) -> dict[str, Any] | None:
        """The runs workspace view last saved for ``project`` (None: none, or unreadable:
        it is only a convenience, never an error)."""
        try:
            got = read_json(_paths.project_dir(self.root, project) / WORKSPACE_VIEW_FILE)
        except (OSError, ValueError):
            return None
        return got if isinstance(got, dict) else None

    def write_view(self, project: str, view: dict[str, Any]) -> None:
        """Save ``project``'s workspace view (whole file, atomically; the last writer wins)."""
        pdir = _paths.project_dir(self.root, project)
        pdir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(pdir / WORKSPACE_VIEW_FILE, view)

    # -- saved files, alerts, artifacts (issue 13; the modules that use them: files.py,
    # alerts.py, artifacts/) -----------------------------------------------------------------
    def files_dir(self, rdir: Path) -> Path:
        """Where ``save()`` copies a run's files (``Api().run(...).files()`` lists them)."""
        return rdir / FILES_DIR

    def alerts_file(self, rdir: Path) -> Path:
        """The run's alerts, one JSON line each (appended)."""
        return alerts_path(rdir)

    def artifact_objects_dir(self) -> Path:
        """Artifact file contents, stored once by SHA-256 (``<2 hex>/<64 hex>``)."""
        return self.root / ARTIFACTS_DIR / "objects"

    def artifact_object(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            msg = f"not a SHA-256 digest: {sha256!r}"
            raise ValueError(msg)
        return self.artifact_objects_dir() / sha256[:2] / sha256

    def artifact_collection_dir(self, project: str, name: str) -> Path:
        """One artifact name's versions (``v<N>.json``), aliases, usage log and lock."""
        return self.root / ARTIFACTS_DIR / "projects" / _paths.slug(project) / _paths.slug(name)

    def artifact_version_file(self, cdir: Path, index: int) -> Path:
        return cdir / f"v{int(index)}.json"

    def artifact_version_indexes(self, cdir: Path) -> list[int]:
        """The committed versions of a collection (a manifest is linked into place whole)."""
        out = []
        try:
            names = os.listdir(cdir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        for n in names:
            if n.startswith("v") and n.endswith(".json") and n[1:-5].isdigit():
                out.append(int(n[1:-5]))
        return sorted(out)

    def artifact_aliases_file(self, cdir: Path) -> Path:
        return cdir / "aliases.json"

    def artifact_usage_file(self, cdir: Path) -> Path:
        return cdir / "usage.jsonl"

    def artifact_lock_file(self, cdir: Path) -> Path:
        return cdir / ".lock"

    def artifact_collection_dirs(self, project: str | None = None) -> list[Path]:
        """Every artifact name's folder (of one project)."""
        base = self.root / ARTIFACTS_DIR / "projects"
        pdirs = [base / _paths.slug(project)] if project is not None else _subdirs(base)
        return [c for p in pdirs for c in _subdirs(p)]

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
                wait_for_released()
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
        """The run's record (its ``run.json``), or None when there is none. A run.json that
        cannot be read (empty, cut short, not a record) is None too, with one
        :class:`StorageWarning` naming it; ``nbtracker repair`` rebuilds it."""
        wait_for_durable()
        rec, problem = self._read_record(rdir)
        if problem is not None:
            _warn_record(rdir / RUN_FILE, problem)
        return rec

    def _read_record(self, rdir: Path) -> tuple[dict[str, Any] | None, str | None]:
        """``(record, None)``, ``(None, None)`` when there is no run.json, or ``(None, why)``
        when it cannot be read."""
        path = rdir / RUN_FILE
        try:
            rec = read_json(path)
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        except ValueError as exc:  # written atomically, so: a disk error or a hand edit
            empty = getattr(exc, "doc", None) == ""
            return None, "empty" if empty else f"not valid JSON ({exc})"
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror or exc})"
        if not isinstance(rec, dict):
            return None, "not a run record (not a JSON object)"
        if not isinstance(rec.get("id"), str) or not isinstance(rec.get("project"), str):
            return None, "not a run record (no id or project)"
        rec["dir"] = str(rdir.relative_to(self.root))
        return rec, None

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

    def history_files(self, rdir: Path, stream: str = "default") -> list[Path]:
        wait_for_durable()
        return segments.list_files(stream_dir(rdir, stream))[0]

    # -- sweeps ----------------------------------------------------------------------------
    def sweep_dir(self, project: str, sweep_id: str) -> Path:
        """``<root>/sweeps/<project>/<sweep_id>/``: the sweep's record (``sweep.json``), its
        optuna journal and lock (see :meth:`sweep_file`)."""
        return self.root / SWEEPS_DIR / _paths.slug(project) / _paths.slug(sweep_id)

    def sweep_file(self, sdir: Path, what: str) -> Path:
        """A sweep's file: ``record``, ``journal``, ``lock``, or ``args`` (a folder)."""
        return sdir / SWEEP_FILES[what]

    def sweep_dirs(self, project: str | None = None, sweep_id: str | None = None) -> list[Path]:
        """Folders of the stored sweeps (of one project, or with one id in any project)."""
        base = self.root / SWEEPS_DIR
        pdirs = [base / _paths.slug(project)] if project is not None else []
        if project is None:
            try:
                pdirs = [Path(e.path) for e in os.scandir(base) if e.is_dir()]
            except (FileNotFoundError, NotADirectoryError):
                return []
        out = []
        for pdir in pdirs:
            try:
                names = [e.name for e in os.scandir(pdir) if e.is_dir()]
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                if sweep_id is None or name == _paths.slug(sweep_id):
                    if (pdir / name / SWEEP_FILES["record"]).is_file():
                        out.append(pdir / name)
        return sorted(out)

    # -- liveness --------------------------------------------------------------------------
    def check_alive(
        self, rdir: Path, rec: dict[str, Any], *, now: float | None = None
    ) -> dict[str, Any]:
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
    def catalog_upsert_later(self, rec: dict[str, Any]) -> bool:
        """Queue a run's catalog row; this process writes its queued rows together within
        ``CATALOG_BATCH_S`` (and at exit). Always True: the row is queued."""
        _catalog_later(self, rec)
        return True

    def catalog_upsert(self, records: list[dict[str, Any]], *, timeout: float = 2.0) -> bool:
        """Best-effort catalog update; False (and nothing raised) when it is busy or fails."""
        try:
            self.catalog.upsert(records, timeout=timeout)
            self._catalog_failing = False
            return True
        except CatalogBusy:
            return False
        except Exception as exc:  # noqa: BLE001 - the catalog is derived; never fatal
            if getattr(self, "_catalog_failing", False):  # said once until it works again
                return False
            self._catalog_failing = True
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
        settle: Callable[[], dict[str, Any] | None] | None = None,
        done: Callable[[], None] | None = None,
    ) -> None:
        """Finish a run off the caller's thread: ``final()`` flushes the last rows and
        returns the final record; then run.json, ``settle()`` (may write and return a newer
        record), compaction and the catalog follow.

        ``finish()`` thus returns at once. Readers in this process wait until the rows and
        the final record are on disk (:func:`wait_for_durable`); the process waits for the
        rest at exit (:func:`wait_for_background`). Killed before the record is written,
        the run is reported as crashed and at most the last rows are lost; killed later,
        nothing is lost (compaction is atomic, the catalog is derived).
        """

        durable = threading.Event()
        released = threading.Event()

        def work() -> None:
            try:
                rec = final()
                try:
                    self.write_record(rdir, rec)
                except OSError as exc:
                    warnings.warn(
                        f"nbtracker could not write {rdir / RUN_FILE} ({exc})",
                        StorageWarning,
                        stacklevel=1,
                    )
            finally:
                durable.set()  # all rows and the final state are on disk: readers may go
                try:
                    if settle is not None:  # e.g. a late environment snapshot: a newer
                        rec = settle() or rec  # record, written already
                finally:
                    try:
                        if done is not None:
                            done()  # the run may be resumed now (compaction is its own)
                    finally:
                        released.set()
            compact()
            rec = dict(rec, dir=str(rdir.relative_to(self.root)))
            try:
                rec["json_mtime"] = os.stat(rdir / RUN_FILE).st_mtime
            except OSError:
                rec["json_mtime"] = None
            self.catalog_upsert_later(rec)

        if sync:  # at interpreter exit no new thread may import anything
            work()
            return
        finished = threading.Event()

        def job() -> None:
            try:
                work()
            finally:
                durable.set()  # (set by work() already unless it failed before)
                released.set()
                finished.set()

        with _bg_lock:  # (the lists keep only what is still pending: a bounded size)
            _background[:] = waiting = [e for e in _background if not e.is_set()]
            _background.append(finished)
            _durable[:] = [e for e in _durable if not e.is_set()]
            _durable.append(durable)
            _released[:] = [e for e in _released if not e.is_set()]
            _released.append(released)
        if len(waiting) >= MAX_PENDING_FINISHES and _lane_finish and not _on_finish_lane():
            # a loop of short runs outpacing its storage: wait for the oldest, so the
            # backlog (memory, and how stale readers' view is) stays bounded
            waiting[0].wait(FINISH_DRAIN_S)
        if _lane_finish:
            from . import _lanes

            _lanes.FINISH.soon(job, name="run finish")
        else:  # not a daemon: a script that ends right after finish() waits for it
            threading.Thread(target=job, name="nbtracker-finalize", daemon=False).start()

    def all_records(self, project: str | None = None) -> list[dict[str, Any]]:
        out = []
        for rdir, mtime in self.iter_run_dirs(project):
            rec = self.read_record(rdir)
            if rec is not None:
                rec["json_mtime"] = mtime
                out.append(self.check_alive(rdir, rec))
        return out

    def repair(self) -> int:
        """Check and fix every run folder, then rebuild the catalog from them; return the
        number of runs indexed. What was done is in ``last_repair`` (a
        :class:`RepairReport`; ``removed_temp_files`` too).

        - History files that cannot be read are moved aside, never deleted, to
          ``<run>/damaged/history/`` (the run's other files read again).
        - A run.json that is missing (while the run has history), empty or cut short is
          moved to ``<run>/damaged/`` and the record rebuilt: from the catalog's row for the
          run where one survives (config, summary, tags, name, state), and from the
          history (keys and their types, last step, times; summary: last values).
        - Ended runs' history is compacted and killed processes' temp files removed.
        - Runs a live process is writing are left alone.

        Whatever could not be fixed (or whose data could not be recovered) is listed in
        ``last_repair.problems``; one run's trouble never stops the others' repair.

        Raises
        ------
        StorageError
            The catalog path is a folder (nothing is changed then).
        """
        from .errors import StorageError

        report = self.last_repair = RepairReport()
        self.removed_temp_files = 0
        if self.catalog.path.is_dir():
            msg = (
                f"the catalog path {self.catalog.path} is a folder, not a DuckDB file: move it "
                "away (its runs are safe in runs/) and run `nbtracker repair` again."
            )
            raise StorageError(msg)
        old = self._catalog_rows()
        records = []
        for pdir in sorted(self.project_dirs()):
            try:
                rdirs = sorted(Path(e.path) for e in os.scandir(pdir) if e.is_dir())
            except OSError as exc:
                report.problems.append(f"{pdir}: cannot be listed ({exc.strerror or exc})")
                continue
            for rdir in rdirs:
                try:
                    rec = self._repair_run(rdir, old, report)
                except Exception as exc:  # noqa: BLE001 - one run's trouble never stops the rest
                    report.problems.append(f"{self._rel(rdir)}: {type(exc).__name__}: {exc}")
                    continue
                if rec is not None:
                    records.append(rec)
        try:
            self.catalog.replace_all(records)
        except Exception as exc:  # noqa: BLE001 - a read-only disk, a lock held for minutes
            why = "it is busy (held by another process)" if isinstance(exc, CatalogBusy) else exc
            report.problems.append(f"could not write the catalog {self.catalog.path}: {why}")
        else:
            report.indexed = len(records)
        # artifacts: what killed log_artifact() calls left (live ones write there too)
        report.removed_temp_files += remove_temp_files(self.root / ARTIFACTS_DIR, 3600.0)
        self.removed_temp_files = report.removed_temp_files
        return len(records)

    # -- repair helpers --------------------------------------------------------------------
    def _rel(self, rdir: Path) -> str:
        return str(rdir.relative_to(self.root))

    def _catalog_rows(self) -> dict[str, dict[str, Any]]:
        """The surviving catalog's run rows by folder (to rebuild a lost run.json); each
        row as JSON, so a catalog from an older version (fewer columns) serves too."""
        import json

        try:
            import duckdb

            con = duckdb.connect(":memory:")
            try:
                rows = self.catalog.select(
                    con, "SELECT CAST(to_json(r) AS VARCHAR) FROM {cat}.runs r", [], retries=5
                )
            finally:
                con.close()
        except Exception:  # noqa: BLE001 - no catalog to learn from: the folders alone
            return {}
        out = {}
        for (row,) in rows or ():
            rec = json.loads(row)
            rec["id"] = rec.pop("run_id", None)
            for k in ("config", "summary"):
                rec[k] = _loads(rec.get(k))
            if rec.get("dir") and rec["id"]:
                out[rec["dir"]] = rec
        return out

    def _writer_alive(self, rdir: Path) -> bool:
        """True when a live process holds the run's writer lock."""
        import fcntl

        try:
            fd = os.open(rdir / WRITER_LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)  # closing drops the lock if we took it
        return False

    def _move_aside(self, rdir: Path, path: Path, why: str, report: RepairReport) -> bool:
        """Move a damaged file to ``<run>/damaged/<its path in the run>`` (never delete)."""
        dest = rdir / DAMAGED_DIR / path.relative_to(rdir)
        n = 1
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{path.name}.{n}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        except OSError as exc:
            report.problems.append(
                f"{self._rel(path)} is damaged ({why}) and could not be moved aside "
                f"({exc.strerror or exc}); readers skip it"
            )
            return False
        report.moved.append((self._rel(path), self._rel(dest), why))
        return True

    def _repair_run(
        self, rdir: Path, old: dict[str, dict[str, Any]], report: RepairReport
    ) -> dict[str, Any] | None:
        from ._damage import deep_problem

        rel = self._rel(rdir)
        live = self._writer_alive(rdir)
        hdir = rdir / HISTORY_DIR
        if not live:
            effective, superseded, _ = segments.list_files(hdir)
            for p in [*effective, *superseded]:
                try:
                    problem = deep_problem(str(p))
                except FileNotFoundError:
                    continue
                if problem is not None and self._move_aside(rdir, p, problem, report):
                    report.lost.append(f"{self._rel(p)}: its rows are lost ({problem})")
        rec, problem = self._read_record(rdir)
        if rec is None:
            has_history = bool(segments.list_files(hdir)[0])
            if problem is None and not has_history:
                return None  # not a run folder (or a run that never got to write anything)
            what = f"run.json {problem}" if problem else "run.json is missing"
            if live:
                report.problems.append(
                    f"{rel}: {what}, but a live process is writing this run; "
                    "run `nbtracker repair` again when it has ended"
                )
                return None
            if problem is not None:
                self._move_aside(rdir, rdir / RUN_FILE, problem, report)
            rec, how = self._rebuild_record(rdir, old.get(rel))
            try:
                self.write_record(rdir, rec)
            except OSError as exc:
                report.problems.append(f"{rel}: {what}; could not write a rebuilt one ({exc})")
                return None
            report.rebuilt.append((rel, f"{what}; rebuilt {how}"))
            if "catalog" not in how:
                report.lost.append(
                    f"{rel}: config, notes and define_metric rules are lost ({what})"
                )
            rec["dir"] = rel
        rec = self.check_alive(rdir, rec)
        if rec.get("state") != "running" and not live:
            try:
                segments.compact_all(hdir)
                if (rdir / SYSTEM_DIR).is_dir():  # a crashed run's system metric segments
                    segments.compact_all(rdir / SYSTEM_DIR)
            except Exception as exc:  # noqa: BLE001
                report.problems.append(f"{rel}: could not compact its history ({exc})")
            report.removed_temp_files += remove_temp_files(rdir)
        try:
            rec["json_mtime"] = os.stat(rdir / RUN_FILE).st_mtime
        except OSError:
            rec["json_mtime"] = None
        return rec

    def _rebuild_record(self, rdir: Path, row: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        """A run record for a folder whose run.json is lost: the catalog's row where one
        survives, the history for the rest; return it and how it was made."""
        import json

        from ._util import to_jsonable
        from .query import history_facts

        facts = history_facts(self, rdir)
        now = time.time()
        rec: dict[str, Any] = {"schema": 1}
        if row is not None:
            for k in ("id", "project", "entity", "name", "notes", "group", "job_type", "tags",
                      "created_at", "updated_at", "heartbeat_at", "finished_at", "exit_code",
                      "host", "pid", "config", "summary", "metadata"):  # fmt: skip
                rec[k] = row.get(k)
            how = "from the catalog's row and the history"
        else:
            rec["id"] = _name_from_folder(rdir.name)
            rec["project"] = self._project_name(rdir)
            rec["config"] = {}
            rec["summary"] = facts["summary"]
            rec["tags"] = []
            how = "from the history"
        rec["state"] = row["state"] if row and row.get("state") in ENDED_STATES else "crashed"
        rec["created_at"] = rec.get("created_at") or facts["first_ts"] or now
        rec["updated_at"] = now
        rec["heartbeat_at"] = rec.get("heartbeat_at") or facts["last_ts"] or now
        rec.setdefault("finished_at", None)
        rec["last_step"] = facts["last_step"]
        rec["history_keys"] = kinds = facts["key_types"]
        for key, value in (rec.get("summary") or {}).items():  # the catalog's values know
            if kinds.get(key) in ("int", "float") and value.__class__ in (bool, int, float):
                kinds[key] = value.__class__.__name__
        rec["metrics"] = []
        rec["summary"] = rec.get("summary") or facts["summary"]
        rec["repaired"] = {"at": now, "how": how}
        rec = json.loads(json.dumps(to_jsonable(rec, "record", warn=False), default=str))
        return rec, how

    def _project_name(self, rdir: Path) -> str:
        """The real project name of a run folder: from a sibling run's record, else the
        folder name (exact when it is a safe name)."""
        pdir = rdir.parent
        try:
            siblings = [
                Path(e.path) for e in os.scandir(pdir) if e.is_dir() and Path(e.path) != rdir
            ]
        except OSError:
            siblings = []
        for sib in siblings:
            rec, _ = self._read_record(sib)
            if rec is not None and _paths.slug(rec["project"]) == pdir.name:
                return str(rec["project"])
        return _name_from_folder(pdir.name)


DAMAGED_DIR = "damaged"
ENDED_STATES = ("finished", "failed", "crashed")


class RepairReport:
    """What :meth:`Store.repair` did: ``moved`` (file, where to, why), ``rebuilt`` (run
    folder, how), ``lost`` (data that could not be recovered), ``problems`` (what could not
    be fixed), ``indexed`` runs and ``removed_temp_files``. ``ok`` is False when anything
    was lost or left unfixed."""

    def __init__(self) -> None:
        self.moved: list[tuple[str, str, str]] = []
        self.rebuilt: list[tuple[str, str]] = []
        self.lost: list[str] = []
        self.problems: list[str] = []
        self.indexed = 0
        self.removed_temp_files = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.problems

    def __repr__(self) -> str:
        return (
            f"<RepairReport indexed={self.indexed} moved={len(self.moved)} "
            f"rebuilt={len(self.rebuilt)} lost={len(self.lost)} problems={len(self.problems)}>"
        )


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(path) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _name_from_folder(folder: str) -> str:
    """The name a folder was made from (see :func:`_paths.slug`): the folder name itself
    when safe, or the prefix before ``~`` when it maps back to this folder; else the folder
    name (the real name is not recoverable from it)."""
    if "~" in folder:
        prefix = folder.split("~", 1)[0]
        if _paths.slug(prefix) == folder:
            return prefix
    return folder


def _loads(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value or {}


_warned_records: dict[str, tuple[int, int]] = {}


def _warn_record(path: Path, problem: str) -> None:
    """One StorageWarning per version of a run.json that cannot be read."""
    try:
        st = os.stat(path)
        ident = (st.st_size, st.st_mtime_ns)
    except OSError:
        ident = (-1, -1)
    if _warned_records.get(str(path)) == ident:
        return
    _warned_records[str(path)] = ident
    warnings.warn(
        f"nbtracker cannot read the run record {path} ({problem}); the run is shown from the "
        "catalog where it has one. `nbtracker repair` rebuilds the record from the run's files.",
        StorageWarning,
        stacklevel=4,
    )
