"""One read layer: the Api, charts, the run panel and the workspace read history alike.

Issue 11 ("one read layer first"): one down-sampler with one NaN rule, a public
``Run.subscribe`` for live consumers, and a live source that survives a torn segment.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import nbtracker
from nbtracker import feed, sampling
from nbtracker.errors import StorageWarning
from nbtracker.store import history_segments, wait_for_background


def test_api_history_and_chart_series_keep_the_same_spikes_and_nans(init: Any, api: Any) -> None:
    run = init(id="r")
    odd = {1234: 50.0, 4321: -50.0, 2500: float("nan"), 3000: float("inf")}
    for i in range(6000):
        run.log({"loss": odd.get(i, math.sin(i / 300))})
    run.finish()
    wait_for_background()
    h = api.run("p/r").history(keys=["loss"], samples=300)
    series = feed.read_series(run.dir, "loss", max_points=300)
    for steps, values in ((h["_step"].tolist(), h["loss"].tolist()), (series["s"], series["v"])):
        got = dict(zip(steps, values, strict=True))
        assert got[1234] == 50.0 and got[4321] == -50.0  # spikes, in both
        assert 2500 in got and 3000 in got  # the NaN and inf steps, in both
        finite = [v for v in values if v is not None and math.isfinite(v)]
        assert max(finite) == 50.0 and min(finite) == -50.0
        assert len(steps) <= 310
    assert math.isnan(dict(zip(h["_step"], h["loss"], strict=True))[2500])


def test_subscribe_delivers_rows_and_finish_and_cancel_stops_it(init: Any) -> None:
    run = init()
    seen: list[tuple[str, Any]] = []
    sub = run.subscribe(lambda event, payload: seen.append((event, payload)))
    run.log({"a": 1})
    sub_b = run.subscribe(lambda event, payload: 1 / 0)  # a broken consumer changes nothing
    run.log({"a": 2})
    sub.cancel()
    run.log({"a": 3})
    run.finish()
    assert seen == [("row", (0, {"a": 1})), ("row", (1, {"a": 2}))]
    assert not sub.active and sub_b.active
    wait_for_background()
    assert dict(run.history_keys) == {"a": "int"}
    with pytest.raises(TypeError):
        run.history_keys["b"] = "float"  # type: ignore[index]
    assert run.record["state"] == "finished"


def test_a_torn_segment_does_not_break_the_live_panel(init: Any) -> None:
    from nbtracker.widgets import RunPanel

    run = init(id="torn")
    for i in range(30):
        run.log({"loss": float(i)})
    run.flush()
    files = history_segments(run.dir)
    assert files
    torn = files[0].with_name("h-00100000-00100009-deadbeef00.parquet")
    torn.write_bytes(files[0].read_bytes()[:40])  # a copy cut short, as a crash leaves it
    with pytest.warns(StorageWarning, match=torn.name):
        panel = RunPanel.for_folder(run.dir, follow=False)
    assert panel._series["series"]["loss"]["s"] == list(range(30))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file, not at every poll
        assert feed.read_series(run.dir, "loss")["s"] == list(range(30))
    run.finish()


def test_charts_and_api_do_not_import_the_widget_modules() -> None:
    code = (
        "import sys, nbtracker.charts, nbtracker.api, nbtracker.feed;"
        "print(sorted(m for m in sys.modules if m.startswith('nbtracker.widgets')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_reduce_sql_and_numpy_reduction_agree(tmp_path: Path) -> None:
    import numpy as np

    from nbtracker import query

    rng = np.random.default_rng(3)
    n = 20_000
    vals = rng.standard_normal(n)
    vals[[17, 9000]] = np.nan
    steps = np.arange(n)
    con = query.duck()
    try:
        con.execute(
            "CREATE TEMP TABLE t AS SELECT 'k' AS key, s AS step, 0.0 AS ts, v AS value, "
            "NULL::VARCHAR AS text FROM (SELECT unnest(?) AS s, unnest(?) AS v)",
            [steps.tolist(), [None if x != x else float(x) for x in vals]],
        )
        # DuckDB reads the NULLs we stored as NaN-like gaps: put real NaN back
        con.execute("UPDATE t SET value = 'NaN'::DOUBLE WHERE value IS NULL")
        w = sampling.bucket_width(0, n - 1, 100)
        got = con.execute(
            f"SELECT step FROM ({sampling.reduce_sql('t')}) ORDER BY step", [w]
        ).fetchall()
    finally:
        con.close()
    want = sampling.reduce_indices(steps, vals, w).tolist()
    assert [s for (s,) in got] == want
    assert 17 in want and 9000 in want
    assert nbtracker.__name__  # the package imported without the widgets


def test_envelope_from_arrays_keeps_the_points_of_add() -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    steps = np.arange(0, 30_000, 3)
    vals = rng.standard_normal(len(steps))
    vals[[10, 11, 4000]] = [np.nan, np.inf, np.nan]
    vals[500:520] = 7.0  # ties: the first of them is kept, as add() keeps it
    a = sampling.Envelope(64)
    for s, v in zip(steps.tolist(), vals.tolist(), strict=True):
        a.add(s, float(s), v)
    b = sampling.Envelope.from_arrays(steps, steps.astype(float), vals, 64)
    assert a.w == b.w
    key = [(p[0], p[2]) for p in a.points()]
    assert [(p[0], p[2]) for p in b.points()] == key or (
        str(key) == str([(p[0], p[2]) for p in b.points()])  # NaN != NaN
    )
