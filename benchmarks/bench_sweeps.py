"""Sweeps: search quality, hyperband savings, tracker overhead per trial, 2 agents x 200 trials.

    python benchmarks/bench_sweeps.py [--seeds 20] [--hb-seeds 100]
        [--only quality,hyperband,overhead,parallel]

1. quality: bayes (TPE, constant liar) vs random, the samplers and W&B-distribution mapping
   the sweeps use, on Branin (2-d) and Hartmann-6 (6-d), 30 trials, over seeds: median best
   value and its spread (25th-75th percentile). Lower is better (both are minimised).
2. hyperband: synthetic learning curves whose final value is known (27 configs drawn by the
   sweep's random sampler, 81 steps, one after another, and 4 agents in lockstep with W&B's
   re-checks of running runs every 3 steps), two families: power-law curves
   (early ranks hold) and crossing curves (wider nets start higher and end lower). Each
   early_terminate goes through the same pruner and band reports as a sweep's run hook
   (W&B's rule), against optuna's successive halving (the mapping before) and the Hyperband
   paper's several brackets (optuna's HyperbandPruner): steps saved against no early
   termination (mean, 10th-90th percentile per seed) and the seeds in which the best
   configuration ran to the end (Wilson 95% interval), plus an oracle line: the best
   config's rank among all 27 at steps 3 / 9 / 27 and the best single "keep the top k at
   step t" cut that keeps it in >= 90% of seeds (t, k picked with hindsight).
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
N_CONFIGS = 27
NOISE_SD = 0.01


def curve(cfg: dict, t: int, noise: float, crossing: bool = False) -> float:
    """A learning curve that falls as a power law towards ``final`` (known). ``crossing``:
    wider nets start higher and end lower, so early ranks mislead (hyperband's hard case)."""
    lr, width = cfg["lr"], cfg["width"]
    final = 0.1 + (math.log10(lr) + 2.2) ** 2 * 0.15 + 0.2 / width
    amp = 0.8 + 0.1 * width if crossing else 1.0
    return final + amp / math.sqrt(t) + noise


def curves_for(seed: int, crossing: bool) -> tuple[list[list[float]], list[float]]:
    """``N_CONFIGS`` configurations drawn by the sweep's own random sampler and W&B
    parameter mapping (log-uniform lr, width in 1/2/4/8); each one's noisy curve over
    ``STEPS`` steps and its known final value (no noise)."""
    import random

    import optuna

    from nbtracker.sweeps.schema import validate
    from nbtracker.sweeps.study import sampler_for

    _, params = validate({"method": "random", "metric": {"name": "loss"},
                          "parameters": {"lr": {"distribution": "log_uniform_values",
                                                "min": 1e-4, "max": 1.0},
                                         "width": {"values": [1, 2, 4, 8]}}})  # fmt: skip
    study = optuna.create_study(sampler=sampler_for("random", seed))
    noise = random.Random(seed)
    hist, finals = [], []
    for _ in range(N_CONFIGS):
        t = study.ask()
        c = {p.name: p.suggest(t) for p in params}
        study.tell(t, 0.0)
        hist.append([curve(c, s, noise.gauss(0, NOISE_SD), crossing) for s in range(1, STEPS + 1)])
        finals.append(curve(c, STEPS, 0.0, crossing))
    return hist, finals


def run_sweep(hist: list[list[float]], rule: dict, name: str = "bench") -> tuple[int, set[int]]:
    """The trials through optuna with the pruner the sweep uses, ``agents`` at a time in
    lockstep (one step each per round; 1: one after another); returns the steps run and
    the trials stopped early. With several agents W&B's rule also checks a running run
    again against the last band it passed every ``RECHECK_STEPS`` steps."""
    import optuna

    from nbtracker.sweeps.hyperband import still_keeps
    from nbtracker.sweeps.schema import brackets
    from nbtracker.sweeps.study import band_check, pruner_for

    kind, agents = rule["kind"], rule.get("agents", 1)
    if kind == "wandb":  # what a sweep with this early_terminate does (the run hook's calls)
        et = {"type": "hyperband", "eta": 3, **rule["et"]}
        bands = set(brackets(et, limit=STEPS - 1))  # a check at the last step saves nothing
        pruner = pruner_for(et)
    elif kind == "optuna_sha":  # the mapping before: optuna's successive halving, rung k = band k
        et = {"type": "hyperband", "eta": 3, **rule["et"]}
        bands = set(brackets(et, limit=STEPS - 1))
        rung = {b: math.ceil(3**k - 1e-9) for k, b in enumerate(sorted(bands))}
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    else:  # the Hyperband paper's several brackets: optuna's HyperbandPruner, every step
        bands = set(range(1, STEPS))
        pruner = optuna.pruners.HyperbandPruner(min_resource=rule["min"], max_resource=STEPS,
                                                reduction_factor=3)  # fmt: skip
    # a fixed study name: HyperbandPruner picks a trial's bracket from a hash of it
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0), pruner=pruner,
                                study_name=name)  # fmt: skip
    used, stopped = 0, set()
    queue = list(range(len(hist)))
    active: list[list] = []  # [config index, trial, steps done, last band passed]
    while queue or active:
        while queue and len(active) < agents:
            active.append([queue.pop(0), study.ask(), 0, None])
        for slot in list(active):
            i, t, step, passed = slot
            h = hist[i]
            step = slot[2] = step + 1
            used += 1
            v = h[step - 1]
            go_on = True
            if step in bands:
                if kind == "wandb":
                    go_on = band_check(t, step, v, min(h[:step]), et)
                    slot[3] = step
                else:
                    t.report(v, step=rung[step] if kind == "optuna_sha" else step)
                    go_on = not t.should_prune()
            elif passed is not None and agents > 1 and step % RECHECK_STEPS == 0:
                go_on = still_keeps(study, t.number, passed, h[passed - 1], 3.0)
            if not go_on:
                stopped.add(i)
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                active.remove(slot)
            elif step == STEPS:
                study.tell(t, h[-1])
                active.remove(slot)
    return used, stopped


