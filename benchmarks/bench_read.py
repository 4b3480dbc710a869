"""Read speed: one key of a 1M-step run down-sampled to 1,000 points, and a runs table of
1,000 runs with config and summary columns.

The data is built once per invocation in a temp folder (build times are reported too):

* nbtracker: ``init / log x 1M (loss, acc, lr, grad_norm) / finish``; 1,000 short runs
  (``init(reinit="create_new")``, 5 config values, 10 steps of 3 keys, ``finish``).
* trackio: the same rows written with its own bulk writer (``SQLiteStorage.bulk_log``,
  10k rows a call; ``trackio.log`` for 1M steps would take minutes and GBs of RAM).
* mlflow (sqlite backend, its recommended store): the 1M-step run holds only ``loss``
  (written with ``log_batch``, 1,000 points a call); 1,000 runs with 5 params and 3 metrics.

Each read runs in a fresh process (so nothing is cached) and is timed twice: the first
call ("cold": includes opening the store and any lazy import of the tool's own modules,
but not pandas/pyarrow/duckdb, which are imported first, untimed, for every tool, as a
notebook has them loaded) and the median of 5 repeats ("warm"). Targets are judged on
the first call. Reads:

* nbtracker: ``Api(root=...).run("proj/big").history(keys=["loss"], samples=1000)`` and
  ``Api(root=...).runs("many").to_pandas()``.
* trackio: ``SQLiteStorage.get_logs(project, run, max_points=1000)`` (its dashboard read;
  it returns every key, there is no per-key read) and ``get_runs`` + ``get_all_run_configs``
  (trackio stores no summary; last values would need a history read per run).
* mlflow: ``SqlAlchemyStore.get_metric_history_bulk_interval([run], "loss", 1000)`` (the
  UI's sampled read) and ``mlflow.search_runs(experiment_ids=[...], max_results=1000)``.

Usage::

    .bench-venv/bin/python benchmarks/bench_read.py [--quick] [--rounds 3]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()
TOOLS = {"nbtracker": "nbtracker", "trackio": "trackio", "mlflow": "mlflow"}
TARGET_HISTORY_MS = 50
TARGET_RUNS_MS = 200
KEYS = ("loss", "acc", "lr", "grad_norm")


def _row(i: int) -> dict[str, float]:
    x = 1.0 / (i + 1)
    return {
        "loss": x + (0.5 if i % 9973 == 0 else 0.0),
        "acc": 1.0 - x,
        "lr": 1e-3 * (1 - i * 1e-7),
        "grad_norm": x * 3.0,
    }


def _cfg(j: int) -> dict[str, object]:
    return {
        "lr": 10 ** -(1 + j % 4),
        "batch_size": 16 * (1 + j % 8),
        "optimizer": ["adam", "sgd"][j % 2],
        "seed": j,
        "dropout": (j % 5) / 10,
    }


# ============================== build (worker side) =======================================
def build(tool: str, data: Path, steps: int, nruns: int) -> dict[str, object]:
    C.quiet_peers()
    res: dict[str, object] = {}
    if tool == "nbtracker":
        import nbtracker as nbt

        root = str(data / "nbruns")
        t = time.perf_counter()
        run = nbt.init(project="proj", id="big", dir=root, config={"lr": 1e-3})
        log = run.log
        for i in range(steps):
            log(_row(i))
        run.finish()
        res["big_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for j in range(nruns):
            r = nbt.init(project="many", dir=root, config=_cfg(j), reinit="create_new")
            for i in range(10):
                r.log({"loss": 1.0 / (i + 1 + j), "acc": i / 10, "epoch": i})
            r.finish()
        res["many_s"] = time.perf_counter() - t
    elif tool == "trackio":
        os.environ["TRACKIO_DIR"] = str(data / "trackio")
        from trackio.sqlite_storage import SQLiteStorage

        t = time.perf_counter()
        chunk = 10_000
        for s in range(0, steps, chunk):
            e = min(steps, s + chunk)
            SQLiteStorage.bulk_log(
                "proj",
                "big",
                [_row(i) for i in range(s, e)],
                steps=list(range(s, e)),
                config={"lr": 1e-3} if s == 0 else None,
            )
        res["big_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for j in range(nruns):
            SQLiteStorage.bulk_log(
                "many",
                f"run-{j}",
                [{"loss": 1.0 / (i + 1 + j), "acc": i / 10, "epoch": i} for i in range(10)],
                steps=list(range(10)),
                config=_cfg(j),
            )
        res["many_s"] = time.perf_counter() - t
    elif tool == "mlflow":
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{data / 'mlflow.db'}")
        t = time.perf_counter()
        exp = client.create_experiment("proj")
        run = client.create_run(exp)
        rid = run.info.run_id
        ts = int(time.time() * 1000)
        for s in range(0, steps, 1000):
            client.log_batch(
                rid,
                metrics=[
                    Metric("loss", _row(i)["loss"], ts, i) for i in range(s, min(steps, s + 1000))
                ],
            )
        client.set_terminated(rid)
        res["big_s"] = time.perf_counter() - t
        res["big_run_id"] = rid
        t = time.perf_counter()
        exp2 = client.create_experiment("many")
        for j in range(nruns):
            r = client.create_run(exp2)
            client.log_batch(
                r.info.run_id,
                metrics=[
                    Metric(k, v, ts, 9)
                    for k, v in {"loss": 1.0 / (10 + j), "acc": 0.9, "epoch": 9}.items()
                ],
                params=[Param(k, str(v)) for k, v in _cfg(j).items()],
            )
            client.set_terminated(r.info.run_id)
        res["many_s"] = time.perf_counter() - t
        res["many_exp"] = exp2
    return res


# ============================== read (worker side) ========================================
def read(tool: str, what: str, data: Path, info: dict[str, str]) -> dict[str, object]:
    C.quiet_peers()
    if tool == "nbtracker":
        import nbtracker as nbt

        nbt.Api  # noqa: B018 - import the read API outside the timing
        import nbtracker.api  # noqa: F401

        root = str(data / "nbruns")
        if what == "history":

            def fn():  # type: ignore[no-untyped-def]
                return nbt.Api(root=root).run("proj/big").history(keys=["loss"], samples=1000)
        else:

            def fn():  # type: ignore[no-untyped-def]
                return nbt.Api(root=root).runs("many").to_pandas()
    elif tool == "trackio":
        os.environ["TRACKIO_DIR"] = str(data / "trackio")
        from trackio.sqlite_storage import SQLiteStorage

        if what == "history":

            def fn():  # type: ignore[no-untyped-def]
                # (trackio's read cache is only enabled on HF Spaces, so repeats are real reads)
                return SQLiteStorage.get_logs("proj", "big", max_points=1000)
        else:

            def fn():  # type: ignore[no-untyped-def]
                import pandas as pd

                runs = SQLiteStorage.get_runs("many")
                cfgs = SQLiteStorage.get_all_run_configs("many")
                return pd.DataFrame(
                    [
                        {"run": r, **{f"config.{k}": v for k, v in (cfgs.get(r) or {}).items()}}
                        for r in runs
                    ]
                )
    elif tool == "mlflow":
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = f"sqlite:///{data / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        if what == "history":
            rid = info["big_run_id"]

            def fn():  # type: ignore[no-untyped-def]
                store = MlflowClient(tracking_uri=uri)._tracking_client.store
                return store.get_metric_history_bulk_interval([rid], "loss", 1000, None, None)
        else:
            exp = info["many_exp"]

            def fn():  # type: ignore[no-untyped-def]
                return mlflow.search_runs(experiment_ids=[exp], max_results=1000)
    else:
        msg = f"unknown tool {tool}"
        raise SystemExit(msg)
    # A notebook session has these loaded already: import them outside the timing, for
    # every tool alike, and report what that cost separately.
    t = time.perf_counter()
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    libs = time.perf_counter() - t
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    warm = []
    for _ in range(5 if cold < 1.0 else 1):  # slow peers: one repeat is enough
        t = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t)
    shape = list(getattr(out, "shape", (len(out),)))
    return {"cold_s": cold, "warm_s": statistics.median(warm), "shape": shape, "libs_s": libs}


# ============================== driver side ================================================
def main(argv: list[str] | None = None) -> str:
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--info", default="{}", help=__import__("argparse").SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        import json

        kind, tool = args.worker.split(":", 1)
        data = Path(args.data)
        if kind == "build":
            steps, nruns = (int(x) for x in args.info.split(","))
            C.emit(build(tool, data, steps, nruns))
        else:
            C.emit(read(tool, kind, data, json.loads(args.info)))
        return ""
    import json

    rounds = args.rounds or (1 if args.quick else 3)
    steps, nruns = (100_000, 100) if args.quick else (1_000_000, 1_000)
    tools = [t for t in (args.tools.split(",") if args.tools else TOOLS) if C.importable(TOOLS[t])]
    data = Path(tempfile.mkdtemp(prefix="nbt-bench-read-"))
    out = [C.header("Reads: down-sampled history and runs table (bench_read.py)", args, rounds)]
    out.append(C.versions(["nbtracker", "trackio", "mlflow", "duckdb", "pandas"]) + "\n")
    try:
        builds: dict[str, dict] = {}
        for tool in tools:
            C.say(f"bench_read: building {tool} data ({steps:,} steps, {nruns:,} runs) ...")
            t = time.perf_counter()
            builds[tool] = C.run_worker(
                SCRIPT,
                ["--worker", f"build:{tool}", "--data", str(data), "--info", f"{steps},{nruns}"],
                timeout=1800,
            )
            C.say(f"  {tool}: {time.perf_counter() - t:.1f} s {builds[tool].get('error') or ''}")
        ok = [t for t in tools if not builds[t].get("error")]
        rows = []
        for tool in tools:
            b = builds[tool]
            if b.get("error"):
                rows.append([tool, "ERROR: " + str(b["error"])[:200], ""])
            else:
                rows.append([tool, C.fmt(b.get("big_s")), C.fmt(b.get("many_s"))])
        out.append("### building the data (once, not part of the comparison)\n")
        out.append(C.table(["tool", f"{steps:,}-step run, s", f"{nruns:,} runs, s"], rows))
        out.append(
            "(trackio and mlflow are built with their bulk writers, nbtracker with plain init/log/finish.)\n"
        )

        verdicts = []
        for what, title, target in (
            (
                "history",
                f"one key of a {steps:,}-step run, down-sampled to 1,000 points",
                TARGET_HISTORY_MS,
            ),
            ("runs", f"runs table of {nruns:,} runs (config + summary columns)", TARGET_RUNS_MS),
        ):
            jobs = {}
            for tool in ok:
                info = json.dumps({k: v for k, v in builds[tool].items() if isinstance(v, str)})
                jobs[tool] = lambda tool=tool, info=info, what=what: C.run_worker(
                    SCRIPT,
                    ["--worker", f"{what}:{tool}", "--data", str(data), "--info", info],
                    timeout=900,
                )
            C.say(f"bench_read: {what} ({', '.join(jobs)})")
            res = C.interleaved(jobs, rounds, log=C.say)
            o_cold, o_warm = (
                C.med(res.get("nbtracker", []), "cold_s"),
                C.med(res.get("nbtracker", []), "warm_s"),
            )
            rows = []
            for tool, rs in res.items():
                err = C.first_error(rs)
                if err:
                    out.append(f"note: {tool}: {err}")
                c, w = C.med(rs, "cold_s"), C.med(rs, "warm_s")
                shape = next((r["shape"] for r in rs if "shape" in r), None)
                rows.append(
                    [
                        tool,
                        C.fmt(c * 1e3 if c is not None else None),
                        C.ratio(c, o_cold),
                        C.fmt(w * 1e3 if w is not None else None),
                        C.ratio(w, o_warm),
                        "x".join(str(s) for s in shape) if shape else "-",
                        C.fmt(
                            C.med(rs, "libs_s") * 1e3 if C.med(rs, "libs_s") is not None else None
                        ),
                    ]
                )
            out.append(f"### {title}\n")
            out.append(
                C.table(
                    [
                        "tool",
                        "first call ms (fresh process)",
                        "ratio (peer/nbt)",
                        "warm ms (median of 5; 1 if > 1 s)",
                        "ratio warm",
                        "result shape",
                        "pandas+pyarrow+duckdb import ms (untimed)",
                    ],
                    rows,
                )
            )
            out.append("")
            scale = "" if not args.quick else " (quick: smaller data)"
            verdicts.append(
                C.check(
                    f"nbtracker {what} first call{scale}",
                    o_cold * 1e3 if o_cold else None,
                    "<=",
                    target,
                    " ms",
                )
            )
        out.append(
            "trackio's history read returns all 4 keys (it has no per-key read); mlflow's run holds only "
            "'loss'; trackio's runs table has config columns only (trackio stores no summary)."
        )
        out.append("\nTargets:")
        out += [s for s, _ in verdicts]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    text = main()
    if text:
        print(text)
