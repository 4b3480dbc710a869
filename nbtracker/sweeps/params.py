"""Sweep parameters: W&B's distributions, drawn through optuna's ``suggest_*`` calls.

Each W&B distribution maps to one optuna distribution (the README lists them); where optuna
has no equivalent (normal, log-normal, beta, weighted categories), optuna draws a quantile
``u`` in [0, 1] and the value is the distribution's inverse CDF at ``u``, as W&B's own
sampler does. Random search then draws exactly W&B's distribution, and bayes searches in
quantile space.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

# name -> (required keys, optional keys with their defaults)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
_EPS = 1e-9  # quantiles are kept inside (0, 1): the tails of normal/log-normal are infinite
_PRIMITIVE = (bool, int, float, str, type(None))


class Param:
    """One sweep parameter: where it goes in the config (``path``), the key in the sweep
    config (``key``, for messages), its W&B distribution and arguments."""

    def __init__(self, path: tuple[str, ...], key: str, distribution: str, args: dict[str, Any]):
        self.path = path
        self.name = ".".join(path)  # optuna's parameter name
        self.key = key
        self.distribution = distribution
        self.args = args

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.distribution}, {self.args})"

    # -- drawing -------------------------------------------------------------------------
    def suggest(self, trial: Any) -> Any:
        """Draw this parameter's value for an optuna ``trial`` (fixed values are honoured)."""
        d, a, name = self.distribution, self.args, self.name
        if d == "constant":
            return a["value"]
        if d == "categorical":
            vals = a["values"]
            if self._plain_choices():
                return trial.suggest_categorical(name, list(vals))
            return vals[trial.suggest_categorical(name, list(range(len(vals))))]
        if d == "categorical_w_probabilities":
            u = trial.suggest_float(name, 0.0, 1.0)
            return a["values"][_pick_weighted(a["probabilities"], u)]
        if d == "int_uniform":
            return trial.suggest_int(name, int(a["min"]), int(a["max"]))
        if d in ("uniform", "q_uniform"):
            x = trial.suggest_float(name, float(a["min"]), float(a["max"]))
            return _q(x, a) if d == "q_uniform" else x
        if "log_uniform" in d:
            lo, hi = self._log_bounds()
            x = trial.suggest_float(name, lo, hi, log=True) if lo < hi else lo
            return _q(x, a) if d.startswith("q_") else x
        u = trial.suggest_float(name, _EPS, 1.0 - _EPS)
        return self.from_quantile(u)

    def from_quantile(self, u: float) -> float:
        """The value of a normal / log-normal / beta parameter at quantile ``u``."""
        d, a = self.distribution, self.args
        if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
            x = NormalDist(float(a["mu"]), float(a["sigma"])).inv_cdf(u)
            if "log" in d:
                x = math.exp(min(x, 700.0))
        else:
            x = beta_ppf(u, float(a["a"]), float(a["b"]))
        return _q(x, a) if d.startswith("q_") else x

    def _log_bounds(self) -> tuple[float, float]:
        d, lo, hi = self.distribution, float(self.args["min"]), float(self.args["max"])
        if d in ("log_uniform", "q_log_uniform"):  # the bounds are natural logs
            return math.exp(lo), math.exp(hi)
        if d == "inv_log_uniform":  # log(1/X) uniform in [min, max]
            return math.exp(-hi), math.exp(-lo)
        return lo, hi  # *_values: the bounds are the values

    def _plain_choices(self) -> bool:
        vals = self.args["values"]
        return all(isinstance(v, _PRIMITIVE) for v in vals) and len(set(map(repr, vals))) == len(
            vals
        )

    # -- grid ----------------------------------------------------------------------------
    def grid(self) -> list[tuple[Any, Any]] | None:
        """``(optuna value, config value)`` for each grid point, or None (not finite)."""
        d, a = self.distribution, self.args
        if d == "constant":
            return [(None, a["value"])]
        if d == "categorical":
            vals = list(a["values"])
            if self._plain_choices():
                return [(v, v) for v in vals]
            return [(i, v) for i, v in enumerate(vals)]
        if d == "categorical_w_probabilities":
            out, acc = [], 0.0
            for v, p in zip(a["values"], a["probabilities"], strict=True):
                out.append((min(acc + p / 2, 1.0), v))
                acc += p
            return out
        if d == "int_uniform":
            return [(i, i) for i in range(int(a["min"]), int(a["max"]) + 1)]
        if d == "q_uniform":
            q = float(a["q"])
            k0, k1 = math.ceil(float(a["min"]) / q - 1e-9), math.floor(float(a["max"]) / q + 1e-9)
            return [(k * q, k * q) for k in range(k0, k1 + 1)]
        return None

    def grid_values(self) -> list[Any] | None:
        g = self.grid()
        return None if g is None else [c for _, c in g]


def _q(x: float, a: dict[str, Any]) -> float:
    q = float(a.get("q") or 1.0)
    return round(x / q) * q


def _pick_weighted(probs: list[float], u: float) -> int:
    acc = 0.0
    for i, p in enumerate(probs):
        acc += p
        if u < acc:
            return i
    return len(probs) - 1


def nest(values: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """``{("optimizer", "lr"): 0.1}`` -> ``{"optimizer": {"lr": 0.1}}`` (nested parameters)."""
    out: dict[str, Any] = {}
    for path, v in values.items():
        d = out
        for part in path[:-1]:
            d = d.setdefault(part, {})
        d[path[-1]] = v
    return out


# -- the beta distribution's inverse CDF (no scipy needed) --------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(u: float, a: float, b: float) -> float:
    """The beta distribution's inverse CDF, by bisection (to ~1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < u:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
