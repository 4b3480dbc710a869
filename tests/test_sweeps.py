"""Sweeps in one process: config errors, distributions, the in-process agent, hyperband."""

from __future__ import annotations

import math
import statistics
import warnings
from pathlib import Path

import pytest

import nbtracker as wandb
from nbtracker.errors import ConfigValueChanged
from nbtracker.sweeps import SweepConfigError
from nbtracker.sweeps.schema import brackets, validate


def _sweep(root: Path, cfg: dict, project: str = "p") -> str:
    return wandb.sweep(cfg, project=project, dir=str(root))


RANDOM = {"method": "random", "metric": {"name": "acc", "goal": "maximize"},
          "parameters": {"lr": {"min": 0.001, "max": 0.1}, "bs": {"values": [16, 32, 64]}}}  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"parameters": {"a": {"values": [1]}}}, "method"),
        ({"method": "rand", "parameters": {"a": {"values": [1]}}}, "method"),
        ({"method": "bayes", "parameters": {"a": {"min": 0.0, "max": 1.0}}}, "metric"),
        ({"method": "grid", "parameters": {"a": {"min": 0.0, "max": 1.0}}}, "parameters.a"),
        ({"method": "random", "parameters": {"a": {"min": 2, "max": 1}}}, "parameters.a.min"),
        ({"method": "random", "parameters": {"a": {"distribution": "gauss"}}}, "parameters.a.distribution"),
        ({"method": "random", "parameters": {"a": {"distribution": "log_uniform_values", "min": 0, "max": 1}}}, "parameters.a.min"),
        ({"method": "random", "parameters": {"a": {"values": [1, 2], "probabilities": [0.5, 0.6]}}}, "parameters.a.probabilities"),
        ({"method": "random", "parameters": {"a": {"values": []}}}, "parameters.a.values"),
        ({"method": "random", "parameters": {"a": {"value": 1, "typo": 2}}}, "parameters.a.typo"),
        ({"method": "random", "parameters": {"o": {"parameters": {"lr": {"max": 1}}}}}, "parameters.o.parameters.lr"),
        ({"method": "random", "run_cap": 0, "parameters": {"a": {"value": 1}}}, "run_cap"),
        ({"method": "random", "metric": {"name": "x", "goal": "up"}, "parameters": {"a": {"value": 1}}}, "metric.goal"),
        ({"method": "random", "metric": {"name": "x"}, "early_terminate": {"type": "hyperband"}, "parameters": {"a": {"value": 1}}}, "early_terminate"),
        ({"method": "random", "early_terminate": {"type": "hyperband", "min_iter": 3}, "parameters": {"a": {"value": 1}}}, "metric"),
        ({"method": "random", "command": ["${env}", "${pythn}"], "parameters": {"a": {"value": 1}}}, "command"),
        ({"method": "random", "parameters": {"a": {"value": 1}}, "paramters": {}}, "paramters"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key_before_any_run(root: Path, cfg: dict, key: str) -> None:
    with pytest.raises(SweepConfigError) as err:
        _sweep(root, cfg)
    assert f"sweep config: {key}:" in str(err.value)
    assert not (root / "sweeps").exists() or not any((root / "sweeps").rglob("sweep.json"))


def test_inferred_distributions_and_hyperband_brackets() -> None:
    _, params = validate({"method": "random", "parameters": {
        "a": {"min": 1, "max": 5}, "b": {"min": 1, "max": 5.0}, "c": {"values": [1]},
        "d": {"value": 3}, "e": {"values": [1, 2], "probabilities": [0.3, 0.7]},
        "o": {"parameters": {"lr": {"min": 0.1, "max": 0.2}}}}})  # fmt: skip
    kinds = {p.name: p.distribution for p in params}
    assert kinds == {"a": "int_uniform", "b": "uniform", "c": "categorical", "d": "constant",
                     "e": "categorical_w_probabilities", "o.lr": "uniform"}  # fmt: skip
    assert brackets({"type": "hyperband", "min_iter": 3, "eta": 3}, limit=100) == [3, 9, 27, 81]
    assert brackets({"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}) == [3, 9]
    assert brackets({"type": "hyperband", "max_iter": 100, "s": 3, "eta": 3}) == [3, 11, 33]


def test_random_draws_w_and_b_distributions() -> None:
    import optuna

    cfg = {"method": "random", "parameters": {
        "u": {"distribution": "uniform", "min": -1, "max": 1},
        "q": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2.5},
        "lu": {"distribution": "log_uniform", "min": -2, "max": 0},
        "luv": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "ilu": {"distribution": "inv_log_uniform", "min": 0, "max": 2},
        "n": {"distribution": "normal", "mu": 5, "sigma": 2},
        "ln": {"distribution": "log_normal", "mu": 0, "sigma": 0.5},
        "be": {"distribution": "beta", "a": 2, "b": 5},
        "cw": {"values": ["x", "y"], "probabilities": [0.2, 0.8]},
        "iu": {"min": 3, "max": 6}}}  # fmt: skip
    _, params = validate(cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    draws: dict[str, list] = {p.name: [] for p in params}
    for _ in range(600):
        t = study.ask()
        for p in params:
            draws[p.name].append(p.suggest(t))
        study.tell(t, 0.0)
    assert all(-1 <= x <= 1 for x in draws["u"])
    assert set(draws["q"]) <= {0.0, 2.5, 5.0, 7.5, 10.0}
    assert all(math.exp(-2) <= x <= 1 for x in draws["lu"])
    assert all(1e-4 <= x <= 1e-1 for x in draws["luv"])
    assert all(math.exp(-2) <= x <= 1 for x in draws["ilu"])
    assert abs(statistics.mean(draws["n"]) - 5) < 0.4
    assert abs(statistics.stdev(draws["n"]) - 2) < 0.4
    assert abs(statistics.median(draws["ln"]) - 1.0) < 0.15
    assert abs(statistics.mean(draws["be"]) - 2 / 7) < 0.04  # beta(2, 5) has mean 2/7
    assert 0.7 < draws["cw"].count("y") / 600 < 0.9
    assert set(draws["iu"]) == {3, 4, 5, 6} and all(isinstance(x, int) for x in draws["iu"])


def test_seed_code_in_process_records_runs_with_their_sweep(root: Path) -> None:
    sweep_id = _sweep(root, {**RANDOM, "name": "sweep"})
    seen = []

    def main() -> None:
        wandb.init(config={"lr": 123.0, "other": 1})  # sweep values win over the defaults
        seen.append((wandb.config.lr, wandb.config.bs, wandb.config.other))
        for epoch in range(3):
            wandb.log({"epoch": epoch, "acc": wandb.config.lr * (epoch + 1)})

    assert wandb.agent(sweep_id, function=main, count=4, dir=str(root)) == 4
    api = wandb.Api(root)
    sw = api.sweep(f"p/{sweep_id}")
    assert sw.name == "sweep" and sw.config["method"] == "random"
    runs = sw.runs
    assert len(runs) == 4 and {r.sweep_id for r in runs} == {sweep_id}
    assert all(r.state == "finished" for r in runs)
    assert [(r.config["lr"], r.config["bs"], r.config["other"]) for r in runs] == seen
    assert all(0.001 <= lr <= 0.1 and bs in (16, 32, 64) for lr, bs, _ in seen)
    best = sw.best_run()
    assert best.summary["acc"] == max(r.summary["acc"] for r in runs)
    assert sw.state == "pending"  # random never ends by itself; agents can go on
    df = api.sql("SELECT run_id FROM runs WHERE sweep_id = ?", [sweep_id])
    assert sorted(df["run_id"]) == sorted(r.id for r in runs)
    assert set(api.runs("p").to_pandas()["sweep_id"]) == {sweep_id}


def test_a_swept_value_is_locked_and_a_change_warns(root: Path) -> None:
    sweep_id = _sweep(root, {"method": "grid", "parameters": {"lr": {"values": [0.5]}}})

    def main() -> None:
        run = wandb.init()
        with pytest.warns(ConfigValueChanged, match="set by the sweep"):
            wandb.config.lr = 9.0
        with pytest.warns(ConfigValueChanged):
            run.config.update({"lr": 8.0}, allow_val_change=True)
        wandb.config.extra = 1  # other keys are the user's
        assert wandb.config.lr == 0.5

    wandb.agent(sweep_id, function=main, dir=str(root))
    (run,) = wandb.Api(root).sweep(sweep_id).runs
    assert run.config == {"lr": 0.5, "extra": 1}


def test_failing_function_fails_that_run_and_the_agent_goes_on(root: Path, capsys) -> None:
    sweep_id = _sweep(root, {"method": "grid", "metric": {"name": "acc"},
                             "parameters": {"x": {"values": [1, 2, 3, 4]}}})  # fmt: skip

    def main() -> None:
        wandb.init()
        wandb.log({"acc": wandb.config.x})
        if wandb.config.x % 2:
            raise ValueError(f"odd {wandb.config.x}")

    assert wandb.agent(sweep_id, function=main, dir=str(root)) == 4
    sw = wandb.Api(root).sweep(sweep_id)
    states = {r.config["x"]: r.state for r in sw.runs}
    assert states == {1: "failed", 2: "finished", 3: "failed", 4: "finished"}
    assert "ValueError: odd 3" in sw.runs[2].metadata["error"]
    assert sw.state == "finished"
    assert "ValueError: odd 1" in capsys.readouterr().err  # the traceback is shown
    trials = sw.trials()
    assert sorted(trials["state"]) == ["complete", "complete", "fail", "fail"]


def test_agent_stops_after_five_failed_runs_in_a_row(root: Path) -> None:
    sweep_id = _sweep(root, {"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}})

    def main() -> None:
        wandb.init()
        raise RuntimeError("broken")

    assert wandb.agent(sweep_id, function=main, count=20, dir=str(root)) == 5
    assert [r.state for r in wandb.Api(root).sweep(sweep_id).runs] == ["failed"] * 5


def test_ctrl_c_fails_the_current_run_and_the_sweep_resumes(root: Path) -> None:
    sweep_id = _sweep(root, {"method": "grid", "parameters": {"x": {"values": [1, 2, 3]}}})

    def interrupted() -> None:
        wandb.init()
        wandb.log({"a": 1})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wandb.agent(sweep_id, function=interrupted, dir=str(root))
    sw = wandb.Api(root).sweep(sweep_id)
    (run,) = sw.runs
    assert run.state == "failed" and run.metadata["exit_code"] == 130
    assert sw.state == "pending" and list(sw.trials()["state"]) == ["fail", "waiting", "waiting"]

    def fine() -> None:
        wandb.init()
        wandb.log({"a": 2})

    assert wandb.agent(sweep_id, function=fine, dir=str(root)) == 2
    sw = wandb.Api(root).sweep(sweep_id)
    assert sorted(r.config["x"] for r in sw.runs) == [1, 2, 3] and sw.state == "finished"


def test_run_cap_and_count(root: Path) -> None:
    sweep_id = _sweep(root, {"method": "random", "run_cap": 3,
                             "parameters": {"x": {"min": 0.0, "max": 1.0}}})  # fmt: skip

    def main() -> None:
        wandb.init()

    assert wandb.agent(sweep_id, function=main, count=2, dir=str(root)) == 2
    assert wandb.agent(sweep_id, function=main, count=5, dir=str(root)) == 1
    sw = wandb.Api(root).sweep(sweep_id)
    assert len(sw.runs) == 3 and sw.state == "finished" and sw.expected_run_count == 3


def test_metric_target_ends_the_sweep(root: Path) -> None:
    sweep_id = _sweep(root, {"method": "grid", "metric": {"name": "acc", "goal": "maximize",
                                                          "target": 0.5},
                             "parameters": {"x": {"values": [0.1, 0.6, 0.2, 0.9]}}})  # fmt: skip

    def main() -> None:
        wandb.init()
        wandb.log({"acc": wandb.config.x})

    assert wandb.agent(sweep_id, function=main, dir=str(root)) == 2
    assert wandb.Api(root).sweep(sweep_id).state == "finished"


def test_hyperband_stops_bad_runs_and_marks_them(root: Path) -> None:
    # 8 runs, one after another; a run's loss curve is its x: the worse ones stop early
    cfg = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
           "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
           "parameters": {"x": {"values": [3, 5, 1, 7, 2, 8, 6, 4]}}}  # fmt: skip
    sweep_id = _sweep(root, cfg)
    logged: dict[int, int] = {}

    def main() -> None:
        wandb.init()
        x = wandb.config.x
        for i in range(16):
            logged[x] = i + 1
            wandb.log({"loss": x + 1.0 / (i + 1)})

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray warnings from the stop
        assert wandb.agent(sweep_id, function=main, dir=str(root)) == 8
    sw = wandb.Api(root).sweep(sweep_id)
    states = {r.config["x"]: r.state for r in sw.runs}
    stopped = {x for x, s in states.items() if s == "killed"}
    assert stopped and states[1] == "finished"  # the best run is never stopped
    assert all(logged[x] in (2, 4, 8) for x in stopped)  # at a bracket: 2, 4, 8 iterations
    assert all(logged[x] == 16 for x in states if x not in stopped)
    pruned = set(sw.trials().query("state == 'pruned'")["config.x"])
    assert pruned == stopped
    assert sw.best_run().config["x"] == 1
    for r in sw.runs:
        if r.state == "killed":
            assert r.metadata["exit_code"] == 0 and "error" not in r.metadata


def test_nested_parameters_become_nested_config(root: Path) -> None:
    sweep_id = _sweep(root, {"method": "grid", "parameters": {
        "optimizer": {"parameters": {"lr": {"values": [0.1]}, "name": {"value": "sgd"}}}}})  # fmt: skip

    def main() -> None:
        wandb.init()
        assert wandb.config.optimizer.lr == 0.1 and wandb.config.optimizer["name"] == "sgd"

    assert wandb.agent(sweep_id, function=main, dir=str(root)) == 1
    assert wandb.Api(root).sweep(sweep_id).runs[0].state == "finished"


def test_unknown_sweep_says_how_to_make_one(root: Path) -> None:
    from nbtracker.errors import RunNotFound

    with pytest.raises(RunNotFound, match="nbtracker.sweep"):
        wandb.agent("nope1234", function=print, dir=str(root))


def test_show_sweep_is_the_workspace_of_its_runs_with_the_trials_chart(root: Path) -> None:
    from nbtracker.widgets.workspace import Workspace

    sweep_id = _sweep(root, {"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                             "parameters": {"x": {"values": [0.3, 0.9, 0.5]}}})  # fmt: skip
    wandb.init(dir=str(root), project="p").finish()  # a run of the project, not of the sweep

    def main() -> None:
        wandb.init()
        wandb.log({"acc": wandb.config.x})

    wandb.agent(sweep_id, function=main, dir=str(root))
    ws = wandb.show(f"p/{sweep_id}", store=wandb.Store(root))
    try:
        assert isinstance(ws, Workspace) and ws.total == 3 and ws.target == "summary.acc"
    finally:
        ws.close()
    from nbtracker.sweeps.study import SweepStudy
    from nbtracker.sweeps.view import trials_chart, trials_frame

    st = SweepStudy.open(wandb.Store(root), sweep_id)
    df = trials_frame(st)
    assert list(df["value"]) == [0.3, 0.9, 0.5] and list(df["best"]) == [0.3, 0.9, 0.9]
    spec = trials_chart(st).to_dict()
    assert spec["title"] == "acc over trials"
