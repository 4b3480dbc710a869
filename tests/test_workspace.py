"""The runs workspace (issue 11) with real runs in a temp store: the runs table, its
filter language, groups, overlay series, the way back to Python, the static snapshot,
and several init() in one notebook cell sharing one output."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from nbt_testutil import wait_until

import nbtracker
from nbtracker.store import wait_for_background
from nbtracker.workspace_query import FilterError, RunsTable, parse_filter, run_color

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def seeds(init: Any) -> list[Any]:
    """The seed quickstart's loop: 5 runs with a learning rate each, 2 optimisers."""
    runs = []
    for r in range(5):
        run = init(
            project="basic-intro",
            name=EVIL if r == 4 else f"seed-{r}",
            config={
                "learning_rate": [0.1, 0.03, 0.01, 0.003, 0.001][r],
                "opt": "adam" if r % 2 else "sgd",
            },
            group="g",
        )
        for step in range(50):
            run.log({"train/loss": (r + 1) / (step + 1), "val/acc": 1 - 1 / (step + 2 + r)})
        run.log({"train/loss": float("nan")})
        run.finish()
        runs.append(run)
    wait_for_background()
    return runs


def workspace(root: Path, **kw: Any) -> Any:
    from nbtracker.widgets.workspace import Workspace

    return Workspace("basic-intro", store=str(root), follow=False, **kw)


def test_filter_becomes_parameterised_sql_with_clear_errors() -> None:
    cols = {"config.lr": "number", "state": "text", "name": "text", "summary.val/acc": "number"}
    sql, params = parse_filter("config.lr < 0.01 and state = 'finished'", cols)
    assert sql == '("config.lr" < ? AND "state" = ?)' and params == [0.01, "finished"]
    sql, params = parse_filter("`summary.val/acc` >= .9 or not lr in (1, 2e-3)", cols)
    assert sql == '("summary.val/acc" >= ? OR (NOT "config.lr" IN (?, ?)))'
    assert params == [0.9, 1, 0.002]
    sql, params = parse_filter('name ~ "50%\'; drop"', cols)  # the value is a parameter
    assert "drop" not in sql and params == ["%50\\%'; drop%"]
    for bad, says in [
        ("lr <", "expected a value"),
        ("lrr < 1", "no column 'lrr'"),
        ("lr < 1; drop table runs", "cannot read"),
        ("lr < 'high'", "holds numbers"),
        ("(lr < 1", "expected ')'"),
        ("state = 'a' state", "expected 'and', 'or' or the end"),
    ]:
        with pytest.raises(FilterError, match=re.escape(says)):
            parse_filter(bad, cols)


def test_runs_table_sorts_filters_groups_and_colours_are_stable(
    seeds: list[Any], root: Path
) -> None:
    table = RunsTable(nbtracker.Store(root), "basic-intro")
    table.refresh()
    assert table.columns["config.learning_rate"] == "number" and "summary.val/acc" in table.columns
    ids = table.ids(
        "learning_rate < 0.02 and state = finished", sort=[("config.learning_rate", False)]
    )
    assert ids == [seeds[4].id, seeds[3].id, seeds[2].id]
    rows, matched = table.page(["config.opt"], search="seed-", offset=1, limit=2)
    assert matched == 4 and len(rows) == 2
    head, groups = table.groups(["opt"])
    assert head[:2] == ["config.opt", "count"] and [g[:2] for g in groups] == [
        ["adam", 2],
        ["sgd", 3],
    ]
    assert run_color(seeds[0].id) == run_color(seeds[0].id) and run_color("x").startswith("#")
    table.close()


