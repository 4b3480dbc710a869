"""RunsPanel: several runs compared in one set of live charts (one line per run).

Each run keeps its own :class:`RunPanel` model (not displayed): its pump feeds the data,
live or from the run's folder. The comparison view in the browser draws the data stores of
those child models, so it follows every run as it grows, with no extra kernel work.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import anywidget
import traitlets as t
from ipywidgets import widget_serialization

from .. import charts
from . import _fallback, _lib
from .run_panel import RunPanel

MAX_SUMMARY_COLUMNS = 12


class RunsPanel(anywidget.AnyWidget):
    """Live comparison of runs: one chart per metric, one coloured line per run.

    Traits
    ------
    runs : list of RunPanel
        One (undisplayed) panel per run; ``panel.runs[i].chart(key)`` gives its chart.
    smoothing, x_axis, log_y, renderer
        As on :class:`RunPanel`, shared by all charts.
    """

    _esm = _lib.loader_esm()
    _entry = t.Unicode("renderRunsPanel").tag(sync=True)
    runs = t.List(t.Instance(RunPanel)).tag(sync=True, **widget_serialization)
    smoothing = t.Float(0.0, min=0.0, max=0.99).tag(sync=True)
    x_axis = t.Unicode("step").tag(sync=True)
    log_y = t.Bool(False).tag(sync=True)
    renderer = t.Unicode("canvas").tag(sync=True)
    _spec = t.Dict().tag(sync=True)
    _uid = t.Unicode("").tag(sync=True)

    def __init__(self, panels: list[RunPanel], *, renderer: str = "canvas") -> None:
        super().__init__(
            runs=list(panels), _uid=secrets.token_hex(8), _spec=_lib.live_spec(),
            renderer=renderer,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._fallback_handle: Any = None
        self._shown_in: int | None = None
        self.on_msg(self._on_custom)
        _lib.push(self)
        for p in panels:
            p._on_end.append(self._child_ended)

    def _on_custom(self, _widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "need_lib":
            _lib.push(self, force=True)

    def _child_ended(self) -> None:
        if all(p.state != "running" for p in self.runs):
            self._update_fallback(final=True)

    def wait(self, timeout: float | None = None) -> list[str]:
        """Block until every followed run has ended; return their states."""
        return [p.wait(timeout) for p in self.runs]

    # -- static snapshot -----------------------------------------------------------------------
    def static_chart(self) -> dict[str, Any]:
        """The snapshot's Vega-Lite spec: small multiples, one coloured line per run."""
        runs = []
        for p in self.runs:
            runs.append((f"{p.run_name} ({p.run_id})", p.snapshot_series()))
        return charts.compare_spec(runs)

    def fallback_bundle(self, final: bool = False) -> dict[str, str]:
        from html import escape

        png = None
        if final:
            try:
                png = charts.to_png_base64(self.static_chart())
            except Exception:  # noqa: BLE001
                png = None
        keys: list[str] = []
        for p in self.runs:
            keys += [k for k in p.summary if k not in keys]
        keys = keys[:MAX_SUMMARY_COLUMNS]
        td = 'style="padding:1px 10px 1px 0;text-align:left"'
        head = "".join(f"<th {td}>{escape(h)}</th>" for h in ["run", "state", "step", *keys])
        body = "".join(
            "<tr>"
            + f"<td {td}><b>{escape(p.run_name)}</b> {escape(p.project)}/{escape(p.run_id)}</td>"
            + f"<td {td}>{escape(p.state)}</td><td {td}>{p.step}</td>"
            + "".join(f"<td {td}>{escape(_fallback.fmt(p.summary.get(k, '')))}</td>" for k in keys)
            + "</tr>"
            for p in self.runs
        )
        img = (
            f'<img alt="charts of {len(self.runs)} runs" style="max-width:100%" '
            f'src="data:image/png;base64,{png}">'
            if png
            else "<div><i>Runs in progress; this snapshot shows their charts when they end.</i></div>"
        )
        uid = "".join(c for c in self._uid if c in "0123456789abcdef")
        html = (
            f'<div class="nbt-fallback" data-nbt-fallback="{uid}" '
            'style="font-family:sans-serif;font-size:12px;padding:4px 0">'
            f'<div style="font-size:14px"><b>{len(self.runs)} runs</b></div>{img}'
            '<table style="border-collapse:collapse;font-size:12px">'
            f"<tr>{head}</tr>{body}</table></div>"
        )
        return {"text/html": html, "text/plain": repr(self)}

    def _update_fallback(self, final: bool = False) -> None:
        with self._lock:
            handle = self._fallback_handle
            if handle is not None:
                handle.update(self.fallback_bundle(final), raw=True)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        count = getattr(get_ipython(), "execution_count", None)
        if self._shown_in is not None and self._shown_in == count:
            return
        self._shown_in = count
        charts.warm_png_renderer()
        data, meta = self._repr_mimebundle_()
        display(data, metadata=meta, raw=True)
        final = all(p.state != "running" for p in self.runs)
        self._fallback_handle = display(self.fallback_bundle(final), raw=True, display_id=True)

    def close(self) -> None:
        for p in self.runs:
            p.close()
        super().close()

    def __repr__(self) -> str:
        runs = ", ".join(f"{p.run_name!r} ({p.state})" for p in self.runs[:5])
        more = f", … {len(self.runs) - 5} more" if len(self.runs) > 5 else ""
        return f"RunsPanel({len(self.runs)} runs: {runs}{more})"
