"""Nothing logged is lost silently (issue 9): poisoned values, forked processes, one run id
in two processes, threads, a full disk, exit codes, hostile nesting.

Each scenario runs the user's code in a real child process (``sys.executable``) against a
real store in ``tmp_path`` and checks what a reader gets back through ``nbtracker.sql`` /
``Api``; the full-disk ones put the store on a real, small tmpfs.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

import nbtracker
from nbtracker.errors import LogValueWarning, RunBusy, StorageError
from nbtracker.store import Store


def fill(path: str | Path) -> None:
    """Write a file until the disk is full."""
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"x" * 65536)
                fh.flush()
        except OSError:
            pass


FILL = "\nfrom pathlib import Path\n" + inspect.getsource(fill)  # the same, in the child scripts


def run_script(code: str, root: Path, *args: str, timeout: float = 120, check: bool = True):  # type: ignore[no-untyped-def]
    """Run ``code`` in a fresh interpreter with ``ROOT`` (the store) and ``ARGS`` defined."""
    prelude = f"import sys\nROOT = {str(root)!r}\nARGS = sys.argv[1:]\n" + FILL
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "default"},
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def history(root: Path, run_id: str) -> list[tuple]:  # type: ignore[type-arg]
    """Every stored history value of a run, long format: (step, key, value, text)."""
    rows = nbtracker.sql(
        "SELECT step, key, value, text FROM history WHERE run_id = ? ORDER BY step, key",
        [run_id], root=str(root),
    )  # fmt: skip
    # a DataFrame shows SQL NULL as NaN; no test here logs a NaN on purpose
    return [
        (int(s), k, None if v != v else v, None if t != t else t)
        for s, k, v, t in rows.itertuples(index=False, name=None)
    ]


def record(root: Path, run_id: str, project: str = "p") -> dict:  # type: ignore[type-arg]
    """The run's own record (run.json), as stored."""
    return json.loads((Store(root).run_dir(project, run_id) / "run.json").read_text())


