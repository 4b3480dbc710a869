"""Committing local run folders to a team store: in the background while runs train
(:class:`Committer`, one thread per process), and on demand (:func:`sync`)."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StorageWarning
from .remote import Remote, StoreUnavailable
from .url import StoreURL

RUN_FILE = "run.json"
ENDED = ("finished", "failed", "crashed")
SKIP_DIRS = ("damaged",)
MAX_BATCH_BYTES = 64 << 20  # objects per transaction: a long catch-up commits in pieces


def run_files(rdir: Path) -> dict[str, tuple[int, int]]:
    """``{path in the run folder: (size, mtime_ns)}`` of the files a team store keeps:
    everything but run.json (stored as the run's record), locks, temp files (their names
    start with a dot) and moved-aside damaged files."""
    out: dict[str, tuple[int, int]] = {}
    base = str(rdir)
    for dirpath, dirnames, names in os.walk(base):
        rel_dir = os.path.relpath(dirpath, base)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        else:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in names:
            if name.startswith(".") or (rel_dir == "." and name == RUN_FILE):
                continue
            try:
                st = os.stat(os.path.join(dirpath, name))
            except OSError:  # compacted away meanwhile
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def object_name(root: Path, rdir: Path, rel: str) -> str:
    return f"{rdir.relative_to(root).as_posix()}/{rel}"


@dataclass
class RunState:
    root: Path
    rdir: Path
    project: str = ""
    run_id: str = ""
    committed: dict[str, tuple[int, int]] | None = None  # None: ask the store first
    record_text: str | None = None  # last committed run.json
    ended: bool = False
    worker: str | None = None  # a shared run's worker rank (its label): see commit_run


def read_record_text(rdir: Path) -> tuple[str | None, dict[str, Any] | None]:
    try:
        text = (rdir / RUN_FILE).read_text(encoding="utf-8")
        rec = json.loads(text)
    except (OSError, ValueError):
        return None, None
    if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
        return None, None
    return text, rec


def _role_of(label: str) -> Any:
    from .._shared import Role

    return Role(label, primary=False)


def commit_run(remote: Remote, st: RunState) -> tuple[int, bool]:
    """Commit what is new in one run folder; return the number of files committed and
    whether the run's record was sent.
    Raises StoreUnavailable (nothing half-done stays visible: rows follow their objects)."""
    text, rec = read_record_text(st.rdir)
    if st.worker is not None:
        # A worker rank of a shared run. While the primary writes this folder too (same
        # machine, a running run.json), the primary's process commits it all. On a
        # machine of its own the folder holds only the workers' files (segments under
        # their writer ids, system metrics, console logs, ranks/<label>.json), and after
        # the primary has ended nobody else commits them: the worker does, never the
        # record (run.json is the primary's; readers fold ranks/ into it).
        from .._shared import earlier_record

        own = earlier_record(st.rdir, _role_of(st.worker))
        st.ended = bool(own) and own.get("state") in ENDED
        if rec is not None and rec.get("state") not in ENDED:
            return 0, False
        text = None
    elif rec is None:
        return 0, False  # no readable run.json yet (being created, or damaged: repair first)
    else:
        st.project, st.run_id = str(rec["project"]), str(rec["id"])
        st.ended = rec.get("state") in ENDED
    if st.committed is None:
        st.committed = remote.committed_files(st.project, st.run_id)
    files = run_files(st.rdir)
    todo = sorted(p for p, sig in files.items() if st.committed.get(p) != sig)
    n = 0
    while True:
        batch, size = [], 0
        while todo and (not batch or size < MAX_BATCH_BYTES):
            rel = todo.pop(0)
            try:
                data = (st.rdir / rel).read_bytes()
            except OSError:  # compacted away since the listing: its rows live on elsewhere
                continue
            batch.append((rel, data))
            size += len(data)
        objects = [(object_name(st.root, st.rdir, rel), data) for rel, data in batch]
        remote.put_objects(objects)
        rows = [
            (rel, len(data), files[rel][1], obj)
            for (rel, data), (obj, _) in zip(batch, objects, strict=True)
        ]
        last = not todo
        record = text if last and text != st.record_text else None
        if rows or record is not None:
            remote.commit(st.project, st.run_id, record, rows)
        for rel, size_, mtime, _ in rows:
            st.committed[rel] = (size_, mtime)
        n += len(rows)
        if last:
            if record is not None:
                st.record_text = record
            return n, record is not None


class Committer:
    """The background thread that commits the runs this process writes to one team
    store, every ``interval`` seconds; training never waits for it."""

    def __init__(self, url: StoreURL, interval: float) -> None:
        self.url = url
        self.interval = interval
        self.runs: dict[Path, RunState] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._final = False
        self._failing = False
        self._idle = threading.Event()
        self.last_error: str | None = None
        self.committed_files = 0
        self._thread = threading.Thread(target=self._loop, name="nbtracker-team", daemon=True)
        self._thread.start()

    def follow(self, root: Path, rdir: Path, *, worker: tuple[str, str, str] | None = None) -> None:
        """Commit this run from the next pass on (within ``interval`` seconds: the first
        rows are on disk by then, and the training loop's first seconds are left alone).
        ``worker``: ``(project, run id, label)`` of a shared run's worker rank."""
        with self._lock:
            st = RunState(root=root, rdir=rdir)
            if worker is not None:
                st.project, st.run_id, st.worker = worker
            self.runs.setdefault(rdir, st)
            self._idle.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every followed run is committed and ended (tests, exit)."""
        self._wake.set()
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        remote = Remote(self.url)
        delay = self.interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            final = self._final  # read before the pass: the last pass starts after close()
            ok = self._pass(remote)
            if ok:
                delay = self.interval
            else:  # back off while the store is away (at most 15 intervals, 30 s default)
                delay = min(max(delay * 2, self.interval), 15 * self.interval)
            if final and (ok or not self.runs):
                remote.close()
                return
            if self._final:
                delay = min(delay, self.interval)  # exiting: retry soon, the clock runs

    def _pass(self, remote: Remote) -> bool:
        from ..store import wait_for_background

        with self._lock:
            states = list(self.runs.values())
        try:
            for st in states:
                if st.ended:  # ended at the last pass: its compacted file comes last
                    wait_for_background(timeout=10.0)
                n, _ = commit_run(remote, st)
                self.committed_files += n
                if st.ended and (st.record_text is not None or st.worker is not None):
                    fresh_text, _ = read_record_text(st.rdir)
                    if (st.worker is not None or fresh_text == st.record_text) and n == 0:
                        with self._lock:  # nothing more will come: stop following it
                            self.runs.pop(st.rdir, None)
        except StoreUnavailable as exc:
            self.last_error = str(exc)
            if not self._failing:
                self._failing = True
                warnings.warn(
                    f"nbtracker cannot reach the team store ({exc}); runs keep logging to "
                    "their local folders and are committed when it is back (or with "
                    "`nbtracker sync --to <store>`).",
                    StorageWarning,
                    stacklevel=1,
                )
            return False
        except Exception as exc:  # noqa: BLE001 - never crash training over the team store
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._failing:
                self._failing = True
                warnings.warn(
                    f"nbtracker could not commit to the team store {self.url.masked} "
                    f"({self.last_error}); runs are safe in their local folders.",
                    StorageWarning,
                    stacklevel=1,
                )
            return False
        self._failing = False
        self.last_error = None
        with self._lock:
            if not self.runs:
                self._idle.set()
        return True

    def close(self, timeout: float) -> None:
        """At exit: one last pass, waiting at most ``timeout`` seconds."""
        self._final = True
        self._wake.set()
        self._thread.join(timeout)


_committers: dict[str, Committer] = {}
_committers_lock = threading.Lock()


def committer(url: StoreURL) -> Committer:
    from .. import _paths

    global _registered
    with _committers_lock:
        c = _committers.get(url.masked + url.conninfo)
        if c is None:
            if not _registered:
                # pyarrow.fs shuts S3 down in its own exit handler: import it first, so
                # that ours (registered later, run earlier) makes the last commit before
                import pyarrow.fs  # noqa: F401

                atexit.register(_close_all)
                _registered = True
            interval = float(_paths.env("STORE_INTERVAL") or 2.0)
            c = _committers[url.masked + url.conninfo] = Committer(url, interval)
        return c


_closed = False
_registered = False


def _close_all() -> None:
    global _closed
    from .. import _paths

    if not _committers or _closed:
        return
    _closed = True
    from .. import _state

    # runs still open at exit are finished first (atexit order is not ours to choose),
    # so that their last rows and final state are in the last commit
    _state._finish_all_at_exit()
    timeout = float(_paths.env("STORE_EXIT_TIMEOUT") or 10.0)
    deadline = time.monotonic() + timeout
    for c in list(_committers.values()):
        c.close(max(0.0, deadline - time.monotonic()))
    from .remote import finalize_s3

    finalize_s3()


def _after_fork_child() -> None:
    """A forked child has no committer thread: its parent's commits the shared folder."""
    global _committers_lock
    _committers_lock = threading.Lock()
    _committers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


@dataclass
class SyncReport:
    runs: int = 0
    files: int = 0
    records: int = 0
    skipped: list[str] = field(default_factory=list)


def sync(url: StoreURL, root: Path, rdirs: list[Path]) -> SyncReport:
    """Commit local run folders to the store (idempotent: what is there is not sent
    again). Raises StoreUnavailable when the store cannot be reached."""
    remote = Remote(url)
    report = SyncReport()
    try:
        for rdir in rdirs:
            st = RunState(root=root, rdir=rdir)
            text, _ = read_record_text(rdir)
            if text is None:
                report.skipped.append(f"{rdir}: no readable run.json (run `nbtracker repair`)")
                continue
            # the record is compared with the store's, so a second sync sends nothing
            got = remote.records([_key(text)])
            if got and got[0][2] == text:
                st.record_text = text
            n, sent = commit_run(remote, st)
            report.runs += 1
            report.files += n
            report.records += sent
    finally:
        remote.close()
    return report


def _key(text: str) -> tuple[str, str]:
    rec = json.loads(text)
    return str(rec["project"]), str(rec["id"])