def test_workspace_view_back_to_python_and_snapshot(seeds: list[Any], root: Path) -> None:
    ws = workspace(root, max_visible=3)
    try:
        assert ws.total == 5 and ws.visible == [r.id for r in reversed(seeds)][:3]
        assert set(ws.metrics) == {"train/loss", "val/acc"}
        colors = [ws.runs[r]["color"] for r in ws.drawn]
        assert len(set(colors)) == len(colors)  # lines drawn together never share a colour
        assert ws.runs[seeds[2].id]["color"] == run_color(seeds[2].id)  # the oldest: its hash
        series = ws.series_snapshot()["runs"][seeds[4].id]["train/loss"]
        assert series["s"][-1] == 50 and series["v"][-1] is None  # the NaN step kept, as a gap
        assert max(series["v"][:-1]) == 5.0
        ws.filter = "learning_rate >= 0.01"
        assert ws.matched == 3 and ws.error == ""
        assert ws.visible == [seeds[2].id, seeds[1].id, seeds[0].id]
        ws.filter = "learning_rate >="
        assert ws.error.startswith("filter: expected a value") and ws.matched == 3  # kept
        ws.filter = "learning_rate >= 0.01"
        ws.sort = [["config.learning_rate", False]]
        df = ws.to_pandas()
        assert df["config.learning_rate"].tolist() == [0.01, 0.03, 0.1]
        assert [r.id for r in ws.selected] == ws.visible
        ws.visible = [seeds[0].id]  # a toggle in the table
        chart = ws.chart("train/loss")
        assert set(chart.data["run"]) == {f"seed-0 ({seeds[0].id})"}
        # one chart's own settings (its ⚙ controls) over the workspace's; the others keep
        # the workspace's; the Altair chart draws as the widget does
        ws.chart_opts = {"train/loss": {"x": "time", "log_y": True, "smoothing": 0.5}}
        assert ws.chart_settings("train/loss") == ("time", 0.5, True)
        assert ws.chart_settings("val/acc") == ("step", 0.0, False)
        spec = ws.chart("train/loss").to_dict()
        assert spec["encoding"]["x"]["field"] == "time"
        assert spec["encoding"]["y"]["scale"]["type"] == "log"
        assert ws.chart("val/acc").to_dict()["encoding"]["x"]["field"] == "step"
        # another metric as x: its value at each step of the run
        ws.chart_opts = {"train/loss": {"x": "val/acc"}, "val/acc": {"x": "val/acc"}}
        assert ws.chart_settings("train/loss")[0] == "val/acc"
        assert ws.chart_settings("val/acc")[0] == "step"  # never itself
        over = ws.chart("train/loss")
        assert over.to_dict()["encoding"]["x"] == {"field": "x", "title": "val/acc",
                                                   "type": "quantitative"}  # fmt: skip
        acc = ws.chart("val/acc").data
        both = over.data.merge(acc, on=["run", "step"])
        assert len(both) > 10 and (both["x"] == both["value_y"]).all()
        ws.chart_opts = {}
        ws.group = ["config.opt"]
        assert ws.groups["head"][:2] == ["config.opt", "count"]
        assert set(ws.bands["train/loss"]) == {"sgd", "adam"}
        band = ws.bands["train/loss"]["sgd"]
        assert all(
            lo <= m <= hi for lo, m, hi in zip(band["lo"], band["mean"], band["hi"], strict=True)
        )
        assert len(ws.to_pandas()) == 2
        ws.filter = ""
        ws.group = ["config.learning_rate"]  # 5 groups: two of their hashed colours collide
        assert len(ws.bands["train/loss"]) == 5
        assert len({b["color"] for b in ws.bands["train/loss"].values()}) == 5
        ws.group = []
        ws.tab = "importance"
        ws.filter = ""
        ws.target = "summary.val/acc"
        assert [d["param"] for d in ws.importance] == ["config.learning_rate"]
        ws.tab = "parallel"
        assert ws.points["names"] == ["config.learning_rate", "summary.val/acc"]
        assert len(ws.points["rows"]) == 5
        html = ws.fallback_bundle(final=True)["text/html"]
        assert EVIL not in html and "&lt;img src=x" in html
        assert "data:image/png;base64," in html and len(html) < 1_000_000
    finally:
        ws.close()


def test_show_runs_is_the_sweep_hook(seeds: list[Any], root: Path) -> None:
    ws = workspace(root)
    try:
        ws.show_runs([seeds[0].id, seeds[1].id])
        assert ws.total == 2 and set(ws.visible) == {seeds[0].id, seeds[1].id}
        ws.show_runs(None)
        assert ws.total == 5
    finally:
        ws.close()


