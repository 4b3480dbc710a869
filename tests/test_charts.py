"""Altair chart builders: spec shape, user charts from runs, static PNG."""

from __future__ import annotations

import base64
import json
from typing import Any

import pandas as pd
import pytest

from nbtracker import charts
from nbtracker.store import wait_for_background


def _layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["layer"]


def test_live_spec_streams_from_a_named_source() -> None:
    spec = charts.live_spec()
    layers = _layers(spec)
    assert [layer["mark"]["type"] for layer in layers] == ["line", "line", "rule"]
    assert layers[0]["data"] == {"name": charts.LIVE_DATA}
    assert layers[1]["data"] == {"name": charts.LIVE_DATA}
    assert layers[0]["encoding"]["x"]["field"] == "x" and layers[0]["encoding"]["y"]["field"] == "v"
    assert layers[1]["encoding"]["y"]["field"] == "sv"
    names = {p["name"] for p in spec["params"]}
    assert {"smooth", "hx", "zoom"} <= names
    assert spec["autosize"] == {"type": "pad", "resize": True}
    assert "title" not in spec  # the key is shown as text by the panel (escaped)


def test_metric_chart_with_data_is_a_plain_altair_chart() -> None:
    import altair as alt

    df = pd.DataFrame({"x": range(10), "v": [float(i % 3) for i in range(10)]})
    chart = charts.metric_chart("loss", df, smoothing=0.5)
    assert isinstance(chart, alt.LayerChart)
    spec = chart.to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == 10 and {"x", "v", "sv"} <= set(rows[0])
    assert spec["title"]["text"] == "loss"
    smooth = next(p for p in spec["params"] if p["name"] == "smooth")
    assert smooth["value"] == 0.5


def test_log_scale_drops_non_positive_values() -> None:
    df = pd.DataFrame({"x": [0, 1, 2], "v": [0.0, 1.0, 10.0]})
    spec = charts.metric_chart("loss", df, log_y=True).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["v"] for r in rows] == [1.0, 10.0]
    assert spec["layer"][0]["encoding"]["y"]["scale"]["type"] == "log"


def test_smoothing_is_time_weighted_and_debiased() -> None:
    """W&B's default smoothing: the first smoothed value is the first value (debiased, not
    pulled towards 0), a constant line stays constant, gaps carry the last value, and the
    weight follows the distance along x: a line logged every step and the same line logged
    every 10th step smooth to the same values at the shared steps."""
    assert charts.twema([0, 1, 2], [1.0, None, 3.0], 0.0) == [1.0, None, 3.0]
    out = charts.twema([0, 1, 2, 3], [5.0, None, 5.0, 5.0], 0.9)
    assert out == pytest.approx([5.0, 5.0, 5.0, 5.0])
    steps = list(range(0, 1001))
    vals = [float((s * 7919) % 13) for s in steps]
    dense = charts.twema(steps, vals, 0.6)
    assert dense[0] == vals[0]
    assert max(dense[100:]) - min(dense[100:]) < (max(vals) - min(vals)) / 3  # smoothed
    sparse_x = steps[::10]
    sparse = charts.twema(sparse_x, [vals[s] for s in sparse_x], 0.6)
    # sparse points weigh 10x less per point than dense ones: the same decay per x unit
    w = 0.6**0.5
    assert sparse[1] == pytest.approx((vals[0] * w**10 + vals[10]) / (w**10 + 1))


def test_run_chart_of_a_finished_run_is_downsampled(init: Any) -> None:
    run = init()
    for step in range(10_000):
        run.log({"loss": 1.0 if step != 4321 else 99.0})
    run.finish()
    wait_for_background()
    chart = charts.run_chart(run, "loss", max_points=200)
    rows = next(iter(chart.to_dict()["datasets"].values()))
    assert len(rows) <= 201
    assert max(r["v"] for r in rows) == 99.0  # min/max buckets keep the spike


def test_panel_chart_png_is_not_blank() -> None:
    series = {"a": {"s": [0, 1, 2], "t": [0, 1, 2], "v": [1.0, 3.0, 2.0]},
              "b/c": {"s": [0, 1], "t": [0, 1], "v": [0.5, 0.1]}}  # fmt: skip
    png = base64.b64decode(charts.to_png_base64(charts.panel_chart(series)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2_000


def test_saved_live_spec_matches_the_altair_builder() -> None:
    """Panels load static/live_spec.json; refresh it with `python -m nbtracker.charts`."""
    from nbtracker.widgets import _lib

    assert _lib.live_spec() == json.loads(json.dumps(charts.live_spec()))


def test_panel_spec_renders_without_altair() -> None:
    spec = charts.panel_spec({"loss": {"s": [0, 1, 2], "t": [0, 0, 0], "v": [3.0, None, 1.0]}})
    assert [r["v"] for r in spec["concat"][0]["data"]["values"]] == [3.0, 1.0]
    png = base64.b64decode(charts.to_png_base64(spec))
    assert png[:4] == b"\x89PNG"


def test_panel_smoothing_in_js_equals_the_python_rule(tmp_path: Any) -> None:
    """The live panel (js/lib/smooth.js) and static charts (charts.twema) smooth alike."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is needed (Debian: apt-get install npm brings it)"
    lib = Path(__file__).resolve().parents[1] / "js" / "lib" / "smooth.js"
    xs = [0, 1, 2, 5, 9, 10, 30, 31, None, 40]
    ys = [3.0, None, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0, 3.0, 5.8]
    script = (
        f"import {{ twema }} from {json.dumps(lib.as_uri())};"
        f"console.log(JSON.stringify([0, 0.3, 0.9, 0.99].map(p => twema({json.dumps(xs)}, "
        f"{json.dumps(ys)}, p))));"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    for p, js in zip([0, 0.3, 0.9, 0.99], got, strict=True):
        py = charts.twema(xs, ys, p)
        assert [a is None for a in js] == [b is None for b in py]
        assert [a for a in js if a is not None] == pytest.approx([b for b in py if b is not None])


def test_axis_label_format_is_one_rule_in_python_and_js() -> None:
    """Static snapshots (Python) and the widgets (js/lib/format.js) label axes alike."""
    from pathlib import Path

    js = (Path(__file__).resolve().parents[1] / "js" / "lib" / "format.js").read_text()
    assert f'"{charts.AXIS_LABEL}"' in js
    spec = charts.live_spec()
    assert spec["layer"][0]["encoding"]["y"]["axis"]["labelExpr"] == charts.AXIS_LABEL
    assert spec["layer"][0]["encoding"]["x"]["axis"]["tickMinStep"] == 1  # whole steps
