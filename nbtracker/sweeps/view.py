"""Seeing a sweep: the runs workspace limited to the sweep's runs (live), with the sweep
metric over trials and the best so far."""

from __future__ import annotations

import html
from typing import Any

from .study import SweepStudy, metric_value


def runs_store(sweep: SweepStudy) -> Any:
    """Where the sweep's runs are read: its store, or for a team sweep opened on an
    agent's local root, the team store's reader cache (kept fresh: every machine's runs)."""
    if sweep.url is None or getattr(sweep.store, "team_url", None) is not None:
        return sweep.store
    reader = getattr(sweep, "_reader_store", None)
    if reader is None:
        from .. import team

        reader = sweep._reader_store = team.reader_store(sweep.url, live=True)  # type: ignore[attr-defined]
    return reader


def trials_frame(sweep: SweepStudy) -> Any:
    """One row per run of the sweep, in the order they started: ``trial`` (0, 1, ...), ``run_id``, ``state``,
    ``value`` (the sweep metric) and ``best`` (best so far)."""
    import pandas as pd

    from ..query import load_runs

    metric = sweep.metric
    recs = [r for r in load_runs(runs_store(sweep), sweep.project)
            if r.get("sweep_id") == sweep.id]  # fmt: skip
    recs.sort(key=lambda r: r.get("created_at") or 0)
    rows, best = [], None
    for i, r in enumerate(recs):
        v = metric_value(r.get("summary") or {}, metric) if metric else None
        if v is not None and v == v:
            better = best is None or (v > best if metric["goal"] == "maximize" else v < best)
            best = v if better else best
        rows.append({"trial": i, "run_id": r["id"], "name": r.get("name"),
                     "state": r.get("state"), "value": v, "best": best})  # fmt: skip
    return pd.DataFrame(rows, columns=["trial", "run_id", "name", "state", "value", "best"])


def trials_chart(sweep: SweepStudy) -> Any:
    """Altair: the sweep metric of each trial (points, by state) and the best so far (line)."""
    import altair as alt

    df = trials_frame(sweep)
    name = (sweep.metric or {}).get("name", "metric")
    base = alt.Chart(df.dropna(subset=["value"])).encode(
        x=alt.X("trial:Q", title="trial")
    )  # fmt: skip
    points = base.mark_circle(size=45).encode(
        y=alt.Y("value:Q", title=name, scale=alt.Scale(zero=False)),
        color=alt.Color("state:N", title="state"),
        tooltip=["trial", "name", "state", "value"],
    )
    line = base.mark_line(interpolate="step-after", color="#333").encode(y="best:Q")
    return (points + line).properties(width=520, height=220, title=f"{name} over trials")


def _chart_html(sweep: SweepStudy) -> str:
    from ..charts import to_png_base64

    title = html.escape(f"sweep {sweep.id} ({sweep.config['method']}): {sweep.state()}")
    try:
        png = to_png_base64(trials_chart(sweep))
    except Exception as exc:  # noqa: BLE001 - the workspace above still shows the runs
        return f"<div><b>{title}</b><br>chart unavailable: {html.escape(repr(exc))}</div>"
    return f'<div><b>{title}</b><br><img src="data:image/png;base64,{png}"></div>'


def show_sweep(sweep: SweepStudy, *, display: bool = True) -> Any:
    """Display the sweep's workspace and trials chart; return the workspace."""
    from IPython.display import HTML
    from IPython.display import display as show

    from ..widgets.workspace import Workspace

    ws = Workspace(sweep.project, store=runs_store(sweep), sweep=sweep.id)
    if sweep.metric:
        ws.target = f"summary.{sweep.metric['name']}"
    ws.title = f"sweep {sweep.record.get('name') or sweep.id}"
    if display:
        show(ws)
        ws._sweep_chart = show(HTML(_chart_html(sweep)), display_id=True)
    return ws


def refresh_chart(ws: Any, sweep: SweepStudy) -> None:
    """Redraw the trials chart under a displayed sweep workspace (after each trial)."""
    from IPython.display import HTML

    handle = getattr(ws, "_sweep_chart", None)
    if handle is not None:
        handle.update(HTML(_chart_html(sweep)))
