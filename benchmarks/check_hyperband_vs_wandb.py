"""Differential check: nbtracker's hyperband pruner against W&B's own sweeps engine.

    python benchmarks/check_hyperband_vs_wandb.py --wandb-sweeps SRC [--cases 300] [--seed 1]

SRC is the ``src`` folder of a checkout of W&B's open-source sweeps engine (repository
wandb/sweeps; the PyPI release 0.2.0 predates its 2023 band fix and ``strict``). Run it
with a Python that has optuna and that engine's dependencies (numpy, jsonschema, jsonref,
pyyaml, pydantic); nbtracker's ``nbtracker/sweeps/hyperband.py`` is loaded from this
checkout by path, so nbtracker itself need not be installed there.

Random sweeps (eta 2 / 2.5 / 3 / 4, min_iter or max_iter + s, strict or not, minimize or
maximize, 2-12 runs of 1-25 logged values with ties and NaNs) are replayed twice:

- one agent: W&B's ``hyperband_stop_runs`` is asked after every logged row of the running
  run; nbtracker's pruner is asked as the run hook asks it (at each band);
- 2-4 agents in lockstep: every running run logs a row, then W&B's controller is asked once
  over all runs; nbtracker reports the band values, then asks its pruner (runs at a band)
  or ``still_keeps`` (runs past a band), the run hook's re-check.

It prints how many sweeps stop exactly the same runs after the same row.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def load(src: str):  # noqa: ANN201
    sys.path.insert(0, src)
    from sweeps.hyperband_stopping import hyperband_stop_runs
    from sweeps.run import RunState, SweepRun

    spec = importlib.util.spec_from_file_location("nbt_hb", HERE / "nbtracker/sweeps/hyperband.py")
    assert spec is not None and spec.loader is not None
    hb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hb)
    return hyperband_stop_runs, RunState, SweepRun, hb


def bands_of(et: dict) -> list[int]:  # the same arithmetic as nbtracker.sweeps.schema.brackets
    out: list[int] = []
    if "max_iter" in et:
        b = float(et["max_iter"])
        for _ in range(et["s"]):
            b /= et["eta"]
            if b < 1:
                break
            out.append(int(b))
        return sorted(set(out))
    b = float(et["min_iter"])
    while len(out) < 100 and b <= 1e9:
        out.append(int(b))
        b *= et["eta"]
    return sorted(set(out))


def replay(hists: list[list[float]], cfg: dict, agents: int, ours: bool, lib) -> dict[int, int]:  # noqa: ANN001
    """{run index: rows it logged before it was stopped} for the runs that were stopped."""
    import optuna

    stop_runs, RunState, SweepRun, hb = lib  # noqa: N806
    et = cfg["early_terminate"]
    strict = et.get("strict", True) is not False
    maxi = cfg["metric"]["goal"] == "maximize"
    bands = set(bands_of(et))
    study = optuna.create_study(direction="maximize" if maxi else "minimize",
                                pruner=hb.pruner(et, bands),
                                sampler=optuna.samplers.RandomSampler(0))  # fmt: skip
    runs, stops, queue, active = [], {}, list(range(len(hists))), []
    while queue or active:
        while queue and len(active) < agents:
            st = {"i": queue.pop(0), "j": 0, "n": 0, "lo": math.inf, "hi": -math.inf,
                  "passed": None, "at_band": False}  # fmt: skip
            if ours:
                st["t"] = study.ask()
            else:
                st["run"] = SweepRun(name=str(st["i"]), state=RunState.running, history=[],
                                     config={})  # fmt: skip
                runs.append(st["run"])
            active.append(st)
        for st in active:  # every running run logs a row
            v = hists[st["i"]][st["j"]]
            st["j"] += 1
            st["at_band"] = False
            if not ours:
                st["run"].history.append({"loss": v})
            elif math.isfinite(v):  # the run hook counts finite values only
                st["n"] += 1
                st["lo"], st["hi"] = min(st["lo"], v), max(st["hi"], v)
                if st["n"] in bands:
                    if not strict:
                        best = st["hi"] if maxi else st["lo"]
                        st["t"].set_user_attr(hb.BEST_ATTR, {str(st["n"]): best})
                    st["t"].report(float(v), step=st["n"])
                    st["passed"], st["at_band"] = (st["n"], v), True
        if ours:
            decided = []
            for st in active:
                if st["at_band"]:
                    stop = st["t"].should_prune()
                elif st["passed"] is not None and agents > 1:
                    band, at = st["passed"]
                    cond = at if strict else (st["hi"] if maxi else st["lo"])
                    stop = not hb.still_keeps(study, st["t"].number, band, cond, float(et["eta"]))
                else:
                    stop = False
                decided.append((st, stop))
        else:
            to_stop = stop_runs(runs, cfg)
            decided = [(st, st["run"] in to_stop) for st in active]
        for st, stop in decided:
            done = st["j"] == len(hists[st["i"]])
            if stop:
                stops[st["i"]] = st["j"]
            if stop or done:
                active.remove(st)
                if ours:
                    state = optuna.trial.TrialState.PRUNED if stop else None
                    study.tell(st["t"], None if stop else 0.0, state=state)
                else:
                    st["run"].state = RunState.killed if stop else RunState.finished
    return stops


def random_sweep(r: random.Random) -> tuple[dict, list[list[float]]]:
    et: dict = {"type": "hyperband", "eta": r.choice([2, 2.5, 3, 4]),
                "strict": r.choice([True, False])}  # fmt: skip
    if r.random() < 0.5:
        et["min_iter"] = r.choice([1, 2, 3])
    else:
        et["max_iter"], et["s"] = r.choice([8, 10, 20, 27]), r.choice([1, 2, 3])
    cfg = {"method": "grid", "early_terminate": et, "parameters": {"a": {"values": [1]}},
           "metric": {"name": "loss", "goal": r.choice(["minimize", "maximize"])}}  # fmt: skip
    hists = []
    for _ in range(r.randint(2, 12)):
        base = r.randint(0, 5)
        h = [round(base + r.choice([0, 0.5, 1, 2]) / (k + 1), 1) for k in range(r.randint(1, 25))]
        if r.random() < 0.2:
            h.insert(r.randint(1, len(h)), math.nan)
        hists.append(h)
    return cfg, hists


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wandb-sweeps", required=True, help="src folder of W&B's sweeps engine")
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    lib = load(args.wandb_sweeps)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for label, agents_of in (("one agent", lambda r: 1), ("2-4 agents", lambda r: r.randint(2, 4))):
        r = random.Random(args.seed)
        same = n_stops = 0
        for _ in range(args.cases):
            cfg, hists = random_sweep(r)
            agents = agents_of(r)
            theirs = replay(hists, cfg, agents, False, lib)
            mine = replay(hists, cfg, agents, True, lib)
            n_stops += len(theirs)
            if theirs == mine:
                same += 1
            else:
                print(f"  differ: {cfg['early_terminate']} {cfg['metric']['goal']} agents "
                      f"{agents}: W&B {theirs} nbtracker {mine}")  # fmt: skip
        print(f"{label}: {args.cases} random sweeps, {n_stops} runs stopped by W&B; "
              f"{same} sweeps stop the same runs after the same row, {args.cases - same} differ")  # fmt: skip


if __name__ == "__main__":
    main()