def test_several_inits_in_one_cell_share_one_output(
    init: Any, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two init() in one cell: the first panel's output turns into the comparison."""
    import IPython
    import IPython.display

    from nbtracker import _compare, _state
    from nbtracker import display as nbt_display
    from nbtracker.widgets import RunPanel
    from nbtracker.widgets.workspace import Workspace

    class Handle:
        def __init__(self, obj: Any) -> None:
            self.shown = [obj]

        def update(self, obj: Any, **kw: Any) -> None:
            self.shown.append(obj)

    handles: list[Handle] = []

    def fake_display(obj: Any, **kw: Any) -> Any:
        handles.append(Handle(obj))
        return handles[-1] if kw.get("display_id") else None

    class Events:
        def register(self, *args: Any) -> None:
            pass

    class Shell:
        execution_count = 7
        events = Events()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.setattr(_state, "in_notebook", lambda: True)
    monkeypatch.setattr(_compare, "_cell", {"count": None})
    monkeypatch.setattr(_state, "init_hooks", [])
    monkeypatch.setattr(nbt_display, "_auto_enabled", True)
    nbt_display.install_notebook_hook()
    runs = []
    for r in range(3):
        run = init(project="cell", name=f"r{r}", config={"lr": r})
        for step in range(10):
            run.log({"loss": r + 1 / (step + 1)})
        runs.append(run)
        if r == 0:
            assert isinstance(_compare._cell["panel"], RunPanel)
        else:
            ws = _compare._cell["ws"]
            assert isinstance(ws, Workspace) and ws.highlight == run.id
            assert ws.visible[0] == run.id and len(ws.visible) == r + 1
        run.finish()
    assert len(handles) == 2  # one widget output, one snapshot output: nothing stacked
    widget_out, snapshot_out = handles
    assert len(widget_out.shown) == 2  # the panel, then the comparison in its place
    ws = _compare._cell["ws"]
    wait_until(lambda: all(ws.runs[r.id]["state"] == "finished" for r in runs))
    assert ws.total == 3
    assert "data:image/png;base64," in snapshot_out.shown[-1]["text/html"]
    # the overlay's data follows on the workspace's next tick (a busy machine: later)
    wait_until(
        lambda: all(
            ws.series_snapshot()["runs"].get(r.id, {}).get("loss", {}).get("s") == list(range(10))
            for r in runs
        )
    )
    ws.close()


def test_envelopes_of_many_runs_in_one_scan(seeds: list[Any]) -> None:
    from nbtracker.feed import read_series
    from nbtracker.overlay import envelopes

    envs = envelopes([(r.dir, r.start_time) for r in seeds], None, 16)
    assert [sorted(e) for e in envs] == [["train/loss", "val/acc"]] * 5
    for run, env in zip(seeds, envs, strict=True):
        pts = env["train/loss"].points()
        one = read_series(run.dir, "train/loss", max_points=32)
        assert [p[0] for p in pts] == one["s"]
        assert all(
            (p[2] == v) or (math.isnan(p[2]) and v is None)
            for p, v in zip(pts, one["v"], strict=True)
        )


def test_runs_of_other_processes_appear_and_update_live(root: Path) -> None:
    import subprocess
    import sys

    from nbtracker.widgets.workspace import Workspace

    script = (
        "import sys, time, nbtracker\n"
        f"run = nbtracker.init(project='live', name='script', dir={str(root)!r})\n"
        "for s in range(40):\n"
        "    run.log({'loss': 1 / (s + 1)}); time.sleep(0.05)\n"
        "run.finish()\n"
    )
    first = nbtracker.init(project="live", name="here", dir=str(root))
    first.log({"loss": 1.0})
    first.finish()
    wait_for_background()
    ws = Workspace("live", store=str(root))
    try:
        assert ws.total == 1
        proc = subprocess.Popen([sys.executable, "-c", script])
        try:
            wait_until(lambda: ws.total == 2, timeout=30)  # the script's run appears
            rid = next(r for r, info in ws.runs.items() if info["name"] == "script")
            wait_until(lambda: rid in ws.drawn, timeout=10)  # the newest run is drawn
            wait_until(lambda: ws.runs[rid]["state"] == "finished", timeout=40)
            wait_until(
                lambda: len(ws._snapshot_value()["runs"][rid]["loss"]["s"]) == 40, timeout=20
            )
        finally:
            assert proc.wait(60) == 0
    finally:
        ws.close()


def test_brushing_an_axis_filters_the_runs(seeds: list[Any], root: Path) -> None:
    ws = workspace(root)
    try:
        ws.tab = "parallel"
        ws.brush = {"config.learning_rate": [0.002, 0.05]}
        assert ws.matched == 3 and ws.error == ""
        assert set(ws.drawn) == {seeds[1].id, seeds[2].id, seeds[3].id}
        flags = {r[0]: r[1] for r in ws.points["rows"]}  # every run, flagged in / out
        assert len(flags) == 5 and sum(flags.values()) == 3
        assert len(ws.to_pandas()) == 3
        ws.brush = {"name": [0, 1]}  # a text column cannot be brushed: a message
        assert ws.error == "brush: name holds text; only columns of numbers have a range to brush"
        assert ws.matched == 3  # the last good brush still applies
        ws.brush = {}
        assert ws.matched == 5
    finally:
        ws.close()


def test_runs_table_has_alerts_and_environment_columns(init: Any, root: Path) -> None:
    """Issue 13: a run's alerts and where it ran are columns of the runs table (filterable)."""
    quiet = init(project="env-cols", name="quiet")
    quiet.log({"loss": 1.0})
    quiet.finish()
    loud = init(project="env-cols", name="loud")
    loud.alert(title="first", text="a", level="INFO")
    loud.alert(title="<b>loss</b> diverged", text="b", level="WARN", wait_duration=0)
    loud.finish()
    wait_for_background()
    table = RunsTable(nbtracker.Store(root), "env-cols")
    table.refresh()
    assert table.columns["alerts"] == "text" and table.columns["env.python"] == "text"
    rows, _ = table.page(["alerts", "env.python", "env.host"], sort=[("name", False)])
    by_id = {r[0]: r[1:] for r in rows}
    assert by_id[loud.id][0] == "2 · WARN: <b>loss</b> diverged"  # the widget escapes it
    assert by_id[quiet.id][0] is None
    assert by_id[quiet.id][1].startswith("CPython ") and by_id[quiet.id][2]
    assert table.ids("alerts != ''") == [loud.id]
    table.close()
    from nbtracker.widgets.workspace import Workspace

    ws = Workspace("env-cols", store=str(root), follow=False)
    assert "alerts" in ws.shown and {"name": "env.python", "kind": "text"} in ws.columns
    ws.close()


def test_long_finished_runs_overlay_from_their_overview_with_the_same_points(init: Any) -> None:
    """A finished long run keeps a small overview of its history (buckets); the overlay
    reads it and draws exactly the points it draws from the full history, NaN and spikes
    included; once the run is resumed (other history files) the overview is not used."""
    import os

    from nbtracker import overlay
    from nbtracker.overlay import envelopes
    from nbtracker.store import find_overview, history_segments, history_signature

    runs = []
    for r in range(3):
        run = init(name=f"long{r}")
        for s in range(8_000 + 1_000 * r):
            v = math.nan if s == 4_321 else 50.0 if s == 777 else 1 / (s + 1 + r)
            run.log({"loss": v, "acc": s / 9_000, "lr": 0.1, "val/loss": 2 / (s + 1)})
        run.finish()
        runs.append(run)
    short = init(name="short")
    short.log({"loss": 1.0})
    short.finish()
    wait_for_background()
    for run in runs:
        found = find_overview(run.dir, history_signature(history_segments(run.dir)))
        assert found is not None, os.listdir(run.dir)
    assert find_overview(short.dir, history_signature(history_segments(short.dir))) is None
    pairs = [(r.dir, r.start_time) for r in [*runs, short]]
    fast = envelopes(pairs, None, 64)
    for run in runs:  # the same reduction from the history files themselves
        for f in run.dir.glob("overview-*"):
            f.unlink()
    full = envelopes(pairs, None, 64)
    assert [sorted(e) for e in fast] == [["acc", "loss", "lr", "val/loss"]] * 3 + [["loss"]]
    for a, b in zip(fast, full, strict=True):
        for key in a:
            pa, pb = a[key].points(), b[key].points()
            assert [p[0] for p in pa] == [p[0] for p in pb], key
            assert [p[2] for p in pa] == pytest.approx([p[2] for p in pb], nan_ok=True)
            assert [p[1] for p in pa] == pytest.approx([p[1] for p in pb])
    loss = fast[0]["loss"].points()
    assert 50.0 in [p[2] for p in loss] and any(math.isnan(p[2]) for p in loss)
    # rebuilt, then the run resumes: new files, so the old overview is left alone
    assert overlay.write_overview(runs[0].dir) is not None
    again = nbtracker.init(id=runs[0].id, project=runs[0].project, resume="allow",
                           dir=str(runs[0]._store.root))  # fmt: skip
    again.log({"loss": 123.0})
    again.finish()
    wait_for_background()
    env = envelopes([(runs[0].dir, runs[0].start_time)], ["loss"], 64)[0]["loss"]
    assert env.points()[-1][2] == 123.0


def test_a_damaged_overview_is_only_a_cache(init: Any) -> None:
    """A torn overview file: the overlay reads the run's history instead, no warning."""
    import warnings

    from nbtracker.overlay import envelopes

    run = init(name="long")
    for s in range(8_000):
        run.log({"loss": 1 / (s + 1), "acc": s / 8_000, "lr": 0.1, "x": 2.0})
    run.finish()
    wait_for_background()
    (ov,) = run.dir.glob("overview-*.parquet")
    ov.write_bytes(ov.read_bytes()[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = envelopes([(run.dir, run.start_time)], ["loss"], 64)[0]["loss"]
    pts = env.points()
    assert pts[0][0] == 0 and pts[-1][0] == 7_999 and pts[0][2] == 1.0


def test_run_colours_are_told_apart() -> None:
    """No two run colours are near twins (CIELAB delta E >= 25 for every pair)."""
    from nbtracker.workspace_query import PALETTE

    def lab(h: str) -> tuple[float, float, float]:
        rgb = [int(h[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
        x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
        y = 0.2126 * r + 0.7152 * g + 0.0722 * b
        z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
        f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z)]
        return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])

    assert len(set(PALETTE)) == len(PALETTE) == 15
    worst = min(math.dist(lab(a), lab(b)) for i, a in enumerate(PALETTE) for b in PALETTE[i + 1 :])
    assert worst >= 25, worst


def test_a_projects_workspace_opens_as_it_was_left(seeds: list[Any], root: Path) -> None:
    """Filter, sort, groups, columns and chart settings are saved with the project (as
    W&B's workspace): the next workspace of the project opens with them, drawn; a
    workspace of some runs, or view=False, leaves the saved view alone; reset_view()."""
    ws = workspace(root)
    try:
        ws.filter = "learning_rate >= 0.01"
        ws.sort = [["config.learning_rate", False]]
        ws.group = ["config.opt"]
        ws.pinned = ["config.opt"]
        ws.smoothing = 0.5
        ws.chart_opts = {"train/loss": {"log_y": True}}
    finally:
        ws.close()
    again = workspace(root)
    try:
        assert again.filter == "learning_rate >= 0.01" and again.matched == 3
        assert again.sort == [["config.learning_rate", False]]
        assert again.group == ["config.opt"] and set(again.bands["train/loss"]) == {"sgd", "adam"}
        assert again.pinned == ["config.opt"] and again.smoothing == 0.5
        assert again.chart_settings("train/loss") == ("step", 0.5, True)
        assert again.to_pandas()["config.opt"].tolist() == ["adam", "sgd"]  # grouped view
        assert workspace(root, view=False).filter == ""  # not restored ...
        assert workspace(root).filter == "learning_rate >= 0.01"  # ... nor overwritten
        again.reset_view()
        assert (again.filter, again.group, again.chart_opts) == ("", [], {})
        assert again.matched == 5 and again.shown  # the default columns again
    finally:
        again.close()
    fresh = workspace(root)
    try:
        assert (fresh.filter, fresh.sort, fresh.group, fresh.smoothing) == ("", [], [], 0.0)
    finally:
        fresh.close()
    # a broken saved view (hand-edited, another version) opens the default view
    nbtracker.Store(root).write_view("basic-intro", {"filter": 5, "sort": "x", "smoothing": 7})
    odd = workspace(root)
    try:
        assert (odd.filter, odd.sort, odd.smoothing) == ("", [], 0.0) and odd.matched == 5
    finally:
        odd.close()
