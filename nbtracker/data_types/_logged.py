"""Writing one logged version of a Table into the run folder, through DuckDB alone.

Why not pyarrow here: the first use of pyarrow imports pandas (0.3 s to over 1 s on a busy
2-core machine, holding the GIL), and logging a table is often the first thing in a
script that would need it. DuckDB is already loaded by the writer thread, scans numpy
arrays without pandas, and writes the same Parquet layout that :mod:`._arrow` documents
and reads back (column types, image structs, ``b"nbtracker"`` schema metadata).

User strings never become SQL text unescaped: column names are attached with the
expression API (``.alias(name)``), values travel as numpy arrays, and the two literals
in the ``COPY`` statement (the file name and the metadata JSON) are quoted by doubling
single quotes.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from .._util import dumps, sql_literal
from ..errors import StorageWarning
from . import _media
from .image import store_images

_IMAGE_FIELDS = (("path", "VARCHAR"), ("sha256", "VARCHAR"), ("width", "INTEGER"),
                 ("height", "INTEGER"), ("mode", "VARCHAR"), ("caption", "VARCHAR"),
                 ("offset", "BIGINT"), ("length", "BIGINT"))  # fmt: skip


class _Columns:
    """numpy arrays to scan (internal names ``c<j>...``) and one output expression each."""

    def __init__(self) -> None:
        import duckdb

        self.duckdb = duckdb
        self.arrays: dict[str, Any] = {}
        self.exprs: list[Any] = []

    def col(self, name: str, values: Any) -> Any:
        self.arrays[name] = values
        return self.duckdb.ColumnExpression(name)

    def typed(self, name: str, values: Any, sql_type: str) -> Any:
        return self.col(name, values).cast(self.duckdb.sqltype(sql_type))

    def masked(self, expr: Any, name: str, valid: list[bool] | None) -> Any:
        """``expr`` where the row's cell is present, NULL where it is None."""
        if valid is None:
            return expr
        import numpy as np

        d = self.duckdb
        return d.CaseExpression(self.col(name + "v", np.array(valid, bool)), expr)

    def add(self, expr: Any, alias: str) -> None:
        self.exprs.append(expr.alias(alias))


def _validity(vals: list[Any]) -> list[bool] | None:
    valid = [v is not None for v in vals]
    return None if all(valid) else valid


def _number(cols: _Columns, j: int, vals: list[Any], valid: list[bool] | None) -> Any:
    import numpy as np

    name = f"c{j}"
    present = [v for v in vals if v is not None]
    if all(type(v) is int for v in present):
        try:
            arr = np.array([0 if v is None else v for v in vals], np.int64)
            return cols.typed(name, arr, "BIGINT")
        except OverflowError:
            pass
    arr = np.array([math.nan if v is None else float(v) for v in vals], np.float64)
    expr = cols.typed(name, arr, "DOUBLE")
    nan = np.isnan(arr)
    if valid is not None:
        nan &= np.array(valid, bool)
    if nan.any():  # DuckDB reads NaN in a numpy array as NULL: put the NaNs back
        d = cols.duckdb
        nan_value = d.ConstantExpression(math.nan).cast(d.sqltype("DOUBLE"))
        expr = d.CaseExpression(cols.col(name + "n", nan), nan_value).otherwise(expr)
    return expr


def _image(cols: _Columns, j: int, vals: list[Any], stored: dict[int, dict[str, Any]]) -> Any:
    import numpy as np

    d = cols.duckdb
    refs = [None if v is None else stored[id(v)] for v in vals]
    fields = []
    for field, sql_type in _IMAGE_FIELDS:
        values = [None if r is None else r.get(field) for r in refs]
        if sql_type == "INTEGER":
            arr = np.array([0 if v is None else v for v in values], np.int32)
        elif sql_type == "BIGINT":  # null for an image in a file of its own
            arr = np.array([-1 if v is None else v for v in values], np.int64)
        else:
            arr = np.array(values, dtype=object)
        d_name = f"c{j}_{field}"
        cols.arrays[d_name] = arr
        expr = d.ColumnExpression(d_name).cast(d.sqltype(sql_type))
        if sql_type == "BIGINT":
            expr = d.CaseExpression(expr >= d.ConstantExpression(0), expr)
        fields.append(expr.alias(field))
    return d.FunctionExpression("struct_pack", *fields)  # field names from the aliases


