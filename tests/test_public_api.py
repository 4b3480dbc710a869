"""The public surface: cheap import, wandb-style module attributes, documented names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nbtracker


def test_import_is_cheap_and_loads_no_heavy_modules() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import nbtracker; "
        "heavy = [m for m in ('pandas', 'altair', 'ipywidgets', 'anywidget', 'pyarrow', 'duckdb', 'numpy', 'optuna') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_public_name_is_documented() -> None:
    for name in nbtracker.__all__:
        if name in ("config", "summary", "run"):  # follow the current run
            continue
        obj = getattr(nbtracker, name)
        assert getattr(obj, "__doc__", None), f"nbtracker.{name} has no docstring"


def test_wandb_seed_code_runs_unchanged(root, api) -> None:
    import nbtracker as wandb

    run = wandb.init(
        project="cat-classification", notes="", tags=["baseline", "paper1"], dir=str(root)
    )
    wandb.config = {"epochs": 100, "learning_rate": 0.001, "batch_size": 128}
    acc = loss = 0.0
    for epoch in range(wandb.config.epochs):
        acc, loss = epoch / 100, 1 - epoch / 100
        wandb.log({"accuracy": acc, "loss": loss})
    run.summary["test_accuracy"] = 0.93
    wandb.finish()

    stored = api.run(f"cat-classification/{run.id}")
    assert stored.state == "finished"
    assert stored.config == {"epochs": 100, "learning_rate": 0.001, "batch_size": 128}
    assert stored.tags == ["baseline", "paper1"]
    assert stored.summary["test_accuracy"] == 0.93
    assert stored.summary["accuracy"] == pytest.approx(0.99)
    hist = stored.history(samples=None)
    assert len(hist) == 100 and list(hist["_step"]) == list(range(100))


def test_module_attributes_follow_the_current_run(init) -> None:
    assert nbtracker.run is None
    with pytest.raises(nbtracker.UsageError, match=r"nbtracker.init\(\) before nbtracker.log"):
        nbtracker.log({"x": 1})
    nbtracker.config.lr = 0.1  # before init: kept and adopted by init()
    run = init()
    assert nbtracker.run is run
    assert nbtracker.config is run.config and run.config.lr == 0.1
    nbtracker.summary["best"] = 3
    assert run.summary["best"] == 3
    nbtracker.finish()
    assert nbtracker.run is None
    nbtracker.finish()  # no run: a no-op


def test_python_dash_m_and_cli_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nbtracker", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "repair" in out.stdout
