"""Team store costs (issue 14), side by side with a local folder on this machine.

1. ``log()`` cost: a fresh process logs ``--steps`` steps of 5 floats and finishes; mean
   µs per ``log()`` call (the loop only) and the whole run until ``finish()`` returned, for
   a local folder and for the same with a team store (objects in PostgreSQL). Rounds are
   interleaved; medians reported, with the ratio team / local.
2. Time from ``log()`` to visible in the team store: a writer logs ``{"t": time.time()}``
   every 0.1 s for ``--visible-s`` seconds; a reader process on its own cache reads the
   run through ``Api(store=...)`` in a loop and notes, for each newly seen step, how long
   after its ``log()`` call it became visible (same machine, same clock).
3. Runs table over ``--runs`` team runs: ``--real-runs`` real runs are committed through
   ``nbtracker sync``, then their records are copied in PostgreSQL under new ids up to
   ``--runs`` (records only: the runs table reads records). Timed: ``Api(store=)`` with an
   empty cache (fetch everything), again with nothing changed, ``runs().to_pandas()``, and
   the same table from a local folder with the same runs (the cache folder itself).

PostgreSQL 16 runs locally (pgserver, Unix socket): network latency to a real server is
not in these figures.

Usage::

    .venv/bin/python benchmarks/bench_team.py [--steps 100000] [--rounds 3] [--runs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

RESULT = "RESULT "

LOG_WORKER = r"""
import json, sys, time
import nbtracker
root, steps = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
run = nbtracker.init(project="bench", dir=root)
t1 = time.perf_counter()
for i in range(steps):
    run.log({"a": i, "b": i * 0.5, "c": -i, "d": i % 7, "e": 1.0 / (i + 1)})
t2 = time.perf_counter()
run.finish()
t3 = time.perf_counter()
print("RESULT " + json.dumps({"log_us": (t2 - t1) / steps * 1e6, "total_s": t3 - t0}))
"""

VISIBLE_WRITER = r"""
import sys, time
import nbtracker
root, seconds = sys.argv[1], float(sys.argv[2])
run = nbtracker.init(project="vis", id="v1", dir=root)
end = time.time() + seconds
while time.time() < end:
    run.log({"t": time.time()})
    time.sleep(0.1)
run.finish()
"""

VISIBLE_READER = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
import nbtracker
stop = sys.argv[1]
seen, lags = 0, []
while not os.path.exists(stop):
    try:
        h = nbtracker.Api().run("vis/v1").history(keys=["t"], samples=None)
    except Exception:
        time.sleep(0.05)
        continue
    now = time.time()
    if len(h) > seen:
        lags += [now - t for t in h["t"].tolist()[seen:]]
        seen = len(h)
    time.sleep(0.05)
print("RESULT " + json.dumps({"lags": lags}))
"""


