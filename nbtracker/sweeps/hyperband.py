"""W&B's ``hyperband`` early termination as an optuna pruner.

W&B's rule (its sweeps engine, ``hyperband_stopping.py``), which this follows exactly:

- bands (W&B also calls them brackets) are counts of logged values of the sweep metric:
  ``min_iter * eta**k`` (k = 0, 1, ...) or ``max_iter / eta**k`` (k = 1..s), whole numbers;
  only finite numbers count as logged values;
- the threshold at band ``b`` is taken over every run of the sweep that logged at least ``b``
  values (finished, stopped, crashed and running alike, this run included): the value at
  index ``int(n / eta)`` of their ``b``-th values sorted best first, so the top
  ``int(n / eta) + 1`` of ``n`` runs pass (ties pass);
- a run whose value is worse than the threshold stops. ``strict`` (W&B's default since
  2024): the run's value at the band; ``strict: false``: its best value so far;
- W&B's controller repeats the check for running runs against the last band they passed
  (every few minutes), so a run can stop between bands when runs of other agents reach its
  band later with better values; the run hook does the same (``join.RECHECK_S``, 60 s).

It is one successive-halving schedule run asynchronously over every trial, as W&B's is: not
the several brackets of the Hyperband paper (optuna's ``HyperbandPruner``);
``benchmarks/bench_sweeps.py`` compares the two.

The run hook (``join.py``) reports a run's value to optuna at step ``b`` (the band itself)
when the run logs its ``b``-th value, so optuna's intermediate values hold exactly the
band values W&B compares, and ``trial.should_prune()`` asks :class:`WandbHyperbandPruner`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import optuna

BEST_ATTR = "nbtracker_best"  # user attr: {band: best value so far} (strict: false only)


def threshold(values: Iterable[float], eta: float) -> float:
    """W&B's threshold over the band values of the runs that reached a band, lower is
    better: the value at index ``int(n / eta)`` of the sorted values."""
    ordered = sorted(values)
    return ordered[min(int((1.0 / eta) * len(ordered)), len(ordered) - 1)]


def stops(value: float, band_values: Iterable[float], eta: float) -> bool:
    """True when ``value`` (lower is better) is worse than the band's threshold.
    ``band_values`` includes this run's own value at the band."""
    vals = list(band_values)
    return bool(vals) and value > threshold(vals, eta)


class WandbHyperbandPruner(optuna.pruners.BasePruner):
    """optuna's pruner interface for W&B's hyperband rule (see the module docstring).

    ``bands``: the band iterations; a trial reports its metric at ``step=band``.
    """

    def __init__(self, bands: Iterable[int], eta: float, strict: bool = True) -> None:
        self.bands = frozenset(int(b) for b in bands)
        self.eta = float(eta)
        self.strict = strict

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.bands:
            return False
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        own = trial.intermediate_values[step]
        if not math.isfinite(own):
            return False  # never reported by the hook (W&B skips non-finite values)
        cond = own
        if not self.strict:
            best = (trial.user_attrs.get(BEST_ATTR) or {}).get(str(step))
            if isinstance(best, (int, float)) and math.isfinite(best):
                cond = best
        others = band_values(study.get_trials(deepcopy=False), step, exclude=trial.number)
        return stops(sign * cond, [sign * v for v in others] + [sign * own], self.eta)


def band_values(trials: Iterable[Any], band: int, exclude: int | None = None) -> list[float]:
    """The values at ``band`` of the trials that reached it (all states)."""
    out = []
    for t in trials:
        if t.number == exclude:
            continue
        v = t.intermediate_values.get(band)
        if v is not None and math.isfinite(v):
            out.append(float(v))
    return out


def still_keeps(study: optuna.Study, trial_number: int, band: int, cond: float, eta: float) -> bool:
    """W&B's later checks: a running run that passed ``band`` is compared again with the
    band's threshold as other runs reach it (``cond``: its value at the band, or its best
    so far with ``strict: false``). True when it goes on."""
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    trials = study.get_trials(deepcopy=False)
    own = [t.intermediate_values.get(band) for t in trials if t.number == trial_number]
    others = band_values(trials, band, exclude=trial_number)
    if not own or own[0] is None or not others:
        return True
    vals = [sign * v for v in others] + [sign * float(own[0])]
    return not stops(sign * cond, vals, eta)


def pruner(et: Mapping[str, Any], bands: Iterable[int]) -> WandbHyperbandPruner:
    """The pruner for a validated ``early_terminate`` and its bands."""
    return WandbHyperbandPruner(bands, et["eta"], strict=et.get("strict", True) is not False)
