"""``watch(model)``: histograms of a torch model's gradients and parameters over time.

Hooks, as W&B's: a forward hook on the model counts forward passes and logs
``parameters/<name>`` every ``log_freq`` of them; a hook on each parameter's gradient counts
backward passes and logs ``gradients/<name>`` every ``log_freq`` of them. Each histogram is
64 bins over the finite values (``torch.histc``: no random numbers are drawn, so the user's
torch generator never moves), logged with ``commit=False`` into the step the training loop
logs next. torch is imported only here, when ``watch()`` is called.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .run import Run

LOG_CHOICES = ("gradients", "parameters", "all", None)
BINS = 64


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        msg = "watch() needs PyTorch: pip install 'nbtracker[torch]' (or pip install torch)"
        raise UsageError(msg) from None
    return torch


def histogram(tensor: Any) -> Any:
    """A 64-bin :class:`~nbtracker.Histogram` of a tensor's finite values (None if none)."""
    import numpy as np

    from .data_types import Histogram

    torch = _torch()
    with torch.no_grad():
        t = tensor.detach()
        if t.is_sparse:
            t = t._values()
        t = t.reshape(-1).float()
        if t.numel() == 0:
            return None
        lo_t, hi_t = torch.aminmax(t)  # one pass; NaN or inf in t shows in these two
        lo, hi = float(lo_t), float(hi_t)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            t = t[torch.isfinite(t)]
            if t.numel() == 0:
                return None
            lo, hi = float(t.min()), float(t.max())
        if lo == hi:  # one value: one bin around it
            lo, hi = lo - 0.5, hi + 0.5
        counts = torch.histc(t, bins=BINS, min=lo, max=hi).cpu().numpy()
    edges = np.linspace(lo, hi, BINS + 1)
    return Histogram(np_histogram=(counts, edges))


class _Watch:
    """The hooks on one model."""

    def __init__(self, run: Run, model: Any, log: str | None, log_freq: int, prefix: str) -> None:
        self.model = model
        self.handles: list[Any] = []
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if log in ("parameters", "all"):
            forwards = itertools.count(1)

            def on_forward(module: Any, inputs: Any, output: Any) -> None:
                if next(forwards) % log_freq:
                    return
                row = {}
                for name, p in params:
                    h = histogram(p)
                    if h is not None:
                        row[f"parameters/{prefix}{name}"] = h
                if row and not run._finished:
                    run.log(row, commit=False)

            self.handles.append(model.register_forward_hook(on_forward))
        if log in ("gradients", "all"):
            for name, p in params:
                self.handles.append(
                    p.register_hook(self._grad_hook(run, f"gradients/{prefix}{name}", log_freq))
                )

    @staticmethod
    def _grad_hook(run: Run, key: str, log_freq: int) -> Any:
        calls = itertools.count(1)

        def on_grad(grad: Any) -> None:
            if next(calls) % log_freq or run._finished:
                return
            try:
                h = histogram(grad)
                if h is not None:
                    run.log({key: h}, commit=False)
            except Exception:  # noqa: BLE001 - never break the user's backward pass
                pass

        return on_grad

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def watch(run: Run, models: Any, *, log: str | None = "gradients", log_freq: int = 1000,
          idx: int | None = None, log_graph: bool = False) -> None:  # fmt: skip
    """See :meth:`nbtracker.Run.watch`."""
    torch = _torch()
    if log not in LOG_CHOICES:
        msg = f"watch(log={log!r}): use 'gradients', 'parameters', 'all' or None"
        raise ValueError(msg)
    if isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1:
        msg = f"watch(log_freq={log_freq!r}): a positive int (log every that many steps)"
        raise ValueError(msg)
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    for m in models:
        if not isinstance(m, torch.nn.Module):
            msg = f"watch() takes torch.nn.Module models, not {type(m).__name__}"
            raise TypeError(msg)
    if run.disabled:
        return
    watches: dict[int, _Watch] = run.__dict__.setdefault("_watches", {})
    if not watches:
        run._at_finish.append(lambda: unwatch(run, None))
    for i, m in enumerate(models):
        old = watches.pop(id(m), None)
        if old is not None:
            old.remove()
        n = (idx or 0) + i
        prefix = f"graph_{n}." if len(models) > 1 or idx else ""
        watches[id(m)] = _Watch(run, m, log, log_freq, prefix)
        if log_graph:
            run.summary[f"graph_{n}"] = repr(m)[:100_000]


def unwatch(run: Run, models: Any = None) -> None:
    """Remove the hooks of ``models`` (default: every watched model)."""
    watches: dict[int, _Watch] = run.__dict__.get("_watches", {})
    if models is None:
        targets = list(watches)
    else:
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        targets = [id(m) for m in models]
    for key in targets:
        w = watches.pop(key, None)
        if w is not None:
            w.remove()