RECHECK_STEPS = 3


RULES = [
    ("W&B hyperband min_iter 3 (bands 3, 9, 27)", {"kind": "wandb", "et": {"min_iter": 3}}),
    ("W&B hyperband min_iter 9 (bands 9, 27)", {"kind": "wandb", "et": {"min_iter": 9}}),
    ("W&B hyperband min_iter 27 (band 27)", {"kind": "wandb", "et": {"min_iter": 27}}),
    ("before: optuna SHA, min_iter 3", {"kind": "optuna_sha", "et": {"min_iter": 3}}),
    ("paper Hyperband (optuna), 3..81", {"kind": "optuna_hb", "min": 3}),
    ("W&B min_iter 3, 4 agents in parallel", {"kind": "wandb", "et": {"min_iter": 3}, "agents": 4}),
    ("W&B min_iter 9, 4 agents in parallel", {"kind": "wandb", "et": {"min_iter": 9}, "agents": 4}),
    (
        "W&B min_iter 27, 4 agents in parallel",
        {"kind": "wandb", "et": {"min_iter": 27}, "agents": 4},
    ),
]


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.96
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def hyperband(seeds: int) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"2. hyperband: {N_CONFIGS} random configs x {STEPS} steps, one after another, "
          f"{seeds} seeds, noise sd {NOISE_SD} a step, eta 3. saved: steps saved against no "
          "early termination, mean [10th-90th pct per seed]; kept: seeds where the best config "
          "(by known final value) ran to the end [Wilson 95%]")  # fmt: skip
    out: dict = {}
    for crossing in (False, True):
        fam = "crossing" if crossing else "power-law"
        data = [curves_for(2000 + s, crossing) for s in range(seeds)]
        bests = [min(range(N_CONFIGS), key=f.__getitem__) for _, f in data]
        for name, rule in RULES:
            t0 = time.perf_counter()
            saved, kept = [], 0
            for s, ((hist, _), best) in enumerate(zip(data, bests, strict=True)):
                used, stopped = run_sweep(hist, rule, f"seed-{s}")
                saved.append(1 - used / (N_CONFIGS * STEPS))
                kept += best not in stopped
            lo, hi = _wilson(kept, seeds)
            ok = statistics.mean(saved) >= 0.4 and kept / seeds >= 0.9
            out[(fam, name)] = (statistics.mean(saved), kept / seeds)
            print(f"   {fam:9s} {name:43s} saved {statistics.mean(saved):5.1%} "
                  f"[{_pct(saved, 0.1):.0%}-{_pct(saved, 0.9):.0%}]  kept {kept}/{seeds} = "
                  f"{kept / seeds:4.0%} [{lo:.0%}-{hi:.0%}]  {'meets both' if ok else '-'}"
                  f"  ({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        oracle(fam, data, bests)
    return out


def oracle(fam: str, data: list, bests: list[int]) -> None:
    """How far any rule that ranks runs by their current value can go: the best rank of the
    best config among all of them at each step (all curves seen at once, more than an
    asynchronous sweep sees), and the single cut "at step t keep the top k" that saves the
    most while keeping the best in >= 90% of these seeds (t and k picked with hindsight)."""
    seeds = len(data)
    ranks = {t: [] for t in range(1, STEPS)}
    for (hist, _), b in zip(data, bests, strict=True):
        for t in range(1, STEPS):
            ranks[t].append(1 + sum(h[t - 1] < hist[b][t - 1] for h in hist))
    best = (0.0, 0, 0)
    for t in range(1, STEPS):
        k = _pct(ranks[t], 0.9)
        s = (N_CONFIGS - k) / N_CONFIGS * (STEPS - t) / STEPS
        best = max(best, (s, t, k))
    at = ", ".join(f"step {t}: {statistics.median(ranks[t]):g} / {_pct(ranks[t], 0.9):g}"
                   for t in (3, 9, 27))  # fmt: skip
    print(f"   {fam:9s} oracle: rank of the best config of {N_CONFIGS} (median / 90th pct) "
          f"{at}; best single cut keeping it in >= 90% of seeds: at step {best[1]} keep the "
          f"top {best[2]}, saves {best[0]:.0%} (of {seeds} seeds)")  # fmt: skip


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
    ap.add_argument("--hb-seeds", type=int, default=100, help="seeds for hyperband (>= 20)")
    ap.add_argument("--only", default="quality,hyperband,overhead,parallel")
    args = ap.parse_args()
    parts = args.only.split(",")
    if "quality" in parts:
        quality(args.seeds)
    if "hyperband" in parts:
        hyperband(args.hb_seeds)
    if "overhead" in parts:
        overhead()
    if "parallel" in parts:
        parallel()


if __name__ == "__main__":
    main()
