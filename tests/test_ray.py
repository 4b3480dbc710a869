"""Ray (issue 14 point 2, ``nbtracker[ray]``): a team sweep's agents as Ray tasks, and Ray
Tune trials recorded as nbtracker runs, on a real local Ray cluster and a real PostgreSQL.
Ray's startup is slow on a loaded 2-core machine: one cluster for the module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from pg_testutil import PG

import nbtracker
from nbtracker.errors import UsageError
from nbtracker.integrations.ray import NbtrackerCallback, run_agents

SECRET = "pw-R4yQ"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # address="local": a cluster of its own, never one another process started
    kwargs = {"address": "local", "num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
    for attempt in range(3):  # Ray waits a fixed 30 s for its raylet: a loaded machine
        try:
            ray.init(**kwargs)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield
    ray.shutdown()


@pytest.fixture
def url(pg: PG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NBTRACKER_CACHE", str(tmp_path / "cache"))
    return pg.url(pg.new_db(), password=SECRET)


def test_sweep_agents_as_ray_tasks(cluster: None, url: str, tmp_path: Path) -> None:
    config = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"a": {"values": [1, 2]}, "b": {"values": [0.1, 0.2, 0.3]}}}  # fmt: skip
    sweep_id = nbtracker.sweep(config, project="ray-team", store=url, dir=str(tmp_path / "me"))

    def train() -> None:  # a closure: Ray pickles it for the workers
        nbtracker.init()
        for i in range(3):
            nbtracker.log({"loss": nbtracker.config.a * nbtracker.config.b * (3 - i)})

    made = run_agents(sweep_id, train, num_agents=2, store=url, dir=str(tmp_path / "nodes"))
    assert len(made) == 2 and sum(made) == 6, made
    runs = nbtracker.Api(store=url).runs("ray-team")
    assert len(runs) == 6 and {r.sweep_id for r in runs} == {sweep_id}
    assert all(r.state == "finished" for r in runs)
    points = sorted((r.config["a"], r.config["b"]) for r in runs)
    assert points == [(a, b) for a in (1, 2) for b in (0.1, 0.2, 0.3)]  # each point once
    assert nbtracker.Api(store=url).sweep(f"ray-team/{sweep_id}").state == "finished"
    # a local sweep cannot be shared by nodes: refused before any task starts
    local_id = nbtracker.sweep(config, project="ray-local", dir=str(tmp_path / "me"))
    with pytest.raises(UsageError, match="team store"):
        run_agents(local_id, train)


def test_tune_trials_become_runs(cluster: None, url: str, tmp_path: Path) -> None:
    from ray import tune

    def trainable(config: dict) -> None:
        for i in range(3):
            tune.report({"loss": config["x"] * (3 - i), "extra": {"i": i}, "note": "text"})

    callback = NbtrackerCallback(project="tune-team", store=url, dir=str(tmp_path / "driver"))
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
        run_config=tune.RunConfig(name="exp1", storage_path=str(tmp_path / "tune"),
                                  callbacks=[callback], verbose=0),
    )  # fmt: skip
    results = tuner.fit()
    assert not results.errors
    runs = nbtracker.Api(store=url).runs("tune-team")
    assert sorted(r.config["x"] for r in runs) == [1.0, 2.0, 3.0]
    for r in runs:
        assert r.state == "finished" and r.group == "exp1"
        assert r.summary["tune_trial_id"]
        h = r.history(samples=None)
        assert h["_step"].tolist() == [1, 2, 3]
        assert h["loss"].tolist() == [r.config["x"] * k for k in (3, 2, 1)]
        assert h["extra/i"].tolist() == [0, 1, 2]
    for path in tmp_path.rglob("*.json"):
        assert SECRET not in path.read_text(errors="replace"), path
