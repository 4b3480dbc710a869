"""A run in a process forked from the one that started it (``os.fork()``: multiprocessing's
default start method on Linux, DataLoader workers): what the child drops of its parent's
run, and how the rows a child logs reach the same run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections import deque
from typing import Any

from .errors import StorageWarning
from .writer import Writer


class ForkedChild:
    """The forked-child half of :class:`~nbtracker.run.Run` (a mixin: the same object)."""

    def _after_fork_child(self) -> None:
        """In a child made by ``os.fork()``: drop the parent's writer, threads and widgets.

        The parent keeps owning the run (its record, state and catalog row). If the child
        logs, its rows go to the same run through a writer of its own (own segment files,
        so nothing is overwritten), started on the child's first row and flushed when the
        child exits; steps count on from the step at the fork.
        """
        _fork_leaks.append(self._writer)  # never close the parent's DuckDB in the child
        self._child = True
        self._hooks = []
        self._lock = threading.Lock()
        self._pending = {}
        self._fast = not self._finished
        self._buffer = deque()
        self._release = None
        self._writer = None
        if self._capture is not None:  # the parent's sampler and console log stay its own
            self._capture.after_fork_child()
            self._capture = None
        self._commit_row = self._first_child_commit  # type: ignore[method-assign]

    def _first_child_commit(self, row: dict[str, Any]) -> None:
        del self._commit_row  # back to the class's method for every later row
        if self._store is not None and self._writer is None and not self._finished:
            self._writer = Writer(
                self._store.history_dir(self.dir), self._buffer, self._key_types,
                self._snapshot, lambda rec: None, lambda rec: True, text_keys=self._text_keys,
            )  # fmt: skip
            self._writer.start(index=False)
            _flush_children_at_exit()
        self._commit_row(row)

    def _finish_child(self) -> None:
        writer = self._writer
        if writer is None:
            return
        writer.stop()
        try:
            writer.flush_rows(final=True)
        except Exception as exc:  # noqa: BLE001 - never crash the user's code at the end
            writer._warn("finish", f"nbtracker could not write the history ({exc!r})")
        left = writer.pending_rows()
        if left or writer.rows_dropped:
            warnings.warn(
                f"nbtracker: {left + writer.rows_dropped:,} rows this forked process logged "
                f"to {self.project}/{self.id} could not be stored (see the warnings above).",
                StorageWarning,
                stacklevel=2,
            )
        writer.close()


_fork_leaks: list[Any] = []  # objects a forked child must never close or collect
_child_exit_installed = False


def _flush_children_at_exit() -> None:
    """In a forked child that logs: store its rows when it ends, also through the exits
    that skip ``atexit`` (multiprocessing's ``os._exit``, ``Pool.terminate``'s SIGTERM)."""
    global _child_exit_installed
    if _child_exit_installed:
        return
    _child_exit_installed = True
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:  # a multiprocessing child runs these before os._exit()
        mp_util.Finalize(None, _finish_children, exitpriority=100)
    try:
        if (
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGTERM, _sigterm_in_child)
    except (ValueError, OSError):  # not the main thread of the interpreter
        pass


_child_exit = {"finishing": False, "term": False}


def _finish_children() -> None:
    """Store the rows of every run this forked child logged to (once; re-entered from the
    SIGTERM handler while it runs, it lets the running flush finish first)."""
    from . import _state

    if _child_exit["finishing"]:
        return
    _child_exit["finishing"] = True
    try:
        for run in list(_state.active):
            if run._child:
                try:
                    run.finish()
                except Exception:  # noqa: BLE001, S110 - the process is ending
                    pass
    finally:
        _child_exit["finishing"] = False
    if _child_exit["term"]:  # a SIGTERM came while we flushed: honour it now
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _sigterm_in_child(signum: int, frame: Any) -> None:
    _child_exit["term"] = True
    if not _child_exit["finishing"]:
        _finish_children()
