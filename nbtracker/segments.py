"""History segments: buffered rows -> long columns -> atomic Parquet files.

Numeric rows and small flushes are written by nbtracker's own writer (``_parquet``,
uncompressed), other rows through DuckDB or pyarrow (zstd); merged files are zstd.

Layout of every history file (one run's rows, long format)::

    step BIGINT, ts DOUBLE, key VARCHAR, value DOUBLE, text VARCHAR

Numbers and bools go to ``value`` (bools as 0/1; NaN and inf kept); strings and media
references (JSON) go to ``text``. Files are named ``h-<first>-<last>-<writer>.parquet``
after the writer that wrote them (a random id per process and run, so two processes that
write one run never replace each other's files) and the segment numbers they hold. Within
one writer's files, a file whose range lies inside another file's range is superseded
(left behind by a compaction that was interrupted) and is never read. Files named
``h-<first>-<last>.parquet`` (no writer) come from older versions and count as one writer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Set as AbstractSet

from . import _parquet
from ._util import sql_literal

SCHEMA_FIELDS = ("step", "ts", "key", "value", "text")
_NAME = re.compile(r"^h-(\d+)-(\d+)(?:-([0-9a-z]{1,16}))?\.parquet$")

# Precedence when a key is logged with different types over a run.
_TYPE_RANK = {"bool": 0, "int": 1, "float": 2, "str": 3}


def merge_type(old: str | None, new: str) -> str:
    if old is None or old == new:
        return new
    if old in _TYPE_RANK and new in _TYPE_RANK:
        return old if _TYPE_RANK[old] >= _TYPE_RANK[new] else new
    return new  # media kinds win: the newest kind tells the reader how to open it


def _schema():  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.schema(
        [
            ("step", pa.int64()),
            ("ts", pa.float64()),
            ("key", pa.string()),
            ("value", pa.float64()),
            ("text", pa.string()),
        ]
    )


def rows_to_long(
    steps: list[int], stamps: list[float], rows: list[dict[str, Any]], key_types: dict[str, str]
):  # type: ignore[no-untyped-def]
    """Turn committed rows into one long Arrow table and note each key's type.

    The fast path lets Arrow infer one column per key (C speed); a key whose values
    Arrow cannot unify (say a float and a string) takes the slow path, value by value.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = _schema()
    step_arr = pa.array(steps, pa.int64())
    ts_arr = pa.array(stamps, pa.float64())
    names: set[str] = set()
    for r in rows:
        names.update(r)
    columns = None
    if rows and len(names) == len(rows[0]):
        # Arrow takes the column names from the first row only: safe when no row has
        # a key the first row lacks (the common case, and the fast path)
        try:
            wide = pa.Table.from_pylist(rows)
            columns = list(zip(wide.column_names, wide.columns, strict=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    if columns is None:
        columns = _columns_one_by_one(rows, names)

    parts = []
    n = len(rows)
    for name, col in columns:
        typ = col.type
        if pa.types.is_null(typ):
            continue
        if n and col.null_count:
            mask = pc.is_valid(col)
            s, t, c = step_arr.filter(mask), ts_arr.filter(mask), col.filter(mask)
        else:
            s, t, c = step_arr, ts_arr, col
        m = len(c)
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            kind = "str"
            value = pa.nulls(m, pa.float64())
            text = c.cast(pa.string())
        elif pa.types.is_boolean(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ):
            kind = (
                "bool"
                if pa.types.is_boolean(typ)
                else "int"
                if pa.types.is_integer(typ)
                else "float"
            )
            value = c.cast(pa.float64())
            text = pa.nulls(m, pa.string())
        else:  # anything exotic that slipped through: keep its text
            kind = "str"
            value = pa.nulls(m, pa.float64())
            text = pa.array([None if v is None else str(v) for v in c.to_pylist()], pa.string())
        if _sticky(key_types.get(name, "")):
            kind = key_types[name]
        key_types[name] = merge_type(key_types.get(name), kind)
        parts.append(
            pa.table([s, t, pa.array([name] * m, pa.string()), value, text], schema=schema)
        )
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)


def _columns_one_by_one(rows: list[dict[str, Any]], names: set[str]) -> list[tuple[str, Any]]:
    """Column by column: rows with differing keys, or a key with mixed types."""
    import pyarrow as pa

    columns = []
    for name in sorted(names):
        vals = [r.get(name) for r in rows]
        try:
            arr = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            try:  # bools mixed with numbers
                arr = pa.array([None if v is None else float(v) for v in vals], pa.float64())
            except (TypeError, ValueError):  # numbers mixed with text: keep the text
                arr = pa.array([None if v is None else str(v) for v in vals], pa.string())
        columns.append((name, arr))
    return columns


# -- the writer's buffer -------------------------------------------------------------------
# A buffered row is the user's ``{name: value}`` dict with its step and time added under two
# int keys (user keys are always text). One plain dict per row and no tuple around it: a
# dict holding only numbers and text is not tracked by Python's garbage collector, so a long
# buffer adds nothing to the collector's pauses in the training loop.
STEP_KEY = 0
TS_KEY = 1


def buffered(step: int, ts: float, row: dict[str, Any]) -> dict[Any, Any]:
    """A buffered row (a new dict) from its parts."""
    out: dict[Any, Any] = dict(row)
    out[STEP_KEY] = step
    out[TS_KEY] = ts
    return out


def unpack(rows: list[dict[Any, Any]]) -> tuple[list[int], list[float], list[dict[str, Any]]]:
    """Steps, times and the user's dicts (new ones) of buffered rows."""
    steps = [r[STEP_KEY] for r in rows]
    stamps = [r[TS_KEY] for r in rows]
    dicts = [{k: v for k, v in r.items() if k.__class__ is not int} for r in rows]
    return steps, stamps, dicts


def value_count(rows: list[dict[Any, Any]]) -> int:
    """How many values buffered rows hold (each row also has its step and time)."""
    return sum(map(len, rows)) - 2 * len(rows)


def user_keys(row: dict[Any, Any]) -> list[str]:
    """The names logged in a buffered row."""
    return [k for k in row if k.__class__ is not int]


def write_rows_duckdb(
    con: Any, steps: list[int], stamps: list[float], rows: list[dict[str, Any]],
    key_types: dict[str, str], path: Path,
) -> None:  # fmt: skip
    """Write ``rows`` (plain dicts, with their steps and times) as a segment."""
    write_buffered(
        con, [buffered(s, t, r) for s, t, r in zip(steps, stamps, rows, strict=True)],
        key_types, path,
    )  # fmt: skip


def write_own(
    rows: list[dict[Any, Any]],
    key_types: dict[str, str],
    path: Path,
    text_keys: AbstractSet[str] = frozenset(),
) -> bool:
    """Write buffered rows as a segment with nbtracker's own Parquet writer when they suit
    it: a few values of any kind (at most ``SMALL_VALUES``), or rows that all have the same
    keys and numbers only (the usual training rows, any count). True when written; False
    (nothing written) for other rows: :func:`write_buffered` takes those.

    Why: DuckDB's ``COPY`` costs ~1.2 ms for a one-row file (a short run's whole history)
    and ~40-70 ms of CPU for 20k rows of 5 floats (zstd); this writes those files in a
    fraction of that. They stay uncompressed until the run's segments are merged.
    """
    # (every buffered row holds at least one value: many rows are never a few values)
    small = len(rows) <= SMALL_VALUES and value_count(rows) <= SMALL_VALUES
    numeric = None if small else numeric_columns(rows, key_types, text_keys)
    if not small and numeric is None:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if numeric is not None:
            _parquet.write_numeric_history(tmp, *numeric)
        else:
            data = _parquet.history_bytes(*_small_columns(rows, key_types))
            with open(tmp, "wb") as f:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)  # a failed write (full disk, a bad value) leaves no temp file
        raise
    return True


