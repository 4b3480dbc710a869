"""Many short runs in a loop (a sweep's quick trials, a seed loop): tracker time per run.

Each tool in a fresh subprocess, tools interleaved over ``--rounds``; one warm-up run
first (imports), then N runs (nbtracker 1,000; trackio 200; wandb 40: ~0.2 s each) of
``init(config={"i": i})``, one ``log()`` and ``finish()``.
Reported per tool: milliseconds per run in the loop, per run including the background work
the process still has to do after the loop (nbtracker: ``wait_for_background``: the last
runs' final flushes, compaction, catalog), and the CPU time of the process per run.

Tools: ``nbtracker`` (defaults: system metrics, console, environment captured, as W&B),
``nbtracker-bare`` (``x_disable_stats``, ``console="off"``, ``x_disable_meta``),
``trackio``, ``wandb-offline``. nbtracker also reports how long after
the last ``finish()`` all N runs were listed by ``Api().runs()`` (issue 11: within 2 s).

Targets (issue 11 and 12): <= 5 ms of tracker time per run; listed within 2 s.

Usage::

    .bench-venv/bin/python benchmarks/bench_short_runs.py [--quick] [--rounds 3] [--tools nbtracker,trackio]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()
TOOLS = {  # name -> (module needed, runs, runs quick)
    "nbtracker": ("nbtracker", 1000, 40),
    "nbtracker-bare": ("nbtracker", 1000, 40),
    "trackio": ("trackio", 200, 40),
    "wandb-offline": ("wandb", 40, 10),
}
TARGET_MS = 5.0
TARGET_LISTED_S = 2.0


def worker(tool: str, n: int, tmp: str) -> None:

    C.quiet_peers()
    if tool.startswith("nbtracker"):
        import nbtracker as t
        from nbtracker.store import wait_for_background

        kw = {}
        if tool == "nbtracker-bare":
            kw = {"settings": t.Settings(x_disable_stats=True, console="off", x_disable_meta=True)}

        def one(i: int) -> None:
            r = t.init(project="short", dir=tmp, config={"i": i}, **kw)
            r.log({"loss": 1.0})
            r.finish()

        wait = wait_for_background
    elif tool == "trackio":
        import trackio as t

        def one(i: int) -> None:
            t.init(project="short", config={"i": i})
            t.log({"loss": 1.0})
            t.finish()

        def wait() -> None:
            pass
    else:
        import wandb as t

        def one(i: int) -> None:
            r = t.init(project="short", dir=tmp, config={"i": i})
            r.log({"loss": 1.0})
            r.finish()

        def wait() -> None:
            pass

    one(-1)
    wait()
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        one(i)
    t1 = time.perf_counter()
    listed_s = None
    if tool.startswith("nbtracker"):  # every run listed by a reader, how soon
        api = t.Api(tmp)
        while len(api.runs("short")) < n + 1 and time.perf_counter() - t1 < 30:
            time.sleep(0.05)
            api = t.Api(tmp)
        listed_s = time.perf_counter() - t1
    wait()
    t2, c2 = time.perf_counter(), time.process_time()
    C.emit({"loop_ms": (t1 - t0) / n * 1e3, "total_ms": (t2 - t0) / n * 1e3,
            "cpu_ms": (c2 - c0) / n * 1e3, "listed_s": listed_s, "n": n})  # fmt: skip


def main() -> None:
    p = C.base_parser(__doc__.splitlines()[0])
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.tmp)
        return
    rounds = args.rounds or (1 if args.quick else 3)
    tools = [
        t for t in (args.tools.split(",") if args.tools else TOOLS) if C.importable(TOOLS[t][0])
    ]
    jobs = {}
    for t in tools:
        n = TOOLS[t][2] if args.quick else TOOLS[t][1]
        jobs[t] = lambda t=t, n=n: C.run_worker(SCRIPT, ["--worker", t, "--n", str(n)])
    res = C.interleaved(jobs, rounds, log=C.say)
    print(C.header("Short runs: init + one log + finish, in a loop", args, rounds))
    print(C.versions(["nbtracker", "trackio", "wandb"]) + "\n")
    ours = C.med(res.get("nbtracker", []), "loop_ms")
    rows = []
    for t in tools:
        r = res[t]
        err = C.first_error(r)
        if err:
            rows.append([t, "error: " + err[:80], "", "", "", "", ""])
            continue
        rows.append([
            t, str(r[0]["n"]), C.fmt(C.med(r, "loop_ms"), "ms"), C.spread(r, "loop_ms"),
            C.fmt(C.med(r, "total_ms"), "ms"), C.fmt(C.med(r, "cpu_ms"), "ms"),
            C.ratio(C.med(r, "loop_ms"), ours),
        ])  # fmt: skip
    print(C.table(["tool", "runs", "loop / run", "range", "loop + listed + background / run",
                   "CPU / run", "peer / nbtracker (loop)"], rows))  # fmt: skip
    print("\nTargets:")
    for t in ("nbtracker", "nbtracker-bare"):
        if t in res and not C.first_error(res[t]):
            print(C.check(f"{t}: tracker time per run (loop)", C.med(res[t], "loop_ms"), "<=",
                          TARGET_MS, " ms")[0])  # fmt: skip
            print(C.check(f"{t}: all runs listed after the last finish()",
                          C.med(res[t], "listed_s"), "<=", TARGET_LISTED_S, " s")[0])  # fmt: skip


if __name__ == "__main__":
    main()
