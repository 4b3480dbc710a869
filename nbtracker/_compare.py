"""``nbtracker.compare(project)``, ``%nbt_compare``, and one output for the runs of a cell.

In a notebook, the first ``init()`` of a cell shows its run panel; the second ``init()``
in the same cell turns that output into a live :class:`~nbtracker.widgets.workspace.
Workspace` of the cell's runs (one line per run, the newest highlighted, each run's state
and step in the runs table) instead of stacking panels. ``separate_panels(True)`` (or
``NBTRACKER_SEPARATE_PANELS=1``) keeps one panel per run.
"""

from __future__ import annotations

import os
from typing import Any

from . import _state

_separate = os.environ.get("NBTRACKER_SEPARATE_PANELS", "") not in ("", "0")
_cell: dict[str, Any] = {"count": None}


def compare(
    target: Any = None,
    *,
    store: Any = None,
    run_ids: list[str] | None = None,
    sweep: str | None = None,
    max_visible: int = 10,
    display: bool = True,
    view: bool = True,
) -> Any:
    """Show the runs workspace of a project (or of some runs, or of one sweep).

    Parameters
    ----------
    target : str, optional
        A project name. Default: the current run's project.
    store : Store or path, optional
        The store root (default: the default store).
    run_ids : list of str, optional
        Only these runs.
    sweep : str, optional
        Only the runs of this sweep (their ``sweep_id``).
    max_visible : int
        How many runs are drawn at first (the newest); the table lists every run, and its
        visibility toggles draw the others.
    display : bool
        Display it in the cell output (else only return it).
    view : bool
        A project's workspace opens as it was last left (filter, sort, groups, columns,
        chart settings: saved with the project) and saves its changes; False opens the
        default view and saves nothing. ``ws.reset_view()`` goes back to the default.

    Returns
    -------
    Workspace
        ``ws.selected``, ``ws.to_pandas()``, ``ws.chart("loss")`` bring it back to Python.
    """
    from .widgets.workspace import Workspace

    project = target
    if project is None and _state.current is not None:
        project = _state.current.project
    ws = Workspace(
        None if project is None else str(project), store=store, run_ids=run_ids, sweep=sweep,
        max_visible=max_visible, view=view,
    )  # fmt: skip
    if display:
        from IPython.display import display as show

        show(ws)
    return ws


def compare_runs(items: list[Any], *, store: Any = None, renderer: str = "canvas") -> Any:
    """``show([...])`` of several runs: the workspace of those runs (live ``Run`` objects
    of this process are fed through ``Run.subscribe``; others followed from their folders)."""
    from IPython.display import display

    from ._util import read_json
    from .run import Run
    from .store import record_file, root_of
    from .widgets.workspace import Workspace

    ids: list[str] = []
    live = []
    root = None
    for x in items:
        if isinstance(x, Run):
            ids.append(str(x.id))
            live.append(x)
            root = root or root_of(x.dir)
        else:
            ids.append(str(read_json(record_file(x))["id"]))
            root = root or root_of(x)
    ws = Workspace(
        None, store=store if store is not None else str(root), run_ids=ids, live=live,
        max_visible=max(10, len(ids)),
    )  # fmt: skip
    ws.renderer = renderer
    ws.title = f"{len(ids)} runs"
    display(ws)
    return ws


def separate_panels(on: bool = True) -> None:
    """``True``: every ``init()`` in a notebook shows its own run panel, as before;
    ``False`` (the default): the runs of one cell share one comparison output."""
    global _separate
    _separate = bool(on)


def notebook_init(run: Any) -> None:
    """``init()`` in a notebook: the run's panel, or the cell's shared comparison."""
    from IPython import get_ipython
    from IPython.display import display

    from .widgets import RunPanel

    count = getattr(get_ipython(), "execution_count", None)
    state = _cell
    same_cell = count is not None and state.get("count") == count and not _separate
    if not same_cell:
        panel = RunPanel.for_run(run)
        data, meta = panel._repr_mimebundle_()
        handle = display(data, metadata=meta, raw=True, display_id=True)
        panel._shown_in = count
        from . import charts

        charts.warm_png_renderer()
        panel._fallback_handle = display(panel.fallback_bundle(False), raw=True, display_id=True)
        _cell.clear()
        _cell.update(count=count, panel=panel, handle=handle, runs=[run], ws=None)
        return
    state["runs"].append(run)
    ws = state.get("ws")
    if ws is not None:
        ws.add_run(run)
        return
    from .store import root_of
    from .widgets.workspace import Workspace

    first = state["panel"]
    runs = state["runs"]
    ws = Workspace(
        None, store=str(root_of(run.dir)), run_ids=[str(r.id) for r in runs], live=runs,
    )  # fmt: skip
    ws.title = (
        f"{len(runs)} runs of this cell" if len({r.project for r in runs}) > 1 else str(run.project)
    )
    ws._shown_in = count
    fallback = first._fallback_handle
    first._fallback_handle = None  # its snapshot output now shows the comparison's
    # stop the panel but keep its model: closing it would make JupyterLab hide the output
    # that now shows the comparison
    first._stop.set()
    first._subscription.cancel()
    data, meta = ws._repr_mimebundle_()
    state["handle"].update(data, metadata=meta, raw=True)
    ws._fallback_handle = fallback
    ws._update_fallback(final=False)
    state["ws"] = ws
