"""Altair chart builders for run metrics: the live panel's spec, user charts, static images.

Every chart here is a plain ``alt.Chart`` / ``alt.LayerChart``: change it, display it, or
save it. The live panel uses :func:`metric_chart` with no data: its points come from a
named data source (``"points"``) that the widget fills and streams into.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt
    import pandas as pd

LIVE_DATA = "points"  # name of the streamed data source in the panel's charts
WIDTH = 300
HEIGHT = 150
X_TITLES = {"step": "step", "time": "time (s)"}
# One number format on every axis (the panel, the workspace, static snapshots): SI suffixes
# from 10,000 on (12.34k, 1.05M), up to 6 significant digits below with trailing zeros
# dropped (0.1, not 0.100000; 1.2455 and 1.246 stay apart), no thousands separators.
AXIS_LABEL = (
    "isValid(datum.value) && abs(datum.value) >= 10000 ? format(datum.value, '~s') "
    ": format(datum.value, '~g')"
)
# integer axes (steps, step metrics) also get whole ticks only (tickMinStep 1)
STEP_AXIS_LABEL = AXIS_LABEL
TWEMA_VIEWPORT = 1000  # the x range, in points, the smoothing weight is defined for


def metric_chart(
    key: str,
    data: pd.DataFrame | None = None,
    *,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> alt.LayerChart:
    """A line chart of one metric: raw line, smoothed line, hover rule, x zoom.

    Parameters
    ----------
    key : str
        The metric name (the chart title).
    data : pandas.DataFrame, optional
        Columns ``x`` (the x axis value), ``v`` (the value) and optionally ``sv`` (the
        smoothed value; computed from ``smoothing`` when missing). Without data the chart
        reads the named data source ``"points"`` (the live panel streams into it).
    x : str
        What the x values are (``"step"``, ``"time"`` or a step metric); the axis title.
    smoothing : float
        Time-weighted, debiased moving average (:func:`twema`, W&B's default) in
        ``[0, 1)``; 0 shows the raw line only.
    log_y : bool
        Log scale on y (non-positive values are left out).

    Returns
    -------
    altair.LayerChart
    """
    import altair as alt

    if data is None:
        source: Any = alt.NamedData(name=LIVE_DATA)
    else:
        df = data.copy()
        if "sv" not in df.columns:
            df["sv"] = twema(list(df["x"]), list(df["v"]), smoothing)
        if log_y:
            df = df[(df["v"] > 0) & (df["sv"] > 0)]
        source = df[["x", "v", "sv"]]
    yscale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    integer_x = x != "time"  # steps and step metrics (epoch) tick at whole numbers
    xaxis = alt.Axis(
        tickCount=5, grid=True, labelExpr=STEP_AXIS_LABEL if integer_x else AXIS_LABEL,
        **({"tickMinStep": 1} if integer_x else {}),
    )  # fmt: skip
    xenc = alt.X("x:Q", title=X_TITLES.get(x, x), axis=xaxis)
    smooth = alt.param(name="smooth", value=float(smoothing))
    hx = alt.param(name="hx", value=None)
    zoom = alt.selection_interval(name="zoom", bind="scales", encodings=["x"])
    raw = (
        alt.Chart(source)
        .mark_line(strokeWidth=1.5, clip=True, opacity=alt.ExprRef("smooth > 0 ? 0.25 : 1"))
        .encode(
            x=xenc,
            y=alt.Y(
                "v:Q", title=None, scale=yscale, axis=alt.Axis(tickCount=4, labelExpr=AXIS_LABEL)
            ),
        )  # fmt: skip
        .add_params(zoom)
        .properties(name="nbt_raw")
    )
    smoothed = (
        alt.Chart(source)
        .mark_line(strokeWidth=1.5, clip=True, opacity=alt.ExprRef("smooth > 0 ? 1 : 0"))
        .encode(x=alt.X("x:Q"), y=alt.Y("sv:Q"))
    )
    rule = (
        alt.Chart(alt.InlineData(values=[{}]))
        .mark_rule(strokeDash=[3, 3], opacity=alt.ExprRef("hx == null ? 0 : 0.8"))
        .encode(x=alt.XValue(alt.ExprRef("hx == null ? 0 : scale('x', hx)")))
    )
    return (
        alt.layer(raw, smoothed, rule)
        .add_params(smooth, hx)
        .properties(width=width, height=height, title=alt.Title(key, fontSize=12, anchor="start"))
    )


def live_spec(width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    """The panel's chart template (a Vega-Lite dict); the panel fills in title and data.

    Panels load the copy saved in ``nbtracker/static/live_spec.json`` (written by
    ``python -m nbtracker.charts``; a test keeps it equal to this), so showing a panel
    never waits for ``import altair`` (2-3 s).
    """
    spec = metric_chart("", width=width, height=height).to_dict()
    spec.pop("title", None)  # the panel shows the key above the chart (as text, escaped)
    spec.pop("$schema", None)
    # points arrive after the first render: re-fit the axes' room on every update
    spec["autosize"] = {"type": "pad", "resize": True}
    return spec


def _finite(v: Any) -> bool:
    return v is not None and v == v and abs(v) != float("inf")


def twema(
    xs: Sequence[float | None], values: Sequence[float | None], smoothing: float
) -> list[float | None]:
    """Time-weighted exponential moving average with debiasing (W&B's default smoothing).

    A point's weight decays with its distance along x (relative to the line's x range), not
    with the number of points, so dense and sparse lines smooth alike; dividing by the
    accumulated weight keeps early values from being pulled towards zero (the first smoothed
    value is the first value). ``smoothing`` is the slider's value in ``[0, 1)``; 0 returns
    the values. Gaps (``None``, NaN, inf) carry the last smoothed value. The live panel's
    ``js/lib/smooth.js`` computes the same numbers.
    """
    p = float(smoothing or 0.0)
    if p <= 0:
        return [float(v) if _finite(v) else None for v in values]  # type: ignore[arg-type]
    w = min(min(p, 1.0) ** 0.5, 0.999)
    good = [float(x) for x, v in zip(xs, values, strict=True) if _finite(x) and _finite(v)]  # type: ignore[arg-type]
    span = (max(good) - min(good)) if len(good) > 1 else 0.0
    span = span if span > 0 else 1.0
    out: list[float | None] = []
    acc = norm = 0.0
    prev: float | None = None
    last: float | None = None
    for x, v in zip(xs, values, strict=True):
        if not (_finite(x) and _finite(v)):
            out.append(last)
            continue
        dx = 0.0 if prev is None else max(float(x) - prev, 0.0)  # type: ignore[arg-type]
        a = w ** (dx / span * TWEMA_VIEWPORT)
        acc = acc * a + float(v)  # type: ignore[arg-type]
        norm = norm * a + 1.0
        last = acc / norm
        prev = float(x)  # type: ignore[arg-type]
        out.append(last)
    return out


def series_frame(points: Mapping[str, Sequence[Any]], x: str = "step") -> pd.DataFrame:
    """Turn a panel series (``{"s": steps, "t": seconds, "v": values, "x": {...}}``) into
    the frame :func:`metric_chart` takes."""
    import pandas as pd

    xs = points["s"] if x == "step" else points["t"] if x == "time" else points["x"][x]
    df = pd.DataFrame({"x": list(xs), "v": list(points["v"])})
    return df.dropna()


def panel_spec(
    series: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    columns: int = 3,
    width: int = 220,
    height: int = 110,
) -> dict[str, Any]:
    """Vega-Lite dict of :func:`panel_chart` (no Altair import: used at ``finish()``)."""
    charts = []
    for key, pts in series.items():
        rows = [
            {"x": x, "v": v}
            for x, v in zip(pts["s"], pts["v"], strict=True)
            if v is not None and x is not None
        ]
        if not rows:
            continue
        charts.append(_snapshot_chart(key, rows, width, height))
    return _snapshot_grid(charts, columns)


def _snapshot_chart(
    key: str, rows: list[dict[str, Any]], width: int, height: int, color: Any = None
) -> dict[str, Any]:
    """One small line chart of a static snapshot (plain Vega-Lite, no Altair import)."""
    encoding: dict[str, Any] = {
        "x": {"field": "x", "type": "quantitative", "title": "step",
              "axis": {"tickCount": 4, "tickMinStep": 1, "labelExpr": STEP_AXIS_LABEL}},
        "y": {"field": "v", "type": "quantitative", "title": None, "scale": {"zero": False},
              "axis": {"tickCount": 4, "labelExpr": AXIS_LABEL}},
    }  # fmt: skip
    if color is not None:
        encoding["color"] = color
    return {
        "data": {"values": rows},
        "title": {"text": key, "fontSize": 11, "anchor": "start"},
        "mark": {"type": "line", "strokeWidth": 1.2},
        "encoding": encoding,
        "width": width,
        "height": height,
    }


def _snapshot_grid(charts: list[dict[str, Any]], columns: int) -> dict[str, Any]:
    if not charts:
        return {"data": {"values": [{}]}, "mark": {"type": "text", "text": "no metrics logged"}}
    return {"$schema": "https://vega.github.io/schema/vega-lite/v6.json",
            "concat": charts, "columns": columns}  # fmt: skip


PALETTE = [
    "#4c78a8",
    "#f58518",
    "#e45756",
    "#72b7b2",
    "#54a24b",
    "#eeca3b",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
]  # fmt: skip  (the same colours as the live comparison panel)


def compare_spec(
    runs: Sequence[tuple[str, Mapping[str, Mapping[str, Sequence[Any]]]]],
    *,
    columns: int = 3,
    width: int = 220,
    height: int = 110,
    colors: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Vega-Lite dict: one small chart per metric, one coloured line per run.

    ``runs`` is ``[(label, {metric: {"s": steps, "v": values}}), ...]``; ``colors`` one
    colour per run (default: the palette in order).
    """
    keys: list[str] = []
    for _, series in runs:
        keys += [k for k in series if k not in keys]
    labels = [label for label, _ in runs]
    color = {
        "field": "run", "type": "nominal", "title": None,
        "scale": {"domain": labels, "range": list(colors) if colors is not None else
                  [PALETTE[i % len(PALETTE)] for i in range(len(labels))]},
    }  # fmt: skip
    charts = []
    for key in keys:
        rows = [
            {"x": x, "v": v, "run": label}
            for label, series in runs
            if key in series
            for x, v in zip(series[key]["s"], series[key]["v"], strict=True)
            if v is not None and x is not None
        ]
        if rows:
            charts.append(_snapshot_chart(key, rows, width, height, color))
    return _snapshot_grid(charts, columns)


def panel_chart(
    series: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    title: str | None = None,
    columns: int = 3,
    width: int = 220,
    height: int = 110,
) -> alt.ConcatChart | alt.Chart:
    """Small multiples of every metric (the static fallback's image)."""
    import altair as alt

    charts = []
    for key, pts in series.items():
        df = series_frame(pts)
        if df.empty:
            continue
        charts.append(
            alt.Chart(df, title=alt.Title(key, fontSize=11, anchor="start"))
            .mark_line(strokeWidth=1.2)
            .encode(
                x=alt.X("x:Q", title="step", axis=alt.Axis(tickCount=4)),
                y=alt.Y("v:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(tickCount=4)),
            )
            .properties(width=width, height=height)
        )
    if not charts:
        return alt.Chart(alt.InlineData(values=[{}])).mark_text(text="no metrics logged")
    out = alt.concat(*charts, columns=columns)
    if title:
        out = out.properties(title=title)
    return out


def to_png_base64(chart: Any, scale: float = 1.0) -> str:
    """Render a chart (Altair, or a Vega-Lite dict) to PNG offline (vl-convert), base64."""
    import json

    import vl_convert as vlc

    spec = json.dumps(chart) if isinstance(chart, dict) else chart.to_json()
    png = vlc.vegalite_to_png(spec, scale=scale)
    return base64.b64encode(_shrink_png(png)).decode("ascii")


def _shrink_png(png: bytes) -> bytes:
    """Quantize to a 32-colour palette when Pillow is there: ~9x smaller, looks the same."""
    try:
        import io

        from PIL import Image
    except ImportError:
        return png
    try:
        im = Image.open(io.BytesIO(png)).convert("RGBA")
        out = io.BytesIO()
        im.quantize(colors=32, method=Image.Quantize.FASTOCTREE).save(
            out, format="PNG", optimize=True
        )
    except Exception:  # noqa: BLE001 - the unshrunk image is fine too
        return png
    return out.getvalue() if out.tell() < len(png) else png


def run_chart(
    run: Any,
    key: str,
    *,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int = 2000,
) -> alt.LayerChart:
    """The chart of one metric of a run (a live ``Run``, or a run folder), as in the panel.

    The history is down-sampled to at most ``max_points`` points (each bucket keeps its
    minimum and maximum, so spikes stay visible).

    Examples
    --------
    >>> chart = nbtracker.charts.run_chart(run, "loss")      # doctest: +SKIP
    >>> chart.properties(width=600).save("loss.png")          # doctest: +SKIP
    """
    from .feed import read_series

    pts = read_series(run, key, max_points=max_points, x_metrics=[] if x in X_TITLES else [x])
    return metric_chart(key, series_frame(pts, x), x=x, smoothing=smoothing, log_y=log_y)


_warm_lock = threading.Lock()
_warmed = False


def warm_png_renderer() -> None:
    """Start vl-convert's engine in a background thread (its first render takes ~1 s), so
    the static snapshot at ``finish()`` costs ~0.2 s."""
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        _warmed = True

    def warm() -> None:
        try:
            to_png_base64({"data": {"values": [{"x": 1}]}, "mark": "point",
                           "encoding": {"x": {"field": "x", "type": "quantitative"}}})  # fmt: skip
        except Exception:  # noqa: BLE001, S110 - only a warm-up
            pass

    threading.Thread(target=warm, name="nbtracker-vl-warm", daemon=True).start()


if __name__ == "__main__":  # python -m nbtracker.charts: refresh the panel's saved template
    import json
    from pathlib import Path

    out = Path(__file__).parent / "static" / "live_spec.json"
    out.write_text(json.dumps(live_spec(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}")


__all__ = [
    "compare_spec", "live_spec", "metric_chart", "panel_chart", "panel_spec", "run_chart",
    "to_png_base64", "twema", "warm_png_renderer",
]  # fmt: skip
