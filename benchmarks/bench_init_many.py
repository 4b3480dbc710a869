"""init() cost as a project grows: the 1st run against the 1,000th run of one project.

Issue 9.8: ``init()`` used to count every run folder of the project to number the run
name (``swift-river-<n>``), so it slowed down as the project grew. This benchmark fills
one project with 999 runs (``init()`` + ``finish()`` in one process, no logging), then
times ``init()`` in fresh processes: the 1st run of an empty project and the 1,000th run
of the full one (median over ``--rounds``; each timed run's folder is removed again, so
every round meets 999 runs). The worker imports duckdb and numpy before the clock starts:
``init()`` imports them once per process (0.1-0.25 s), which would hide what is measured.
It also prints the in-process ``init()`` times of runs 2-11 and of the last 10 runs of the
filling loop (each after the previous run's background finish is done).

Usage::

    .venv/bin/python benchmarks/bench_init_many.py [--runs 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = """
import json, sys, time
import duckdb, numpy  # init() imports the writer's modules once per process: not timed here
import nbtracker
root, project = sys.argv[1], sys.argv[2]
t = time.perf_counter()
run = nbtracker.init(project=project, dir=root)
dt = time.perf_counter() - t
name, rdir = run.name, str(run.dir)
run.finish()
print(json.dumps({"ms": dt * 1e3, "name": name, "dir": rdir}))
"""


def timed_init(root: Path, project: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(root), project],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def fill(root: Path, project: str, n: int) -> list[float]:
    """Create ``n`` runs in one process; return each init()'s time in ms."""
    import nbtracker
    from nbtracker.store import wait_for_background

    times = []
    for _ in range(n):
        t = time.perf_counter()
        run = nbtracker.init(project=project, dir=str(root), reinit="create_new")
        times.append((time.perf_counter() - t) * 1e3)
        run.finish()
        wait_for_background(timeout=60)  # the next init() would wait for this finish
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000, help="the run number to time")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nbt-init-many-"))
    try:
        root = tmp / "nbruns"
        t = time.perf_counter()
        warm = fill(root, "big", args.runs - 1)
        fill_s = time.perf_counter() - t
        timed_init(root, "warmup")  # bytecode caches, page cache
        first, last = [], []
        for i in range(args.rounds):
            r1 = timed_init(root, f"empty{i}")
            first.append(r1["ms"])
            shutil.rmtree(Path(r1["dir"]).parent)
            rn = timed_init(root, "big")
            last.append(rn["ms"])
            shutil.rmtree(rn["dir"])
        print(f"filled {args.runs - 1} runs in {fill_s:.1f} s (last name {rn['name']})")
        print(f"fresh process, init() of run 1:      {statistics.median(first):6.1f} ms "
              f"(median of {args.rounds}; {', '.join(f'{x:.1f}' for x in first)})")  # fmt: skip
        print(f"fresh process, init() of run {args.runs}: {statistics.median(last):6.1f} ms "
              f"(median of {args.rounds}; {', '.join(f'{x:.1f}' for x in last)})")  # fmt: skip
        if len(warm) > 20:
            print(
                f"in process, init() of runs 2-11:     {statistics.median(warm[1:11]):6.2f} ms (median)"
            )
            print(
                f"in process, init() of the last 10:   {statistics.median(warm[-10:]):6.2f} ms (median)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
