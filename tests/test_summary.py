"""Summary: last value by default, settable, define_metric modes and globs."""

from __future__ import annotations

import pytest


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


def test_define_metric_modes_and_globs(init, api) -> None:
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
    assert s["loss"] == 1.0 and s["val/acc"] == 3.0 and s["val/f1"] == -1.0
    assert "lr" not in s and s["acc"] == {"mean": 2.0, "last": 2.0}
    assert s["err"] == 1.0 and s["first_only"] == 3.0 and s["other"] == 2.0
    run.finish()
    stored = api.run(f"p/{run.id}")
    assert stored.summary["loss"] == 1.0 and "lr" not in stored.summary
    with pytest.raises(ValueError, match="use one of"):
        run.define_metric("x", summary="median")


def test_define_metric_step_metric_is_recorded(init) -> None:
    run = init()
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch", hidden=False)
    rec = run._snapshot()
    assert {"name": "val/*", "step_metric": "epoch", "summary": "", "goal": None, "hidden": False} in rec["metrics"]
