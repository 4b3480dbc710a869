"""Process-wide state: the current run, active runs, the pre-init config, exit hooks."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .run import Run

current: Run | None = None
active: list[Run] = []
preinit_config: Config | None = None
init_hooks: list[Any] = []  # callables(run) run after init() (the notebook panel)
_hooks_installed = False
exiting = False  # set at interpreter exit: finish work inline, start no threads
_lock = threading.RLock()


def set_current(run: Run) -> None:
    global current
    with _lock:
        current = run
        if not run.disabled:
            active.append(run)
        _install_exit_hooks()
        bind_log(run)


def forget(run: Run) -> None:
    """Called by ``Run.finish``: drop the run from the active list (and as current)."""
    global current
    with _lock:
        if run in active:
            active.remove(run)
        if current is run:  # as W&B: wandb.run is None after finish()
            current = None
            bind_log(None)


def bind_log(run: Run | None) -> None:
    """``nbtracker.log`` is the current run's ``log`` while there is one (as W&B sets
    ``wandb.log = run.log`` at init): a call skips the module-level function that looks
    the run up (~0.15 us of each call); without a run it is that function again."""
    pkg = sys.modules.get("nbtracker")
    if pkg is None:
        return
    from . import sdk

    pkg.__dict__["log"] = sdk.log if run is None else run.log


def reset() -> None:
    """Finish every active run and clear all state (used between tests)."""
    global current, preinit_config
    for run in list(active):
        run.finish()
    current = None
    preinit_config = None
    active.clear()
    bind_log(None)


def in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and type(ip).__name__ in ("ZMQInteractiveShell", "Shell")


exit_code: int | None = None  # what sys.exit() was called with (None: not called)


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_finish_all_at_exit)
    prev = sys.excepthook
    real_exit = sys.exit

    def exit(status: Any = None) -> None:  # noqa: A001 - stands in for sys.exit
        """sys.exit, noting the status: a run ended by ``sys.exit(143)`` (say, from a
        SIGTERM handler) is recorded as failed with that code, as W&B does."""
        global exit_code
        if status is None:
            exit_code = 0
        elif isinstance(status, int):
            exit_code = status
        else:
            exit_code = 1
        real_exit(status)

    exit.__wrapped__ = real_exit  # type: ignore[attr-defined]
    sys.exit = exit

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        for run in list(active):
            try:
                run._mark_failed(exc)
            except Exception:  # noqa: BLE001, S110 - reporting the user's error comes first
                pass
        prev(exc_type, exc, tb)

    sys.excepthook = excepthook


def _finish_all_at_exit() -> None:
    global exiting
    exiting = True
    for run in list(active):
        try:
            run.finish(exit_code=exit_code or None)
        except Exception:  # noqa: BLE001, S110
            pass


def _after_fork_in_child() -> None:
    """A child made by ``os.fork()`` (multiprocessing's default on Linux) has copies of the
    parent's runs but none of its threads, and locks that thread may have held: give every
    run, and the read layer, fresh ones. Cheap: a child that never logs pays nothing more."""
    global _lock
    _lock = threading.RLock()
    for run in list(active):
        try:
            run._after_fork_child()
        except Exception:  # noqa: BLE001, S110 - never break the user's child process
            pass
    for name, attr in (
        ("nbtracker.store", "_after_fork_child"),
        ("nbtracker.query", "_after_fork_child"),
    ):
        mod = sys.modules.get(name)
        if mod is not None:
            try:
                getattr(mod, attr)()
            except Exception:  # noqa: BLE001, S110
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
