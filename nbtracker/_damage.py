"""Damaged history files: which Parquet files a reader must skip (torn, empty, foreign),
found cheaply (file ends, footers) and, when a query still fails, by reading each file.
The read layer (:mod:`nbtracker.query`) asks here; nothing here reads history values.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import StorageWarning


def _duck() -> Any:
    from .query import duck

    return duck()


def _fresh_duck() -> Any:
    from .query import fresh_duck

    return fresh_duck()


# -- damaged files ---------------------------------------------------------------------------
# A history file that cannot be read (a torn copy, a disk error, a hand edit) is skipped with
# one StorageWarning naming it; every other file and run reads on. Verdicts are cached by
# (path, size, mtime_ns): a read checks each new file once (a stat, its first and last
# bytes); damage only a read reveals is found when DuckDB fails on it (see blame()).
_MAGIC = b"PAR1"
_HISTORY_TYPES = {
    "step": "INT64",
    "ts": "DOUBLE",
    "key": "BYTE_ARRAY",
    "value": "DOUBLE",
    "text": "BYTE_ARRAY",
}
_verdicts: dict[str, tuple[int, int, str | None]] = {}  # path -> (size, mtime_ns, problem)
_deep_ok: set[tuple[str, int, int]] = set()  # files read end to end without an error


def _ends_problem(path: str) -> str | None:
    """What the first and last bytes of a Parquet file say is wrong with it, or None.

    Raises
    ------
    FileNotFoundError
        The file is gone (a compaction merged it): not a problem of the file.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 12:
                return "empty file" if size == 0 else f"too short for Parquet ({size} bytes)"
            head = fh.read(4)
            fh.seek(size - 8)
            tail = fh.read(8)
    except FileNotFoundError:
        raise
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head != _MAGIC or tail[4:] != _MAGIC:
        return "truncated, or not a Parquet file (no PAR1 mark at both ends)"
    if int.from_bytes(tail[:4], "little") > size - 12:
        return "damaged Parquet footer (longer than the file)"
    return None


def _schema_problems(paths: list[str]) -> dict[str, str]:
    """Footer problems of Parquet files (DuckDB parses the footers; no data is read):
    ``{path: problem}`` for each file whose footer is damaged or whose columns are not a
    history file's. One query for all; one per file only when that one fails."""
    import duckdb

    out: dict[str, str] = {}
    con = _duck()
    try:
        try:
            rows = con.execute(
                "SELECT file_name, name, type FROM parquet_schema(?)", [paths]
            ).fetchall()
        except duckdb.Error:
            if len(paths) == 1:
                raise
            for p in paths:
                out.update(_schema_problems([p]))
            return out
    except duckdb.Error as exc:
        if not os.path.exists(paths[0]):
            return out
        return {paths[0]: f"damaged Parquet footer ({_short(exc)})"}
    finally:
        con.close()
    types: dict[str, dict[str, str]] = {p: {} for p in paths}
    for f, name, typ in rows:
        types.setdefault(f, {})[name] = typ
    for p, cols in types.items():
        if any(cols.get(c) != t for c, t in _HISTORY_TYPES.items()):
            shown = ", ".join(f"{k} {v}" for k, v in cols.items() if v)
            out[p] = f"not a history file (its columns: {shown[:200]})"
    return out


def parquet_problem(path: str) -> str | None:
    """Why the history file at ``path`` cannot be read, or None. Reads no data: the
    ``PAR1`` marks at both ends, the footer's length and the footer's schema.

    Raises
    ------
    FileNotFoundError
        The file is gone (a compaction merged it): not a problem of the file.
    """
    return _ends_problem(path) or _schema_problems([path]).get(path)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:160] + "...") if len(text) > 160 else text or type(exc).__name__


def readable(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The history files of ``paths`` that can be read; each damaged one is left out with
    one :class:`~nbtracker.errors.StorageWarning` naming it (once per file version).

    Only the cheap check runs here (the ``PAR1`` marks and the footer's length: a torn or
    emptied file); a damage that only a read reveals is found by :func:`blame` when DuckDB
    fails on it, and remembered the same way."""
    out = []
    for p in map(str, paths):
        try:
            st = os.stat(p)
        except OSError:
            continue  # gone: a compaction merged it (the caller lists again if it must)
        seen = _verdicts.get(p)
        if seen is not None and seen[0] == st.st_size and seen[1] == st.st_mtime_ns:
            problem = seen[2]
        else:
            try:
                problem = _note(p, st, _ends_problem(p))
            except FileNotFoundError:
                continue
        if problem is None:
            out.append(p)
    return out


def _note(path: str, st: os.stat_result, problem: str | None) -> str | None:
    if len(_verdicts) > 500_000:  # files come and go with compaction: forget old verdicts
        _verdicts.clear()
        _deep_ok.clear()
    _verdicts[path] = (st.st_size, st.st_mtime_ns, problem)
    if problem is not None:
        warnings.warn(
            f"nbtracker skips the history file {path}: {problem}. The run's other files and "
            "every other run read as usual; `nbtracker repair` moves it aside.",
            StorageWarning,
            stacklevel=4,
        )
    return problem


def deep_problem(path: str) -> str | None:
    """Like :func:`parquet_problem`, and then reads every column of every row group (for
    damage a footer check cannot see). Good files are remembered."""
    problem = parquet_problem(path)
    if problem is not None:
        return problem
    st = os.stat(path)
    ident = (path, st.st_size, st.st_mtime_ns)
    if ident in _deep_ok:
        return None
    import duckdb

    con = _fresh_duck()
    try:
        # hash() makes DuckDB decode every value (min/max could come from the footer's stats)
        con.execute(
            "SELECT count(*), sum(hash(step, ts, key, value, text)) FROM read_parquet(?)", [path]
        ).fetchall()
    except duckdb.Error as exc:
        return f"unreadable ({_short(exc)})"
    finally:
        con.close()
    _deep_ok.add(ident)
    return None


def blame(files: Sequence[str], exc: BaseException, *, ours: bool = True) -> bool:
    """After a read of ``files`` failed with ``exc``: True when the read should simply be
    tried again because of a file: one is gone (a compaction merged it meanwhile), or one
    is damaged in a way the cheap check missed (it is skipped from now on, with a
    warning). False when no file is to blame (the caller raises).

    ``ours=False`` (the user's SQL over the ``history`` view): the files are checked only
    when the error names one or looks like a storage error, never for a typo or a bad cast.
    """
    if any(not os.path.exists(f) for f in files):
        return True
    text = str(exc).split("\nLINE ")[0]  # not the echo of the statement (our file list)
    named = [f for f in files if f in text]
    storage = type(exc).__name__ in ("Error", "IOException") or any(
        w in text for w in ("arquet", "TProtocol", "magic bytes")
    )
    if not named and not ours and not storage:
        return False
    problems = _find_damage(named) if named else {}
    if not problems and (ours or storage):
        problems = _find_damage([f for f in files if f not in named])
    for f, problem in problems.items():
        try:
            _note(f, os.stat(f), problem)
        except FileNotFoundError:
            pass
    return bool(problems)


def _find_damage(files: list[str]) -> dict[str, str]:
    """``{file: problem}`` of the damaged ``files``: footers first (one query for all),
    then, if they are all sound, every file's data."""
    problems = _schema_problems(files) if len(files) > 1 else {}
    if not problems:
        for f in files:
            try:
                problem = deep_problem(f)
            except FileNotFoundError:
                continue
            if problem is not None:
                problems[f] = problem
    return problems


# -- history ---------------------------------------------------------------------------------