# -- 1. poisoned values ----------------------------------------------------------------------
def test_a_poisoned_value_is_skipped_or_converted_and_every_other_row_is_stored(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    out = run_script(
        """
        import os, nbtracker
        bad = os.fsdecode(b"img_\\xff.png")
        run = nbtracker.init(project="p", id="A", dir=ROOT, config={"path": bad, "big": 10**400},
                             tags=[bad], notes=bad, name=bad)
        for i in range(100):
            run.log({"good": i})
            if i == 50:
                run.log({"name": bad, "huge": 10**400, "wide": 2**64, bad: 1.5}, commit=False)
        run.summary["best"] = 10**400
        run.summary[bad] = bad
        run.finish()
        other = nbtracker.init(project="p", id="B", dir=ROOT)
        other.log({"x": 1.0})
        other.finish()
        """,
        root,
    )
    assert "Traceback" not in out.stderr
    rows = history(root, "A")
    assert [v for _, k, v, _ in rows if k == "good"] == list(range(100))  # 100 of 100 good rows
    by_key = {k: (v, t) for _, k, v, t in rows if k != "good"}
    assert by_key["name"] == (None, "img_\\xff.png")  # escaped, readable, one warning
    assert by_key["huge"] == (None, str(10**400))  # beyond any float: kept as text
    assert by_key["wide"][0] == float(2**64)
    assert by_key["img_\\xff.png"][0] == 1.5
    rec = record(root, "A")
    assert rec["state"] == "finished"
    assert rec["config"]["path"] == "img_\\xff.png" and rec["config"]["big"] == str(10**400)
    assert rec["tags"] == ["img_\\xff.png"] and rec["name"] == "img_\\xff.png"
    assert rec["summary"]["best"] == str(10**400)
    for what in ("'the value of 'name''", "'huge'", "a tag", "'config.path'"):
        assert what.strip("'") in out.stderr, (what, out.stderr)
    # the store stays queryable for every run
    runs = nbtracker.sql("SELECT run_id, state FROM runs ORDER BY 1", root=str(root))
    assert runs.values.tolist() == [["A", "finished"], ["B", "finished"]]
    assert history(root, "B") == [(0, "x", 1.0, None)]


def test_a_row_the_store_refuses_is_isolated_with_a_warning(init, root: Path) -> None:
    """A value that breaks a segment write (here an object whose text is not UTF-8, kept
    as text by the writer) never blocks the other rows: it is cleaned or its row skipped."""

    class Odd(float):  # a float subclass whose conversion raises
        def __float__(self) -> float:
            raise RuntimeError("no float for you")

    run = init(id="R")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(10):
            run.log({"ok": i, "odd": Odd(1.0)} if i == 3 else {"ok": i})
        run.finish()
    assert [v for _, k, v, _ in history(root, "R") if k == "ok"] == list(range(10))
    msgs = [str(w.message) for w in caught if issubclass(w.category, LogValueWarning)]
    assert len(msgs) == 1 and "'odd'" in msgs[0] and "no float for you" in msgs[0]


def test_hostile_nesting_never_escapes_log(init, root: Path) -> None:
    deep: dict = {}
    cur = deep
    for _ in range(1500):
        cur["n"] = {}
        cur = cur["n"]
    cur["leaf"] = 1
    loop: dict = {"x": 1}
    loop["self"] = loop
    run = init(id="N")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log({"deep": deep, "loop": loop, "fine": 2, "_step": 9, "_runtime": 1})
    with pytest.raises(TypeError, match="takes a dict"):
        run.log("x")  # type: ignore[arg-type]
    run.finish()
    assert sorted(k for _, k, _, _ in history(root, "N")) == ["fine", "loop.x"]
    (msg,) = [str(w.message) for w in caught if issubclass(w.category, LogValueWarning)]
    for part in (
        "nested more than 64 levels",
        "'loop.self'",
        "contains itself",
        "'_step'",
        "'_runtime'",
    ):
        assert part in msg


# -- 2. fork ---------------------------------------------------------------------------------
def test_forked_children_exit_cleanly_and_their_rows_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "store"
    out = run_script(
        """
        import os, time, nbtracker
        run = nbtracker.init(project="p", id="F", dir=ROOT)
        for i in range(20):
            run.log({"parent": i})
        time.sleep(0.6)  # the writer thread is mid-life: its locks and DuckDB are in use
        kids = []
        for c in range(10):
            pid = os.fork()
            if pid == 0:
                if c % 2:
                    nbtracker.log({f"child{c}": c})
                if c % 2 == 0:  # five forked readers
                    assert len(nbtracker.Api(ROOT).runs("p")) == 1
                sys.exit(0)  # a normal exit runs the inherited exit hooks
            kids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids]
        print("codes", codes)
        for i in range(20, 30):
            run.log({"parent": i})
        run.finish()
        """,
        root,
        timeout=90,
    )
    assert "codes [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]" in out.stdout, out.stdout + out.stderr
    rows = history(root, "F")
    assert [v for _, k, v, _ in rows if k == "parent"] == list(range(30))
    assert sorted(k for _, k, _, _ in rows if k.startswith("child")) == [
        f"child{c}" for c in (1, 3, 5, 7, 9)
    ]
    assert record(root, "F")["state"] == "finished"  # children never finish the parent's run


def test_pool_workers_that_log_keep_their_rows(tmp_path: Path) -> None:
    root = tmp_path / "store"
    run_script(
        """
        import multiprocessing as mp, nbtracker
        run = nbtracker.init(project="p", id="P", dir=ROOT)
        run.log({"before": 1})

        def work(i):
            nbtracker.log({f"w{i}": i})
            return i

        with mp.get_context("fork").Pool(3) as pool:  # __exit__ terminates the workers
            assert pool.map(work, range(12)) == list(range(12))
        run.finish()
        """,
        root,
        timeout=90,
    )
    keys = sorted(k for _, k, _, _ in history(root, "P"))
    assert keys == sorted(["before", *(f"w{i}" for i in range(12))])


def test_workers_that_never_log_pay_nothing(tmp_path: Path) -> None:
    """The DataLoader pattern: forked workers compute, never log; they start no thread and
    write no file into the run."""
    root = tmp_path / "store"
    out = run_script(
        """
        import os, threading, nbtracker
        run = nbtracker.init(project="p", id="D", dir=ROOT)
        run.log({"x": 1})
        hist = os.path.join(run.dir, "history")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            sum(range(100000))
            os.write(w, str(threading.active_count()).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        print("child threads", os.read(r, 10).decode())
        run.finish()
        """,
        root,
    )
    assert "child threads 1" in out.stdout
    hdir = Store(root).run_dir("p", "D") / "history"
    writers = {p.stem.split("-")[3] for p in hdir.glob("h-*.parquet")}
    assert len(writers) == 1  # the parent's only


# -- 3. one run id, two processes -------------------------------------------------------------
def test_a_second_live_process_on_one_run_is_refused_and_nothing_is_overwritten(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time, nbtracker, pathlib
            run = nbtracker.init(project="p", id="S", dir={str(root)!r}, config={{"who": "first"}})
            for i in range(100):
                run.log({{"a": i}})
            run.flush()
            pathlib.Path({str(ready)!r}).write_text("1")
            time.sleep(3)
            for i in range(100, 200):
                run.log({{"a": i}})
            run.finish()
        """)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for _ in range(600):
            if ready.exists():
                break
            threading.Event().wait(0.05)
        assert ready.exists(), "the first process never got going"
        with pytest.raises(RunBusy, match=r"being written by another process \(pid \d+"):
            nbtracker.init(
                project="p", id="S", resume="allow", dir=str(root), config={"who": "second"}
            )
    finally:
        out, _ = holder.communicate(timeout=60)
    assert holder.returncode == 0, out
    # once the first process is done, resuming works and keeps both processes' rows
    run = nbtracker.init(project="p", id="S", resume="allow", dir=str(root))
    for i in range(50):
        run.log({"b": i})
    run.finish()
    rows = history(root, "S")
    assert [v for _, k, v, _ in rows if k == "a"] == list(range(200))
    assert [v for _, k, v, _ in rows if k == "b"] == list(range(50))
    assert record(root, "S")["config"] == {"who": "first"}


# -- 5. threads ------------------------------------------------------------------------------
def test_log_from_many_threads_keeps_every_value_and_never_mixes_rows(init, root: Path) -> None:
    run = init(id="T")
    n_threads, per_thread = 8, 2_500
    start = threading.Barrier(n_threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            run.log({f"t{t}.i": i, f"t{t}.sq": i * i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    run.finish()
    rows = history(root, "T")
    assert len(rows) == n_threads * per_thread * 2
    by_step: dict[int, set[str]] = {}
    for step, key, _, _ in rows:
        by_step.setdefault(step, set()).add(key.split(".")[0])
    assert all(len(owners) == 1 for owners in by_step.values())  # one thread's row per step
    for t in range(n_threads):
        assert sorted(v for _, k, v, _ in rows if k == f"t{t}.i") == list(range(per_thread))


# -- 6. full disk ----------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 8 MB tmpfs (the tests run as root, as CI does)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, f"need root to mount a small tmpfs: {proc.stderr}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_keeps_rows_bounded_and_stores_them_when_space_returns(small_disk: Path) -> None:
    root = small_disk / "store"
    out = run_script(
        """
        import os, time, nbtracker
        from nbtracker import writer
        writer.MAX_RETRY_ROWS = 20_000  # a small bound, to see the thinning quickly
        run = nbtracker.init(project="p", id="FD", dir=ROOT)
        run.log({"x": -1})
        run.flush()
        fill(os.path.join(ROOT, "filler"))
        worst = 0
        for i in range(60_000):
            t = time.perf_counter()
            run.log({"x": i})
            worst = max(worst, time.perf_counter() - t)
            if i % 20_000 == 0:
                run._writer.flush_rows(final=True)
        run._writer.flush_rows()  # still failing: waits, thinned to the bound
        pending = run._writer.pending_rows()
        print("pending", pending, "dropped", run._writer.rows_dropped, "worst", worst)
        assert pending <= 20_000, pending
        os.unlink(os.path.join(ROOT, "filler"))
        run.finish()
        """,
        root,
    )
    assert "kept in memory and retried" in out.stderr
    assert "older rows were dropped so far" in out.stderr
    dropped = int(out.stdout.split("dropped ")[1].split()[0])
    assert dropped > 0
    assert f"{dropped:,} rows logged to p/FD could not be stored" in out.stderr
    xs = [v for _, k, v, _ in history(root, "FD") if k == "x"]
    assert len(xs) == 60_001 - dropped and xs == sorted(xs) and xs[0] == -1
    assert xs[-10_000:] == list(range(50_000, 60_000))  # the recent rows are kept whole


def test_still_full_at_finish_says_how_many_rows_were_not_stored(small_disk: Path) -> None:
    root = small_disk / "store"
    out = run_script(
        """
        import os, nbtracker
        run = nbtracker.init(project="p", id="FF", dir=ROOT)
        run.log({"x": 0})
        run.flush()
        fill(os.path.join(ROOT, "filler"))
        for i in range(1, 1001):
            run.log({"x": i})
        run.finish()
        nbtracker.Api(ROOT).runs("p")  # waits until the finish is done
        """,
        root,
    )
    assert "1,000 rows logged to p/FF could not be stored (1,000 still unwritten" in out.stderr


def test_init_on_a_full_disk_names_the_path(small_disk: Path) -> None:
    root = small_disk / "store"
    root.mkdir()
    fill(small_disk / "filler")
    with pytest.raises(StorageError, match=str(root / "runs" / "p")):
        nbtracker.init(project="p", dir=str(root))


# -- 7. exit codes ---------------------------------------------------------------------------
def test_sigterm_handler_exit_code_is_recorded_as_failed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = run_script(
        """
        import os, signal, nbtracker
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
        run = nbtracker.init(project="p", id="X", dir=ROOT)
        run.log({"x": 1})
        os.kill(os.getpid(), signal.SIGTERM)
        """,
        root,
        check=False,
    )
    assert proc.returncode == 143, proc.stderr
    rec = record(root, "X")
    assert (rec["state"], rec["exit_code"]) == ("failed", 143)
    assert history(root, "X") == [(0, "x", 1.0, None)]
