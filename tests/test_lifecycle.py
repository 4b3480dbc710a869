"""States running/finished/failed/crashed with real processes; finish is fast and idempotent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from nbt_testutil import wait_until


def _script(root, body: str) -> list[str]:
    code = "import nbtracker, time\n" + textwrap.dedent(body)
    return [sys.executable, "-c", code.replace("ROOT", repr(str(root)))]


def test_uncaught_exception_marks_the_run_failed(root, api) -> None:
    cmd = _script(
        root,
        """
        run = nbtracker.init(project="p", id="boom", dir=ROOT)
        nbtracker.log({"x": 1})
        raise ValueError("kaput")
    """,
    )
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1 and "ValueError: kaput" in out.stderr
    run = api.run("p/boom")
    assert run.state == "failed"
    assert run.history(samples=None)["x"].tolist() == [1]


def test_script_without_finish_is_finished_at_exit(root, api) -> None:
    subprocess.run(
        _script(
            root,
            """
        nbtracker.init(project="p", id="noend", dir=ROOT)
        for i in range(1000):
            nbtracker.log({"x": i})
    """,
        ),
        check=True,
    )
    run = api.run("p/noend")
    assert run.state == "finished" and len(run.history(samples=None)) == 1000


def test_killed_process_is_reported_crashed_with_flushed_rows(root, api) -> None:
    proc = subprocess.Popen(
        _script(
            root,
            """
        run = nbtracker.init(project="p", id="kill", dir=ROOT)
        i = 0
        while True:
            run.log({"x": i}); i += 1
            time.sleep(0.001)
    """,
        )
    )
    seg = root / "runs" / "p" / "kill" / "history"
    wait_until(lambda: seg.exists() and any(seg.glob("h-*.parquet")), timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = api.runs("p")[0]
    assert run.state == "crashed"
    h = run.history(samples=None)
    assert len(h) > 0 and h["x"].tolist() == list(range(len(h)))


def test_finish_is_idempotent_and_fast(init, api) -> None:
    run = init()
    for i in range(20_000):
        run.log({"a": i, "b": 1.0})
    t = time.perf_counter()
    run.finish()
    elapsed = time.perf_counter() - t
    run.finish()
    assert run.state == "finished"
    assert elapsed < 2.0  # the benchmark measures the real figure; this guards a hang
    assert len(api.run(f"p/{run.id}").history(samples=None)) == 20_000


def test_writer_flushes_while_running(init, root) -> None:
    run = init()
    run.log({"x": 1})
    hdir = run.dir / "history"
    wait_until(lambda: hdir.exists() and any(hdir.glob("h-*.parquet")), timeout=5)
    rec_state = nbtracker_state(root, run)
    assert rec_state == "running"


def nbtracker_state(root, run) -> str:
    import nbtracker

    return nbtracker.Api(root).run(f"p/{run.id}").state


def test_pid_of_a_live_process_is_not_crashed(root, api) -> None:
    proc = subprocess.Popen(
        _script(
            root,
            """
        run = nbtracker.init(project="p", id="alive", dir=ROOT)
        run.log({"x": 1})
        time.sleep(30)
    """,
        )
    )
    try:
        wait_until(lambda: (root / "runs" / "p" / "alive" / "run.json").exists(), timeout=30)
        assert api.run("p/alive").state == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert api.run("p/alive").state == "crashed"


def test_a_script_that_ends_right_after_finish_leaves_every_run_complete(root, api) -> None:
    """Finishing runs' work (last flush, record, compaction, catalog) is done by a background
    thread of the process; a script that exits right after its last finish() still leaves
    every run finished, compacted and in the catalog."""
    subprocess.run(
        _script(
            root,
            """
        for i in range(40):  # more runs than finish() lets wait in the background
            run = nbtracker.init(project="p", id=f"r{i}", dir=ROOT, config={"i": i})
            for s in range(50):
                run.log({"x": s})
            run.finish()
    """,
        ),
        check=True,
    )
    runs = {r.id: r for r in api.runs("p")}
    assert sorted(runs) == sorted(f"r{i}" for i in range(40))
    for rid, run in runs.items():
        assert run.state == "finished", rid
        assert run.history(samples=None)["x"].tolist() == list(range(50)), rid
        assert len(list((run.dir / "history").glob("h-*.parquet"))) == 1, rid  # compacted
    import duckdb

    con = duckdb.connect(str(api.store.catalog.path), read_only=True)
    try:
        states = con.execute("SELECT state, count(*) FROM runs GROUP BY ALL").fetchall()
    finally:
        con.close()
    assert states == [("finished", 40)]  # the catalog was written before the exit
