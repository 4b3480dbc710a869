"""MongoDB-style run filters and ordering, evaluated in Python (never pasted into SQL)."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any

_MISSING = object()
_ALIASES = {"display_name": "name", "displayName": "name", "createdAt": "created_at",
            "run_id": "id", "summary_metrics": "summary", "jobType": "job_type"}  # fmt: skip


def field(rec: Mapping[str, Any], path: str) -> Any:
    """Look up ``config.lr``, ``summary_metrics.acc``, ``tags``, ``state`` ... in a record."""
    head, _, rest = path.partition(".")
    head = _ALIASES.get(head, head)
    if head in ("config", "summary") and rest:
        return _nested(rec.get(head) or {}, rest)
    value = rec.get(head, _MISSING)
    if rest and isinstance(value, Mapping):
        return _nested(value, rest)
    return value


def _nested(d: Mapping[str, Any], path: str) -> Any:
    if path in d:  # flat keys that contain dots
        return d[path]
    cur: Any = d
    parts = path.split(".")
    for i, part in enumerate(parts):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, Mapping) and ".".join(parts[i:]) in cur:
            return cur[".".join(parts[i:])]
        elif part == "value" and i == len(parts) - 1:  # wandb's "config.lr.value"
            return cur
        else:
            return _MISSING
    return cur


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, (int, float)) and isinstance(b, str):
        try:
            b = _dt.datetime.fromisoformat(b.replace("Z", "+00:00"))
            if b.tzinfo is None:
                b = b.replace(tzinfo=_dt.timezone.utc)
            return a, b.timestamp()
        except ValueError:
            pass
    return a, b


def _op(value: Any, op: str, arg: Any) -> bool:
    if op == "$exists":
        return (value is not _MISSING and value is not None) == bool(arg)
    if op == "$not":
        return not _cond(value, arg)
    if value is _MISSING:
        return op in ("$ne", "$nin")
    many = value if isinstance(value, (list, tuple)) else None
    if op == "$eq":
        return value == arg or (many is not None and arg in many)
    if op == "$ne":
        return not _op(value, "$eq", arg)
    if op == "$in":
        return any(_op(value, "$eq", a) for a in arg)
    if op == "$nin":
        return not _op(value, "$in", arg)
    if op == "$regex":
        return isinstance(value, str) and re.search(str(arg), value) is not None
    if op in ("$gt", "$gte", "$lt", "$lte"):
        a, b = _comparable(value, arg)
        try:
            return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]  # type: ignore[operator]
        except TypeError:
            return False
    msg = f"unknown filter operator {op!r}; use $eq $ne $gt $gte $lt $lte $in $nin $exists $regex"
    raise ValueError(msg)


def _cond(value: Any, cond: Any) -> bool:
    if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
        return all(_op(value, op, arg) for op, arg in cond.items())
    return _op(value, "$eq", cond)


def matches(rec: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """True when the run record satisfies a MongoDB-style filter document."""
    for key, cond in filters.items():
        if key == "$and":
            if not all(matches(rec, f) for f in cond):
                return False
        elif key == "$or":
            if not any(matches(rec, f) for f in cond):
                return False
        elif key == "$nor":
            if any(matches(rec, f) for f in cond):
                return False
        elif not _cond(field(rec, key), cond):
            return False
    return True


def sort_records(records: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
    """Sort by ``"-field"`` (descending) or ``"+field"``/``"field"``; missing values last."""
    if not order:
        return records
    desc = order.startswith("-")
    path = order.lstrip("+-")

    def key(rec: dict[str, Any]) -> tuple[int, Any]:
        v = field(rec, path)
        if v is _MISSING or v is None or (isinstance(v, float) and v != v):
            return (1, 0)
        return (0, v if isinstance(v, (int, float, str)) else str(v))

    present = [r for r in records if key(r)[0] == 0]
    missing = [r for r in records if key(r)[0] == 1]
    try:
        present.sort(key=lambda r: key(r)[1], reverse=desc)
    except TypeError:  # mixed types: compare as text
        present.sort(key=lambda r: str(key(r)[1]), reverse=desc)
    return present + missing
