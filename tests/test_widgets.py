"""RunPanel and friends with real widget objects (no kernel): traits, messages, fallback."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from nbt_testutil import wait_until

import nbtracker
from nbtracker import _state
from nbtracker.sampling import Envelope, bucket_width, reduce_indices
from nbtracker.store import wait_for_background
from nbtracker.widgets import RunPanel, _lib

EVIL = "<img src=x onerror=alert(1)>"


class Captured(list):  # type: ignore[type-arg]
    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self if m.get("type") == kind]


def capture(panel: RunPanel) -> Captured:
    sent = Captured()
    panel.send = lambda msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    return sent


class JsStore:
    """The browser's series store (js/lib/store.js), in Python: applies the messages."""

    def __init__(self, snapshot: dict[str, Any] | None = None) -> None:
        self.series: dict[str, dict[str, list[Any]]] = {}
        self.seq = -1
        if snapshot:
            self.seed(snapshot)

    def seed(self, snap: dict[str, Any]) -> None:
        self.series = {
            k: {c: list(v[c]) for c in ("s", "t", "v")} for k, v in snap["series"].items()
        }
        self.seq = snap["seq"]

    def apply(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "snap":
            self.seed(msg)
            return
        if msg["type"] != "rows" or msg["seq"] <= self.seq:
            return
        assert self.seq < 0 or msg["seq"] == self.seq + 1, "gap in the delta sequence"
        self.seq = msg["seq"]
        for key, d in msg["series"].items():
            ser = self.series.setdefault(key, {"s": [], "t": [], "v": []})
            if d["from"] is None:
                ser = self.series[key] = {"s": [], "t": [], "v": []}
            i = sum(1 for s in ser["s"] if s < (d["from"] if d["from"] is not None else -math.inf))
            for c in ("s", "t", "v"):
                ser[c] = ser[c][:i] + list(d[c])


# -- the envelope ------------------------------------------------------------------------------
def test_envelope_is_bounded_and_keeps_spikes() -> None:
    env = Envelope(max_buckets=64)
    for s in range(100_000):
        env.add(s, s * 0.01, 1.0 if s != 77_777 else 50.0)
    pts = env.points()
    assert len(pts) <= 2 * 64 + 1
    assert max(p[2] for p in pts) == 50.0  # the one spike survives 100k -> 129 points
    assert pts[-1][0] == 99_999  # the newest point is always drawn
    assert [p[0] for p in pts] == sorted(p[0] for p in pts)


def test_envelope_deltas_rebuild_the_same_points() -> None:
    env = Envelope(max_buckets=32)
    js = JsStore()
    seq = 0
    for s in range(5000):
        env.add(s, float(s), math.sin(s / 37.0) + (5 if s % 997 == 0 else 0))
        if s % 13 == 0:
            d = env.take_delta()
            if d:
                seq += 1
                frm, pts = d
                js.apply({"type": "rows", "seq": seq, "series": {"k": {
                    "from": frm, "s": [p[0] for p in pts], "t": [p[1] for p in pts],
                    "v": [p[2] for p in pts]}}})  # fmt: skip
    d = env.take_delta()
    if d:
        frm, pts = d
        js.apply({"type": "rows", "seq": seq + 1, "series": {"k": {
            "from": frm, "s": [p[0] for p in pts], "t": [p[1] for p in pts],
            "v": [p[2] for p in pts]}}})  # fmt: skip
    assert js.series["k"]["s"] == [p[0] for p in env.points()]
    assert js.series["k"]["v"] == [p[2] for p in env.points()]


def test_bulk_reduction_matches_point_by_point() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    steps = np.arange(0, 200_000, 3)
    vals = rng.standard_normal(len(steps))
    w = bucket_width(int(steps[0]), int(steps[-1]), 256)
    idx = reduce_indices(steps, vals, w)
    assert len(idx) <= 3 * 256
    a, b = Envelope(256), Envelope(256)
    for s, v in zip(steps.tolist(), vals.tolist(), strict=True):
        a.add(s, 0.0, v)
    for i in idx.tolist():
        b.add(int(steps[i]), 0.0, float(vals[i]))
    assert [p[:1] + p[2:3] for p in a.points()] == [p[:1] + p[2:3] for p in b.points()]


def test_nan_and_inf_are_kept_as_gaps_never_as_extremes() -> None:
    from nbtracker.sampling import columns

    env = Envelope()
    for s, v in enumerate([1.0, float("nan"), float("inf"), 2.0]):
        env.add(s, 0.0, v)
    # the steps stay (the Api's history keeps them too: one rule), the values go to the
    # browser as null, which the chart does not draw
    assert columns(env.points(), [])["v"] == [1.0, None, None, 2.0]
    coarse = Envelope(max_buckets=2)
    for s, v in enumerate([1.0, float("nan"), 5.0, float("-inf"), 3.0, 0.5, 2.0, 1.5]):
        coarse.add(s, 0.0, v)
    vals = [p[2] for p in coarse.points()]
    finite = [v for v in vals if math.isfinite(v)]
    assert min(finite) == 0.5 and max(finite) == 5.0
    assert any(v != v for v in vals)  # the first NaN of its bucket


# -- the live panel ------------------------------------------------------------------------------
def test_live_panel_traits_messages_and_final_state(init: Any, tmp_path: Path) -> None:
    run = init(name="live", config={"lr": 0.01, "nested": {"depth": 3}, "api_key": "sk-secret"})
    panel = RunPanel.for_run(run)
    sent = capture(panel)
    js = JsStore(panel._series)
    assert panel.state == "running" and panel.run_name == "live" and panel.project == "p"
    for step in range(120):
        run.log({"train/loss": 1 / (step + 1), "val/acc": step / 120, "epoch": step // 40})
    wait_until(lambda: panel.step == 119, timeout=10)
    run.finish()
    for msg in sent:
        js.apply(msg)
    assert panel.state == "finished" and panel.step == 119
    assert panel.metrics == ["train/loss", "val/acc", "epoch"]
    assert panel.x_options == ["epoch"]
    assert panel.summary["train/loss"] == pytest.approx(1 / 120)
    assert panel.config == {"lr": 0.01, "nested.depth": 3, "api_key": "•••"}
    assert js.series["train/loss"]["s"] == list(range(120))
    assert panel._series["series"]["val/acc"]["s"] == list(range(120))
    rows = sent.of("rows")
    assert rows and [m["seq"] for m in rows] == list(range(1, len(rows) + 1))
    assert len(rows) <= 10  # throttled: a few messages, not one per log()
    assert not panel._subscription.active  # unsubscribed after finish
    state = json.dumps(panel.get_state())
    assert str(tmp_path) not in state and "sk-secret" not in state


def test_widget_state_stays_small_for_long_runs(init: Any) -> None:
    run = init()
    panel = RunPanel.for_run(run)
    capture(panel)
    for step in range(30_000):
        run.log({"loss": math.sin(step / 100.0), "acc": step / 30_000})
    run.finish()
    for key in ("loss", "acc"):
        assert len(panel._series["series"][key]["s"]) <= 2 * 512 + 1
    size = len(json.dumps(panel.get_state()))
    assert size < 120_000, size


def test_text_plain_is_readable(init: Any) -> None:
    run = init(name="readable")
    panel = RunPanel.for_run(run)
    run.finish()
    data, _ = panel._repr_mimebundle_()
    assert data["text/plain"].startswith("RunPanel(run='readable'")
    assert "object at 0x" not in data["text/plain"]


def test_fallback_escapes_user_strings(init: Any) -> None:
    run = init(name=EVIL, config={EVIL: EVIL})
    panel = RunPanel.for_run(run)
    capture(panel)
    for step in range(5):
        run.log({EVIL: step, "ok": step * 2})
    run.finish()
    bundle = panel.fallback_bundle(final=True)
    html = bundle["text/html"]
    assert EVIL not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<img alt="charts of &lt;img' in html and "data:image/png;base64," in html
    assert f'data-nbt-fallback="{panel._uid}"' in html
    assert EVIL in bundle["text/plain"]  # plain text needs no escaping


def test_fallback_while_running_has_no_image(init: Any) -> None:
    run = init(name="r")
    panel = RunPanel.for_run(run)
    capture(panel)
    html = panel.fallback_bundle(final=False)["text/html"]
    assert "data:image/png" not in html and "in progress" in html
    run.finish()


def test_browser_requests_library_and_resync(init: Any) -> None:
    run = init()
    panel = RunPanel.for_run(run)
    sent = capture(panel)
    run.log({"a": 1.0})
    run.finish()
    panel._handle_custom_msg({"type": "need_lib", "hash": "x"}, [])
    libs = sent.of("lib")
    assert len(libs) == 1 and libs[0]["hash"] == _lib.library()[1]
    assert len(libs[0]["code"]) > 500_000  # the bundled vega library
    panel._handle_custom_msg({"type": "resync"}, [])
    snap = sent.of("snap")[-1]
    assert snap["series"]["a"]["v"] == [1.0] and snap["seq"] == panel._series["seq"]


def test_library_pushed_once_per_kernel(init: Any) -> None:
    _lib._reset_for_tests()
    sent: list[dict[str, Any]] = []
    orig = RunPanel.send
    RunPanel.send = lambda self, msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    try:
        run = init()
        RunPanel.for_run(run)
        RunPanel.for_run(run)
    finally:
        RunPanel.send = orig  # type: ignore[method-assign]
    assert [m["type"] for m in sent].count("lib") == 1


def test_loader_is_tiny_and_bound_to_the_library() -> None:
    esm = RunPanel._esm if isinstance(RunPanel._esm, str) else str(RunPanel._esm)
    assert len(esm) < 3_000
    assert _lib.library()[1] in esm and "__NBT_LIB_HASH__" not in esm
    assert "https://" not in esm and "http://" not in esm


def test_bundle_has_no_cdn_imports() -> None:
    code = _lib.library()[0]
    assert 'from"http' not in code.replace(" ", "") and 'import("http' not in code


# -- runs of another process: folder panels --------------------------------------------------------
def test_folder_panel_of_a_finished_run(init: Any) -> None:
    run = init(name="done", config={"lr": 0.5})
    for step in range(50):
        run.log({"loss": 1 / (step + 1), "epoch": step // 10})
    run.finish()
    wait_for_background()
    panel = RunPanel.for_folder(run.dir)
    assert panel.state == "finished" and panel.run_name == "done" and panel.step == 49
    assert panel._series["series"]["loss"]["s"] == list(range(50))
    assert panel._series["series"]["loss"]["x"]["epoch"][-1] == 4
    assert panel.summary["loss"] == pytest.approx(1 / 50)
    assert panel._thread is None  # nothing to follow


def test_folder_panel_follows_until_the_run_ends(init: Any) -> None:
    run = init(name="follow")
    run.log({"loss": 1.0})
    run.flush()
    panel = RunPanel.for_folder(run.dir)
    sent = capture(panel)
    js = JsStore(panel._series)
    assert panel.state == "running"
    for step in range(1, 30):
        run.log({"loss": 1 / (step + 1)})
    run.flush()
    wait_until(lambda: panel.step == 29, timeout=10)
    run.finish()
    wait_for_background()
    wait_until(lambda: panel.state == "finished", timeout=10)
    panel._thread.join(5)  # type: ignore[union-attr]
    assert not panel._thread.is_alive()  # type: ignore[union-attr]
    for msg in sent:
        js.apply(msg)
    assert js.series["loss"]["s"] == list(range(30))


def test_show_resolves_runs_and_projects(
    init: Any, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    from nbtracker import display as nbt_display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    a = init(name="a")
    a.log({"x": 1})
    a.finish()
    b = init(name="b", project="other")
    b.log({"x": 2})
    b.finish()
    wait_for_background()
    store = nbtracker.Store(root)
    p = nbt_display.show(f"p/{a.id}", store=store)
    assert isinstance(p, RunPanel) and p.run_name == "a" and shown == [p]
    many = nbt_display.show(["p", b], store=store, compare=False)
    assert [x.run_name for x in many] == ["a", "b"]
    both = nbt_display.show(["p", b], store=store)  # the workspace of those runs
    assert sorted(both.runs[r]["name"] for r in both.visible) == ["a", "b"]
    both.close()
    with pytest.raises(nbtracker.RunNotFound):
        nbt_display.show("nope/nothing", store=store)


# -- notebook integration --------------------------------------------------------------------------
def test_init_in_a_notebook_shows_the_panel(init: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    from nbtracker import display as nbt_display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(_state, "in_notebook", lambda: True)
    monkeypatch.setattr(_state, "init_hooks", [])
    monkeypatch.setattr(nbt_display, "_auto_enabled", True)
    from nbtracker import _compare

    monkeypatch.setattr(_compare, "_cell", {"count": None})
    run = init(name="nb")
    # the panel's widget view, then its static snapshot (both with display ids: a second
    # init() in the same cell turns them into the comparison of the cell's runs)
    assert len(shown) == 2
    panel = _compare._cell["panel"]
    assert isinstance(panel, RunPanel) and panel.run_name == "nb"
    view = shown[0]["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == panel.model_id
    run.finish()
    assert panel.state == "finished"


class FakeShell:
    def __init__(self) -> None:
        from types import SimpleNamespace

        self.magics_manager = SimpleNamespace(magics={"line": {}, "cell": {}})
        self.user_ns: dict[str, Any] = {}

    def register_magic_function(self, fn: Any, kind: str, name: str) -> None:
        self.magics_manager.magics[kind][name] = fn


def test_extension_load_and_unload(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbtracker import display as nbt_display

    monkeypatch.setattr(_state, "init_hooks", [])
    shell = FakeShell()
    nbtracker.load_ipython_extension(shell)
    assert set(shell.magics_manager.magics["line"]) == {"nbt_runs", "nbt_show", "nbt_compare"}
    assert set(shell.magics_manager.magics["cell"]) == {"nbt_sql"}
    assert nbt_display._notebook_hook in _state.init_hooks
    nbtracker.unload_ipython_extension(shell)
    assert shell.magics_manager.magics == {"line": {}, "cell": {}}
    assert _state.init_hooks == []
    nbt_display.install_notebook_hook()  # init() in a notebook after unload: stays off
    assert _state.init_hooks == []
    nbt_display.enable_notebook_hook()
    assert _state.init_hooks == [nbt_display._notebook_hook]


def test_sql_magic_runs_sql(init: Any, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBTRACKER_DIR", str(root))
    run = init(name="q")
    run.log({"acc": 0.5})
    run.finish()
    wait_for_background()
    shell = FakeShell()
    monkeypatch.setattr(_state, "init_hooks", [])
    nbtracker.load_ipython_extension(shell)
    try:
        df = shell.magics_manager.magics["cell"]["nbt_sql"]("", "SELECT count(*) AS n FROM runs")
        assert int(df["n"][0]) == 1
        runs = shell.magics_manager.magics["line"]["nbt_runs"]("p")
        assert len(runs) == 1
    finally:
        nbtracker.unload_ipython_extension(shell)


def test_zoom_range_is_sent_at_full_resolution(init: Any) -> None:
    run = init()
    panel = RunPanel.for_run(run, max_buckets=16)
    sent = capture(panel)
    for step in range(2000):
        run.log({"loss": float(step % 7), "epoch": step // 100})
    run.finish()
    wait_for_background()
    assert len(panel._series["series"]["loss"]["s"]) <= 33
    panel._handle_custom_msg({"type": "range", "req": 3, "key": "loss", "s0": 500, "s1": 520}, [])
    reply = sent.of("range")[-1]
    assert reply["req"] == 3 and reply["key"] == "loss"
    assert reply["s"] == list(range(500, 521))
    assert reply["v"] == [float(s % 7) for s in range(500, 521)]
    assert reply["x"]["epoch"][0] == 5


def test_big_runs_are_reduced_by_duckdb_with_the_same_result(
    init: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbtracker import feed as _source

    run = init()
    for step in range(6000):
        row = {"loss": math.sin(step / 50.0) + (9 if step == 4321 else 0)}
        if step % 100 == 0:
            row["epoch"] = step // 100
        run.log(row)
    run.finish()
    wait_for_background()
    numpy_path = RunPanel.for_folder(run.dir, max_buckets=64)._series["series"]
    monkeypatch.setattr(_source, "BULK_ROWS", 1000)
    duck_path = RunPanel.for_folder(run.dir, max_buckets=64)._series["series"]
    assert duck_path == numpy_path
    assert max(duck_path["loss"]["v"]) == pytest.approx(9 + math.sin(4321 / 50.0))


def test_folder_panel_of_a_dead_process_shows_crashed(init: Any) -> None:
    run = init(name="ghost")
    run.log({"loss": 1.0})
    run.finish()
    wait_for_background()
    rec = json.loads((run.dir / "run.json").read_text())
    rec.update(state="running", pid=2**22 + 12345)  # as left by a killed process
    (run.dir / "run.json").write_text(json.dumps(rec))
    panel = RunPanel.for_folder(run.dir)
    assert panel.state == "crashed"
    assert panel._thread is None  # nothing to follow


def test_show_a_project_shows_its_newest_runs(
    init: Any, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    from nbtracker import display as nbt_display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: None)
    for i in range(4):
        run = init(name=f"r{i}", project="many")
        run.log({"x": i})
        run.finish()
    wait_for_background()
    ws = nbt_display.show("many", store=nbtracker.Store(root), max_runs=2)
    try:  # the workspace: every run in the table, the newest 2 drawn (never a silent cap)
        assert ws.total == 4 and ws.matched == 4
        assert [ws.runs[r]["name"] for r in ws.visible] == ["r3", "r2"]
    finally:
        ws.close()


# -- the examples ----------------------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_quickstart_notebook_runs_and_stays_small(tmp_path: Path) -> None:
    import shutil

    import nbformat
    from nbclient import NotebookClient

    for name in ("01_quickstart.ipynb", "train_script.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    nb = nbformat.read(tmp_path / "01_quickstart.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]["evalue"]
    saved = tmp_path / "executed.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    # a snapshot per output: the first run's panel, the 3-run loop's shared comparison,
    # show(project)'s workspace, the script's panel
    assert text.count("data:image/png;base64,") == 4
    assert str(tmp_path) not in text
    assert saved.stat().st_size < 400_000, saved.stat().st_size
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m for m in state.values() if m["model_name"] == "AnyModel"]
    panels = [m for m in models if "_entry" not in m["state"]]
    # the first run's, the script's, and the loop's first panel (its output was replaced by
    # the loop's comparison: the saved state still holds the closed model)
    assert len(panels) == 3
    assert all(m["state"]["state"] == "finished" for m in panels)
    spaces = [m for m in models if m["state"].get("_entry") == "renderWorkspace"]
    assert len(spaces) == 2 and {m["state"]["total"] for m in spaces} == {3, 4}
    assert all(len(m["state"]["_esm"]) < 3_000 for m in models)  # never the 0.9 MB library


def test_show_waits_for_a_starting_run_and_wait_blocks_until_it_ends(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    import IPython.display

    from nbtracker import display as nbt_display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: None)
    script = (
        "import time, nbtracker\n"
        "time.sleep(0.5)\n"
        f"run = nbtracker.init(project='bg', id='late', dir={str(root)!r})\n"
        "for s in range(20):\n"
        "    run.log({'loss': 1 / (s + 1)}); time.sleep(0.02)\n"
        "run.finish()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        panel = nbt_display.show("bg/late", store=nbtracker.Store(root), timeout=30)
        assert panel.wait(30) == "finished"
        assert panel._series["series"]["loss"]["s"] == list(range(20))
    finally:
        assert proc.wait(30) == 0


def test_show_of_runs_compares_them_in_the_workspace_and_escapes_its_snapshot(
    init: Any, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    from nbtracker import display as nbt_display
    from nbtracker.widgets.workspace import Workspace

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: None)
    dirs, ids = [], []
    for i, name in enumerate(["a", EVIL]):
        run = init(name=name)
        for step in range(20):
            run.log({"loss": (i + 1) / (step + 1), EVIL: step})
        run.finish()
        dirs.append(run.dir)
        ids.append(run.id)
    wait_for_background()
    both = nbt_display.show(dirs)
    try:
        assert isinstance(both, Workspace) and sorted(both.visible) == sorted(ids)
        state = json.dumps(both.get_state())
        assert both.get_state()["_entry"] == "renderWorkspace" and str(root) not in state
        assert both.series_snapshot()["runs"][ids[1]]["loss"]["s"] == list(range(20))
        bundle = both.fallback_bundle(final=True)
        html = bundle["text/html"]
        assert EVIL not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "data:image/png;base64," in html and f'data-nbt-fallback="{both._uid}"' in html
        assert bundle["text/plain"].startswith("Workspace('2 runs': 2 runs")
        spec = both.static_chart()
        assert {r["run"] for c in spec["concat"] for r in c["data"]["values"]} == {
            f"a ({ids[0]})",
            f"{EVIL} ({ids[1]})",
        }
    finally:
        both.close()


# -- media: summary labels, step sliders, table widgets in the cell ------------------------------
class JsMedia:
    """The browser's media store (js/lib/media.js), in Python."""

    def __init__(self) -> None:
        self.tracks: dict[str, list[dict[str, Any]]] = {}

    def apply(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "media_snap":
            self.tracks = {k: list(tr["entries"]) for k, tr in msg["media"].items()}
        elif msg["type"] == "media":
            for key, d in msg["media"].items():
                gone = set(d["drop"])
                ents = [e for e in self.tracks.get(key, []) if e["step"] not in gone]
                for e in d["add"]:
                    ents = [x for x in ents if x["step"] < e["step"]] + [e]
                self.tracks[key] = ents


def _media_run(init: Any, steps: int = 30, name: str = "media") -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    run = init(name=name)
    return run, rng, steps


def test_media_labels_and_step_entries(init: Any, tmp_path: Path) -> None:
    import time

    import numpy as np

    run, rng, steps = _media_run(init)
    panel = RunPanel.for_run(run, show_tables=False)
    sent = capture(panel)
    table = nbtracker.Table(columns=["image", "pred"])
    table.add_data(nbtracker.Image(np.zeros((8, 8), np.uint8), caption=EVIL), 1)
    for step in range(steps):
        row: dict[str, Any] = {
            "loss": 1 / (step + 1),
            "weights": nbtracker.Histogram(rng.normal(step, 1, 200), num_bins=16),
            "sample": nbtracker.Image(np.full((40, 20, 3), step, np.uint8), caption=EVIL),
            "pair": [nbtracker.Image(np.zeros((4, 4), np.uint8))] * 3,
        }
        if step == 0:
            row["preds"] = table
        run.log(row)
        time.sleep(0.01)
    run.finish()
    assert panel.summary["preds"] == "table 1×2 (step 0)"
    assert panel.summary["weights"] == "histogram (16 bins)"
    assert panel.summary["sample"] == "image 20×40"
    assert panel.summary["pair"] == "3 images"
    assert panel.metrics == ["loss"]  # media are not charted
    js = JsMedia()
    for msg in sent:
        js.apply(msg)
    snap = panel._media.snapshot()
    assert {k: v["kind"] for k, v in snap.items()} == {
        "weights": "histogram", "sample": "image", "pair": "images",
    }  # fmt: skip
    for key, tr in snap.items():
        assert js.tracks[key] == tr["entries"]  # the pushed deltas rebuild the kernel's list
        assert tr["entries"][-1]["step"] == steps - 1  # the last logged step is always there
        assert panel.media[key] == {"kind": tr["kind"], "n": len(tr["entries"]), "last": steps - 1}
    hist = snap["weights"]["entries"][-1]
    assert len(hist["bins"]) == 17 and sum(hist["values"]) == 200
    img = snap["sample"]["entries"][-1]["images"][0]
    assert img["src"].startswith("data:image/png;base64,") and img["caption"] == EVIL
    assert (img["w"], img["h"]) == (48, 96)  # 20x40 drawn at up to 96 px
    assert len(snap["pair"]["entries"][-1]["images"]) == 3
    # Widget state: labels and counts only (no thumbnails, no histories, no paths).
    state = json.dumps(panel.get_state())
    assert "data:image" not in state and str(tmp_path) not in state and "media/" not in state
    assert len(json.dumps(panel.media)) < 500
    # The static snapshot shows each key's last image / histogram, captions escaped.
    html = panel.fallback_bundle(final=True)["text/html"]
    assert EVIL not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<svg" in html and html.count('<figure style="margin:0"><img src="data:image/png') == 4
    # A view created later asks for the entries (a browser request: after the cell).
    sent.clear()
    panel._on_custom(panel, {"type": "media_snap"}, [])
    (reply,) = sent.of("media_snap")
    assert reply["media"]["weights"]["entries"] == snap["weights"]["entries"]


def test_media_entries_are_bounded() -> None:
    from nbtracker.widgets._source import MediaTracks

    tracks = MediaTracks(cap=10)
    js = JsMedia()
    for step in range(1000):
        tracks.add("h", "histogram", {"step": step, "bins": [0, 1], "values": [step]})
        if step % 7 == 0:
            js.apply({"type": "media", "media": tracks.take()})
    js.apply({"type": "media", "media": tracks.take()})
    ents = tracks.snapshot()["h"]["entries"]
    assert len(ents) <= 11 and ents[0]["step"] == 0 and ents[-1]["step"] == 999
    assert [e["step"] for e in ents] == sorted(e["step"] for e in ents)
    assert js.tracks["h"] == ents


def test_folder_panel_reads_media_history(init: Any) -> None:
    import numpy as np

    run = init(name="done")
    for step in range(250):
        run.log({"w": nbtracker.Histogram(np.arange(step + 1)), "img": nbtracker.Image(
            np.full((8, 8), step % 256, np.uint8))})  # fmt: skip
    run.finish()
    wait_for_background()
    panel = RunPanel.for_folder(run.dir)
    sent = capture(panel)
    assert panel.media["w"]["kind"] == "histogram" and panel.media["img"]["kind"] == "image"
    assert panel.media["w"]["n"] <= 100 and panel.media["w"]["last"] == 249
    panel._on_custom(panel, {"type": "media_snap"}, [])
    steps = [e["step"] for e in sent.of("media_snap")[0]["media"]["w"]["entries"]]
    assert steps[0] == 0 and steps[-1] == 249 and len(steps) == panel.media["w"]["n"]
    assert panel.summary["w"] == "histogram (64 bins)" and panel.summary["img"] == "image 8×8"


def test_table_logged_in_a_notebook_shows_its_widget_once(
    init: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    from nbtracker.widgets.table_view import TableView

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(_state, "in_notebook", lambda: True)
    monkeypatch.setattr(_state, "init_hooks", [])
    from nbtracker import _compare
    from nbtracker import display as nbt_display

    monkeypatch.setattr(nbt_display, "_auto_enabled", True)
    monkeypatch.setattr(_compare, "_cell", {"count": None})
    run = init(name="tables")  # init() in a notebook shows the panel
    assert len(shown) == 2  # its widget view and its snapshot
    panel = _compare._cell["panel"]
    shown.clear()
    capture(panel)
    assert isinstance(panel, RunPanel) and panel.show_tables
    t = nbtracker.Table(columns=["a", "b"], data=[[1, EVIL]])
    try:
        run.log({"preds": t}, commit=False)  # quickstart style: shown at the commit
        assert shown == []
        run.log({"loss": 1.0})
        assert len(shown) == 1 and isinstance(shown[0], TableView)
        view = shown[0]
        assert view.title == "preds" and view.steps == [0]
        t.add_data(2, "two")
        run.log({"preds": t, "other": nbtracker.Table(columns=["x"], data=[[1]])})
        assert [v.title for v in shown] == ["preds", "other"]  # one widget per key
        # it follows the new version (step is set before its observer loads that version)
        wait_until(lambda: view.steps == [0, 1] and view.nrows == 2, timeout=10)
        second = RunPanel.for_run(run)  # show(run): a second panel of the same run
        capture(second)
        run.log({"preds": t, "third": nbtracker.Table(columns=["x"], data=[[2]])})
        run.finish()
        assert [v.title for v in shown] == ["preds", "other", "third"]  # still one per key
        assert panel.table_views == shown and second.table_views == []
        html = view.fallback_bundle()["text/html"]
        assert EVIL not in html and "&lt;img src=x" in html
    finally:
        for v in shown:
            v.close()


def test_no_table_widgets_outside_notebooks(init: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    run = init()
    panel = RunPanel.for_run(run)
    capture(panel)
    assert not panel.show_tables
    run.log({"preds": nbtracker.Table(columns=["a"], data=[[1]])})
    run.finish()
    assert shown == []


def test_folder_panel_follows_media_of_another_process(
    init: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from nbtracker.widgets import run_panel

    monkeypatch.setattr(run_panel, "SNAPSHOT_INTERVAL_S", 0.2)
    run = init(name="follow-media")
    run.log({"w": nbtracker.Histogram([1, 2, 3]), "loss": 1.0})
    run.flush()
    panel = RunPanel.for_folder(run.dir)
    sent = capture(panel)
    assert panel.media["w"] == {"kind": "histogram", "n": 1, "last": 0}
    for step in range(1, 20):
        run.log({"w": nbtracker.Histogram(np.arange(step + 3)), "loss": 1 / (step + 1)})
    run.flush()
    wait_until(lambda: panel.media["w"]["last"] == 19, timeout=10)
    run.finish()
    wait_for_background()
    wait_until(lambda: panel.state == "finished", timeout=10)
    js = JsMedia()
    js.tracks = {"w": [{"step": 0}]}  # what the page had from the first push
    for msg in sent:
        js.apply(msg)
    assert [e["step"] for e in js.tracks["w"]] == list(range(20))  # only new steps were sent
    assert sum(len(m["media"].get("w", {}).get("add", [])) for m in sent.of("media")) == 19
