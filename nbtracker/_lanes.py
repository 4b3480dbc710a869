"""Background lanes: a few long-lived threads per process that run every run's periodic work.

Each live run needs work done off the training thread: history flushes, heartbeats, system
samples, the environment snapshot. A thread of its own for each (four per run) made every
``init()`` wait for four thread starts, each waiting for the GIL: ~12-15 ms a short run
when runs follow each other in a loop. Instead, each kind of work has a *lane*, one daemon
thread per process started on first use, and a run schedules :class:`Job` objects on it:

- ``FLUSH``: history flushes and system samples (short, on a rhythm);
- ``INDEX``: heartbeats, catalog updates, merges, the environment snapshot (slow, may
  wait on locks or a ``git`` subprocess, so kept off the flush rhythm);
- ``FINISH``: a finished run's last flush, final record and compaction (``store.py``
  makes the interpreter's shutdown wait for these, as for a non-daemon thread).

A job is a function returning the seconds until it should run again, or None when it is
done. ``job.set()`` runs it as soon as the lane is free (what ``log()`` does when rows pile
up); ``job.cancel()`` stops it, and with ``wait=True`` also waits for a run in progress.
A job that raises is reported once as a warning and runs again at its interval: the lane
never dies. A forked child starts with empty lanes (its parent's jobs are the parent's).
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
import warnings
from collections.abc import Callable

__all__ = ["FINISH", "FLUSH", "INDEX", "Job", "Lane"]


class Job:
    """Work scheduled on a :class:`Lane`: ``fn()`` returns the next delay, or None."""

    __slots__ = ("_due", "_gen", "_lane", "_running", "_woken", "cancelled", "fn", "name", "period")

    def __init__(
        self, lane: Lane, fn: Callable[[], float | None], name: str, period: float
    ) -> None:
        self._lane = lane
        self.fn = fn
        self.name = name
        self.period = period  # the retry delay after an error
        self.cancelled = False
        self._gen = 0  # the heap entry that counts (older ones are skipped)
        self._due = 0.0
        self._woken = False
        self._running = threading.Lock()  # held while fn runs

    def set(self) -> None:
        """Run as soon as the lane is free (like ``threading.Event.set`` for a waiting loop)."""
        if not self._woken and not self.cancelled:
            self._lane._schedule(self, 0.0, wake=True)

    def is_set(self) -> bool:
        """A wake-up is pending."""
        return self._woken

    def cancel(self, *, wait: bool = False) -> None:
        """Never run again; ``wait``: also wait for a run in progress (not from the lane)."""
        self.cancelled = True
        self._lane._poke()
        if wait and threading.current_thread() is not self._lane._thread:
            with self._running:
                pass


class Lane:
    """One daemon thread running due jobs one after another."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, int, Job]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    def every(
        self, fn: Callable[[], float | None], first: float, *, name: str = "", period: float = 1.0
    ) -> Job:
        """Schedule ``fn`` to run in ``first`` seconds; it says when it runs next."""
        job = Job(self, fn, name or getattr(fn, "__name__", "job"), period)
        self._schedule(job, first)
        return job

    def soon(self, fn: Callable[[], None], *, name: str = "") -> Job:
        """Run ``fn`` once, as soon as the lane is free."""

        def once() -> None:
            fn()

        return self.every(once, 0.0, name=name, period=0.0)

    def _schedule(self, job: Job, delay: float, *, wake: bool = False) -> None:
        due = time.monotonic() + delay
        with self._cond:
            if wake:
                job._woken = True
            elif job._woken and job._due <= due:  # a pending wake-up comes first
                return
            job._gen += 1
            job._due = due
            heapq.heappush(self._heap, (due, next(self._seq), job._gen, job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name=f"nbtracker-{self.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def is_current(self) -> bool:
        """Called from this lane's own thread."""
        return threading.current_thread() is self._thread

    def _poke(self) -> None:
        with self._cond:
            self._cond.notify()

    def _next(self) -> Job:
        with self._cond:
            while True:
                while self._heap and (
                    self._heap[0][3].cancelled or self._heap[0][2] != self._heap[0][3]._gen
                ):
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                job = heapq.heappop(self._heap)[3]
                job._woken = False
                job._gen += 1  # until it is scheduled again
                return job

    def _loop(self) -> None:
        while True:
            job = self._next()
            nxt: float | None
            with job._running:
                if job.cancelled:
                    continue
                try:
                    nxt = job.fn()
                except Exception as exc:  # noqa: BLE001 - the lane must never die
                    if job.name not in self._warned:
                        self._warned.add(job.name)
                        warnings.warn(
                            f"nbtracker's background {job.name} hit {exc!r}; it keeps going.",
                            RuntimeWarning,
                            stacklevel=1,
                        )
                    nxt = job.period or None
            if nxt is not None and not job.cancelled:
                self._schedule(job, max(0.0, nxt))


FLUSH = Lane("flush")
INDEX = Lane("index")
FINISH = Lane("finish")  # finishing runs' last flush, record, compaction (store.py)


_fork_leaks: list[object] = []


def _after_fork_child() -> None:
    # the parent's jobs stay referenced, never run: what they hold (DuckDB cursors of the
    # parent's databases) must not be destroyed in the child
    for lane in (FLUSH, INDEX, FINISH):
        _fork_leaks.append(lane._heap)
        lane._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)
