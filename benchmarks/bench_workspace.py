"""The runs workspace (issue 11): runs table and overlay, timed in the kernel.

1. ``table``: a runs table of 10,000 runs x 20 config + 20 summary columns (built from
   records: creating 10,000 real runs is the catalog benchmark's job). Timed: one sort,
   one filter, one filter + sort + page (what one click in the table costs the kernel),
   a group-by, and the current view as a DataFrame.
2. ``vs-mlflow``: the same N runs (default 1,000; 20 params, 20 metrics each) stored by
   nbtracker (real init / summary / finish) and by mlflow (``log_batch``, SQLite backend), each read into a
   DataFrame filtered and sorted: ``RunsTable(...).refresh()`` + ``frame(filter, sort)``
   (cold: reads every run record) and ``frame`` again (warm: the workspace's table is
   built), against ``mlflow.search_runs(filter_string=..., order_by=...)``. Each tool in
   a fresh subprocess; rounds interleaved; medians.
3. ``overlay``: 100 runs x 10,000 steps x 4 metrics; the data time of the overlay
   (``overlay.envelopes``: one DuckDB scan for all runs) and of a Workspace drawing all 100.

Run with the peer venv (it has mlflow)::

    .bench-venv/bin/python benchmarks/bench_workspace.py [--runs 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_CFG = N_SUM = 20


def _records(n: int) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(0)
    now = time.time()
    out = []
    for i in range(n):
        cfg = {f"p{j}": float(rng.random()) for j in range(N_CFG - 2)}
        cfg["opt"] = ["adam", "sgd", "lion"][i % 3]
        cfg["layers"] = int(i % 7)
        summ = {f"m{j}": float(rng.random()) for j in range(N_SUM)}
        out.append({
            "id": f"r{i:06d}", "project": "bench", "name": f"run-{i}", "state": "finished",
            "created_at": now - n + i, "finished_at": now - n + i + 10, "tags": [],
            "group": None, "job_type": None, "config": cfg, "summary": summ,
            "dir": f"runs/bench/r{i:06d}",
        })  # fmt: skip
    return out


def _best(fn, k: int = 5) -> float:  # noqa: ANN001
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_table(n: int) -> dict:
    sys.path.insert(0, str(REPO))
    from nbtracker.workspace_query import RunsTable

    t = RunsTable(None, "bench")
    recs = _records(n)
    t0 = time.perf_counter()
    t.load(recs)
    build = time.perf_counter() - t0
    filt = "p0 < 0.5 and opt = 'adam' and m3 > 0.2"
    shown = [f"config.p{j}" for j in range(8)] + [f"summary.m{j}" for j in range(8)]
    out = {
        "runs": n,
        "columns": len(t.columns),
        "build_s": build,
        "sort_s": _best(lambda: t.page(shown, sort=[("summary.m5", True)], limit=50)),
        "filter_s": _best(lambda: t.page(shown, filter=filt, limit=50)),
        "filter_sort_page_s": _best(
            lambda: t.page(shown, filter=filt, sort=[("summary.m5", True)], offset=50, limit=50)
        ),
        "group_s": _best(lambda: t.groups(["config.opt"], filter=filt)),
        "view_frame_s": _best(lambda: t.frame(filt, "", [("summary.m5", True)])),
    }
    t.close()
    return out


def worker_nbtracker(root: str, n: int) -> dict:
    sys.path.insert(0, str(REPO))
    import nbtracker
    from nbtracker.store import Store, wait_for_background
    from nbtracker.workspace_query import RunsTable

    recs = _records(n)
    if not (Path(root) / "runs").exists():
        t0 = time.perf_counter()
        for r in recs:
            run = nbtracker.init(project="bench", dir=root, config=r["config"], name=r["name"])
            run.summary.update(r["summary"])
            run.finish()
        wait_for_background()
        print(
            f"  (nbtracker: created {n} runs in {time.perf_counter() - t0:.1f} s)", file=sys.stderr
        )
    filt = "m0 < 0.5 and opt = 'adam'"  # the same runs as mlflow's filter below
    import pandas  # noqa: F401 - imported before the clock, as `import mlflow` does
    import pyarrow  # noqa: F401

    t0 = time.perf_counter()
    t = RunsTable(Store(root), "bench")
    t.refresh()
    df = t.frame(filt, "", [("summary.m5", True)])
    cold = time.perf_counter() - t0
    warm = _best(lambda: t.frame(filt, "", [("summary.m5", True)]))
    return {"cold_s": cold, "warm_s": warm, "rows": len(df)}


def worker_mlflow(root: str, n: int) -> dict:
    import mlflow
    from mlflow.entities import Metric, Param

    os.makedirs(root, exist_ok=True)  # the SQLite backend mlflow recommends (file store: retired)
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("bench")
    if exp is None:
        t0 = time.perf_counter()
        eid = client.create_experiment("bench")
        now = int(time.time() * 1000)
        for r in _records(n):
            run = client.create_run(eid, run_name=r["name"])
            params = [Param(k, str(v)) for k, v in r["config"].items()]
            metrics = [Metric(k, v, now, 0) for k, v in r["summary"].items()]
            client.log_batch(run.info.run_id, metrics=metrics, params=params)
            client.set_terminated(run.info.run_id)
        print(f"  (mlflow: created {n} runs in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    else:
        eid = exp.experiment_id
    # mlflow params are strings: the numeric comparison is done on a metric
    filt = "metrics.m0 < 0.5 and params.opt = 'adam'"

    def read() -> object:
        return mlflow.search_runs(
            experiment_ids=[eid], filter_string=filt, order_by=["metrics.m5 DESC"],
            max_results=100_000,
        )  # fmt: skip

    t0 = time.perf_counter()
    df = read()
    cold = time.perf_counter() - t0
    warm = _best(read, 3)
    return {"cold_s": cold, "warm_s": warm, "rows": len(df)}  # type: ignore[arg-type]


def bench_overlay(root: str, runs: int, steps: int) -> dict:
    sys.path.insert(0, str(REPO))
    import nbtracker
    from nbtracker.overlay import envelopes
    from nbtracker.store import Store, wait_for_background

    made = []
    t0 = time.perf_counter()
    for r in range(runs):
        run = nbtracker.init(project="overlay", dir=root, config={"seed": r})
        for s in range(steps):
            run.log({"loss": 1 / (s + 1 + r), "acc": s / steps, "lr": 0.1, "val/loss": 2 / (s + 1)})
        run.finish()
        made.append((run.dir, run.start_time))
    wait_for_background()
    create = time.perf_counter() - t0
    data = _best(lambda: envelopes(made, None, 256), 3)
    from nbtracker.widgets.workspace import Workspace

    t0 = time.perf_counter()
    ws = Workspace("overlay", store=Store(root), max_visible=runs, follow=False)
    ws_s = time.perf_counter() - t0
    n_pts = sum(len(k["s"]) for r in ws.series_snapshot()["runs"].values() for k in r.values())
    payload = len(ws._series)
    t0 = time.perf_counter()
    snapshot = len(ws.fallback_bundle(final=True)["text/html"])  # the static snapshot
    snapshot_s = time.perf_counter() - t0
    ws.close()
    return {"runs": runs, "steps": steps, "metrics": 4, "create_s": create,
            "envelopes_s": data, "workspace_s": ws_s, "points": n_pts,
            "snapshot_bytes": payload, "fallback_bytes": snapshot,
            "fallback_s": snapshot_s}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--root")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--table-runs", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--overlay-runs", type=int, default=100)
    ap.add_argument("--overlay-steps", type=int, default=10_000)
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    if a.worker:
        fn = {"nbtracker": worker_nbtracker, "mlflow": worker_mlflow}[a.worker]
        print("RESULT " + json.dumps(fn(a.root, a.runs)))
        return
    skip = set(a.skip.split(","))
    if "table" not in skip:
        t = bench_table(a.table_runs)
        print(f"runs table, {t['runs']:,} runs x {t['columns']} columns (kernel, median of 5):")
        for k in ("build_s", "sort_s", "filter_s", "filter_sort_page_s", "group_s", "view_frame_s"):
            print(f"  {k:20s} {t[k] * 1000:8.1f} ms")
    if "mlflow" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            roots = {"nbtracker": os.path.join(tmp, "nbt"), "mlflow": os.path.join(tmp, "mlruns")}
            got: dict[str, list[dict]] = {"nbtracker": [], "mlflow": []}
            for rnd in range(a.rounds):
                order = ["nbtracker", "mlflow"] if rnd % 2 == 0 else ["mlflow", "nbtracker"]
                for tool in order:
                    cmd = [sys.executable, __file__, "--worker", tool, "--root", roots[tool],
                           "--runs", str(a.runs)]  # fmt: skip
                    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)
                    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
                    if not line:
                        print(res.stderr[-2000:])
                        raise SystemExit(f"{tool} worker failed")
                    sys.stderr.write(res.stderr if rnd == 0 else "")
                    got[tool].append(json.loads(line[0][7:]))
            med = {t: {k: statistics.median(r[k] for r in rs) for k in ("cold_s", "warm_s")}
                   for t, rs in got.items()}  # fmt: skip
            print(f"\nfilter + sort {a.runs:,} runs into a DataFrame, median of {a.rounds} rounds:")
            for t in ("nbtracker", "mlflow"):
                print(f"  {t:10s} cold {med[t]['cold_s'] * 1000:8.1f} ms   warm {med[t]['warm_s'] * 1000:8.1f} ms"
                      f"   rows {got[t][0]['rows']}")  # fmt: skip
            print(f"  mlflow / nbtracker: cold {med['mlflow']['cold_s'] / med['nbtracker']['cold_s']:.1f}x, "
                  f"warm {med['mlflow']['warm_s'] / med['nbtracker']['warm_s']:.1f}x")  # fmt: skip
    if "overlay" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            o = bench_overlay(tmp, a.overlay_runs, a.overlay_steps)
            print(f"\noverlay, {o['runs']} runs x {o['steps']:,} steps x 4 metrics "
                  f"(created in {o['create_s']:.0f} s):")  # fmt: skip
            print(f"  envelopes (one DuckDB scan)  {o['envelopes_s'] * 1000:8.1f} ms")
            print(f"  Workspace drawing all runs   {o['workspace_s'] * 1000:8.1f} ms "
                  f"({o['points']:,} points, snapshot {o['snapshot_bytes'] / 1e6:.1f} MB)")  # fmt: skip
            print(f"  static snapshot (HTML table + PNG) {o['fallback_bytes'] / 1e6:.2f} MB "
                  f"in {o['fallback_s']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
