"""W&B's sweep configuration schema: checked in full before any run starts.

Every error names the key (``parameters.lr.max``) and what is allowed there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

from ..errors import UsageError
from .params import DISTRIBUTIONS, Param

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
TOP_KEYS = {
    "method", "metric", "parameters", "name", "description", "program", "command",
    "run_cap", "early_terminate", "project", "entity", "controller", "job", "image_uri",
    "apiVersion", "run_cap_per_agent",
}  # fmt: skip
METRIC_KEYS = {"name", "goal", "target", "impute", "imputewhilerunning", "impute_while_running"}
ET_KEYS = {"type", "min_iter", "max_iter", "eta", "s", "strict"}
PARAM_KEYS = {"value", "values", "min", "max", "distribution", "probabilities", "mu", "sigma",
              "q", "a", "b", "parameters", "desc", "description"}  # fmt: skip
MAX_GRID = 100_000


class SweepConfigError(UsageError):
    """The sweep configuration does not follow W&B's schema; the message names the key."""


def _fail(key: str, msg: str) -> NoReturn:
    """Raise the error for ``key`` (its message names the key and what it accepts)."""
    text = f"sweep config: {key}: {msg}"
    raise SweepConfigError(text)


def validate(config: Any) -> tuple[dict[str, Any], list[Param]]:
    """The checked configuration (a plain dict with defaults filled in) and its parameters.

    Raises
    ------
    SweepConfigError
        Naming the first key that is wrong and what it accepts.
    """
    if not isinstance(config, Mapping):
        msg = f"sweep config must be a dict (or a YAML file of one), not {type(config).__name__}"
        raise SweepConfigError(msg)
    cfg = {str(k): v for k, v in config.items()}
    for key in cfg:
        if key not in TOP_KEYS:
            _fail(key, f"unknown key; allowed: {', '.join(sorted(TOP_KEYS))}")
    method = cfg.get("method")
    if method not in METHODS:
        _fail("method", f"{method!r} is not a method; use one of {', '.join(METHODS)}")
    cfg["metric"] = _metric(cfg.get("metric"), method)
    if "parameters" not in cfg or not isinstance(cfg["parameters"], Mapping):
        _fail("parameters", "required: a dict of {name: {values: [...]} or {min:, max:}}")
    params = _params(cfg["parameters"], "parameters", ())
    if not params:
        _fail("parameters", "give at least one parameter")
    cfg["parameters"] = _plain(cfg["parameters"])
    if "run_cap" in cfg and cfg["run_cap"] is not None:
        cap = cfg["run_cap"]
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            _fail("run_cap", f"{cap!r}: a positive int")
    if cfg.get("early_terminate") is not None:
        cfg["early_terminate"] = _early_terminate(cfg["early_terminate"], cfg["metric"])
    _command(cfg)
    if method == "grid":
        size = 1
        for p in params:
            points = p.grid_values()
            if points is None:
                _fail(
                    p.key,
                    f"grid search needs a finite set of values, not the {p.distribution} "
                    "distribution; use values: [...], value:, int_uniform or q_uniform "
                    "(or method: random / bayes)",
                )
            size *= len(points)
        if size > MAX_GRID and not cfg.get("run_cap"):
            _fail(
                "parameters", f"the grid has {size:,} points (at most {MAX_GRID:,}); "
                "set run_cap or use method: random"
            )  # fmt: skip
    for key in ("name", "description", "program"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            _fail(key, f"{cfg[key]!r}: a string")
    return cfg, params


MACROS = ("${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}",
          "${args_json}", "${args_json_file}", "${args_no_boolean_flags}")  # fmt: skip


def _command(cfg: dict[str, Any]) -> None:
    cmd = cfg.get("command")
    if cmd is None:
        return
    if not isinstance(cmd, (list, tuple)) or not all(isinstance(c, str) for c in cmd) or not cmd:
        _fail("command", "a list of strings, e.g. [${env}, ${interpreter}, ${program}, ${args}]")
    for c in cmd:
        if c.startswith("${") and c not in MACROS:
            _fail("command", f"unknown macro {c}; allowed: {', '.join(MACROS)}")
    if "${program}" in cmd and not cfg.get("program"):
        _fail("program", "the command uses ${program}: name the script to run")
    cfg["command"] = list(cmd)


def _metric(metric: Any, method: str) -> dict[str, Any] | None:
    if metric is None:
        if method == "bayes":
            _fail("metric", "bayes search needs a metric: {name: val_loss, goal: minimize}")
        return None
    if isinstance(metric, str):
        metric = {"name": metric}
    if not isinstance(metric, Mapping):
        _fail("metric", "a dict such as {name: val_loss, goal: minimize}")
    for key in metric:
        if key not in METRIC_KEYS:
            _fail(f"metric.{key}", f"unknown key; allowed: {', '.join(sorted(METRIC_KEYS))}")
    name = metric.get("name")
    if not isinstance(name, str) or not name:
        _fail("metric.name", "required: the logged key to optimise (a string)")
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        _fail("metric.goal", f"{goal!r}: use minimize or maximize")
    out = dict(metric, name=name, goal=goal)
    target = metric.get("target")
    if target is not None and not _number(target):
        _fail("metric.target", f"{target!r}: a number")
    return out


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _early_terminate(et: Any, metric: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(et, Mapping):
        _fail("early_terminate", "a dict such as {type: hyperband, min_iter: 3}")
    for key in et:
        if key not in ET_KEYS:
            _fail(f"early_terminate.{key}", f"unknown key; allowed: {', '.join(sorted(ET_KEYS))}")
    if et.get("type") != "hyperband":
        _fail("early_terminate.type", f"{et.get('type')!r}: the only type is hyperband")
    if metric is None:
        _fail("metric", "early_terminate needs a metric to compare runs on")
    eta = et.get("eta", 3)
    if not _number(eta) or eta <= 1:
        _fail("early_terminate.eta", f"{eta!r}: a number greater than 1")
    out = dict(et, eta=eta)
    if "min_iter" in et:
        if (
            not isinstance(et["min_iter"], int)
            or isinstance(et["min_iter"], bool)
            or et["min_iter"] < 1
        ):
            _fail("early_terminate.min_iter", f"{et['min_iter']!r}: a positive int")
    elif "max_iter" in et:
        mx = et["max_iter"]
        if not isinstance(mx, int) or isinstance(mx, bool) or mx < 1:
            _fail("early_terminate.max_iter", f"{mx!r}: a positive int")
        s = et.get("s")
        if not isinstance(s, int) or isinstance(s, bool) or s < 1:
            _fail("early_terminate.s", f"{s!r}: max_iter needs s, a positive int (the number "
                  "of brackets, counted down from max_iter)")  # fmt: skip
        if mx / eta < 1:
            _fail("early_terminate.max_iter", f"{mx!r}: no bracket (max_iter / eta < 1); "
                  "raise max_iter or lower eta")  # fmt: skip
    else:
        _fail("early_terminate", "hyperband needs min_iter, or max_iter with s")
    if "strict" in et and not isinstance(et["strict"], bool):
        _fail("early_terminate.strict", f"{et['strict']!r}: true or false")
    return out


def brackets(et: Mapping[str, Any], limit: int = 10**9) -> list[int]:
    """W&B's hyperband brackets, in logged values of the metric: ``min_iter * eta**k`` (k =
    0..99, up to ``limit``), or ``max_iter / eta**k`` for k = 1..s (whole iterations,
    ascending)."""
    eta = float(et["eta"])
    out: list[int] = []
    if "min_iter" in et:  # s is ignored here, as by W&B
        band = float(et["min_iter"])
        while band <= limit and len(out) < 100:
            out.append(int(band))
            band *= eta
    else:
        band = float(et["max_iter"])
        for _ in range(int(et.get("s") or 0)):
            band /= eta
            if band < 1:
                break
            out.append(int(band))
    return sorted(set(out))


def _params(spec: Mapping[str, Any], where: str, path: tuple[str, ...]) -> list[Param]:
    out: list[Param] = []
    for name, p in spec.items():
        key = f"{where}.{name}"
        if not isinstance(p, Mapping):
            _fail(key, "each parameter is a dict: {values: [...]}, {value: x}, {min:, max:}")
        for k in p:
            if k not in PARAM_KEYS:
                _fail(f"{key}.{k}", f"unknown key; allowed: {', '.join(sorted(PARAM_KEYS))}")
        if "parameters" in p:
            if not isinstance(p["parameters"], Mapping) or not p["parameters"]:
                _fail(f"{key}.parameters", "a non-empty dict of nested parameters")
            out += _params(p["parameters"], f"{key}.parameters", (*path, str(name)))
            continue
        out.append(_param(p, key, (*path, str(name))))
    return out


def _param(p: Mapping[str, Any], key: str, path: tuple[str, ...]) -> Param:
    dist = p.get("distribution")
    if dist is None:  # inferred as W&B does
        if "value" in p:
            dist = "constant"
        elif "values" in p:
            dist = "categorical_w_probabilities" if "probabilities" in p else "categorical"
        elif "min" in p and "max" in p:
            both_int = all(
                isinstance(p[k], int) and not isinstance(p[k], bool) for k in ("min", "max")
            )
            dist = "int_uniform" if both_int else "uniform"
        elif "mu" in p or "sigma" in p:
            dist = "normal"
        else:
            _fail(key, "give value:, values: [...], min: and max:, or a distribution:")
    if dist not in DISTRIBUTIONS:
        _fail(f"{key}.distribution", f"{dist!r}; allowed: {', '.join(DISTRIBUTIONS)}")
    required, defaults = DISTRIBUTIONS[dist]
    args = dict(defaults)
    for k in required:
        if k not in p:
            _fail(f"{key}.{k}", f"required by the {dist} distribution")
    for k in (*required, *defaults):
        if k in p:
            args[k] = p[k]
    _check_args(dist, args, key)
    return Param(path, key, dist, args)


def _check_args(dist: str, a: dict[str, Any], key: str) -> None:
    if "values" in a:
        vals = a["values"]
        if not isinstance(vals, (list, tuple)) or not vals:
            _fail(f"{key}.values", "a non-empty list")
        if "probabilities" in a:
            pr = a["probabilities"]
            if (not isinstance(pr, (list, tuple)) or len(pr) != len(vals)
                    or not all(_number(x) and x >= 0 for x in pr)):  # fmt: skip
                _fail(f"{key}.probabilities", "one non-negative number per value")
            if abs(sum(pr) - 1.0) > 1e-6:
                _fail(f"{key}.probabilities", f"must sum to 1 (they sum to {sum(pr):g})")
    for k in ("min", "max", "mu", "sigma", "q", "a", "b"):
        if k in a and not _number(a[k]):
            _fail(f"{key}.{k}", f"{a[k]!r}: a number")
    if "min" in a and "max" in a:
        if a["min"] > a["max"]:
            _fail(f"{key}.min", f"{a['min']} is greater than max {a['max']}")
        if dist == "int_uniform" and not all(float(a[k]).is_integer() for k in ("min", "max")):
            _fail(f"{key}.min", "int_uniform needs int bounds")
        if dist.endswith("_values") and a["min"] <= 0:
            _fail(f"{key}.min", f"{dist} needs min > 0 (the bounds are the values)")
    for k in ("sigma", "q", "a", "b"):
        if k in a and a[k] <= 0:
            _fail(f"{key}.{k}", f"{a[k]!r}: must be greater than 0")


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return [_plain(v) for v in x]
    return x
