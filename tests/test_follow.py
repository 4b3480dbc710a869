"""Following a run folder another process writes: every point must reach the panel.

Issue 9 point 9: ``show("proj/run")`` of a script's run read 64 of 80 points. The panel
polls the run folder; the script writes history segments every 0.4 s, rewrites run.json
(which lists the history keys) only every 2 s, and at ``finish()`` flushes, writes the
final run.json and then compacts the segments into one file. These tests drive the
follower against a real writer subprocess, with a fast poll and with the final
compaction held back, so each of those windows is crossed on every run.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from nbt_testutil import wait_until

from nbtracker import feed as _source
from nbtracker import segments
from nbtracker.store import wait_for_background
from nbtracker.widgets import RunPanel
from nbtracker.widgets import run_panel as run_panel_mod

STEPS = 60

# The writer: logs STEPS rows of two keys, then finishes (flush, final run.json, compaction).
# Its final compaction waits for GATE to exist (or 20 s), so the test decides whether the
# panel sees the finished run before or after the segments are merged.
WRITER = r"""
import os, sys, time
import nbtracker
from nbtracker import segments

root, steps, gate, started = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
_compact = segments.compact

def gated_compact(hdir, **kw):
    if not kw.get("recent_only"):
        t0 = time.monotonic()
        while not os.path.exists(gate) and time.monotonic() - t0 < 20:
            time.sleep(0.01)
    return _compact(hdir, **kw)

segments.compact = gated_compact
run = nbtracker.init(project="proc", id="bg", name="script", dir=root)
run.log({"loss": 1.0, "acc": 0.0})
open(started, "w").close()
for step in range(1, steps):
    time.sleep(0.03)
    run.log({"loss": 1.0 / (step + 1), "acc": step / steps})
run.finish()
"""


def apply(msgs: list[dict[str, Any]], snapshot: dict[str, Any]) -> dict[str, list[int]]:
    """The steps per key the browser ends up with: the first snapshot, then the deltas
    (as js/lib/store.js applies them)."""
    series = {k: list(v["s"]) for k, v in snapshot["series"].items()}
    seq = snapshot["seq"]
    for msg in msgs:
        if msg.get("type") != "rows" or msg["seq"] <= seq:
            continue
        assert msg["seq"] == seq + 1, "gap in the delta sequence"
        seq = msg["seq"]
        for key, d in msg["series"].items():
            frm = d["from"]
            old = [] if frm is None else [s for s in series.get(key, []) if s < frm]
            series[key] = old + list(d["s"])
    return series


def capture(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every message panels send from now on (set before the panel starts its thread)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(RunPanel, "send", lambda self, msg, buffers=None: sent.append(msg))
    return sent


def start_writer(tmp_path: Path, root: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    gate, started = tmp_path / "gate", tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(STEPS), str(gate), str(started)]
    )
    t0 = time.monotonic()
    while not started.exists():
        assert proc.poll() is None, f"writer exited with {proc.returncode}"
        assert time.monotonic() - t0 < 60, "writer never started its run"
        time.sleep(0.02)
    return proc, gate, root / "runs" / "proc" / "bg"


def run_dir(root: Path) -> Path:
    hits = list(root.glob("**/bg/run.json"))
    assert hits, f"no run folder under {root}"
    return hits[0].parent


@pytest.mark.parametrize("compaction", ["after_the_panel_stopped", "right_away"])
def test_follower_gets_every_point_of_a_script_that_finishes(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch, compaction: str
) -> None:
    monkeypatch.setattr(run_panel_mod, "FOLLOW_INTERVAL_S", 0.05)
    proc, gate, _ = start_writer(tmp_path, root)
    try:
        if compaction == "right_away":
            gate.touch()
        sent = capture(monkeypatch)
        panel = RunPanel.for_folder(run_dir(root))
        snap = dict(panel._series)
        assert panel.state == "running"
        assert panel.wait(60) == "finished"
        gate.touch()
        assert proc.wait(60) == 0
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
    hdir = run_dir(root) / "history"
    assert len(segments.list_files(hdir)[0]) == 1  # the writer did compact
    want = list(range(STEPS))
    got = apply(sent, snap)
    assert {k: len(v) for k, v in got.items()} == {"loss": STEPS, "acc": STEPS}
    assert got["loss"] == want and got["acc"] == want
    assert panel._series["series"]["loss"]["s"] == want  # the synced snapshot too
    assert panel.step == STEPS - 1


def test_rows_of_keys_the_record_does_not_list_yet_are_read(
    init: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.json (rewritten every 2 s) lags the segments (every 0.4 s): a segment read
    before the record lists its keys must not be marked read without its rows."""
    run = init(name="lag")
    for step in range(10):
        run.log({"loss": 1 / (step + 1)})
    run.flush()  # run.json now lists "loss"
    for step in range(10, 20):
        run.log({"loss": 1 / (step + 1), "new": float(step)})
    run._writer.flush_rows()  # a segment with "new", which run.json does not list yet
    sent = capture(monkeypatch)
    panel = RunPanel.for_folder(run.dir)
    snap = dict(panel._series)
    assert panel._series["series"]["loss"]["s"] == list(range(20))
    assert panel._series["series"]["new"]["s"] == list(range(10, 20))
    for step in range(20, 30):
        run.log({"loss": 1 / (step + 1), "new": float(step)})
    run.finish()
    wait_for_background()
    wait_until(lambda: panel.state == "finished", timeout=10)
    got = apply(sent, snap)
    assert got["loss"] == list(range(30)) and got["new"] == list(range(10, 30))
    assert panel.metrics == ["loss", "new"]


