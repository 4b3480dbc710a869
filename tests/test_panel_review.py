"""Issue 10, "Panel fixes found in the same review": the Python side of each fix (the
browser side is in tests/browser/test_panel_review_browser.py)."""

from __future__ import annotations

import time
from typing import Any

from test_widgets import JsMedia, capture

import nbtracker
from nbtracker.widgets import RunPanel


def test_media_slider_keeps_every_logged_step_including_step_0(init: Any) -> None:
    """40 image steps logged a few per panel push (the pump drains 4 times a second):
    every step, step 0 included, becomes a slider entry, in the kernel and in the page.
    (It kept only the last image of each push: 24 of 40 steps, step 0 lost.)"""
    import numpy as np

    run = init(name="media40")
    panel = RunPanel.for_run(run, show_tables=False)
    sent = capture(panel)
    for step in range(40):
        img = np.zeros((16, 16, 3), np.uint8)
        img[step % 16] = 255
        run.log({"loss": 1 / (step + 1), "sample": nbtracker.Image(img, caption=f"step {step}")})
        time.sleep(0.04)  # ~6 steps per push
    run.finish()
    pushes = [m for m in sent.of("media") if "sample" in m["media"]]
    assert len(pushes) < 40, "every step came in its own push: the test shows nothing"
    assert any(len(m["media"]["sample"]["add"]) > 1 for m in pushes)
    js = JsMedia()
    for msg in sent:
        js.apply(msg)
    steps = [e["step"] for e in js.tracks["sample"]]
    assert steps == list(range(40))
    assert [e["images"][0]["caption"] for e in js.tracks["sample"]][:2] == ["step 0", "step 1"]
    assert panel.media["sample"] == {"kind": "image", "n": 40, "last": 39}


def test_nbt_runs_is_a_readable_table(init: Any, root: Any, monkeypatch: Any) -> None:
    """``%nbt_runs``: local dates, config/summary columns, no NaN / [] / None noise,
    user strings escaped; the DataFrame stays at ``.df``."""
    import datetime as dt

    from nbtracker._ipython import _runs

    for i in range(2):
        run = init(name=f"<b>r{i}</b>", config={"lr": 0.1 * (i + 1)}, tags=["x"] if i else [])
        run.log({"loss": 1 / 3})
        if i:
            run.summary["best"] = 3
        run.finish()
    monkeypatch.setenv("NBTRACKER_DIR", str(root))
    table = _runs("p")
    assert len(table) == 2 and len(table.df) == 2
    text, html = repr(table), table._repr_html_()
    for noise in ("NaN", "nan", "[]", "None", "metadata."):
        assert noise not in text and noise not in html, noise
    assert text.splitlines()[0].split()[:3] == ["name", "state", "id"]
    assert "config.lr" in text and "summary.loss" in text and "summary.best" in text
    assert "0.33333" in text and "0.2" in text
    today = dt.datetime.now().astimezone().strftime("%Y-%m-%d")
    assert today in text
    assert "&lt;b&gt;r1&lt;/b&gt;" in html and "<b>r1" not in html
    assert text.splitlines()[1].startswith("<b>r1</b>")  # newest first


def test_hidden_snapshot_is_refreshed_while_the_run_goes(init: Any, monkeypatch: Any) -> None:
    """The static snapshot output (what a reloaded page shows while the kernel is busy) is
    updated by the pump thread during the run, with the step and the charts so far."""
    from nbtracker.widgets import run_panel

    monkeypatch.setattr(run_panel, "FALLBACK_INTERVAL_S", 0.5)
    run = init(name="fresh")
    panel = RunPanel.for_run(run, show_tables=False)
    capture(panel)
    updates: list[dict[str, str]] = []

    class Handle:
        def update(self, data: dict[str, str], raw: bool = False) -> None:
            updates.append(data)

    panel._fallback_handle = Handle()
    for step in range(40):
        run.log({"loss": 1 / (step + 1)})
        time.sleep(0.05)
    live = list(updates)
    run.finish()
    assert live, "no refresh of the snapshot while the run went"
    html = live[-1]["text/html"]
    assert "running" in html and "data:image/png;base64," in html
    assert "step 0 ·" not in html


def test_static_snapshot_says_how_to_get_the_live_view_back(init: Any) -> None:
    run = init(name="hint", project="<b>proj</b>")
    run.log({"loss": 1.0})
    run.finish()
    panel = RunPanel.for_run(run, show_tables=False)
    html = panel.fallback_bundle(final=False)["text/html"]
    assert "static copy: run <code>nbtracker.show(" in html
    assert f"&#x27;&lt;b&gt;proj&lt;/b&gt;/{run.id}&#x27;" in html
    assert "<b>proj</b>" not in html


def test_define_metric_step_metric_is_each_charts_default_x_axis(init: Any) -> None:
    """W&B code: ``define_metric("val/*", step_metric="epoch")`` charts val metrics against
    epoch (globs and exact names; the latest matching rule wins); other charts stay on
    step; the panel's x axis moves every chart; a step metric is never smoothed; the
    Altair chart behind a panel chart uses the same settings."""
    run = init(name="stepmetric")
    panel = RunPanel.for_run(run, show_tables=False)
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch")
    run.define_metric("val/special", step_metric="global_step")
    run.define_metric("text/*", step_metric="label")  # a text "step metric" is no axis
    for step in range(30):
        run.log({"train/loss": 1 / (step + 1), "global_step": step * 8})
        if step % 10 == 9:
            run.log({"epoch": step // 10, "val/acc": step / 30, "val/special": 1.0,
                     "text/x": 1.0, "label": "a"})  # fmt: skip
    run.finish()
    assert panel.x_defaults == {"val/acc": "epoch", "val/special": "global_step"}
    assert panel.chart_settings("train/loss") == ("step", 0.0, False)
    panel.smoothing = 0.6
    assert panel.chart_settings("val/acc") == ("epoch", 0.6, False)
    assert panel.chart_settings("epoch")[1] == 0.0  # an axis is not smoothed
    panel.x_axis = "time"
    assert panel.chart_settings("val/acc")[0] == "time"
    panel.x_axis = "step"
    panel.chart_opts = {"train/loss": {"x": "epoch", "log_y": True}}
    assert panel.chart_settings("train/loss") == ("epoch", 0.6, True)
    spec = panel.chart("val/acc").to_dict()
    assert spec["layer"][0]["encoding"]["x"]["title"] == "epoch"
