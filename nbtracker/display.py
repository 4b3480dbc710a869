"""``nbtracker.show()``: live panels for runs, and the panel ``init()`` draws in notebooks."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import _state

_auto_enabled = True  # False after %unload_ext nbtracker


class Panels(list):  # type: ignore[type-arg]
    """The panels :func:`show` displayed (a list; shows nothing more when echoed)."""

    def _ipython_display_(self) -> None:
        for p in self:
            p._ipython_display_()

    def __repr__(self) -> str:
        return f"Panels({len(self)} runs)"


def show(
    target: Any = None,
    key: str | None = None,
    *,
    step: int | None = None,
    store: Any = None,
    follow: bool = True,
    renderer: str = "canvas",
    max_runs: int = 10,
    timeout: float = 0.0,
    compare: bool = True,
) -> Any:
    """Show the live panel of one run, a list of runs or a project, in the cell output.

    Runs logged by another process (a script, a sweep agent) are followed from their
    folder as they grow; following stops when the run ends.

    Parameters
    ----------
    target : Run, str, path, list or Table, optional
        A ``Run``; ``"project/run_id"`` or ``"entity/project/run_id"``; a run folder; a
        project name (all its runs); or a list of these. Default: the current run.
        A :class:`nbtracker.Table` shows the table widget for it.
    key : str, optional
        The key of a logged ``Table``: show the table widget of that table instead of the
        run panel (``show(run, "predictions_table")``; for several runs, one table with a
        ``run`` column). A live run's table follows new versions as they are logged.
    step : int, list of int or "all", optional
        With ``key``: the version logged at this step (default: the latest). A list of
        steps or ``"all"``: those versions in one table with a ``step`` column, to compare
        predictions across training (``filter: step = 10 AND pred != target``).
    store : Store or str, optional
        Where to look runs up (default: the default store root). A ``postgresql://``
        URL reads a team store (its local cache, brought up to date first).
    follow : bool
        Keep following running runs.
    renderer : {"canvas", "svg"}
        Vega renderer of the charts.
    max_runs : int
        For a project: show its newest ``max_runs`` runs (one panel each).
    timeout : float
        Wait up to this many seconds for a run that does not exist yet (a script that is
        starting) before raising ``RunNotFound``.
    compare : bool
        Several runs or a project: the runs workspace (runs table, a chart per metric, a
        line per run). False: one panel per run.

    Returns
    -------
    TableView for a Table or with ``key``; else RunPanel; for several runs or a project
    the runs workspace (``compare=True``: a ``Workspace``, see :func:`nbtracker.compare`)
    or Panels (a list). Charts are a ``.chart(key)`` away.

    Examples
    --------
    >>> nbtracker.show("my-project/1a2b3c4d")        # doctest: +SKIP
    >>> panel = nbtracker.show(run); panel.chart("loss").save("loss.png")   # doctest: +SKIP
    """
    from IPython.display import display

    from .errors import RunNotFound

    if _is_table(target):
        from .widgets.table_view import TableView

        view = TableView.for_table(target)
        display(view)
        return view
    if isinstance(store, str):  # a team store URL
        from . import team

        store = team.reader_store(team.resolve(store), live=follow)
    if key is None and isinstance(target, str) and _is_sweep(target, store):
        from .sweeps.view import show_sweep

        return show_sweep(_sweep_of(target, store))
    if key is None and compare and _is_project(target, store):
        from ._compare import compare as workspace

        return workspace(str(target), store=store, max_visible=max_runs)
    deadline = time.monotonic() + max(0.0, float(timeout))
    while True:
        try:
            items = _resolve(target, store, max_runs)
            break
        except RunNotFound:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
    if key is not None:
        view = _table_view_of(items, str(key), step)
        display(view)
        return view
    if len(items) > 1 and compare:
        from ._compare import compare_runs

        return compare_runs(items, store=store, renderer=renderer)
    panels = [_panel(item, store, follow, renderer) for item in items]
    for p in panels:
        display(p)
    return panels[0] if len(panels) == 1 else Panels(panels)


def _is_project(target: Any, store: Any) -> bool:
    """A project name (not a run, a run folder or ``project/run_id``) with runs."""
    from .store import Store, is_run_dir

    if not isinstance(target, str) or "/" in target or is_run_dir(target):
        return False
    st = store if isinstance(store, Store) else Store(store)
    return bool(st.scan_runs(target))


def _is_sweep(target: str, store: Any) -> bool:
    """``target`` names a stored sweep (``id``, ``project/id``) rather than a run/project."""
    from .store import Store

    st = store if isinstance(store, Store) else Store(store)
    parts = [p for p in target.split("/") if p]
    if not parts or len(parts) > 3:
        return False
    project = parts[-2] if len(parts) > 1 else None
    url = getattr(st, "team_url", None)
    if url is not None:  # a team store's sweeps are rows of its catalog
        from .team.remote import Remote, StoreUnavailable

        try:
            with Remote(url) as remote:
                return bool(remote.sweeps(project, parts[-1]))
        except StoreUnavailable:
            return False
    return bool(st.sweep_dirs(project, parts[-1]))


def _sweep_of(target: str, store: Any) -> Any:
    from .store import Store
    from .sweeps.study import SweepStudy

    st = store if isinstance(store, Store) else Store(store)
    return SweepStudy.open(st, target, url=getattr(st, "team_url", None))


def _is_table(x: Any) -> bool:
    from .data_types import Table

    return isinstance(x, Table)


def _table_view_of(items: list[Any], key: str, step: int | None) -> Any:
    from .widgets.table_view import TableView

    if len(items) == 1:
        return TableView.for_run(items[0], key, step)
    return TableView.compare(items, key, step)


def table_view(run: Any, key: str, step: int | None = None) -> Any:
    """The table widget of the ``Table`` logged under ``key`` in ``run`` (``Run.table``).

    ``run`` is a ``Run`` (a live one is followed: new versions appear as they are logged,
    while the latest version is shown), an ``Api().run(...)`` run, ``"project/run_id"``
    or a run folder. ``step`` picks a version (default: the latest; the widget's step
    selector switches between versions). Returns the widget, not displayed: it shows when
    it is a cell's last expression, or with ``IPython.display.display``.

    Raises
    ------
    TableNotFound
        Nothing was logged under ``key`` (the message lists the tables that were).
    """
    from .run import Run
    from .widgets.table_view import TableView

    if isinstance(run, Run):
        return TableView.for_run(run, key, step)
    items = _resolve(run, None)
    if len(items) != 1:
        msg = f"table_view() needs one run, got {len(items)}"
        raise ValueError(msg)
    return TableView.for_run(items[0], key, step)


def _panel(item: Any, store: Any, follow: bool, renderer: str, tables: bool = True) -> Any:
    from .widgets import RunPanel

    if _is_live_run(item):
        return RunPanel.for_run(item, renderer=renderer, show_tables=None if tables else False)
    return RunPanel.for_folder(item, follow=follow, renderer=renderer)


def _is_live_run(x: Any) -> bool:
    from .run import Run

    return isinstance(x, Run) and not x._finished and x in _state.active


def _resolve(target: Any, store: Any, max_runs: int = 10) -> list[Any]:
    from .errors import RunNotFound
    from .run import Run
    from .store import Store, is_run_dir

    if target is None:
        if _state.current is None:
            msg = (
                "show() needs a run: call nbtracker.init() first or pass a run / 'project/run_id'."
            )
            raise RunNotFound(msg)
        target = _state.current
    if isinstance(target, Run):
        return [target if _is_live_run(target) else target.dir]
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        if is_run_dir(path):
            return [path]
        st = store or Store()
        parts = [p for p in str(target).split("/") if p]
        if len(parts) in (2, 3):
            project, run_id = parts[-2], parts[-1]
            rdir = st.run_dir(project, run_id)
            if is_run_dir(rdir):
                return [rdir]
        dirs = [d for d, _ in st.iter_run_dirs(str(target))]  # a project name
        if dirs:
            return sorted(dirs, key=_created)[-max(1, int(max_runs)) :]
        msg = f"no run or project {str(target)!r} in {st.root.name!r}"
        raise RunNotFound(msg)
    rdir = getattr(target, "dir", None)
    if rdir is not None and is_run_dir(rdir):
        return [Path(rdir)]
    if isinstance(target, Iterable):
        out: list[Any] = []
        for x in target:
            out += _resolve(x, store, max_runs)
        return out
    msg = f"show() cannot show a {type(target).__name__}"
    raise TypeError(msg)


def _created(rdir: Path) -> float:
    import json

    from .store import record_file

    try:
        return float(json.loads(record_file(rdir).read_text("utf-8")).get("created_at") or 0)
    except (OSError, ValueError):
        return 0.0


# -- the automatic panel in notebooks --------------------------------------------------------
def _notebook_hook(run: Any) -> None:
    """``init()`` hook: show the run's live panel in the cell that called ``init()``."""
    if run.disabled or not _state.in_notebook():
        return
    sweeps = sys.modules.get("nbtracker.sweeps.join")
    if sweeps is not None and sweeps.quiet_panels:  # the agent's sweep view shows the run
        return
    from ._compare import notebook_init

    notebook_init(run)  # the run's panel, or its cell's shared comparison


def install_notebook_hook() -> None:
    """Called by ``init()`` in a notebook (and by ``%load_ext``); idempotent."""
    if _auto_enabled and _notebook_hook not in _state.init_hooks:
        _state.init_hooks.append(_notebook_hook)


def uninstall_notebook_hook() -> None:
    global _auto_enabled
    _auto_enabled = False
    while _notebook_hook in _state.init_hooks:
        _state.init_hooks.remove(_notebook_hook)


def enable_notebook_hook() -> None:
    global _auto_enabled
    _auto_enabled = True
    install_notebook_hook()


__all__ = ["Panels", "show", "table_view"]