def _arrays(table: Any, run_dir: Path) -> _Columns:
    import numpy as np

    cols = _Columns()
    for j, kind in enumerate(table._types):
        vals = [row[j] for row in table.data]
        valid = _validity(vals)
        name = f"c{j}"
        if kind == "number":
            expr = _number(cols, j, vals, valid)
        elif kind == "bool":
            expr = cols.typed(name, np.array([bool(v) for v in vals], bool), "BOOLEAN")
        elif kind == "str":
            expr = cols.typed(name, np.array(vals, dtype=object), "VARCHAR")
        elif kind == "html":
            text = [None if v is None else v.data for v in vals]
            expr = cols.typed(name, np.array(text, dtype=object), "VARCHAR")
        elif kind in ("list", "dict", "mixed"):
            text = [None if v is None else dumps(v) for v in vals]
            expr = cols.typed(name, np.array(text, dtype=object), "VARCHAR")
        elif kind == "image":
            stored = store_images([v for v in vals if v is not None], run_dir)
            expr = _image(cols, j, vals, stored)
        else:  # a column with no value yet
            expr = cols.col(name, np.array([None] * len(vals), dtype=object))
            valid = None
        if kind in ("number", "bool", "image"):
            expr = cols.masked(expr, name, valid)
        cols.add(expr, table.columns[j])
    return cols


def write_logged(table: Any, run_dir: Path, key: str, step: int) -> dict[str, Any]:
    """Store one version of a logged table in the run folder; return its history ref.

    Images are written first (once per content hash), then the Parquet file under a temp
    name, moved into place. A storage error becomes one warning and an ``error`` entry in
    the reference; the training loop goes on.
    """
    rel = _media.table_path(key, step)
    ref = {"_type": "table-file", "path": rel, "key": key, "step": int(step),
           "nrows": len(table.data), "ncols": len(table.columns),
           "columns": list(table.columns), "column_types": list(table._types)}  # fmt: skip
    try:
        path = run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            _write(table, run_dir, {"key": key, "step": int(step)}, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a value DuckDB refused: leave no half-written file
            raise
        os.replace(tmp, path)
        ref["size"] = path.stat().st_size
    except OSError as exc:
        warnings.warn(
            f"nbtracker could not store table {key!r} at step {step} ({exc}); your code "
            "continues, this version of the table is missing.",
            StorageWarning,
            stacklevel=4,
        )
        ref["error"] = str(exc)
    return ref


def _write(table: Any, run_dir: Path, meta: dict[str, Any], dest: Path) -> None:
    import duckdb

    from ..catalog import DUCKDB_CONFIG
    from ._arrow import META_KEY, table_meta

    meta_json = table_meta(table, "run", meta)
    if not table.columns:  # DuckDB cannot write a file without columns; pyarrow can
        import pyarrow as pa
        import pyarrow.parquet as pq

        empty = pa.schema([], metadata={META_KEY: meta_json}).empty_table()
        pq.write_table(empty, dest, compression="zstd")
        return
    cols = _arrays(table, run_dir)
    con = duckdb.connect(":memory:", config=dict(DUCKDB_CONFIG))
    try:
        con.register("src", cols.arrays)
        con.view("src").project(*cols.exprs).create_view("out")
        try:
            con.execute(
                f"COPY out TO {sql_literal(str(dest))} (FORMAT parquet, COMPRESSION zstd, "
                f"KV_METADATA {{nbtracker: {sql_literal(meta_json)}}})"
            )
        except duckdb.IOException as exc:
            raise OSError(str(exc).split("\n")[0]) from exc
    finally:
        con.close()
