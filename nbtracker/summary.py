"""Summary: one value per metric for a run (last by default), and ``define_metric`` rules."""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from ._util import clean_text, to_jsonable
from .config import AttrDict

SUMMARY_MODES = ("min", "max", "mean", "last", "first", "none", "best")


class MetricRule:
    """What ``define_metric(name, ...)`` said about the keys matching ``name``."""

    __slots__ = ("name", "step_metric", "summary", "goal", "hidden", "step_sync")

    def __init__(
        self,
        name: str,
        step_metric: str | None = None,
        summary: str | None = None,
        goal: str | None = None,
        hidden: bool = False,
        step_sync: bool | None = None,
    ) -> None:
        modes = [m.strip() for m in summary.split(",")] if summary else []
        for m in modes:
            if m not in SUMMARY_MODES:
                msg = f"define_metric summary={summary!r}: use one of {', '.join(SUMMARY_MODES)}"
                raise ValueError(msg)
        if goal not in (None, "minimize", "maximize", "min", "max"):
            msg = f"define_metric goal={goal!r}: use 'minimize' or 'maximize'"
            raise ValueError(msg)
        self.name = name
        self.step_metric = step_metric
        self.summary = modes
        self.goal = {"min": "minimize", "max": "maximize"}.get(goal or "", goal)
        self.hidden = hidden
        self.step_sync = step_sync

    def matches(self, key: str) -> bool:
        if any(c in self.name for c in "*?["):
            return fnmatch.fnmatchcase(key, self.name)
        return key == self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "step_metric": self.step_metric, "summary": ",".join(self.summary),
            "goal": self.goal, "hidden": self.hidden,
        }  # fmt: skip


class _Agg:
    """Running aggregates for one key whose summary mode is not 'last'."""

    __slots__ = ("modes", "goal", "n", "total", "lo", "hi", "first")

    def __init__(self, modes: list[str], goal: str | None) -> None:
        self.modes = modes
        self.goal = goal
        self.n = 0
        self.total = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.first: Any = None

    def add(self, v: Any) -> None:
        if self.n == 0:
            self.first = v
        self.n += 1
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            self.total += v
            if v < self.lo:
                self.lo = v
            if v > self.hi:
                self.hi = v

    def value(self, last: Any) -> Any:
        modes = self.modes or ["last"]
        out: dict[str, Any] = {}
        for m in modes:
            if m == "best":
                best = self.lo if self.goal == "minimize" else self.hi
                out["best"] = best if math.isfinite(best) else None
            elif m == "min":
                out["min"] = self.lo if self.lo != math.inf else None
            elif m == "max":
                out["max"] = self.hi if self.hi != -math.inf else None
            elif m == "mean":
                out["mean"] = self.total / self.n if self.n else None
            elif m == "first":
                out["first"] = self.first
            elif m == "last":
                out["last"] = last
        if "none" in modes:
            return _NONE
        return out  # as W&B shows it: summary["loss"]["min"] (flat "loss.min" in SQL)


_NONE = object()


# a nested part of the summary: the config's dict with attribute access serves here too
SummaryDict = AttrDict


class MediaRef(str):
    """A logged media value in the summary: its stored JSON reference (a str, as saved)
    that also reads like W&B's dict: ``summary["predictions"]["_type"] == "table"``."""

    __slots__ = ()

    def _dict(self) -> dict[str, Any]:
        return json.loads(str(self))

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return self._dict()[key]
        return str.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def keys(self) -> Any:
        return self._dict().keys()

    def items(self) -> Any:
        return self._dict().items()


