"""Cost of one ``log()`` call: nbtracker against trackio, wandb (offline) and mlflow.

Each tool runs in its own fresh subprocess: import, init, N calls of ``log()`` with 5
floats (each call timed alone with ``perf_counter_ns``), finish. Reported per tool:

* median µs per call (the per-call timings),
* mean µs per call = wall time from the first ``log()`` to the end of ``finish()`` / N,
  so background work, GC pauses and the final flush all count,
* p99 µs per call.

Step counts: nbtracker, trackio, wandb 100k (``--quick``: 10k); mlflow 5k
(``mlflow.log_metrics(dict, step=i)``, ~1 ms or more per call, so fewer steps). The
100-keys-per-call variant runs nbtracker and trackio at 20k steps (2M values).

Usage::

    .bench-venv/bin/python benchmarks/bench_log.py [--quick] [--rounds 3] [--tools nbtracker,trackio]
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()

# name -> (module needed, steps full, steps quick, keys)
TOOLS = {
    "nbtracker": ("nbtracker", 100_000, 10_000, 5),
    "trackio": ("trackio", 100_000, 10_000, 5),
    "wandb-offline": ("wandb", 100_000, 10_000, 5),
    "mlflow-file": ("mlflow", 5_000, 1_000, 5),
    "mlflow-sqlite": ("mlflow", 5_000, 500, 5),
    "nbtracker-100keys": ("nbtracker", 20_000, 5_000, 100),
    "trackio-100keys": ("trackio", 20_000, 5_000, 100),
}
TARGET_MEDIAN_US = 5.0
TARGET_MEAN_US = 3.0  # issue 9: mean per call incl. finish() until durable, 100k steps
TARGET_WORST_MS = 20.0  # issue 9: no single call over this after init() returns
TARGET_VS_TRACKIO = 3.0
TARGET_VS_WANDB = 30.0


# ============================== worker side ================================================
def make_rows(n: int, keys: int) -> list[dict[str, float]]:
    """Pre-build the dicts so that only log() itself is timed."""
    names = (
        ["loss", "acc", "lr", "grad_norm", "val_loss"]
        if keys == 5
        else [f"m{j:03d}" for j in range(keys)]
    )
    rows = []
    for i in range(n):
        x = 1.0 / (i + 1)
        rows.append({k: x * (j + 1) + i * 1e-6 for j, k in enumerate(names)})
    return rows


def timed_loop(log, rows, step_kw: bool = False) -> tuple[list[int], float]:  # type: ignore[no-untyped-def]
    pc = time.perf_counter_ns
    times = [0] * len(rows)
    t0 = time.perf_counter()
    if step_kw:
        for i, d in enumerate(rows):
            t = pc()
            log(d, step=i)
            times[i] = pc() - t
    else:
        for i, d in enumerate(rows):
            t = pc()
            log(d)
            times[i] = pc() - t
    return times, t0


def timer_overhead_ns() -> float:
    pc = time.perf_counter_ns
    xs = []
    for _ in range(20000):
        t = pc()
        xs.append(pc() - t)
    xs.sort()
    return xs[len(xs) // 2]


def summarize(times: list[int], t0: float, t_end: float, n: int) -> dict[str, float]:
    s = sorted(times)
    return {
        "median_us": s[len(s) // 2] / 1e3,
        "p99_us": s[int(len(s) * 0.99)] / 1e3,
        "max_us": s[-1] / 1e3,
        "mean_us": (t_end - t0) / n * 1e6,
        "n": n,
    }


def worker(tool: str, n: int, keys: int, tmp: Path) -> dict[str, object]:
    C.quiet_peers()
    rows = make_rows(n, keys)
    gc.collect()
    overhead = timer_overhead_ns()
    base = tool.replace("-100keys", "")
    ti = time.perf_counter()
    finish_return = None
    durable_at = 0.0
    if base == "nbtracker":
        import nbtracker as tr

        t_import = time.perf_counter() - ti
        ti = time.perf_counter()
        run = tr.init(project="bench", dir=str(tmp / "nbruns"), config={"lr": 1e-3, "bs": 32})
        t_init = time.perf_counter() - ti
        times, t0 = timed_loop(tr.log, rows)
        tf = time.perf_counter()
        run.finish()
        finish_return = time.perf_counter() - tf
        C.nbt_wait_durable()  # last rows and final record on disk: what a reader needs
        durable_at = time.perf_counter()
        C.nbt_wait()  # count the background compaction / catalog update, as peers' finish does
    elif base == "trackio":
        import trackio as tr

        t_import = time.perf_counter() - ti
        ti = time.perf_counter()
        tr.init(project="bench", name="r1", config={"lr": 1e-3, "bs": 32}, embed=False)
        t_init = time.perf_counter() - ti
        times, t0 = timed_loop(tr.log, rows)
        tf = time.perf_counter()
        tr.finish()
    elif base == "wandb-offline":
        import wandb as tr

        t_import = time.perf_counter() - ti
        ti = time.perf_counter()
        run = tr.init(
            project="bench", config={"lr": 1e-3, "bs": 32}, mode="offline", dir=str(tmp / "wandb")
        )
        t_init = time.perf_counter() - ti
        times, t0 = timed_loop(tr.log, rows)
        tf = time.perf_counter()
        run.finish()
    elif base.startswith("mlflow"):
        import mlflow as tr

        t_import = time.perf_counter() - ti
        if base == "mlflow-sqlite":
            tr.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        else:
            tr.set_tracking_uri((tmp / "mlruns").as_uri())
        ti = time.perf_counter()
        tr.set_experiment("bench")
        tr.start_run()
        tr.log_params({"lr": 1e-3, "bs": 32})
        t_init = time.perf_counter() - ti
        times, t0 = timed_loop(tr.log_metrics, rows, step_kw=True)
        tf = time.perf_counter()
        tr.end_run()
    else:
        msg = f"unknown tool {tool}"
        raise SystemExit(msg)
    t_end = time.perf_counter()
    res = summarize(times, t0, t_end, n)
    if base == "nbtracker":
        res["mean_durable_us"] = (durable_at - t0) / n * 1e6
    res["over_20ms"] = sum(1 for t in times if t > 20e6)
    res.update(
        {
            "import_s": t_import,
            "init_s": t_init,
            "finish_s": t_end - tf,
            "finish_return_s": finish_return if finish_return is not None else t_end - tf,
            "timer_overhead_ns": overhead,
            "keys": keys,
            "rss_mb": C.rss_mb(),
            "hwm_mb": C.hwm_mb(),
        }
    )
    return res


# ============================== driver side ================================================
def main(argv: list[str] | None = None) -> str:
    p = C.base_parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    if args.worker:
        C.emit(worker(args.worker, args.n, args.keys, Path(args.tmp)))
        return ""
    rounds = args.rounds or (1 if args.quick else 3)
    wanted = args.tools.split(",") if args.tools else list(TOOLS)
    jobs, missing = {}, []
    for name in wanted:
        mod, n_full, n_quick, keys = TOOLS[name]
        if not C.importable(mod):
            missing.append(name)
            continue
        n = n_quick if args.quick else n_full
        jobs[name] = lambda name=name, n=n, keys=keys: C.run_worker(
            SCRIPT, ["--worker", name, "--n", str(n), "--keys", str(keys)], timeout=900
        )
    C.say(f"bench_log: {', '.join(jobs)} x {rounds} round(s)")
    res = C.interleaved(jobs, rounds, log=C.say)
    return report(res, missing, args, rounds)


def report(res: dict[str, list[dict]], missing: list[str], args, rounds: int) -> str:  # type: ignore[no-untyped-def]
    out = [C.header("log() cost (bench_log.py)", args, rounds)]
    out.append(C.versions(["nbtracker", "trackio", "wandb", "mlflow", "duckdb", "pyarrow"]) + "\n")
    ours = C.med(res.get("nbtracker", []), "median_us")
    ours_mean = C.med(res.get("nbtracker", []), "mean_us")
    ours100 = C.med(res.get("nbtracker-100keys", []), "median_us")
    ours100_mean = C.med(res.get("nbtracker-100keys", []), "mean_us")
    rows = []
    for name, rs in res.items():
        err = C.first_error(rs)
        keys = TOOLS[name][3]
        if all(r.get("error") for r in rs):
            rows.append([name, str(keys), "-", "ERROR", "", "", "", "", "", "", ""])
            continue
        n = C.med(rs, "n")
        m, mean = C.med(rs, "median_us"), C.med(rs, "mean_us")
        ref, ref_mean = (ours100, ours100_mean) if keys == 100 else (ours, ours_mean)
        rows.append(
            [
                name,
                str(keys),
                f"{int(n):,}" if n else "-",
                C.fmt(m),
                C.spread(rs, "median_us"),
                C.fmt(mean),
                C.fmt(C.med(rs, "p99_us")),
                C.fmt(C.med(rs, "finish_s") * 1e3 if C.med(rs, "finish_s") is not None else None),
                C.fmt(C.med(rs, "exit_s") * 1e3 if C.med(rs, "exit_s") is not None else None),
                C.ratio(m, ref),
                C.ratio(mean, ref_mean),
            ]
        )
        if err:
            out.append(f"note: {name} had an error in some round: {err}")
    out.append(
        C.table(
            [
                "tool",
                "keys",
                "steps",
                "median µs/call",
                "range over rounds",
                "mean µs/call (incl. finish)",
                "p99 µs",
                "finish ms (until durable)",
                "process exit ms",
                "ratio median (peer/nbt)",
                "ratio mean (peer/nbt)",
            ],
            rows,
        )
    )
    ov = C.med(res.get("nbtracker", []), "timer_overhead_ns")
    out.append(
        f"\nPer-call timing includes the perf_counter_ns pair itself (~{ov or 0:.0f} ns here). "
        "mlflow runs 5k steps (mlflow.log_metrics(dict, step=i); it costs ~1 ms+ per call), "
        "the 100-keys rows 20k steps; ratios of 100-keys rows are against nbtracker-100keys. "
        "nbtracker's finish() returns at once and compacts in a background thread: 'finish' and "
        "'mean' include waiting for that thread (nbtracker.store.wait_for_background). "
        "'process exit' = from the worker's last line to the process being gone (atexit hooks, "
        "helper processes)."
    )
    if missing:
        out.append(f"not installed, skipped: {', '.join(missing)} (run benchmarks/setup_peers.sh)")
    out.append("\nTargets:")
    lines = [C.check("nbtracker median log() (5 floats)", ours, "<=", TARGET_MEDIAN_US, " µs")]
    tr = C.med(res.get("trackio", []), "median_us")
    wb = C.med(res.get("wandb-offline", []), "median_us")
    lines.append(
        C.check(
            "trackio / nbtracker (median)",
            tr / ours if tr and ours else None,
            ">=",
            TARGET_VS_TRACKIO,
            "x",
        )
    )
    lines.append(
        C.check(
            "wandb offline / nbtracker (median)",
            wb / ours if wb and ours else None,
            ">=",
            TARGET_VS_WANDB,
            "x",
        )
    )
    tr_mean = C.med(res.get("trackio", []), "mean_us")
    wb_mean = C.med(res.get("wandb-offline", []), "mean_us")
    durable = C.med(res.get("nbtracker", []), "mean_durable_us")
    lines.append(
        C.check(
            "nbtracker mean log() incl. finish() until durable",
            durable,
            "<=",
            TARGET_MEAN_US,
            " µs",
        )
    )
    worst = C.med(res.get("nbtracker", []), "max_us")
    lines.append(
        C.check(
            "nbtracker worst single log() call (median over rounds)",
            worst / 1e3 if worst is not None else None,
            "<=",
            TARGET_WORST_MS,
            " ms",
        )
    )
    out += [s for s, _ in lines]
    out.append(
        f"  (mean until durable vs peers' mean incl. finish: trackio {C.ratio(tr_mean, durable)}, "
        f"wandb {C.ratio(wb_mean, durable)}; calls over 20 ms per round: "
        f"{[r.get('over_20ms') for r in res.get('nbtracker', [])]})"
    )
    out.append(
        "  (same ratios on mean incl. finish: trackio "
        f"{C.ratio(tr_mean, ours_mean)}, wandb {C.ratio(wb_mean, ours_mean)})"
    )
    if ours100 is not None:
        out.append(
            f"[info] nbtracker with 100 keys per call: median {ours100:.3g} µs, mean {C.fmt(ours100_mean)} µs"
            f" ({ours100 / 100 * 1000:.0f} ns per key)"
        )
    text = "\n".join(out) + "\n"
    return text


if __name__ == "__main__":
    text = main()
    if text:
        print(text)
