"""Small helpers shared by the writer and reader sides: atomic files, JSON-safe values."""

from __future__ import annotations

import json
import math
import os
import random
import socket
import string
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ValueConversionWarning

_ID_ALPHABET = string.ascii_lowercase + string.digits
HOSTNAME = socket.gethostname()


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled). For our own paths and
    JSON in statements that take no parameters (COPY targets, views); user values go
    as parameters."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def new_id(n: int = 8) -> str:
    """Return a short random run id (lowercase letters and digits)."""
    return "".join(random.choices(_ID_ALPHABET, k=n))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and ``os.replace`` (never torn)."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, ensure_ascii=False, allow_nan=True).encode("utf-8"))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _warn_converted(key: str, value: Any, how: str) -> None:
    warnings.warn(
        f"{key!r}: a {type(value).__name__} is not JSON-able; stored {how}. "
        "Pass plain numbers, strings, lists or dicts to keep it exact.",
        ValueConversionWarning,
        stacklevel=4,
    )


def to_jsonable(value: Any, key: str = "value", *, warn: bool = True) -> Any:
    """Convert a config/summary value to plain JSON types, never raising.

    numpy/torch scalars become Python numbers, arrays and tuples become lists, paths become
    text; anything else becomes its ``str()`` with one warning.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{key}.{k}", warn=warn) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, key, warn=warn) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    size = getattr(value, "size", None)
    numel = getattr(value, "numel", None)
    try:
        if callable(numel):
            size = numel()
        if item is not None and (size is None or size == 1):
            out = item()
            if isinstance(out, (bool, int, float, str)):
                return out
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return to_jsonable(tolist(), key, warn=warn)
    except Exception:  # noqa: BLE001 - any odd object falls through to text
        pass
    if hasattr(value, "to_json_value"):
        return value.to_json_value()
    if warn:
        _warn_converted(key, value, "as its text")
    return str(value)


def flatten(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings into ``{"a.b": v}`` (the rule used in storage and columns)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v and not str(k).startswith("_"):
            out.update(flatten(v, name, sep))
        else:
            out[name] = v
    return out


def json_default(value: Any) -> Any:
    return to_jsonable(value, warn=False)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True, default=json_default)


def is_finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when ``pid`` names a live, non-zombie process (same start time if given)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):
        return False
    if start_ticks is not None and len(fields) > 19:
        return int(fields[19]) == start_ticks
    return True


def process_start_ticks(pid: int | None = None) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell reused pids apart."""
    try:
        with open(f"/proc/{pid or os.getpid()}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[-1].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None
