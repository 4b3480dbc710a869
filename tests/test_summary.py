"""Summary: last value by default, settable, define_metric modes and globs."""

from __future__ import annotations

import pytest

import nbtracker


def test_summary_is_last_value_and_settable(init, api) -> None:
    run = init()
    for i in range(3):
        run.log({"loss": 3 - i, "acc": i / 10})
    run.summary["test_acc"] = 0.9
    run.summary.update({"note": "ok", "loss": 42})
    assert run.summary["loss"] == 42  # set by hand wins ...
    run.log({"loss": 0.5})
    assert run.summary["loss"] == 0.5  # ... until logged again
    run.finish()
    s = api.run(f"p/{run.id}").summary
    assert s["loss"] == 0.5 and s["acc"] == 0.2 and s["test_acc"] == 0.9 and s["note"] == "ok"
    assert s["_step"] == 3


def test_define_metric_modes_and_globs(init, api, root) -> None:
    run = init()
    run.define_metric("loss", summary="min")
    run.define_metric("val/*", summary="max")
    run.define_metric("lr", summary="none")
    run.define_metric("acc", summary="mean,last")
    run.define_metric("err", goal="minimize")
    run.define_metric("first_only", summary="first")
    for v in [3.0, 1.0, 2.0]:
        run.log({"loss": v, "val/acc": v, "val/f1": -v, "lr": v, "acc": v, "err": v,
                 "first_only": v, "other": v})  # fmt: skip
    s = run.summary
    # as W&B shows them: summary["loss"]["min"]; the flat "loss.min" stays queryable in SQL
    assert (
        s["loss"] == {"min": 1.0} and s["val/acc"] == {"max": 3.0} and s["val/f1"] == {"max": -1.0}
    )
    assert "lr" not in s and s["acc"] == {"mean": 2.0, "last": 2.0}
    assert s["err"] == 2.0  # a goal alone changes nothing (it is for summary="best")
    assert s["first_only"] == {"first": 3.0} and s["other"] == 2.0
    run.finish()
    stored = api.run(f"p/{run.id}")
    assert stored.summary["loss"] == {"min": 1.0} and "lr" not in stored.summary
    flat = nbtracker.sql(
        "SELECT key, value FROM summary WHERE run_id = ? AND key LIKE 'loss%'",
        [run.id],
        root=str(root),
    )
    assert flat.values.tolist() == [["loss.min", 1.0]]
    with pytest.raises(ValueError, match="use one of"):
        run.define_metric("x", summary="median")


def test_define_metric_step_metric_is_recorded(init) -> None:
    run = init()
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch", hidden=False)
    rec = run._snapshot()
    assert {
        "name": "val/*",
        "step_metric": "epoch",
        "summary": "",
        "goal": None,
        "hidden": False,
    } in rec["metrics"]


def test_define_metric_twice_keeps_both_summaries_and_best_follows_the_goal(init) -> None:
    run = init()
    run.define_metric("loss", summary="min")
    run.define_metric("loss", summary="max")
    run.define_metric("acc", summary="best", goal="maximize")
    for v in [3.0, 1.0, 2.0]:
        run.log({"loss": v, "acc": v / 10})
    assert run.summary["loss"] == {"min": 1.0, "max": 3.0}
    assert run.summary["acc"] == {"best": 0.3}
    assert [m["summary"] for m in run._snapshot()["metrics"] if m["name"] == "loss"] == ["min,max"]
    run.finish()


def test_nested_logs_read_nested_and_attribute_access(init) -> None:
    run = init()
    run.log({"val": {"acc": 0.5, "deep": {"f1": 0.25}}, "best_accuracy": 0.9})
    assert run.summary["val"]["acc"] == 0.5 and run.summary["val"]["deep"]["f1"] == 0.25
    assert run.summary.val.deep.f1 == 0.25 and run.summary.best_accuracy == 0.9
    assert run.summary["val.acc"] == 0.5  # the flat key too
    assert run.summary._json_dict["val.acc"] == 0.5
    with pytest.raises(AttributeError):
        run.summary.missing  # noqa: B018
    run.finish()


def test_logged_media_reads_like_a_dict_in_the_summary(init) -> None:
    run = init()
    run.log({"h": nbtracker.Histogram([1, 2, 3]), "t": nbtracker.Table(columns=["a"], data=[[1]])})
    assert (
        run.summary["h"]["_type"] == "histogram" and run.summary["t"]["_type"] == "table-file"
    )  # as W&B
    run.finish()
