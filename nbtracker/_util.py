"""Small helpers shared by the writer and reader sides: atomic files, JSON-safe values."""

from __future__ import annotations

import json
import math
import os
import socket
import string
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from random import Random
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


def _seeded() -> Random:
    return Random(os.urandom(16))


# Our own generator, seeded from the OS (and again in a forked child, which would otherwise
# repeat its parent's ids): never Python's shared ``random``, whose stream a seeded script
# owns. One OS call per process instead of one per character (each took ~0.2 ms here).
private_rng = _seeded()
os.register_at_fork(after_in_child=lambda: private_rng.seed(os.urandom(16)))


def new_id(n: int = 8) -> str:
    """Return a short random run id (lowercase letters and digits).

    Drawn from a private generator seeded by the OS, never from Python's shared ``random``
    generator: a seeded script must get a new id each time, and the user's random stream
    must not move.
    """
    return "".join(private_rng.choices(_ID_ALPHABET, k=n))


def count_up(path: Path, seed: Callable[[], int]) -> int:
    """Add one to the counter kept as the size of the file ``path`` and return the new value.

    Each call appends one byte with ``O_APPEND`` and reads the size after its own write:
    O(1), and atomic across processes (two callers never get the same number). A missing
    file is created (``O_EXCL``) holding ``seed()`` bytes first; only when two processes
    meet a missing, non-zero seed at the same microsecond can a number repeat. Raises
    OSError when the file cannot be written.
    """
    if not path.exists():
        start = seed()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another process created it meanwhile
            pass
        else:
            try:
                if start > 0:
                    os.write(fd, b"." * start)
            finally:
                os.close(fd)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b".")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


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
    text = json.dumps(obj, ensure_ascii=False, allow_nan=True)
    # values are cleaned where they enter; "replace" is the last guard, so that a record
    # is never unwritable
    atomic_write_bytes(path, text.encode("utf-8", "replace"))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_warned_text: set[str] = set()


def clean_text(text: str, what: str = "a string", *, warn: bool = True) -> str:
    """``text`` with any lone surrogate (what ``os.listdir`` returns for a file name that is
    not UTF-8) replaced by its escape (``img_\\xff.png``), so it can be stored as UTF-8;
    one warning per ``what``. Valid text comes back unchanged (and fast: ASCII is checked
    first)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # bytes smuggled in by surrogateescape: show them as \xNN
        out = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        out = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if warn and what not in _warned_text:
        _warned_text.add(what)
        warnings.warn(
            f"{what} holds characters that are not valid Unicode (lone surrogates, e.g. a "
            f"file name that is not UTF-8); stored as {out[:80]!r}. Decode such text with "
            "errors='replace' first to choose the form yourself.",
            ValueConversionWarning,
            stacklevel=3,
        )
    return out


def clean_int(value: int, what: str = "a value", *, warn: bool = True) -> int | float | str:
    """An int beyond int64 (what Parquet, DuckDB and JSON readers handle) as a float, or as
    its text when no float holds it; one warning per ``what``."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    try:
        out: float | str = float(value)
        how = "as a float"
    except OverflowError:
        out = str(value)
        how = "as text"
    if warn and what not in _warned_text:
        _warned_text.add(what)
        warnings.warn(
            f"{what} is an int beyond 64 bits; stored {how}.",
            ValueConversionWarning,
            stacklevel=3,
        )
    return out


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
    return _jsonable(value, key, warn, 0)


def _jsonable(value: Any, key: str, warn: bool, depth: int) -> Any:
    cls = value.__class__
    if value is None or cls is bool or cls is float:
        return value
    if cls is str:
        return clean_text(value, repr(key), warn=warn)
    if cls is int:
        return clean_int(value, repr(key), warn=warn)
    if depth > MAX_DEPTH:
        if warn:
            _warn_converted(key, value, f"as its text (nested more than {MAX_DEPTH} levels)")
        return _safe_str(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            name = clean_text(str(k), repr(f"{key}.{k!s}"), warn=warn)
            out[name] = (
                _jsonable(v, f"{key}.{name}", warn, depth + 1) if v is not value else _safe_str(v)
            )
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, key, warn, depth + 1) if v is not value else "[...]" for v in value]
    for t in (bool, int, float, str):  # subclasses (IntEnum, numpy.float64, str enums)
        if isinstance(value, t):
            try:
                return _jsonable(t(value), key, warn, depth)
            except Exception:  # noqa: BLE001 - a conversion that raises: keep the text
                return _safe_str(value)
    if isinstance(value, os.PathLike):
        return _jsonable(os.fspath(value), key, warn, depth)
    item = getattr(value, "item", None)
    size = getattr(value, "size", None)
    numel = getattr(value, "numel", None)
    try:
        if callable(numel):
            size = numel()
        if item is not None and (size is None or size == 1):
            scalar = item()
            if isinstance(scalar, (bool, int, float, str)):
                return _jsonable(scalar, key, warn, depth + 1)
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return _jsonable(tolist(), key, warn, depth + 1)
    except Exception:  # noqa: BLE001 - any odd object falls through to text
        pass
    if hasattr(value, "to_json_value"):
        return _jsonable(value.to_json_value(), key, warn, depth + 1)
    if warn:
        _warn_converted(key, value, "as its text")
    return _safe_str(value)


MAX_DEPTH = 64


def _safe_str(value: Any) -> str:
    """``str(value)``, or a placeholder when even that raises."""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001
        try:
            text = object.__repr__(value)
        except Exception:  # noqa: BLE001
            return "<unprintable>"
    return clean_text(text, warn=False) if text.__class__ is str else "<unprintable>"


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


_own_start: tuple[int, int | None] | None = None  # (pid, ticks): this process's, read once


def process_start_ticks(pid: int | None = None) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell reused pids apart.
    This process's own is read once (per pid: a forked child reads its own)."""
    global _own_start
    if pid is None or pid == os.getpid():
        own = _own_start
        if own is not None and own[0] == os.getpid():
            return own[1]
        ticks = _read_start_ticks(os.getpid())
        _own_start = (os.getpid(), ticks)
        return ticks
    return _read_start_ticks(pid)


def _read_start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[-1].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None
