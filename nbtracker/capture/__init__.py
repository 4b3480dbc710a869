"""What a run captures by itself: system metrics, console output, environment and code.

``start(run, settings)`` (called by ``init()``) begins it; the run's ``finish()`` calls
``detach()`` (gives ``sys.stdout``/``sys.stderr`` back at once) and, in its finishing
thread, ``close()`` (the last sample, rows and files written). A forked child drops it.
Everything is stored through the run's :class:`~nbtracker.store.Store` paths: system
metrics as a history stream of their own (``stream="system"``), the console log, the
dirty diff, ``requirements.txt`` and saved code as the run's files. Nothing here may
break the user's program: trouble is one warning, and the training goes on.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any

from ._settings import FIRST_SAMPLE_S, CaptureSettings, resolve

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["Capture", "CaptureSettings", "resolve", "start"]

CONSOLE_FLUSH_S = 1.0
PRIME_S = 0.25  # the sampler starts this long before its first sample (cpu % needs a span)
MERGE_EVERY = 64  # system segments merged into one file every this many samples


def start(run: Run, settings: CaptureSettings) -> Capture | None:
    """Begin capturing for ``run`` (never raises: a failure is one warning)."""
    if run.disabled or run._store is None:
        return None
    if getattr(run, "_worker", False):  # a shared run's worker: the environment is rank 0's
        import dataclasses

        settings = dataclasses.replace(settings, meta=False, save_code=False)
    try:
        cap = Capture(run, settings)
        cap.start()
    except Exception as exc:  # noqa: BLE001 - capture must never stop a run from starting
        warnings.warn(f"nbtracker could not start capturing ({exc!r})", RuntimeWarning,
                      stacklevel=3)  # fmt: skip
        return None
    run._capture = cap
    return cap


class Capture:
    """The capture of one run: a thread that samples system metrics and writes the console
    log out, the console streams, and the environment snapshot."""

    def __init__(self, run: Run, settings: CaptureSettings) -> None:
        from .. import store as store_mod

        self.settings = settings
        self._run = run
        self._rdir = run.dir
        self._store = run._store
        self._stop = threading.Event()
        self._job: Any = None  # the sampling / console job on the flush lane
        self._env_job: Any = None  # the environment snapshot, once, on the index lane
        self._env_done = threading.Event()
        self._next_sample = self._next_flush = float("inf")
        self._sampling = False
        self.console = None
        self.samples = 0
        self.cpu_seconds = 0.0  # CPU time of the capture thread (its own cost)
        self.env_cpu_seconds = 0.0  # ... of which the environment snapshot
        self._sampler: Any = None
        self._writer: Any = None
        self._buffer: deque[dict[Any, Any]] = deque()
        self._step = 0
        self._last_sample = 0.0
        self._closed = False
        self._closed_at = float("inf")  # when close() took the run's last record
        self._env_done_at = 0.0  # when the environment snapshot was stored
        self._in_notebook = False
        role = getattr(run, "_role", None)
        # a shared run: each rank's system metrics under "<label>/", its console in a file
        # of its own (the primary's is output.log)
        self._prefix = role.prefix if role is not None else ""
        if settings.console_on:
            from .console import Console

            console = store_mod.capture_path(self._rdir, "console")
            old = store_mod.capture_path(self._rdir, "console_old")
            if role is not None and not role.primary:
                console = console.with_name(role.console_name)
                old = console.with_name(role.console_name + ".1")
            self.console = Console(console, old, settings.console_max_bytes)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        from .. import _state
        from .. import store as store_mod

        self._in_notebook = _state.in_notebook()
        if self.settings.stats:
            from ..writer import Writer

            self._writer = Writer(
                store_mod.stream_dir(self._rdir, "system"), self._buffer, {},
                dict, lambda rec: None, lambda rec: True,
            )  # fmt: skip
        # imports and the system metrics' database here, in init()'s thread, once per
        # process: in the capture thread they held the GIL against the first steps of the
        # training loop (stalls of 10-25 ms), and a fork meanwhile must not inherit them half done
        _imports(self.settings)
        if self._writer is not None:
            self._writer._flush_con = _system_cursor()
        if self.console is not None:
            self.console.attach()
        from .. import _lanes

        if self.settings.meta:  # git and package listing may take a while: the slow lane
            self._env_job = _lanes.INDEX.soon(self._env_loop, name="environment snapshot")
        else:
            self._env_done.set()
        if self.settings.stats or self.console is not None:
            # the sampler is primed PRIME_S before the first sample is due: a run that ends
            # sooner (a sweep's quick trial) never pays for it, and has no system rows
            since = time.time() - float(self._run._rec.get("created_at") or time.time())
            first = min(FIRST_SAMPLE_S, self.settings.interval) - PRIME_S - max(0.0, since)
            if self.console is not None:
                first = min(first, CONSOLE_FLUSH_S)
            self._job = _lanes.FLUSH.every(self._first_tick, max(0.0, first), name="capture",
                                           period=1.0)  # fmt: skip

    def detach(self) -> None:
        """At ``finish()``, in the caller's thread: the console streams go back now."""
        self._stop.set()
        if self.console is not None:
            try:
                self.console.detach()
            except Exception:  # noqa: BLE001, S110 - never break finish()
                pass

    def close(self) -> None:
        """In the run's finishing thread: the capture thread ends, a last sample when there
        was none yet (a short run), the system rows and the session's code are stored."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._closed_at = time.monotonic()
        if self._job is not None:  # the environment is waited for later (settle)
            self._job.cancel(wait=True)
        writer = self._writer
        if writer is not None:
            try:
                if self.samples == 0 and self._sampler is not None:  # primed: one sample
                    self._sample()
                writer.flush_rows(final=True)
                if writer.flushes > 1:  # one segment is merged already
                    writer.merge()
            except Exception as exc:  # noqa: BLE001 - never crash the user's code at the end
                writer._warn("finish", f"nbtracker could not store system metrics ({exc!r})")
            finally:
                writer.close()
        if self._sampler is not None:
            self._sampler.close()
        if self.settings.save_code and self._in_notebook:
            self._save_session_history()

    def settle_environment(self, timeout: float = 10.0) -> bool:
        """After the run's final record is on disk: wait for the environment snapshot (git,
        packages; it may take a while and is not what readers of the rows wait for). True
        when it arrived after the final record was taken (the record must be written again)."""
        if self._env_job is None:
            return False
        self._env_done.wait(timeout)
        return self._env_done_at > self._closed_at

    def after_fork_child(self) -> None:
        """In a forked child: no thread here, and the parent owns every file."""
        self._closed = True
        self._job = self._env_job = None  # the lanes are empty in the child
        _fork_leaks.append(self._writer)  # its cursor is the parent's: never closed here
        self._writer = None
        if self.console is not None:
            self.console.after_fork_child()

    # -- the capture job (on the flush lane) ------------------------------------------------
    def _first_tick(self) -> float | None:
        """The job's first run: the sampler primed, then sampling / console flushes."""
        t_cpu = time.thread_time()
        try:
            if self.settings.stats:
                self._start_sampler()
        except Exception as exc:  # noqa: BLE001 - the job goes on without samples
            warnings.warn(f"nbtracker capture: {exc!r}", RuntimeWarning, stacklevel=1)
        start = time.monotonic()
        # the first sample about FIRST_SAMPLE_S after the run began (init's own time counts)
        since = time.time() - float(self._run._rec.get("created_at") or time.time())
        first = min(FIRST_SAMPLE_S, self.settings.interval) - max(0.0, since)
        self._next_sample = start + max(PRIME_S, first)
        self._next_flush = start + CONSOLE_FLUSH_S
        self._sampling = self._writer is not None and self._sampler is not None
        self._job.fn = self._tick
        self.cpu_seconds += time.thread_time() - t_cpu
        return self._next_due()

    def _next_due(self) -> float | None:
        due = [self._next_flush] if self.console is not None else []
        if self._sampling:
            due.append(self._next_sample)
        if not due or self._stop.is_set():
            return None
        return max(0.0, min(due) - time.monotonic())

    def _tick(self) -> float | None:
        if self._stop.is_set():
            return None
        t_cpu = time.thread_time()
        now = time.monotonic()
        try:
            if self.console is not None and now >= self._next_flush:
                self._next_flush = now + CONSOLE_FLUSH_S
                self.console.flush()
            if self._sampling and now >= self._next_sample:
                self._sample()
                self._writer.flush_rows()
                if self.samples % MERGE_EVERY == 0:
                    self._writer.merge(recent_only=True)
                self._next_sample += self.settings.interval
                if self._next_sample <= now:  # the machine slept: no burst of late samples
                    self._next_sample = now + self.settings.interval
        finally:
            self.cpu_seconds += time.thread_time() - t_cpu
        return self._next_due()

    def _env_loop(self) -> None:
        t_cpu = time.thread_time()
        try:
            self._environment()
        except Exception as exc:  # noqa: BLE001 - the lane must never raise
            warnings.warn(f"nbtracker capture: {exc!r}", RuntimeWarning, stacklevel=1)
        finally:
            self.env_cpu_seconds = time.thread_time() - t_cpu
            self._env_done.set()

    def _start_sampler(self) -> None:
        from .. import store as store_mod
        from .sampler import Sampler

        self._sampler = Sampler(self.settings.disk_paths)
        if self._writer is not None and self._writer._flush_con is None:
            self._writer._flush_con = _system_cursor()  # no new database per run
        if self._run.resumed:  # a resumed run's samples count on after its earlier ones
            from .. import segments

            files, _, _ = segments.list_files(store_mod.stream_dir(self._rdir, "system"))
            if files:
                import duckdb

                con = duckdb.connect(":memory:")
                try:
                    got = con.execute(
                        "SELECT max(step) FROM read_parquet(?)", [[str(f) for f in files]]
                    ).fetchone()
                finally:
                    con.close()
                if got and got[0] is not None:
                    self._step = int(got[0]) + 1

    def _sample(self) -> None:
        if self._sampler is None:
            return
        row = self._sampler.sample()
        if row and self._prefix:  # "system/cpu" -> "system/rank_1/cpu"
            row = {_labelled(k, self._prefix): v for k, v in row.items()}
        if row:
            from ..segments import buffered

            self._buffer.append(buffered(self._step, time.time(), row))
            self._step += 1
            self.samples += 1

    def _environment(self) -> None:
        from .. import store as store_mod
        from .environment import code_name, collect, requirements

        meta, diff = collect(git=self.settings.git)
        files = []
        if diff:
            files.append((store_mod.capture_path(self._rdir, "diff"), diff))
        if self.settings.requirements:
            files.append(
                (store_mod.capture_path(self._rdir, "requirements"), requirements().encode())
            )
        for path, data in files:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                from .._util import atomic_write_bytes

                atomic_write_bytes(path, data)
            except OSError as exc:
                warnings.warn(f"nbtracker could not write {path} ({exc})", _sw(), stacklevel=1)
        prog = meta.get("program")
        if self.settings.save_code and prog:
            name = meta.get("codePath") or code_name(prog, None)
            dest = store_mod.capture_path(self._rdir, "code") / name
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(prog, dest)
                meta["codeSaved"] = f"code/{name}"
            except OSError as exc:
                warnings.warn(f"nbtracker could not save the code ({exc})", _sw(), stacklevel=1)
        self._run._set_metadata(meta)
        self._env_done_at = time.monotonic()

    def _save_session_history(self) -> None:
        """In a notebook: the cells run so far, as ``code/_session_history.py``."""
        from .. import store as store_mod

        try:
            from IPython import get_ipython

            ip = get_ipython()
            cells = list(ip.user_ns.get("In", [])) if ip is not None else []
        except Exception:  # noqa: BLE001
            return
        text = "".join(f"# In[{i}]:\n{c}\n\n" for i, c in enumerate(cells) if i and c)
        if not text:
            return
        dest = store_mod.capture_path(self._rdir, "code") / "_session_history.py"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8", errors="backslashreplace")
        except OSError:
            pass


