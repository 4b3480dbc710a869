"""Api: runs with filters and order, run paths, history down-sampling, update, SQL."""

from __future__ import annotations

import math

import pytest

import nbtracker
from nbtracker.errors import RunNotFound


@pytest.fixture
def three_runs(init):
    for i, (lr, acc, tags) in enumerate(
        [(0.1, 0.5, ["a"]), (0.01, 0.9, ["a", "b"]), (0.001, 0.7, [])]
    ):
        run = init(id=f"r{i}", config={"lr": lr, "opt": {"name": "adam" if i else "sgd"}},
                   tags=tags, reinit="finish_previous")  # fmt: skip
        run.log({"acc": acc, "loss": 1 - acc})
    nbtracker.finish()


def ids(runs) -> list[str]:
    return [r.id for r in runs]


def test_filters_and_order(api, three_runs) -> None:
    assert ids(api.runs("p", order="+config.lr")) == ["r2", "r1", "r0"]
    assert ids(api.runs("p", filters={"config.lr": {"$lt": 0.05}}, order="config.lr")) == [
        "r2",
        "r1",
    ]
    assert ids(
        api.runs("p", filters={"summary_metrics.acc": {"$gte": 0.7}}, order="-summary_metrics.acc")
    ) == ["r1", "r2"]
    assert ids(api.runs("p", filters={"tags": {"$in": ["b"]}})) == ["r1"]
    assert ids(api.runs("p", filters={"tags": "a"}, order="name")) != []
    assert ids(api.runs("p", filters={"config.opt.name": "sgd"})) == ["r0"]
    assert ids(
        api.runs("p", filters={"$or": [{"config.lr": 0.1}, {"config.lr": 0.001}]}, order="id")
    ) == ["r0", "r2"]
    assert ids(
        api.runs("p", filters={"state": "finished", "config.lr": {"$nin": [0.1]}}, order="id")
    ) == ["r1", "r2"]
    assert ids(api.runs("p", filters={"config.lr.value": 0.01})) == ["r1"]  # wandb-style
    assert ids(
        api.runs("p", filters={"created_at": {"$gt": "2000-01-01T00:00:00"}}, order="id")
    ) == ["r0", "r1", "r2"]
    with pytest.raises(ValueError, match="unknown filter operator"):
        api.runs("p", filters={"config.lr": {"$near": 1}})


def test_runs_to_pandas_has_config_and_summary_columns(api, three_runs) -> None:
    df = api.runs("p", order="id").to_pandas()
    assert list(df["run_id"]) == ["r0", "r1", "r2"]
    assert list(df["config.lr"]) == [0.1, 0.01, 0.001]
    assert list(df["config.opt.name"]) == ["sgd", "adam", "adam"]
    assert list(df["summary.acc"]) == [0.5, 0.9, 0.7]
    assert list(df["state"]) == ["finished"] * 3
    assert str(df["created_at"].dtype).startswith("datetime64")


def test_run_paths_and_entity(api, three_runs) -> None:
    run = api.run("p/r1")
    assert run.entity and api.run(f"{run.entity}/p/r1").id == "r1"
    assert api.run("someone/p/r1").id == "r1"  # entity is informational locally
    assert api.run(project="p", run_id="r1").id == "r1"
    with pytest.raises(RunNotFound, match="no run p/zzz"):
        api.run("p/zzz")


def test_history_downsampling_keeps_every_spike(init, api) -> None:
    run = init(id="long")
    spikes = {12_345: 100.0, 54_321: -100.0, 99_998: float("nan")}
    for i in range(100_000):
        run.log({"loss": spikes.get(i, math.sin(i / 1000)), "other": 1.0})
    run.finish()
    r = api.run("p/long")
    h = r.history(keys=["loss"], samples=1000)
    assert len(h) <= 1002
    assert h["loss"].max() == 100.0 and h["loss"].min() == -100.0
    assert h["loss"].isna().any()  # the NaN step is kept too
    assert {0, 99_999} <= set(h["_step"])
    assert list(h.columns) == ["_step", "_timestamp", "_runtime", "loss"]
    zoom = r.history(keys=["loss"], samples=1000, min_step=12_000, max_step=12_500)
    assert len(zoom) == 501  # the zoomed range at full resolution
    full = r.scan_history(keys=["loss"])
    assert len(full) == 100_000
    rows = iter(full)
    assert next(rows)["loss"] == 0.0


def test_update_a_finished_run(api, three_runs, root) -> None:
    run = api.run("p/r0")
    run.config["lr"] = 0.5
    run.summary["extra"] = 1
    run.tags.append("edited")
    run.notes = "checked"
    run.update()
    again = nbtracker.Api(root).run("p/r0")
    assert again.config["lr"] == 0.5 and again.summary["extra"] == 1
    assert again.tags == ["a", "edited"] and again.notes == "checked"
    df = nbtracker.Api(root).runs("p", filters={"tags": "edited"}).to_pandas()
    assert list(df["config.lr"]) == [0.5]


def test_sql_over_all_runs_with_parameters(api, three_runs) -> None:
    df = api.sql("SELECT run_id, value FROM history WHERE key = ? ORDER BY value DESC", ["acc"])
    assert df["run_id"].tolist() == ["r1", "r2", "r0"]
    df = api.sql(
        "SELECT r.run_id, c.value AS lr FROM runs r JOIN config c USING (project, run_id) "
        "WHERE c.key = $k ORDER BY lr",
        {"k": "lr"},
    )
    assert df["run_id"].tolist() == ["r2", "r1", "r0"]
    assert api.sql("SELECT count(*) AS n FROM tags")["n"][0] == 3
    assert (
        api.sql("SELECT value FROM summary WHERE run_id = 'r1' AND key = 'acc'")["value"][0] == 0.9
    )
    assert nbtracker.sql("SELECT count(*) AS n FROM runs", root=str(api.store.root))["n"][0] == 3


def test_reading_a_running_run(init, api) -> None:
    run = init(id="live")
    for i in range(10):
        run.log({"x": i})
    run.flush()
    r = api.run("p/live")
    assert r.state == "running"
    assert r.history(samples=None)["x"].tolist() == list(range(10))


def test_chart_of_a_metric_is_an_altair_chart(init, api) -> None:
    run = init(id="c")
    for i in range(300):
        run.log({"loss": 1 / (i + 1)})
    live = run.chart("loss").to_dict()
    run.finish()
    stored = api.run("p/c").chart("loss", smoothing=0.5).to_dict()
    for spec in (live, stored):
        values = [v for d in spec.get("datasets", {}).values() for v in d]
        assert values and max(v.get("x", 0) for v in values) == 299
