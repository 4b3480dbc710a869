"""Hyperband as a user sees it: which runs of a sweep stop, and after how many logged values.

W&B's rule (its sweeps engine): at a band b (here min_iter 2, eta 2: b = 2, 4, 8) the runs
that logged at least b values are sorted by their b-th value; the value at index
int(n / eta) is the threshold and a run worse than it stops (strict, W&B's default) -- so
the top int(n / eta) + 1 of n go on, ties included. Only finite values count.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import nbtracker as wandb
from nbtracker.sweeps import SweepConfigError
from nbtracker.sweeps.hyperband import stops, threshold

NAN = math.nan
# loss curves, one run each, run one after another in this order (grid, one agent);
# the values at the 2nd, 4th and 8th logged value are what hyperband compares
CURVES = {
    "a": [9, 4, 3, 2, 1.8, 1.6, 1.4, 1.2, 1.1, 1.0],  # first: alone at every band, goes on
    "b": [9, 5, 4, 3, 2.8, 2.6, 2.4, 2.0, 1.9, 1.8],  # 2nd of 2 at band 2 (top 2 go on)
    "c": [9, 6, 5, 4, 4, 4, 4, 4, 4, 4],  # 3rd of 3 at band 2 (top 2 go on): stops after 2
    "d": [9, 3, 3, 3.5, 3, 3, 3, 3, 3, 3],  # best at band 2, 3rd of 3 at band 4: stops after 4
    "e": [NAN, 9, 6.5, 1, 1, 1, 1, 1, 1, 1],  # NaN is not a value: 6.5 is its 2nd -> stops
    "f": [9, 5, 4, 3.2, 2, 1.5, 1, 0.5, 0.5, 0.5],  # ties the thresholds (5, 3.2): goes on
}


def _sweep(root: Path, et: dict, names: list[str], goal: str = "minimize") -> str:
    cfg = {"method": "grid", "metric": {"name": "loss", "goal": goal},
           "early_terminate": {"type": "hyperband", **et},
           "parameters": {"curve": {"values": names}}}  # fmt: skip
    return wandb.sweep(cfg, project="hb", dir=str(root))


def _run_all(root: Path, sweep_id: str, curves: dict[str, list[float]], sign: float = 1.0) -> dict:
    logged: dict[str, int] = {}

    def main() -> None:
        wandb.init()
        name = wandb.config.curve
        for i, v in enumerate(curves[name]):
            logged[name] = i + 1  # rows this run got to log
            wandb.log({"loss": sign * v})

    wandb.agent(sweep_id, function=main, dir=str(root))
    sw = wandb.Api(root).sweep(sweep_id)
    states = {r.config["curve"]: r.state for r in sw.runs}
    trials = dict(zip(sw.trials()["config.curve"], sw.trials()["state"], strict=True))
    return {n: (states[n], logged[n], trials[n]) for n in curves}


def test_which_runs_stop_at_which_band(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_id = _sweep(root, {"min_iter": 2, "eta": 2}, list(CURVES))
    got = _run_all(root, sweep_id, CURVES)
    assert got == {
        "a": ("finished", 10, "complete"),
        "b": ("finished", 10, "complete"),
        "c": ("killed", 2, "pruned"),
        "d": ("killed", 4, "pruned"),
        "e": ("killed", 3, "pruned"),  # its 2nd finite value is its 3rd row
        "f": ("finished", 10, "complete"),
    }
    err = capsys.readouterr().err
    assert err.count("hyperband stopped run") == 3
    assert "at iteration 4 of loss (3.5 is outside" in err
    assert "at iteration 2 of loss (6.5 is outside" in err


def test_strict_false_compares_the_best_so_far_and_maximize(root: Path) -> None:
    # maximize acc: "z" has the worst value at band 2 but the best value before it
    curves = {"x": [5, 5, 5, 5], "y": [5, 5, 5, 5], "z": [9, 1, 1, 1]}
    strict = _run_all(root, _sweep(root, {"min_iter": 2, "eta": 2}, list(curves), "maximize"),
                      curves)  # fmt: skip
    assert strict["z"] == ("killed", 2, "pruned")  # W&B's default: the value at the band
    relaxed = _sweep(root, {"min_iter": 2, "eta": 2, "strict": False}, list(curves), "maximize")
    got = _run_all(root, relaxed, curves)
    assert got["z"] == ("finished", 4, "complete")  # its best (9) is in the top
    assert {got["x"][0], got["y"][0]} == {"finished"}


def test_max_iter_brackets_and_config_errors(root: Path) -> None:
    # max_iter 8, s 1, eta 2: one band, at 4 values (8 / 2)
    curves = {"a": [1, 1, 1, 1, 1, 1], "b": [2, 2, 2, 2, 2, 2], "c": [3, 3, 3, 3, 3, 3]}
    got = _run_all(root, _sweep(root, {"max_iter": 8, "s": 1, "eta": 2}, list(curves)), curves)
    assert got["c"] == ("killed", 4, "pruned")
    assert got["a"][0] == got["b"][0] == "finished"
    for et, key in [({"max_iter": 8}, "early_terminate.s"),
                    ({"max_iter": 2, "s": 1, "eta": 3}, "early_terminate.max_iter"),
                    ({"min_iter": 2, "strict": "yes"}, "early_terminate.strict")]:  # fmt: skip
        with pytest.raises(SweepConfigError, match=key):
            _sweep(root, et, ["a"])


def test_threshold_is_wandbs_index() -> None:
    # the top int(n / eta) + 1 go on: 1 of 1, 1 of 2, 2 of 3, 2 of 5, 4 of 9 (eta 3)
    vals = [5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 8.0, 7.0, 6.0]
    assert threshold(vals[:1], 3) == 5.0
    assert threshold(vals[:2], 3) == 1.0
    assert threshold(vals[:3], 3) == 4.0
    assert threshold(vals[:5], 3) == 2.0
    assert threshold(vals, 3) == 4.0
    assert not stops(4.0, vals, 3) and stops(5.0, vals, 3)


def test_a_run_that_passed_is_stopped_later_when_other_agents_do_better(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # W&B's controller checks running runs again against the last band they passed; here
    # another agent's two trials reach band 2 with better values while "slow" is running
    from nbtracker.store import Store
    from nbtracker.sweeps import join
    from nbtracker.sweeps.study import SweepStudy

    monkeypatch.setattr(join, "RECHECK_S", 0.0)  # check at every value (W&B: every few minutes)
    sweep_id = _sweep(root, {"min_iter": 2, "eta": 2}, ["slow", "o1", "o2"])
    logged: list[int] = []

    def main() -> None:
        wandb.init()
        assert wandb.config.curve == "slow"  # grid order: this agent gets the first point
        for i, v in enumerate([9, 5, 4, 3, 2, 1]):
            logged.append(i + 1)
            wandb.log({"loss": v})
            if i == 1:  # passed band 2 alone; now the other agent's trials get there
                other = SweepStudy.open(Store(root), f"hb/{sweep_id}")
                for value in (1.0, 2.0):
                    t = other.next_trial()
                    assert t is not None and other.band_keeps(t.trial_id, 2, value)
                    other.tell(t, value, "complete")

    wandb.agent(sweep_id, function=main, dir=str(root))
    (run,) = wandb.Api(root).sweep(sweep_id).runs
    assert run.state == "killed" and logged == [1, 2, 3]  # 5 is 3rd of 3 at band 2
    assert "at iteration 3 of loss (4 is outside the top of its bracket, checked again" in (
        capsys.readouterr().err
    )