def test_a_key_that_turns_out_to_be_text_is_dropped(init: Any) -> None:
    """Read before the record knows its type, a key is charted; once the record says it
    holds text (a number logged first, strings later), it goes, as for a finished run."""
    run = init(name="mixed")
    run.log({"loss": 1.0, "note": 1.0})
    run._writer.flush_rows()
    panel = RunPanel.for_folder(run.dir)
    assert panel.metrics == ["loss", "note"]
    run.log({"loss": 0.5, "note": "text now"})
    run.finish()
    wait_for_background()
    wait_until(lambda: panel.state == "finished", timeout=10)
    assert panel.metrics == ["loss"]
    assert panel.metrics == RunPanel.for_folder(run.dir).metrics


def test_a_rebuild_whose_read_fails_leaves_the_panel_consistent(
    init: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction that replaces files makes the reader start over; if that re-read
    fails (a file removed meanwhile), the panel must still end up on the reader's data."""
    run = init(name="rebuild")
    for step in range(10):
        run.log({"loss": 1 / (step + 1)})
        run.flush()  # one segment per step
    sent = capture(monkeypatch)
    panel = RunPanel.for_folder(run.dir)
    snap = dict(panel._series)
    assert panel._series["series"]["loss"]["s"] == list(range(10))
    real = _source._query
    calls = {"n": 0}

    def fails_once(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            msg = "No such file: a compaction removed it"
            raise FileNotFoundError(msg)
        return real(*args)

    run._writer.merge()  # the segments become one file: the next poll rebuilds...
    monkeypatch.setattr(_source, "_query", fails_once)  # ... and that read fails
    for step in range(10, 20):
        run.log({"loss": 1 / (step + 1)})
    # the final compaction (another rebuild) only after the panel has stopped
    gate = threading.Event()
    compact = segments.compact

    def gated(*args: Any, **kw: Any) -> Any:
        gate.wait(20)
        return compact(*args, **kw)

    monkeypatch.setattr(segments, "compact", gated)
    run.finish()
    try:
        wait_until(lambda: panel.state == "finished", timeout=10)
        panel._thread.join(5)  # type: ignore[union-attr]
    finally:
        gate.set()
    wait_for_background()
    assert calls["n"] >= 2
    assert apply(sent, snap)["loss"] == list(range(20))
    assert panel._series["series"]["loss"]["s"] == list(range(20))


def test_run_json_replaced_within_one_clock_tick_is_noticed(
    init: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.json rewritten with the same mtime (coarse file clocks): the follower must
    still read the new record, or it never sees the run finish."""
    run = init(name="mtime")
    run.log({"loss": 1.0})
    run.flush()
    capture(monkeypatch)
    panel = RunPanel.for_folder(run.dir)
    rjson = Path(run.dir) / "run.json"
    before = rjson.stat()
    panel._stop.set()  # drive the ticks by hand
    panel._thread.join(5)  # type: ignore[union-attr]
    run.finish()
    wait_for_background()
    os.utime(rjson, ns=(before.st_atime_ns, before.st_mtime_ns))
    panel._thread = object()  # type: ignore[assignment]  # "a follower is running"
    panel._follow_tick()
    assert panel.state == "finished"
    assert not math.isnan(panel.elapsed)