_system_db: Any = None
_system_lock = threading.Lock()
_fork_leaks: list[Any] = []


def _system_cursor() -> Any:
    """A cursor on one in-memory DuckDB per process for system metric segments (opening a
    database per run cost a short run ~20 ms at its end)."""
    global _system_db
    with _system_lock:
        if _system_db is None:
            import duckdb

            from ..catalog import DUCKDB_CONFIG
            from ..writer import _FLUSH_CONFIG

            _system_db = duckdb.connect(":memory:", config={**DUCKDB_CONFIG, **_FLUSH_CONFIG})
        return _system_db.cursor()


def _after_fork_child() -> None:
    """The parent's database is unusable in a forked child: keep it referenced, never use
    or close it; a run the child starts opens its own."""
    global _system_db, _system_lock
    if _system_db is not None:
        _fork_leaks.append(_system_db)
    _system_db = None
    _system_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


def _imports(cs: CaptureSettings) -> None:
    if cs.stats:
        try:
            import psutil  # noqa: F401
        except ImportError:
            pass
        from . import sampler  # noqa: F401
    if cs.meta:
        import importlib.metadata  # noqa: F401
        import platform  # noqa: F401
        import subprocess  # noqa: F401
        from urllib import parse  # noqa: F401

        from . import environment  # noqa: F401


def _labelled(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    return f"{head}/{prefix}{rest}" if sep and head == "system" else prefix + key


def _sw() -> type[Warning]:
    from ..errors import StorageWarning

    return StorageWarning
