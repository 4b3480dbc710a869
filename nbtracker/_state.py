"""Process-wide state: the current run, active runs, the pre-init config, exit hooks."""

from __future__ import annotations

import atexit
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


def forget(run: Run) -> None:
    """Called by ``Run.finish``: drop the run from the active list (and as current)."""
    global current
    with _lock:
        if run in active:
            active.remove(run)
        if current is run:
            current = active[-1] if active else None


def reset() -> None:
    """Finish every active run and clear all state (used between tests)."""
    global current, preinit_config
    for run in list(active):
        run.finish()
    current = None
    preinit_config = None
    active.clear()


def in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and type(ip).__name__ in ("ZMQInteractiveShell", "Shell")


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_finish_all_at_exit)
    prev = sys.excepthook

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
            run.finish()
        except Exception:  # noqa: BLE001, S110
            pass
