"""A notebook cell that raised while a run was live: record it as a user would expect.

IPython's ``post_run_cell`` event says whether the cell raised (``error_in_exec``). Each
live run of this process then notes the error at once (its panel shows it and its clock
stops); if the user goes on logging to the run, it is running again; otherwise the next
``init()``, ``finish()`` or the kernel's exit records it as ``failed`` with the error.
"""

from __future__ import annotations

from typing import Any

from . import _state

_registered: list[Any] = []


def install() -> None:
    """Listen to the notebook's cells (idempotent; a no-op outside IPython)."""
    if _registered:
        return
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:  # noqa: BLE001 - no IPython: nothing to listen to
        return
    if ip is None:
        return
    ip.events.register("post_run_cell", _post_run_cell)
    _registered.append(ip)


def uninstall() -> None:
    while _registered:
        ip = _registered.pop()
        try:
            ip.events.unregister("post_run_cell", _post_run_cell)
        except ValueError:
            pass


def _post_run_cell(result: Any) -> None:
    exc = getattr(result, "error_in_exec", None)
    if exc is None:
        return
    for run in list(_state.active):
        try:
            run._cell_failed(exc)
        except Exception:  # noqa: BLE001, S110 - reporting the user's error comes first
            pass