class Summary(MutableMapping[str, Any]):
    """A run's summary: ``run.summary["best_acc"] = 0.93``; logged keys update it.

    By default a key's summary is its last logged value; ``define_metric(name,
    summary="min"|"max"|"mean"|"first"|"last"|"none")`` changes that for matching keys
    (globs such as ``"val/*"`` work). Values set by hand win until the key is logged again.
    """

    def __init__(self) -> None:
        self._last: dict[str, Any] = {}
        self._aggs: dict[str, _Agg] = {}
        self._user: dict[str, Any] = {}
        self._rules: list[MetricRule] = []
        self._classified: set[str] = set()
        self.kinds: dict[str, str] = {}  # the run's history key types (lists are JSON text)

    # -- fed by Run.log (hot path: keep it short) -------------------------------------------
    def observe(self, row: dict[str, Any]) -> None:  # (Run._commit_row has it inlined)
        self._last.update(row)
        if self._user or self._rules:
            self._observe_more(row)

    def _observe_more(self, row: dict[str, Any]) -> None:
        if self._user:
            for k in row.keys() & self._user.keys():
                del self._user[k]
        if self._rules:
            if not row.keys() <= self._classified:
                self._classify(row)
            if self._aggs:
                for k in row.keys() & self._aggs.keys():
                    self._aggs[k].add(row[k])

    def _classify(self, row: Mapping[str, Any]) -> None:
        for k in row:
            if k in self._classified:
                continue
            self._classified.add(k)
            rule = self.rule_for(k)
            if rule is not None and rule.summary and rule.summary != ["last"]:
                self._aggs[k] = _Agg(rule.summary, rule.goal)

    def add_rule(self, rule: MetricRule) -> MetricRule:
        """Add a define_metric rule; a second rule for the same name adds to the first
        (``summary="min"`` then ``summary="max"`` keeps both, as W&B). Returns the rule
        in force for that name."""
        for old in self._rules:
            if old.name == rule.name:
                self._rules.remove(old)
                modes = list(old.summary)
                modes += [m for m in rule.summary if m not in modes]
                if "none" in rule.summary:  # an explicit "none" wins
                    modes = ["none"]
                elif len(modes) > 1 and "none" in modes:
                    modes.remove("none")
                rule.summary = modes
                rule.step_metric = rule.step_metric or old.step_metric
                rule.goal = rule.goal or old.goal
                break
        self._rules.append(rule)
        self._classified.clear()
        self._aggs = {k: a for k, a in self._aggs.items() if self.rule_for(k) is not None}
        for k, agg in self._aggs.items():
            r = self.rule_for(k)
            if r is not None and r.summary:
                agg.modes, agg.goal = r.summary, r.goal
        return rule

    def rule_for(self, key: str) -> MetricRule | None:
        for rule in reversed(self._rules):
            if rule.matches(key):
                return rule
        return None

    def restore(self, values: Mapping[str, Any]) -> None:
        """Start from a stored summary (on resume)."""
        self._last.update(values)

    # -- mapping interface -----------------------------------------------------------------
    def _value(self, key: str) -> Any:
        if key in self._user:
            return self._user[key]
        agg = self._aggs.get(key)
        if agg is not None:
            return agg.value(self._last.get(key))
        value = self._last[key]
        if value.__class__ is str:
            kind = self.kinds.get(key, "")
            if kind == "json":
                return json.loads(value)  # a logged list reads back as a list
            if kind.startswith("media:"):
                return MediaRef(value)  # summary["t"]["_type"], as W&B
        return value

    def __getitem__(self, key: str) -> Any:
        try:
            v = self._value(key)
        except KeyError:
            nested = self._nested(key)
            if nested is None:
                raise
            return nested
        if v is _NONE:
            raise KeyError(key)
        return v

    def _nested(self, prefix: str) -> SummaryDict | None:
        """``summary["val"]`` when ``val.acc`` was logged (``log({"val": {"acc": 1}})``):
        the keys under ``val.`` as a nested dict."""
        head = prefix + "."
        out: SummaryDict | None = None
        for k in self._keys():
            if k.startswith(head):
                out = out if out is not None else SummaryDict()
                node = out
                parts = k[len(head) :].split(".")
                for part in parts[:-1]:
                    nxt = node.get(part)
                    if not isinstance(nxt, SummaryDict):
                        nxt = node[part] = SummaryDict()
                    node = nxt
                node[parts[-1]] = self[k]
        return out

    def __getattr__(self, name: str) -> Any:
        """``summary.best_accuracy`` reads ``summary["best_accuracy"]``, as in W&B."""
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            msg = f"the summary has no key {name!r}"
            raise AttributeError(msg) from None

    @property
    def _json_dict(self) -> dict[str, Any]:
        """The summary as plain JSON types (W&B's ``summary._json_dict``)."""
        return self.as_dict()

    def __setitem__(self, key: str, value: Any) -> None:
        key = clean_text(key if key.__class__ is str else str(key), f"the summary key {key!r}")
        self._user[key] = to_jsonable(value, f"summary.{key}")

    def __delitem__(self, key: str) -> None:
        found = False
        for d in (self._user, self._last, self._aggs):
            if key in d:
                del d[key]
                found = True
        if not found:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from self._keys()

    def _keys(self) -> list[str]:
        keys = list(dict.fromkeys([*self._last, *self._user]))
        return [k for k in keys if self._value(k) is not _NONE]

    def __len__(self) -> int:
        return len(self._keys())

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of the current summary (JSON-able values)."""
        out = {}
        for k in self._keys():
            v = self._value(k)
            out[k] = to_jsonable(v, f"summary.{k}", warn=False)
        return out

    def __repr__(self) -> str:
        return f"Summary({self.as_dict()!r})"