def write_buffered(
    con: Any, rows: list[dict[Any, Any]], key_types: dict[str, str], path: Path
) -> None:
    """Write buffered rows as a segment through DuckDB (no pyarrow, so no pandas): rows of
    mixed keys or kinds (text, media references) that :func:`write_own` leaves.

    Columns go to DuckDB as numpy arrays (a few values as list parameters), without the
    0.3-1 s pandas import that pyarrow brings.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    target = sql_literal(str(tmp))
    try:
        if value_count(rows) <= SMALL_VALUES:  # lists, no arrays
            con.execute(
                "COPY (SELECT unnest($1::BIGINT[]) AS step, unnest($2::DOUBLE[]) AS ts, "
                "unnest($3::VARCHAR[]) AS key, unnest($4::DOUBLE[]) AS value, "
                f"unnest($5::VARCHAR[]) AS text) TO {target} (FORMAT parquet, COMPRESSION zstd)",
                _small_columns(rows, key_types),
            )
        else:
            steps, stamps, dicts = unpack(rows)
            arrays = _arrays_by_key(steps, stamps, dicts, key_types)
            if arrays is None:  # rows with differing keys or mixed kinds: value by value
                arrays = _arrays_by_value(steps, stamps, dicts, key_types)
            # numpy arrays scan ~7x faster than list parameters; DuckDB reads a NaN in a
            # numpy float array as NULL, so real NaNs come back through the `nan` mask
            con.register("nbt_rows", arrays)
            try:
                con.execute(
                    "COPY (SELECT step, ts, CAST(key AS VARCHAR) AS key, "
                    "CASE WHEN is_text THEN NULL WHEN nan THEN CAST('nan' AS DOUBLE) "
                    "ELSE value END AS value, CAST(text AS VARCHAR) AS text FROM nbt_rows) "
                    f"TO {target} (FORMAT parquet, COMPRESSION zstd)"
                )
            finally:
                con.unregister("nbt_rows")
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)  # a failed write (full disk, a bad value) leaves no temp file
        raise


# A flush of at most this many values is written by nbtracker._parquet (~0.05 ms for a
# one-row segment; DuckDB's COPY of list parameters ~1.3 ms): what a short run writes.
SMALL_VALUES = 256


def _small_columns(rows: list[dict[Any, Any]], key_types: dict[str, str]) -> list[list[Any]]:
    """Step, time, key, value and text lists of a few buffered rows (a text's value and a
    number's text are None; NaN and inf go through as they are)."""
    triples = ((r[STEP_KEY], r[TS_KEY], r) for r in rows)
    return list(_long_lists(triples, key_types, None))


def _long_lists(
    triples: Any, key_types: dict[str, str], text_value: float | None
) -> tuple[list[int], list[float], list[str], list[Any], list[str | None]]:
    """Long-format columns, value by value, of ``(step, time, row)`` triples (a buffered
    row's int keys skipped); a text's value is ``text_value``. Kinds noted in ``key_types``."""
    S: list[int] = []
    T: list[float] = []
    K: list[str] = []
    V: list[Any] = []
    X: list[str | None] = []
    for step, ts, row in triples:
        for k, v in row.items():
            if k.__class__ is int:
                continue
            S.append(step)
            T.append(ts)
            K.append(k)
            cls = v.__class__
            if cls is str:
                V.append(text_value)
                X.append(v)
                kind = "str"
            else:
                V.append(float(v))
                X.append(None)
                kind = "bool" if cls is bool else "int" if cls is int else "float"
                if kind == "int" and not -_TWO53 <= v <= _TWO53:
                    kind = _wide_int(k) if not -_TWO63 <= v < _TWO63 else _rounded_int(k)
            _note_kind(key_types, k, kind)
    return S, T, K, V, X


def _np() -> Any:
    import numpy as np

    return np


_NUMERIC_KIND = {float: "float", int: "int", bool: "bool"}
_BLOCK = 4096  # rows gathered a column at a time (measured: ~0.21 us a row of 5 keys)


def numeric_columns(
    rows: list[dict[Any, Any]], key_types: dict[str, str], text_keys: AbstractSet[str] = frozenset()
) -> tuple[Any, Any, list[str], list[Any]] | None:
    """Numeric columns without Python objects, when every buffered row has the same keys
    and only numbers: step, time and each key's values go into numpy arrays, one C loop a
    column (``np.fromiter``). ``text_keys`` are keys that have ever held text in this run
    (``log()`` notes them before such a row is buffered): rows with one of them take the
    general path, since ``np.fromiter`` would read the text "1.5" as a number. A row
    without one of the keys, or a number too big for a double, also sends the rows down
    the general path. Kinds come from the first row, checked against the values (an int
    key with a fraction, a bool key beyond 0/1, is a float key); None when not numeric.
    Returns ``(steps, stamps, names, columns)``, ``columns`` one float64 array per name."""
    from operator import itemgetter

    np = _np()
    if not rows:
        return None
    first = rows[0]
    names = user_keys(first)
    k = len(names)
    width = k + 2
    if k == 0 or len(first) != width or set(map(len, rows)) != {width}:  # C-level loops
        return None
    if text_keys and not text_keys.isdisjoint(names):
        return None
    kinds = [_NUMERIC_KIND.get(first[name].__class__) for name in names]
    if None in kinds:
        return None
    n = len(rows)
    steps = np.empty(n, np.int64)
    stamps = np.empty(n, np.float64)
    columns = [np.empty(n, np.float64) for _ in names]
    targets = [steps, stamps, *columns]
    getters = [itemgetter(key) for key in (STEP_KEY, TS_KEY, *names)]
    try:  # blocks of rows that stay in the CPU's cache, a column at a time in C loops (each
        # holds the GIL ~0.1 ms: the training thread barely waits)
        for i in range(0, n, _BLOCK):
            block = rows[i : i + _BLOCK]
            m = len(block)
            for target, get in zip(targets, getters, strict=True):
                target[i : i + m] = np.fromiter(map(get, block), target.dtype, m)
    except (KeyError, TypeError, ValueError, OverflowError):  # other keys, odd values
        return None
    for name, kind, col in zip(names, kinds, columns, strict=True):
        if kind != "float":
            if np.isnan(col).any():
                kind = "float"
            elif kind == "int":
                if not np.array_equal(col, np.floor(col)):
                    kind = "float"
                else:
                    kind = _int_kind(name, np.abs(col).max())
            elif not np.isin(col, (0.0, 1.0)).all():
                kind = "float"
        _note_kind(key_types, name, kind)
    return steps, stamps, names, columns


def _sticky(kind: str) -> bool:
    """Kinds set by log() itself (media references, JSON lists): stored as text, they
    keep their kind for the reader."""
    return kind.startswith("media:") or kind == "json"


def _note_kind(key_types: dict[str, str], k: str, kind: str) -> None:
    if _sticky(key_types.get(k, "")):
        kind = key_types[k]
    if key_types.get(k) != kind:
        key_types[k] = merge_type(key_types.get(k), kind)


def _arrays_by_key(
    steps: list[int], stamps: list[float], rows: list[dict[str, Any]], key_types: dict[str, str]
) -> dict[str, Any] | None:
    """The segment's columns as numpy arrays, one key after another (no Python list of
    all values), when every row has the same keys; None otherwise."""
    import numpy as np

    cols = _same_key_columns(rows)
    if cols is None:
        return None
    n, k = len(rows), len(cols)
    value = np.empty(n * k, np.float64)
    text = np.empty(n * k, dtype=object)  # None everywhere
    nan = np.zeros(n * k, bool)
    for i, (key, (kind, vals)) in enumerate(cols.items()):
        part = slice(i * n, (i + 1) * n)
        if kind == "str":
            value[part] = 0.0
            text[part] = vals
        else:
            value[part] = vals
            nan[part] = np.isnan(value[part])
            if kind == "int" and n:
                kind = _int_kind(key, np.abs(value[part]).max())
        _note_kind(key_types, key, kind)
    return {
        "step": np.tile(np.array(steps, np.int64), k),
        "ts": np.tile(np.array(stamps, np.float64), k),
        "key": np.repeat(np.array(list(cols), dtype=object), n),
        "value": value, "nan": nan, "text": text,
        "is_text": np.repeat(np.array([kind == "str" for kind, _ in cols.values()]), n),
    }  # fmt: skip


def _arrays_by_value(
    steps: list[int], stamps: list[float], rows: list[dict[str, Any]], key_types: dict[str, str]
) -> dict[str, Any]:
    import numpy as np

    S, T, K, V, X = _long_lists(zip(steps, stamps, rows, strict=True), key_types, 0.0)
    value = np.array(V, np.float64)
    text = np.array(X, dtype=object)
    return {
        "step": np.array(S, np.int64), "ts": np.array(T, np.float64),
        "key": np.array(K, dtype=object), "value": value, "nan": np.isnan(value),
        "text": text, "is_text": np.array([x is not None for x in X], bool),
    }  # fmt: skip


_TWO63 = 2.0**63
_TWO53 = 2.0**53  # the largest ints a double holds exactly
_int_warned: set[tuple[str, str]] = set()  # (what, key): one warning per key and process


def _int_kind(key: str, top: float) -> str:
    """The kind of an int key whose largest magnitude (as a double) is ``top``."""
    if top >= _TWO63:
        return _wide_int(key)
    if top >= _TWO53:
        return _rounded_int(key)
    return "int"


def _rounded_int(key: str) -> str:
    """An int key with a value beyond 2**53: stored as the nearest double (the value column
    is DOUBLE), read back as an int that may differ in its last digits; one warning."""
    _warn_int(
        "rounded",
        key,
        f"log(): {key!r} holds an int beyond 2**53; it is stored as the nearest float64, so "
        "its last digits may differ when read back. Log it as a str to keep every digit.",
    )
    return "int"


def _wide_int(key: str) -> str:
    """An int key with a value beyond int64: stored (and read back) as floats, one warning."""
    _warn_int(
        "wide", key, f"log(): {key!r} holds an int beyond 64 bits; its values are stored as floats."
    )
    return "float"


def _warn_int(what: str, key: str, message: str) -> None:
    if (what, key) in _int_warned:
        return
    _int_warned.add((what, key))
    import warnings

    from .errors import ValueConversionWarning

    warnings.warn(message, ValueConversionWarning, stacklevel=3)


_KIND_OF = {frozenset([float]): "float", frozenset([int]): "int", frozenset([bool]): "bool",
            frozenset([str]): "str", frozenset([int, float]): "float"}  # fmt: skip


def _same_key_columns(rows: list[dict[str, Any]]) -> dict[str, tuple[str, list[Any]]] | None:
    """``{key: (kind, values)}`` when every row has the same keys and each key one kind of
    value; None otherwise (the caller goes value by value)."""
    if not rows:
        return None
    keys = list(rows[0])
    if set(map(len, rows)) != {len(keys)}:  # same length and every key of row 0: same keys
        return None
    out = {}
    for k in keys:
        try:
            vals = [r[k] for r in rows]
        except KeyError:
            return None
        kind = _KIND_OF.get(frozenset(map(type, vals)))
        if kind is None:
            return None
        out[k] = (kind, vals)
    return out


def write_parquet_atomic(table, path: Path, *, row_group_size: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """Write ``table`` to a temp name beside ``path`` and move it into place."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_size)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def new_writer_id() -> str:
    """A random writer id for segment names: 40 bits from nbtracker's own generator (seeded
    by the OS once per process and again in a forked child; never the user's ``random``;
    an ``os.urandom`` call each took ~0.4 ms here)."""
    from ._util import private_rng

    return f"{private_rng.getrandbits(40):010x}"


def segment_name(first: int, last: int, writer: str = "") -> str:
    tail = f"-{writer}" if writer else ""
    return f"h-{first:08d}-{last:08d}{tail}.parquet"


def _parse(name: str) -> tuple[int, int, str] | None:
    m = _NAME.match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3) or ""


def list_files(hdir: Path, writer: str | None = None) -> tuple[list[Path], list[Path], int]:
    """Return (effective files, superseded files, next segment number) in a history folder.

    Files of every writer (or of ``writer`` only) are listed; ranges are compared within
    each writer's files. The next number is the one after ``writer``'s last segment (after
    the highest of any writer when ``writer`` is None).
    """
    groups: dict[str, list[tuple[int, int, Path]]] = {}
    try:
        entries = list(os.scandir(hdir))
    except (FileNotFoundError, NotADirectoryError):
        return [], [], 1
    for e in entries:
        parsed = _parse(e.name)
        if parsed is not None and (writer is None or parsed[2] == writer):
            groups.setdefault(parsed[2], []).append((parsed[0], parsed[1], Path(e.path)))
    effective: list[Path] = []
    superseded: list[Path] = []
    top = 0
    for wid in sorted(groups):
        ranges = sorted(groups[wid], key=lambda r: (r[0], -r[1]))
        covered_to = 0
        for _first, last, path in ranges:
            if last <= covered_to:
                superseded.append(path)
            else:
                effective.append(path)
                covered_to = last
        top = max(top, covered_to)
    return effective, superseded, top + 1


def writers(hdir: Path) -> list[str]:
    """The writer ids that have files in a history folder (``""`` for old unnamed files)."""
    try:
        names = [e.name for e in os.scandir(hdir)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted({p[2] for p in map(_parse, names) if p is not None})


COMPACT_MEMORY_LIMIT = "192MB"


def compact_all(hdir: Path) -> list[Path]:
    """Compact each writer's files (see :func:`compact`); return the merged files."""
    out = []
    for wid in writers(hdir):
        merged = compact(hdir, writer=wid)
        if merged is not None:
            out.append(merged)
    return out


def compact(hdir: Path, *, recent_only: bool = False, writer: str = "") -> Path | None:
    """Merge one writer's history files into one file sorted by (key, step); return it.

    ``recent_only`` merges just the trailing single segments (what a live run wrote since
    its last merge), so merging during a long run costs the new data only, not the whole
    history again. The sort runs in DuckDB with a memory limit (it spills to disk past it),
    not in Python memory. Safe against kills at any point: the merged file is moved into
    place before the files it covers are deleted, and readers skip covered files.
    """
    files, superseded, _ = list_files(hdir, writer)
    for p in superseded:
        _unlink(p)
    if recent_only:
        tail: list[Path] = []
        for p in reversed(files):
            parsed = _parse(p.name)
            if parsed is None or parsed[0] != parsed[1]:
                break
            tail.append(p)
        files = tail[::-1]
    if not files:
        return None
    if len(files) == 1 and (recent_only or not _parquet.worth_compressing(files[0])):
        return files[0]  # (a big uncompressed file of ours is rewritten compressed below)
    first = _parse(files[0].name)[0]  # type: ignore[index]
    last = _parse(files[-1].name)[1]  # type: ignore[index]
    out = hdir / segment_name(first, last, writer)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    import duckdb

    from .catalog import DUCKDB_CONFIG

    con = duckdb.connect(":memory:", config={**DUCKDB_CONFIG, "memory_limit": COMPACT_MEMORY_LIMIT})
    try:
        listing = ", ".join(sql_literal(str(p)) for p in files)
        target = sql_literal(str(tmp))
        con.execute(
            f"COPY (SELECT step, ts, key, value, text FROM read_parquet([{listing}]) "
            f"ORDER BY key, step) TO {target} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)"
        )
    finally:
        con.close()
    os.replace(tmp, out)
    for p in files:
        if p != out:
            _unlink(p)
    return out


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass
