"""Reliability with real processes (issue 3, "Reliability"): SIGKILL at random moments,
concurrent writers and a reader, a catalog held open by another process, awkward names.

No mocks: every writer is a child process (``sys.executable``) running the helpers in
``tests/procs/``, the catalog is a real DuckDB file under ``tmp_path``, and every check
is what a user would see (``Api``, ``nbtracker.sql``, plain ``duckdb``/``pyarrow``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import nbtracker

PROCS = Path(__file__).parent / "procs"
LOGGER = str(PROCS / "logger.py")
CATALOG = "nbtracker.duckdb"
HEADER = 16
# The flusher writes every 0.5 s; the issue allows "at most the last flush interval" lost,
# and design.md asks for "at least one flush a second": a row logged more than this long
# before the kill must be on disk.
MAX_LOSS_S = 1.0


# -- helpers -------------------------------------------------------------------------------
def spawn(
    args: list[str], cwd: Path, log: Path, *, pyflags: tuple[str, ...] = ()
) -> subprocess.Popen:
    err = open(log, "wb")  # noqa: SIM115 - closed by the caller through proc.stderr_file
    proc = subprocess.Popen(
        [sys.executable, *pyflags, *args],
        cwd=cwd,
        stdout=err,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    proc.stderr_file = err  # type: ignore[attr-defined]
    return proc


def spawn_logger(root: Path, project: str, run_id: str, progress: Path, *extra: str,
                 pyflags: tuple[str, ...] = ()) -> subprocess.Popen:  # fmt: skip
    return spawn([LOGGER, str(root), project, run_id, str(progress), *extra],
                 cwd=root.parent, log=progress.with_suffix(".log"), pyflags=pyflags)  # fmt: skip


def reap(proc: subprocess.Popen, timeout: float = 60) -> int:
    rc = proc.wait(timeout=timeout)
    proc.stderr_file.close()  # type: ignore[attr-defined]
    return rc


@dataclass
class Progress:
    phase: int = -1  # -1: the child has not mapped its progress file yet
    last: int = -1
    times: list[float] = field(default_factory=list)


def read_progress(path: Path, with_times: bool = True) -> Progress:
    try:
        with open(path, "rb") as fh:
            data = fh.read() if with_times else fh.read(HEADER)
    except FileNotFoundError:
        return Progress()
    if len(data) < HEADER:
        return Progress()
    phase, last = struct.unpack_from("<qq", data, 0)
    times = (
        list(struct.unpack_from(f"<{last + 1}d", data, HEADER)) if with_times and last >= 0 else []
    )
    return Progress(phase, last, times)


def wait_phase(path: Path, proc: subprocess.Popen, phase: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while read_progress(path, with_times=False).phase < phase:
        if proc.poll() is not None:
            log = path.with_suffix(".log").read_text(errors="replace")
            msg = f"child exited ({proc.returncode}) before phase {phase}: {log}"
            raise AssertionError(msg)
        if time.monotonic() > deadline:
            msg = f"child did not reach phase {phase} in {timeout} s"
            raise AssertionError(msg)
        time.sleep(0.002)


def kill(proc: subprocess.Popen) -> float:
    t = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    assert reap(proc) == -signal.SIGKILL
    return t


def expected(i: int) -> dict[str, float]:
    """What tests/procs/logger.py logs at step i."""
    return {"a": float(i), "b": i / 2, "c": -float(i), "d": float(i % 7), "e": 1.0 / (i + 1)}


def assert_all_parquet_readable(root: Path) -> int:
    import pyarrow.parquet as pq

    files = list(root.rglob("*.parquet"))
    for f in files:
        try:
            pq.read_table(f)
        except Exception as exc:  # noqa: BLE001
            msg = f"unreadable Parquet file {f}: {exc!r}"
            raise AssertionError(msg) from exc
    return len(files)


def catalog_runs(root: Path, project: str) -> dict[str, str]:
    """``{run_id: state}`` from the catalog, opened with plain duckdb (as a user would)."""
    import duckdb

    con = duckdb.connect(str(root / CATALOG), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] >= 0
        rows = con.execute("SELECT run_id, state FROM runs WHERE project = ?", [project]).fetchall()
    finally:
        con.close()
    return dict(rows)


def check_history(run: nbtracker.api.ApiRun, prog: Progress, t_kill: float | None, *,
                  complete: bool = False) -> float:  # fmt: skip
    """The history is a gap-free prefix of what was logged, with the right values; every
    step logged more than MAX_LOSS_S before the kill is in it (all of them if
    ``complete``). Returns how many seconds' worth of logged steps were lost."""
    df = run.history(samples=None)
    n = len(df)
    assert df["_step"].tolist() == list(range(n)), f"{run.id}: steps are not 0..{n - 1}"
    assert n <= prog.last + 1, f"{run.id}: {n} rows but only {prog.last + 1} steps were logged"
    if n:
        for key in "abcde":
            want = [expected(i)[key] for i in range(n)]
            assert df[key].tolist() == pytest.approx(want), f"{run.id}: wrong values in {key!r}"
    assert len(run.scan_history()) == n
    if complete:
        assert n == prog.last + 1, f"{run.id}: {n} rows of {prog.last + 1} logged steps"
        return 0.0
    assert t_kill is not None
    must = sum(1 for t in prog.times if t <= t_kill - MAX_LOSS_S)
    lost_s = t_kill - prog.times[n] if n <= prog.last else 0.0
    # how fast the child logged in its last second: far below ~900 steps/s means the
    # machine starved it (then its flusher was starved too)
    rate = sum(1 for t in prog.times if t > t_kill - 1.0)
    assert n >= must, (
        f"{run.id}: only steps 0..{n - 1} survived, but steps up to {must - 1} were logged "
        f"more than {MAX_LOSS_S} s before the SIGKILL (lost {lost_s:.2f} s of logging; "
        f"{rate} steps logged in its last second)"
    )
    return lost_s


# -- 1. SIGKILL at random moments ----------------------------------------------------------
@dataclass
class KillPlan:
    run_id: str
    when: str  # "init": any time from spawn on (maybe inside init); else after init returned
    delay: float
    merge_after: int = 0  # merge segments every K flushes (0: the default, 64)
    touch_config: float = 0.0  # change the config every S s: catalog writes mid-run


def seed_catalog(root: Path, work: Path, project: str) -> None:
    """One finished run, so that the catalog exists before the kills begin (a run only
    indexes itself in the catalog at finish or after a while)."""
    proc = spawn_logger(root, project, "seed", work / "seed.bin", "--steps", "10", "--finish")
    assert reap(proc) == 0, (work / "seed.log").read_text()
    assert catalog_runs(root, project) == {"seed": "finished"}


def kill_plans(rng: random.Random) -> list[KillPlan]:
    plans = []
    for i in range(4):  # somewhere between interpreter start and the end of init()
        plans.append(KillPlan(f"init{i}", "init", rng.uniform(0.05, 0.6)))
    for i in range(10):  # right after init() returned: nothing logged or flushed yet
        plans.append(KillPlan(f"early{i}", "ready", rng.uniform(0.0, 0.05)))
    for i in range(10):  # around the first flush (0.5 s after init + pyarrow warming up)
        plans.append(KillPlan(f"first{i}", "ready", rng.uniform(0.3, 1.6)))
    for i in range(20):  # mid-run, some with frequent mid-run segment merges
        plans.append(
            KillPlan(
                f"mid{i}",
                "ready",
                rng.uniform(1.0, 3.5),
                merge_after=rng.choice([0, 3]),
                touch_config=rng.choice([0.0, 1.0]),
            )
        )
    for i in range(6):  # long runs: many segments, merged every few flushes
        plans.append(
            KillPlan(
                f"long{i}",
                "ready",
                rng.uniform(5.0, 8.0),
                merge_after=rng.choice([0, 4, 5]),
                touch_config=rng.choice([0.0, 2.0]),
            )
        )
    return plans


@dataclass
class KillResult:
    plan: KillPlan
    t_kill: float
    progress: Progress
    log: str


def run_and_kill(root: Path, progress_dir: Path, plan: KillPlan) -> KillResult:
    prog_path = progress_dir / f"{plan.run_id}.bin"
    extra = ["--merge-after", str(plan.merge_after), "--touch-config", str(plan.touch_config)]
    proc = spawn_logger(root, "k", plan.run_id, prog_path, *extra)
    try:
        if plan.when == "ready":
            wait_phase(prog_path, proc, 1)
        time.sleep(plan.delay)
        t_kill = kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            reap(proc)
    return KillResult(
        plan,
        t_kill,
        read_progress(prog_path),
        prog_path.with_suffix(".log").read_text(errors="replace"),
    )


@pytest.mark.slow
def test_sigkill_50_times_loses_at_most_the_last_flush(tmp_path: Path) -> None:
    root = tmp_path / "root"
    progress_dir = tmp_path / "progress"
    progress_dir.mkdir()
    seed = int(os.environ.get("NBT_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    seed_catalog(root, progress_dir, "k")
    plans = kill_plans(rng)
    rng.shuffle(plans)
    plans.sort(key=lambda p: -p.delay)  # the long ones first, short ones fill the gaps
    assert len(plans) == 50
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: run_and_kill(root, progress_dir, p), plans))
    note = f"(seed {seed}; rerun with NBT_KILL_SEED={seed})"

    for r in results:
        assert "Traceback" not in r.log, f"{r.plan.run_id} {note}: {r.log}"

    # what the kills left on disk, before any nbtracker code reads (and repairs) it
    n_files = assert_all_parquet_readable(root)
    assert n_files > 0
    cat_before = catalog_runs(root, "k")
    assert set(cat_before) <= {"seed", *(r.plan.run_id for r in results)}

    runs = {r.id: r for r in nbtracker.Api(root).runs("k")}
    started = [r for r in results if r.progress.phase >= 1]
    assert len(started) >= 46, note
    missing = [r.plan.run_id for r in started if r.plan.run_id not in runs]
    assert not missing, f"runs killed after init() are not listed: {missing} {note}"
    assert runs.pop("seed").state == "finished"
    assert set(runs) <= {r.plan.run_id for r in results}
    states = {rid: run.state for rid, run in runs.items()}
    assert set(states.values()) == {"crashed"}, f"{states} {note}"

    failures, lost = [], {}
    for r in results:
        run = runs.get(r.plan.run_id)
        if run is None:
            continue  # killed inside init(), before the run existed: nothing to show
        try:
            lost[r.plan.run_id] = check_history(run, r.progress, r.t_kill)
        except AssertionError as exc:
            failures.append(f"{r.plan} logged {r.progress.last + 1} steps: {exc}")
    worst = sorted(lost.items(), key=lambda kv: -kv[1])[:5]
    print(f"{len(runs)} runs, worst losses (s): {worst} {note}")
    assert not failures, f"{len(failures)} of {len(runs)} runs {note}:\n" + "\n".join(failures)
    # long runs (killed 5-8 s in, 1 ms sleep a step) reach 5,000+ steps on an idle machine;
    # under CI load the sleeps stretch, so the bar is lower: many segments and merges
    assert any(r.progress.last > 2000 for r in results), "no run got long enough"

    # one Api read brings the catalog up to date, and it still opens with plain duckdb
    assert catalog_runs(root, "k") == {"seed": "finished", **dict.fromkeys(runs, "crashed")}, note
    assert_all_parquet_readable(root)


def test_sigkill_during_finish(tmp_path: Path) -> None:
    """Kill while finish() hands off the last flush, compaction and the catalog update."""
    root = tmp_path / "root"
    progress_dir = tmp_path / "progress"
    progress_dir.mkdir()
    delays = [0.0, 0.003, 0.006, 0.012, 0.03, None]  # None: let it finish
    STEPS = 3_000  # noqa: N806
    seed_catalog(root, progress_dir, "k")

    def one(i: int, delay: float | None) -> tuple[str, float | None, Progress]:
        prog_path = progress_dir / f"fin{i}.bin"
        # ~2 s of logging first (so the flusher is past its slow start), then finish()
        proc = spawn_logger(root, "k", f"fin{i}", prog_path, "--steps", str(STEPS), "--sleep",
                            "0.0005", "--merge-after", "3", "--finish")  # fmt: skip
        wait_phase(prog_path, proc, 2)
        t_kill = None
        if delay is None:
            assert reap(proc) == 0
        else:
            time.sleep(delay)
            if proc.poll() is None:
                t_kill = kill(proc)
            else:
                reap(proc)
        return f"fin{i}", t_kill, read_progress(prog_path)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda a: one(*a), enumerate(delays)))

    assert_all_parquet_readable(root)
    catalog_runs(root, "k")
    runs = {r.id: r for r in nbtracker.Api(root).runs("k")}
    assert runs.pop("seed").state == "finished"
    assert set(runs) == {rid for rid, _, _ in results}
    seen = set()
    for rid, t_kill, prog in results:
        run = runs[rid]
        seen.add(run.state)
        assert prog.last == STEPS - 1
        if t_kill is None:
            assert run.state == "finished"
        else:
            assert run.state in ("finished", "crashed"), (rid, run.state)
        # a run reported finished has all of its rows; a crashed one lost at most the end
        check_history(run, prog, t_kill, complete=run.state == "finished")
    print("states after a kill during finish():", {rid: r.state for rid, r in runs.items()})
    assert catalog_runs(root, "k") == {
        "seed": "finished",
        **{rid: r.state for rid, r in runs.items()},
    }


# -- 2. four writers and a reader ----------------------------------------------------------
def test_four_writers_and_a_reader(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    steps = 3000
    stop = work / "stop"
    # the first init creates the catalog; start everyone at once to fight over it
    writers = [
        spawn_logger(
            root,
            "p",
            f"w{i}",
            work / f"w{i}.bin",
            "--steps",
            str(steps),
            "--sleep",
            "0.001",
            "--merge-after",
            "4",
            "--finish",
        )  # fmt: skip
        for i in range(4)
    ]
    reader = spawn([str(PROCS / "reader.py"), str(root), "p", str(stop), str(work / "reader.json")],
                   cwd=tmp_path, log=work / "reader.log")  # fmt: skip
    rcs = [reap(w, timeout=120) for w in writers]
    stop.touch()
    rc_reader = reap(reader, timeout=120)

    logs = {p.name: p.read_text(errors="replace") for p in work.glob("*.log")}
    assert len(logs) == 5
    for name, text in logs.items():
        assert "lock" not in text.lower(), f"{name}: {text}"
        assert "Traceback" not in text, f"{name}: {text}"
    assert rcs == [0, 0, 0, 0], logs
    assert rc_reader == 0, logs["reader.log"]
    report = json.loads((work / "reader.json").read_text())
    assert report["problems"] == []
    assert report["iterations"] >= 3, report  # it really read while they wrote
    assert any(st[0] == "running" for st in report["states"].values()), report["states"]

    runs = {r.id: r for r in nbtracker.Api(root).runs("p")}
    assert sorted(runs) == ["w0", "w1", "w2", "w3"]
    for rid, run in runs.items():
        assert run.state == "finished"
        assert run.summary["a"] == steps - 1
        prog = read_progress(work / f"{rid}.bin")
        assert prog.last == steps - 1
        check_history(run, prog, None, complete=True)
    total = nbtracker.sql(
        "SELECT run_id, count(*) AS n, count(DISTINCT step) AS s FROM history "
        "WHERE project = ? GROUP BY run_id ORDER BY run_id", ["p"], root=str(root),
    )  # fmt: skip
    assert total["n"].tolist() == [5 * steps] * 4
    assert total["s"].tolist() == [steps] * 4
    assert catalog_runs(root, "p") == dict.fromkeys(runs, "finished")


# -- 3. the catalog held open by another process -------------------------------------------
def hold_catalog(mode: str, path: Path, seconds: float, work: Path) -> subprocess.Popen:
    """Start tests/procs/holder.py and return once it holds ``path``."""
    ready = work / f"ready-{mode}"
    log = work / f"holder-{mode}.log"
    holder = spawn([str(PROCS / "holder.py"), mode, str(path), str(seconds), str(ready)],
                   cwd=work, log=log)  # fmt: skip
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert holder.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the holder did not start"
        time.sleep(0.01)
    return holder


def test_catalog_held_open_by_another_process(tmp_path: Path) -> None:
    root = tmp_path / "root"
    work = tmp_path / "work"
    work.mkdir()
    # a first run so that the catalog exists (with a runs table) before anyone holds it
    first = spawn_logger(root, "h", "before", work / "before.bin", "--steps", "10", "--finish")
    assert reap(first) == 0
    assert catalog_runs(root, "h") == {"before": "finished"}

    holder = hold_catalog("duckdb", root / CATALOG, 120, work)  # until released below

    # training while the catalog is held; every warning is an error (python -W error)
    trainer = spawn_logger(root, "h", "held", work / "held.bin", "--steps", "1500",
                           "--finish", pyflags=("-W", "error"))  # fmt: skip
    wait_phase(work / "held.bin", trainer, 1)
    live = {r.id: r.state for r in nbtracker.Api(root).runs("h")}  # a reader meanwhile
    assert live.get("held") == "running", live
    assert reap(trainer, timeout=60) == 0, (work / "held.log").read_text()
    assert holder.poll() is None, (work / "holder-duckdb.log").read_text()
    text = (work / "held.log").read_text(errors="replace")
    assert text == "", f"the trainer printed: {text}"

    prog = read_progress(work / "held.bin")
    assert prog.phase == 4 and prog.last == 1499
    run = nbtracker.Api(root).run("h/held")  # while still held
    assert run.state == "finished"
    check_history(run, prog, None, complete=True)

    (work / "ready-duckdb.release").touch()
    assert reap(holder, timeout=30) == 0, (work / "holder-duckdb.log").read_text()
    runs = {r.id: r.state for r in nbtracker.Api(root).runs("h")}
    assert runs == {"before": "finished", "held": "finished"}
    # after that one Api read, the catalog file itself has caught up
    assert catalog_runs(root, "h") == {"before": "finished", "held": "finished"}
    check_history(nbtracker.Api(root).run("h/held"), prog, None, complete=True)


def worst_case_loss(hdir: Path, skip: int = 2) -> list[tuple[str, float]]:
    """For each history segment: how long its earliest row waited to reach the disk, i.e.
    what a SIGKILL just before the segment landed would have lost (``mtime - min(ts)``).
    Only single-flush segments (``h-N-N``); merged ones lost their write times. The first
    ``skip`` segments (the flusher's start, checked by the SIGKILL test) are left out."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = []
    for f in sorted(hdir.glob("h-*.parquet")):
        first, last = f.stem.split("-")[1:3]
        if first != last or int(first) <= skip:
            continue
        ts = pq.read_table(f, columns=["ts"]).column("ts")
        out.append((f.name, f.stat().st_mtime - pc.min(ts).as_py()))
    return out


def test_busy_catalog_lock_does_not_hold_up_history(tmp_path: Path) -> None:
    """Another nbtracker process holds the catalog's write lock (a long catalog write, a
    repair): the run's history must still reach the disk at least once a second, so a
    SIGKILL loses at most that; training goes on without a word."""
    root = tmp_path / "root"
    work = tmp_path / "work"
    work.mkdir()
    seed_catalog(root, work, "b")
    holder = hold_catalog("flock", root / ("." + CATALOG + ".lock"), 120, work)
    try:
        _train_while_busy(root, work, holder)
    finally:
        holder.kill()
        reap(holder)


def _train_while_busy(root: Path, work: Path, holder: subprocess.Popen) -> None:
    prog_path = work / "busy.bin"
    # config changes every 0.5 s (say, once per epoch): each asks for a catalog update
    trainer = spawn_logger(root, "b", "busy", prog_path, "--touch-config", "0.5",
                           pyflags=("-W", "error"))  # fmt: skip
    try:
        wait_phase(prog_path, trainer, 1)
        time.sleep(5.5)
        assert trainer.poll() is None, prog_path.with_suffix(".log").read_text()
    finally:
        t_kill = kill(trainer) if trainer.poll() is None else 0.0
    assert holder.poll() is None, (work / "holder-flock.log").read_text()
    assert prog_path.with_suffix(".log").read_text() == ""
    prog = read_progress(prog_path)

    waits = worst_case_loss(root / "runs" / "b" / "busy" / "history")
    assert waits, "no segment after the first two"
    worst = max(w for _, w in waits)
    assert worst <= MAX_LOSS_S, (
        f"with the catalog lock busy, rows waited up to {worst:.2f} s to reach the disk "
        f"(a SIGKILL then loses that much): {[(n, round(w, 2)) for n, w in waits]}"
    )
    assert len(waits) >= 4, f"{len(waits) + 2} segments in 5.5 s of logging"
    run = nbtracker.Api(root).run("b/busy")
    assert run.state == "crashed"
    check_history(run, prog, t_kill)


# -- 4. awkward names ----------------------------------------------------------------------
AWKWARD = [
    "a/b",
    "..",
    "../../etc",
    'quote\'s "double"',
    "with spaces  and\ttab",
    "ünïcødé 🚀",
    "'; DROP TABLE runs; --",
]


def _walk(top: Path) -> set[Path]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            out.add(Path(dirpath) / n)
    return out


def test_awkward_names_are_kept_and_stay_inside_root(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    root = sandbox / "a" / "b" / "c" / "root"  # "../../etc" from here stays in the sandbox
    # an absolute path as a name; inside tmp_path, so that a regression writes there
    names = [*AWKWARD, str(sandbox / "absolute" / "path")]
    cwd = sandbox / "cwd"
    cwd.mkdir(parents=True)
    names_file = tmp_path / "names.json"
    # run ids too, where allowed (init() refuses '/', '\\' and control characters in ids)
    ids = {s: s for s in names if "/" not in s and "\t" not in s}
    names_file.write_text(json.dumps({"names": names, "ids": ids}), encoding="utf-8")
    parent_before = set(os.listdir(tmp_path.parent))
    tmp_before = _walk(tmp_path)

    proc = spawn(
        [str(PROCS / "names.py"), str(root), str(names_file)], cwd=cwd, log=tmp_path / "names.log"
    )
    assert reap(proc, timeout=120) == 0, (tmp_path / "names.log").read_text()
    assert (tmp_path / "names.log").read_text() == ""

    api = nbtracker.Api(root)
    all_runs = list(api.runs())
    assert sorted(r.project for r in all_runs) == sorted(names)
    entity = all_runs[0].entity
    for s in names:
        matching = [r for r in all_runs if r.project == s]
        assert len(matching) == 1, s
        run = matching[0]
        assert run.name == s
        if s in ids:
            assert run.id == s
            assert api.run(f"{s}/{s}").name == s
        assert run.tags == [s, "plain"]
        assert run.config == {s: names.index(s)}
        assert run.state == "finished"
        # "entity/project" always names the project, whatever it contains
        assert [r.id for r in api.runs(f"{entity}/{s}")] == [run.id], s
        if "/" not in s:
            assert [r.id for r in api.runs(s)] == [run.id], s
        assert api.run(project=s, run_id=run.id).name == s
        hist = run.history(samples=None)
        assert hist[s].tolist()[:3] == [0.0, 1.0, 2.0], s
        assert set(hist.columns) >= {s, "x", s + "-table"}
        # SQL with the name as a parameter finds it (and the injection text stays text)
        found = nbtracker.sql("SELECT name FROM runs WHERE project = ?", [s], root=str(root))
        assert found["name"].tolist() == [s]
        keys = nbtracker.sql("SELECT DISTINCT key FROM history WHERE project = ? ORDER BY key",
                             [s], root=str(root))  # fmt: skip
        assert keys["key"].tolist() == sorted([s, "x", s + "-table"])
        tags = nbtracker.sql(
            "SELECT tag FROM tags WHERE project = ? ORDER BY tag", [s], root=str(root)
        )
        assert tags["tag"].tolist() == sorted([s, "plain"])

    # the catalog file itself holds the exact strings, and its runs table survived
    import duckdb

    con = duckdb.connect(str(root / CATALOG), read_only=True)
    try:
        for s in names:
            assert con.execute("SELECT name FROM runs WHERE project = ?", [s]).fetchall() == [(s,)]
            assert con.execute("SELECT tag FROM tags WHERE project = ? ORDER BY tag",
                               [s]).fetchall() == sorted([(s,), ("plain",)])  # fmt: skip
    finally:
        con.close()

    # nothing was created outside the root: not beside it, not above it, not in the cwd
    created = _walk(tmp_path) - tmp_before
    outside = sorted(str(p) for p in created if p != root and root not in p.parents
                     and p not in {tmp_path / "names.log", *root.parents})  # fmt: skip
    assert outside == []
    assert set(os.listdir(tmp_path.parent)) == parent_before
