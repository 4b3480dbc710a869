"""``%load_ext nbtracker``: live panels for every ``init()``, and magics.

Magics
------
``%nbt_runs [project]``
    The runs (of one project), newest first, as a readable table (``.df``: the DataFrame).
``%nbt_compare [project]``
    ``nbtracker.compare(project)``: the runs workspace (table, overlays, analysis).
``%nbt_show [target]``
    ``nbtracker.show(target)``: the live panel of a run, runs or a project.
``%%nbt_sql [variable]``
    Run the cell as SQL over the views ``runs``, ``config``, ``summary``, ``tags`` and
    ``history``; show the DataFrame (and store it in ``variable`` when given).

``%unload_ext nbtracker`` removes the magics and stops showing panels on ``init()``.
"""

from __future__ import annotations

from typing import Any

_MAGICS = (("line", "nbt_runs"), ("line", "nbt_show"), ("line", "nbt_compare"), ("cell", "nbt_sql"))


def _runs(line: str) -> Any:
    from .api import Api

    project = line.strip() or None
    api = Api()
    runs = api.runs(project) if project else api.runs()
    df = runs.to_pandas()
    for col in ("created_at", "start_time"):
        if col in getattr(df, "columns", []):
            df = df.sort_values(col, ascending=False).reset_index(drop=True)
            break
    from ._runs_table import RunsTable

    return RunsTable(df)


def _show(line: str) -> Any:
    from .display import show

    show(line.strip() or None)


def _compare(line: str) -> Any:
    from ._compare import compare

    return compare(line.strip() or None, display=False)


def _sql(line: str, cell: str) -> Any:
    from .api import sql

    df = sql(cell)
    name = line.strip()
    if name:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None:
            ip.user_ns[name] = df
    return df


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext nbtracker``."""
    from .display import enable_notebook_hook

    enable_notebook_hook()
    ipython.register_magic_function(_runs, "line", "nbt_runs")
    ipython.register_magic_function(_show, "line", "nbt_show")
    ipython.register_magic_function(_compare, "line", "nbt_compare")
    ipython.register_magic_function(_sql, "cell", "nbt_sql")


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext nbtracker``: remove the magics and the automatic panel."""
    from .display import uninstall_notebook_hook

    uninstall_notebook_hook()
    magics = getattr(ipython, "magics_manager", None)
    if magics is None:
        return
    for kind, name in _MAGICS:
        magics.magics.get(kind, {}).pop(name, None)