def _run(code: str, args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600
    )
    for line in out.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    raise RuntimeError(out.stderr[-3000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--visible-s", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--real-runs", type=int, default=100)
    args = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    tmp = Path(tempfile.mkdtemp(prefix="nbt-bench-team-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    sock = server.get_postmaster_info().socket_dir
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACKER_", "WANDB_"))}

    def url(db: str) -> str:
        return f"postgresql://postgres@/{db}?host={sock}"

    try:
        # 1. log() cost
        server.psql("CREATE DATABASE logcost;")
        res: dict[str, list[dict]] = {"local": [], "team": []}
        for r in range(args.rounds):
            order = ["local", "team"] if r % 2 == 0 else ["team", "local"]
            for kind in order:
                env = dict(base, NBTRACKER_CACHE=str(tmp / "cache"))
                if kind == "team":
                    env["NBTRACKER_STORE"] = url("logcost")
                root = tmp / f"log-{kind}-{r}"
                res[kind].append(_run(LOG_WORKER, [str(root), str(args.steps)], env))
        med = {
            k: {m: statistics.median(x[m] for x in v) for m in ("log_us", "total_s")}
            for k, v in res.items()
        }
        print(f"\n1. log() of 5 floats, {args.steps:,} steps, median of {args.rounds} rounds")
        print(f"{'':<8} {'us/log()':>9} {'init..finish s':>15}")
        for k, v in med.items():
            print(f"{k:<8} {v['log_us']:>9.2f} {v['total_s']:>15.3f}")
        print(
            f"team/local: log() {med['team']['log_us'] / med['local']['log_us']:.2f}x, "
            f"init..finish {med['team']['total_s'] / med['local']['total_s']:.2f}x"
        )

        # 2. log() -> visible
        server.psql("CREATE DATABASE visible;")
        env = dict(base, NBTRACKER_STORE=url("visible"), NBTRACKER_CACHE=str(tmp / "cache-r"))
        stop = tmp / "stop"
        reader = subprocess.Popen(
            [sys.executable, "-c", VISIBLE_READER, str(stop)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wenv = dict(env, NBTRACKER_CACHE=str(tmp / "cache-w"))
        subprocess.run(
            [sys.executable, "-c", VISIBLE_WRITER, str(tmp / "vis"), str(args.visible_s)],
            env=wenv, check=True, timeout=600,
        )  # fmt: skip
        time.sleep(3)
        stop.touch()
        out, err = reader.communicate(timeout=120)
        lags = next(
            json.loads(x[len(RESULT) :])["lags"] for x in out.splitlines() if x.startswith(RESULT)
        )
        lags.sort()
        q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]  # noqa: E731
        print(
            f"\n2. log() -> visible to a reader on another cache (commit every 2 s): "
            f"{len(lags)} steps, median {q(0.5):.2f} s, p90 {q(0.9):.2f} s, max {lags[-1]:.2f} s"
        )

        # 3. runs table over many team runs
        server.psql("CREATE DATABASE many;")
        env = dict(base, NBTRACKER_CACHE=str(tmp / "cache-many"))
        subprocess.run(
            [sys.executable, "-c",
             "import sys, nbtracker\n"
             "for i in range(int(sys.argv[2])):\n"
             "    r = nbtracker.init(project='many', dir=sys.argv[1],"
             " config={'lr': i * 1e-4, 'layers': i % 7})\n"
             "    r.log({'loss': 1.0 / (i + 1), 'acc': i / 1e4})\n"
             "    r.finish()\n",
             str(tmp / "many"), str(args.real_runs)],
            env=env, check=True, timeout=600,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "nbtracker", "sync", "--to", url("many"),
             "--root", str(tmp / "many")],
            env=env, check=True, timeout=600, capture_output=True,
        )  # fmt: skip
        copies = max(0, args.runs // args.real_runs - 1)
        server.psql(
            "\\c many\n"
            "INSERT INTO nbtracker.runs (project, run_id, record) "
            "SELECT project, run_id || '-c' || g, "
            "replace(record, '\"id\": \"' || run_id || '\"', '\"id\": \"' || run_id || '-c' || g || '\"') "
            f"FROM nbtracker.runs, generate_series(1, {copies}) g;"
        )
        code = (
            "import json, sys, time, nbtracker\n"
            "t0 = time.perf_counter(); api = nbtracker.Api(store=sys.argv[1])\n"
            "t1 = time.perf_counter(); df = api.runs('many').to_pandas()\n"
            "t2 = time.perf_counter()\n"
            "print('RESULT ' + json.dumps({'open_s': t1 - t0, 'table_s': t2 - t1, 'n': len(df)}))\n"
        )
        cold = _run(code, [url("many")], env)
        warm = _run(code, [url("many")], env)
        local_code = code.replace("store=sys.argv[1]", "sys.argv[1]")
        root = next((tmp / "cache-many").iterdir())
        local = _run(local_code, [str(root)], env)
        print(
            f"\n3. runs table over {cold['n']:,} team runs ({args.real_runs} real, the rest copies)"
        )
        print(f"   Api(store=) with an empty cache: {cold['open_s']:.2f} s; "
              f"nothing changed: {warm['open_s']:.2f} s")  # fmt: skip
        print(f"   runs().to_pandas(): team {warm['table_s']:.2f} s, the same folder read as "
              f"a local root {local['table_s']:.2f} s "
              f"({warm['table_s'] / local['table_s']:.2f}x)")  # fmt: skip
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
