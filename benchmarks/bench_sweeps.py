"""Sweeps: search quality, hyperband savings, tracker overhead per trial, 2 agents x 200 trials.

    python benchmarks/bench_sweeps.py [--seeds 20] [--only quality,hyperband,overhead,parallel]

1. quality: bayes (TPE, constant liar) vs random, the samplers and W&B-distribution mapping
   the sweeps use, on Branin (2-d) and Hartmann-6 (6-d), 30 trials, over seeds: median best
   value and its spread (25th-75th percentile). Lower is better (both are minimised).
2. hyperband: synthetic learning curves whose final value is known (81 steps), brackets
   min_iter=3, eta=3 through the same pruner and bracket reporting the run hook uses: steps
   saved against no early termination, and in how many seeds the best configuration (by
   final value) ran to the end.
3. overhead: the in-process agent on a function that only calls init() (the agent finishes
   the run): time per trial, store and optuna journal on disk, against a plain
   init()+finish() loop in the same process.
4. parallel: 2 agent processes on one sweep with run_cap=200 and a no-op function: every
   trial recorded once.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# -- 1. search quality ---------------------------------------------------------------------
def branin(p: dict) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14]]  # fmt: skip
_H_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]  # fmt: skip
_H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(p: dict) -> float:
    x = [p[f"x{i}"] for i in range(6)]
    return -sum(
        _H_ALPHA[i] * math.exp(-sum(_H_A[i][j] * (x[j] - _H_P[i][j] * 1e-4) ** 2 for j in range(6)))
        for i in range(4)
    )


PROBLEMS = {
    "branin": (branin, {"x1": {"min": -5.0, "max": 10.0}, "x2": {"min": 0.0, "max": 15.0}},
               0.397887),
    "hartmann6": (hartmann6, {f"x{i}": {"min": 0.0, "max": 1.0} for i in range(6)}, -3.32237),
}  # fmt: skip


def search(problem: str, method: str, seed: int, trials: int = 30) -> float:
    import optuna

    from nbtracker.sweeps.schema import validate
    from nbtracker.sweeps.study import sampler_for

    fn, space, _ = PROBLEMS[problem]
    _, params = validate({"method": method, "metric": {"name": "y", "goal": "minimize"},
                          "parameters": space})  # fmt: skip
    study = optuna.create_study(sampler=sampler_for(method, seed), direction="minimize")
    best = math.inf
    for _ in range(trials):
        t = study.ask()
        y = fn({p.name: p.suggest(t) for p in params})
        study.tell(t, y)
        best = min(best, y)
    return best


def quality(seeds: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"1. bayes vs random, 30 trials, {seeds} seeds: median best [25th-75th pct]")
    for problem in PROBLEMS:
        optimum = PROBLEMS[problem][2]
        res = {}
        for method in ("random", "bayes"):
            t0 = time.perf_counter()
            vals = sorted(search(problem, method, 1000 + s) for s in range(seeds))
            q = statistics.quantiles(vals, n=4)
            res[method] = statistics.median(vals)
            print(f"   {problem:10s} {method:6s} median {statistics.median(vals):9.4f} "
                  f"[{q[0]:.4f} .. {q[2]:.4f}]  (optimum {optimum}; {time.perf_counter() - t0:.1f} s)")  # fmt: skip
        gap_r, gap_b = res["random"] - optimum, res["bayes"] - optimum
        print(f"   {problem:10s} gap to optimum: random {gap_r:.4f}, bayes {gap_b:.4f} "
              f"(bayes {'better' if gap_b < gap_r else 'NOT better'}, {gap_r / max(gap_b, 1e-12):.1f}x)")  # fmt: skip


# -- 2. hyperband ------------------------------------------------------------------------------
STEPS = 81


def curve(cfg: dict, t: int, noise: float, crossing: bool = False) -> float:
    """A learning curve that falls as a power law towards ``final`` (known). ``crossing``:
    wider nets start higher and end lower, so early ranks mislead (hyperband's hard case)."""
    lr, width = cfg["lr"], cfg["width"]
    final = 0.1 + (math.log10(lr) + 2.2) ** 2 * 0.15 + 0.2 / width
    amp = 0.8 + 0.1 * width if crossing else 1.0
    return final + amp / math.sqrt(t) + noise


def hyperband_seed(seed: int, crossing: bool, n: int = 27) -> tuple[int, int, bool, float]:
    import random

    import optuna

    from nbtracker.sweeps.schema import brackets, validate
    from nbtracker.sweeps.study import band_check, pruner_for, sampler_for

    et = {"type": "hyperband", "min_iter": 3, "eta": 3}
    cfg, params = validate({"method": "random", "metric": {"name": "loss"},
                            "early_terminate": et,
                            "parameters": {"lr": {"distribution": "log_uniform_values",
                                                  "min": 1e-4, "max": 1.0},
                                           "width": {"values": [1, 2, 4, 8]}}})  # fmt: skip
    bands = {b: k for k, b in enumerate(brackets(cfg["early_terminate"], limit=STEPS))}
    study = optuna.create_study(sampler=sampler_for("random", seed),
                                pruner=pruner_for(cfg["early_terminate"]))  # fmt: skip
    noise = random.Random(seed)
    used, finals, stopped = 0, [], set()
    for i in range(n):
        t = study.ask()
        c = {p.name: p.suggest(t) for p in params}
        finals.append(curve(c, STEPS, 0.0, crossing))
        for step in range(1, STEPS + 1):
            used += 1
            v = curve(c, step, noise.gauss(0, 0.01), crossing)
            if step in bands:
                if not band_check(t, step, v, None, cfg["early_terminate"]):
                    stopped.add(i)
                    study.tell(t, state=optuna.trial.TrialState.PRUNED)
                    break
        else:
            study.tell(t, v)
    best = min(range(n), key=finals.__getitem__)
    kept_best = min(f for i, f in enumerate(finals) if i not in stopped)
    return used, n * STEPS, best not in stopped, kept_best - finals[best]


def hyperband(seeds: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"2. hyperband (min_iter 3, eta 3), 27 random configs x {STEPS} steps, {seeds} seeds, "
          "noise sd 0.01 a step")  # fmt: skip
    for crossing in (False, True):
        res = [hyperband_seed(2000 + s, crossing) for s in range(seeds)]
        used, full = sum(r[0] for r in res), sum(r[1] for r in res)
        kept = sum(r[2] for r in res)
        name = "crossing curves" if crossing else "power-law curves"
        print(f"   {name:17s}: steps saved {1 - used / full:.1%} "
              f"(per seed {min(1 - r[0] / r[1] for r in res):.1%} .. "
              f"{max(1 - r[0] / r[1] for r in res):.1%}); best config ran to the end in "
              f"{kept}/{seeds} seeds ({kept / seeds:.0%}); median regret of the best kept "
              f"{statistics.median(r[3] for r in res):.4f}")  # fmt: skip


# -- 3. overhead per trial -----------------------------------------------------------------------
OVERHEAD = r"""
import sys, time, statistics, json
import nbtracker as wandb
root, n = sys.argv[1], int(sys.argv[2])
sid = wandb.sweep({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}},
                  project="bench", dir=root)
wandb.agent(sid, function=lambda: wandb.init(), count=3, dir=root)  # warm: imports, first trials
t0 = time.perf_counter()
wandb.agent(sid, function=lambda: wandb.init(), count=n, dir=root)
agent_ms = (time.perf_counter() - t0) / n * 1e3
t0 = time.perf_counter()
for _ in range(n):
    wandb.init(project="plain", dir=root).finish()
plain_ms = (time.perf_counter() - t0) / n * 1e3
print(json.dumps({"agent_ms": agent_ms, "plain_ms": plain_ms}))
"""


def overhead(n: int = 60) -> None:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NBTRACKER_SILENT": "true"}
        out = subprocess.run([sys.executable, "-c", OVERHEAD, tmp, str(n)], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"3. tracker overhead per trial (in-process agent, function = init() only, {n} trials)")
    print(f"   agent loop + init + finish: {r['agent_ms']:.1f} ms/trial; plain init()+finish() "
          f"in the same process: {r['plain_ms']:.1f} ms/run; the sweep's own share "
          f"{r['agent_ms'] - r['plain_ms']:.1f} ms")  # fmt: skip


# -- 4. two agents, 200 trials ---------------------------------------------------------------------
AGENT = r"""
import sys
import nbtracker as wandb
print(wandb.agent(sys.argv[2], function=lambda: wandb.init(), dir=sys.argv[1]))
"""


def parallel(total: int = 200) -> None:
    import nbtracker as wandb

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NBTRACKER_SILENT": "true"}
        sid = wandb.sweep({"method": "random", "run_cap": total,
                           "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="bench",
                          dir=tmp)  # fmt: skip
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", AGENT, tmp, sid], env=env,
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
        made = [int(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        wall = time.perf_counter() - t0
        sw = wandb.Api(tmp).sweep(sid)
        runs = sw.runs
        trials = sw.trials()
        ids = [r.id for r in runs]
        ok = (len(runs) == total and len(set(ids)) == total
              and sorted(trials["run_id"]) == sorted(ids)
              and set(trials["state"]) == {"complete"}
              and all(r.state == "finished" for r in runs))  # fmt: skip
    print(f"4. 2 agent processes, run_cap {total}, no-op function: {made[0]} + {made[1]} runs in "
          f"{wall:.1f} s; {len(runs)} runs recorded, {len(set(ids))} distinct, every trial "
          f"has its run, all finished: {'OK' if ok else 'FAILED'}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--only", default="quality,hyperband,overhead,parallel")
    args = ap.parse_args()
    parts = args.only.split(",")
    if "quality" in parts:
        quality(args.seeds)
    if "hyperband" in parts:
        hyperband(args.seeds)
    if "overhead" in parts:
        overhead()
    if "parallel" in parts:
        parallel()


if __name__ == "__main__":
    main()
