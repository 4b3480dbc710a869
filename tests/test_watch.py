"""watch(): gradient and parameter histograms of a real (small, CPU) torch model every
log_freq steps, never drawing from torch's random generator; unwatch() removes the hooks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch  # the test extra installs the CPU wheel (never skipped)

import nbtracker


def _train(run, model, steps: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.linspace(-1, 1, 64).reshape(16, 4)
    for _ in range(steps):
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": loss.item()})


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def test_watch_logs_histograms_every_log_freq_steps(init, api) -> None:
    model = _model()
    run = init()
    nbtracker.watch(model, log="all", log_freq=3, log_graph=True)
    rng = torch.get_rng_state()
    _train(run, model, 10)
    assert torch.equal(rng, torch.get_rng_state())  # the user's generator never moved
    run.finish()
    h = api.run(f"p/{run.id}").history(samples=None)
    grads = sorted(c for c in h.columns if c.startswith("gradients/"))
    params = sorted(c for c in h.columns if c.startswith("parameters/"))
    assert grads == [
        "gradients/0.bias",
        "gradients/0.weight",
        "gradients/2.bias",
        "gradients/2.weight",
    ]
    assert params == [g.replace("gradients/", "parameters/") for g in grads]
    logged = h.loc[h["gradients/0.weight"].notna(), "_step"].tolist()
    assert logged == [2, 5, 8]  # the 3rd, 6th and 9th backward pass: with that step's loss
    hist = h.loc[h["_step"] == 2, "gradients/0.weight"].iloc[0]
    hist = hist if isinstance(hist, dict) else __import__("json").loads(hist)
    assert hist["_type"] == "histogram" and sum(hist["values"]) == 32  # 8x4 weights
    assert "Linear(in_features=4" in api.run(f"p/{run.id}").summary["graph_0"]


def test_unwatch_removes_the_hooks_and_gradients_only_by_default(init, api) -> None:
    model = _model()
    run = init()
    run.watch(model, log_freq=1)
    _train(run, model, 2)
    run.unwatch(model)
    _train(run, model, 2)
    run.finish()
    h = api.run(f"p/{run.id}").history(samples=None)
    assert not any(c.startswith("parameters/") for c in h.columns)
    assert h["gradients/0.weight"].notna().tolist() == [True, True, False, False]
    assert not model[0].weight._backward_hooks  # nothing left on the model


def test_module_watch_stays_the_function_after_use(init) -> None:
    run = init()
    run.watch(_model())  # imports the implementation module
    nbtracker.watch(_model(), log_freq=5)  # still the function, not a submodule
    nbtracker.unwatch()


def test_bad_arguments_are_clear(init) -> None:
    run = init()
    with pytest.raises(TypeError, match="torch.nn.Module"):
        run.watch(object())
    with pytest.raises(ValueError, match="log="):
        run.watch(_model(), log="weights")
    with pytest.raises(ValueError, match="log_freq"):
        run.watch(_model(), log_freq=0)


def test_import_nbtracker_does_not_import_torch() -> None:
    code = "import sys, nbtracker; nbtracker.watch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_histogram_skips_nan_and_inf() -> None:
    from nbtracker.torch_watch import histogram

    h = histogram(torch.tensor([1.0, float("nan"), 3.0, float("inf"), 2.0]))
    assert sum(h.histogram) == 3 and h.bins[0] == 1.0 and h.bins[-1] == 3.0
    assert histogram(torch.tensor([float("nan")])) is None
    assert sum(histogram(torch.full((4,), 2.5)).histogram) == 4
