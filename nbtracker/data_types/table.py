"""Table: rows of numbers, strings, bools, images and lists, with checked column types."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .image import Image, _is_pil

# Column types. A column takes the type of its first non-empty cell; later cells must match
# ("number" holds ints and floats together). "mixed" is used only with allow_mixed_types.
KINDS = ("number", "bool", "str", "image", "list", "dict", "html", "mixed")
IMAGE_MODES = ("pil", "array", "image", "path")
_DTYPE_KINDS = {int: "number", float: "number", bool: "bool", str: "str", list: "list",
                dict: "dict", Image: "image"}  # fmt: skip


class Table:
    """A table of rows, logged with ``run.log({"predictions": table})``.

    Parameters
    ----------
    columns : list of str, optional
        Column names (unique). Default ``["Input", "Output", "Expected"]`` as in W&B, or
        ``"Column 1"...`` when ``data`` rows have another width.
    data : list of rows, 2-D array or DataFrame, optional
        Rows to add (each is checked as by :meth:`add_data`).
    rows : list of rows, optional
        Same as ``data`` (older W&B name).
    dataframe : pandas.DataFrame, optional
        Build the table from a frame. PIL images in cells become :class:`Image`; a frame
        returned by :meth:`get_dataframe` or :func:`nbtracker.media.load_table` carries its
        column types in ``df.attrs["nbtracker_types"]``, so arrays or paths in its image
        column become images again and ``Table(dataframe=t.get_dataframe()) == t``.
    dtype : list, optional
        Column types to enforce from the start: Python types (``int``, ``float``, ``str``,
        ``bool``, ``list``, ``dict``, ``Image``) or names from ``KINDS``; None leaves a
        column to be inferred.
    allow_mixed_types : bool
        Let a column hold values of different types (stored as JSON text) instead of
        raising ``TypeError``.
    optional, log_mode
        Accepted for W&B compatibility; every column may hold None and each ``log()`` stores
        the table as it is at that moment.

    Cells may hold numbers (Python, numpy), strings, bools, None, :class:`Image` (or PIL
    images), :class:`Html`, lists / tuples / 1-D arrays and dicts of plain values.
    """

    _nbt_media = "table"

    def __init__(
        self,
        columns: Sequence[Any] | None = None,
        data: Any = None,
        rows: Any = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: Any = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = None,
    ) -> None:
        if dataframe is None and _is_dataframe(data):
            dataframe, data = data, None
        if data is None:
            data = rows
        self._mixed = bool(allow_mixed_types)
        self.data: list[list[Any]] = []
        if dataframe is not None:
            self._init_from_dataframe(dataframe, columns)
            return
        if data is not None and hasattr(data, "tolist") and not isinstance(data, list):
            data = data.tolist()  # a 2-D numpy array
        data = [list(r) for r in data] if data is not None else []
        if columns is None:
            width = len(data[0]) if data else 3
            columns = (
                ["Input", "Output", "Expected"]
                if width == 3
                else [f"Column {i + 1}" for i in range(width)]
            )
        self._set_columns(columns)
        if dtype is not None:
            self._set_dtypes(dtype)
        for row in data:
            self.add_data(*row)

    def _set_columns(self, columns: Sequence[Any]) -> None:
        if isinstance(columns, str):
            msg = "Table(columns=...) needs a list of names, not one string"
            raise TypeError(msg)
        names = [c if isinstance(c, str) else str(c) for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"Table column names must be unique; repeated: {dupes}"
            raise ValueError(msg)
        self.columns: list[str] = names
        self._types: list[str | None] = [None] * len(names)

    def _set_dtypes(self, dtype: Any) -> None:
        dtypes = dtype if isinstance(dtype, (list, tuple)) else [dtype] * len(self.columns)
        if len(dtypes) != len(self.columns):
            msg = f"dtype has {len(dtypes)} entries for {len(self.columns)} columns"
            raise ValueError(msg)
        for j, d in enumerate(dtypes):
            try:
                self._types[j] = None if d is None else _kind_of_dtype(d)
            except ValueError:
                msg = f"dtype {d!r} for column {self.columns[j]!r} is not one of {KINDS}"
                raise ValueError(msg) from None

    # -- adding data -----------------------------------------------------------------------
    def add_data(self, *data: Any) -> None:
        """Append one row; raises (and adds nothing) when its width or a type is wrong."""
        if len(data) != len(self.columns):
            msg = f"add_data got {len(data)} values for {len(self.columns)} columns {self.columns}"
            raise ValueError(msg)
        row, types = self._check(list(data), list(self._types), len(self.data))
        self.data.append(row)
        self._types = types

    def add_column(self, name: str, data: Sequence[Any], optional: bool = False) -> None:
        """Add a column; ``data`` needs one value per existing row."""
        name = name if isinstance(name, str) else str(name)
        if name in self.columns:
            msg = f"Table already has a column named {name!r}"
            raise ValueError(msg)
        values = list(data.tolist() if hasattr(data, "tolist") else data)
        if self.data and len(values) != len(self.data):
            msg = f"add_column({name!r}) got {len(values)} values for {len(self.data)} rows"
            raise ValueError(msg)
        if not self.data and not self.columns:
            self.data = [[] for _ in values]
        elif not self.data and values:
            msg = f"add_column({name!r}): the table has no rows yet; add the other columns first"
            raise ValueError(msg)
        kind: str | None = None
        out = []
        for i, v in enumerate(values):
            cells, (kind,) = self._check_cells([v], [kind], [name], i)
            out.append(cells[0])
        self.columns.append(name)
        self._types.append(kind)
        for row, v in zip(self.data, out, strict=False):
            row.append(v)

    def add_computed_columns(self, fn: Callable[[int, dict[str, Any]], Mapping[str, Any]]) -> None:
        """Add columns computed per row: ``fn(index, {column: value}) -> {new column: value}``."""
        results = [
            dict(fn(i, dict(zip(self.columns, row, strict=False))))
            for i, row in enumerate(self.data)
        ]
        names = list(dict.fromkeys(k for r in results for k in r))
        for name in names:
            self.add_column(name, [r.get(name) for r in results])

    def _check(
        self, row: list[Any], types: list[str | None], index: int
    ) -> tuple[list[Any], list[str | None]]:
        return self._check_cells(row, types, self.columns, index)

    def _check_cells(
        self, row: list[Any], types: list[str | None], names: list[str], index: int
    ) -> tuple[list[Any], list[str | None]]:
        out = []
        types = list(types)
        for j, v in enumerate(row):
            v, kind = _cell(v, names[j])
            want = types[j]
            if kind is not None and want != kind and want != "mixed":
                if want is None:
                    types[j] = kind
                elif self._mixed and "image" not in (kind, want) and "html" not in (kind, want):
                    types[j] = "mixed"
                else:
                    shown = repr(v)
                    shown = shown if len(shown) <= 40 else shown[:37] + "..."
                    msg = (
                        f"column {names[j]!r} holds {want} values (from its first non-empty "
                        f"cell), but row {index} has a {kind}: {shown}. Convert the value, "
                        "or create the table with allow_mixed_types=True."
                    )
                    raise TypeError(msg)
            out.append(v)
        return out, types

    def cast(self, col_name: str, dtype: Any, optional: bool = False) -> str:
        """Fix a column's type (as ``wandb.Table.cast``): ``int``, ``float``, ``str``,
        ``bool``, ``list``, ``dict``, ``Image``, a name from ``KINDS`` or an example value.

        Cells already in the column must fit (raises ``TypeError`` naming the first row
        that does not, and changes nothing); rows added later are checked against it.
        ``optional`` is accepted for compatibility: every column may hold None.
        Returns the column's type name.
        """
        if col_name not in self.columns:
            msg = f"no column {col_name!r}; the table has {self.columns}"
            raise KeyError(msg)
        kind = _kind_of_dtype(dtype)
        j = self.columns.index(col_name)
        for i, row in enumerate(self.data):
            have = _cell(row[j], col_name)[1]
            if have is not None and have != kind and kind != "mixed":
                msg = (
                    f"cannot cast column {col_name!r} to {kind}: row {i} holds a {have} "
                    f"({row[j]!r:.40})"
                )
                raise TypeError(msg)
        self._types[j] = kind
        return kind

    # -- reading ---------------------------------------------------------------------------
    @property
    def column_types(self) -> dict[str, str | None]:
        """``{column: type}`` with types from ``KINDS`` (None while a column is empty)."""
        return dict(zip(self.columns, self._types, strict=False))

    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """The values of one column; ``convert_to="numpy"`` gives an array (images stacked)."""
        if name not in self.columns:
            msg = f"no column {name!r}; the table has {self.columns}"
            raise KeyError(msg)
        j = self.columns.index(name)
        values = [row[j] for row in self.data]
        if convert_to is None:
            return values
        if convert_to != "numpy":
            msg = f"convert_to must be None or 'numpy', not {convert_to!r}"
            raise ValueError(msg)
        import numpy as np

        if self._types[j] == "image":
            arrays = [None if v is None else v.to_numpy() for v in values]
            try:
                return np.stack(arrays)
            except (ValueError, TypeError):
                out = np.empty(len(arrays), dtype=object)
                out[:] = arrays
                return out
        return np.array(values)

    def get_index(self) -> list[int]:
        return list(range(len(self.data)))

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """Yield ``(index, row)`` pairs, as ``wandb.Table.iterrows``."""
        yield from enumerate(self.data)

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def get_dataframe(self, images: str = "pil") -> Any:
        """The table as a pandas DataFrame.

        Parameters
        ----------
        images : {"pil", "array", "image", "path"}
            What image cells become: PIL images (caption in ``.info["caption"]``), uint8
            arrays, :class:`Image` objects, or the absolute path of the stored PNG (only
            for tables read back from a run).

        The frame keeps the column types in ``df.attrs["nbtracker_types"]`` so that
        ``Table(dataframe=df)`` rebuilds an equal table.
        """
        import pandas as pd

        if images not in IMAGE_MODES:
            msg = f"images must be one of {IMAGE_MODES}, not {images!r}"
            raise ValueError(msg)
        cols: dict[str, Any] = {}
        for j, name in enumerate(self.columns):
            values = [row[j] for row in self.data]
            if self._types[j] == "image":
                values = [None if v is None else _image_out(v, images) for v in values]
            elif self._types[j] == "html":
                values = [None if v is None else v.data for v in values]
            cols[name] = pd.Series(values, dtype=object if _keep_objects(self._types[j]) else None)
        df = pd.DataFrame(cols, columns=self.columns)
        df.attrs["nbtracker_types"] = {
            c: t for c, t in zip(self.columns, self._types, strict=False)
        }
        return df

    def _init_from_dataframe(self, df: Any, columns: Sequence[Any] | None) -> None:
        self._set_columns(list(df.columns) if columns is None else columns)
        hinted = dict(getattr(df, "attrs", {}).get("nbtracker_types") or {})
        import numpy as np

        for j, name in enumerate(self.columns):
            kind = hinted.get(name)
            if kind in KINDS:
                self._types[j] = kind
        col_values = []
        for j, c in enumerate(df.columns):
            series = df[c]
            is_float = series.dtype.kind == "f"
            kind = self._types[j]
            vals = []
            for v in series.tolist():
                if not is_float and _is_missing(v):
                    v = None
                elif kind == "image" and v is not None and not isinstance(v, Image):
                    v = Image(v)
                elif kind == "html" and isinstance(v, str):
                    from .html import Html

                    v = Html(v)
                elif isinstance(v, np.ndarray) and kind in (None, "list"):
                    v = v.tolist()
                vals.append(v)
            col_values.append(vals)
        if not col_values:
            self.data = [[] for _ in range(len(df))]
            return
        for i, row in enumerate(zip(*col_values, strict=False)):
            cells, self._types = self._check(list(row), self._types, i)
            self.data.append(cells)

    # -- comparison and display ------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Same columns and cells; images compare pixel-equal, missing numbers (None, NaN) equal."""
        if not isinstance(other, Table):
            return NotImplemented
        if self.columns != other.columns or len(self.data) != len(other.data):
            return False
        for a, b in zip(self._types, other._types, strict=False):
            if a is not None and b is not None and a != b:
                return False
        return all(
            _same(x, y)
            for r1, r2 in zip(self.data, other.data, strict=False)
            for x, y in zip(r1, r2, strict=False)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Table({len(self.data)} rows x {len(self.columns)} columns: {self.columns})"

    def _repr_html_(self) -> str:
        from ._render import table_html

        return table_html(self.columns, self._types, self.data)

    # -- storage ---------------------------------------------------------------------------
    def _to_history(self, run: Any, key: str, step: int) -> tuple[str, str]:
        from ._logged import write_logged

        return "table", json.dumps(write_logged(self, Path(run.dir), key, step), ensure_ascii=False)

    def to_parquet(self, path: str | Path, images: str = "png") -> None:
        """Write a standalone Parquet file (zstd).

        ``images="png"`` embeds each image as PNG bytes (struct field ``png``), so the file
        needs nothing else; ``images="path"`` stores the absolute path of each image's file
        (images read back from a run keep their stored PNG; others are written beside the
        Parquet file in ``<name>_images/``). :meth:`from_parquet` reads both back.
        """
        from ._arrow import write_export

        write_export(self, Path(path), images)

    @classmethod
    def from_parquet(cls, path: str | Path) -> Table:
        """Read a file written by :meth:`to_parquet` or logged into a run folder."""
        from ._arrow import read_table_file

        return read_table_file(Path(path))


def _kind_of_dtype(d: Any) -> str:
    """A column type from ``KINDS`` for a Python type, a type name or an example value."""
    if isinstance(d, str) and d in KINDS:
        return d
    if isinstance(d, type):
        if issubclass(d, bool):
            return "bool"
        for typ, kind in _DTYPE_KINDS.items():
            if issubclass(d, typ):
                return kind
        if getattr(d, "_nbt_media", None) == "html":
            return "html"
    elif d is not None and not isinstance(d, str):  # an example value (a string is a name)
        kind = _cell(d, "dtype")[1]
        if kind is not None:
            return kind
    msg = f"dtype {d!r} is not one of {KINDS} (or int, float, str, bool, list, dict, Image)"
    raise ValueError(msg)


def _is_dataframe(x: Any) -> bool:
    return type(x).__name__ == "DataFrame" and hasattr(x, "columns") and hasattr(x, "attrs")


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    return type(v).__name__ in ("NAType", "NaTType")


def _keep_objects(kind: str | None) -> bool:
    return kind in ("image", "list", "dict", "mixed", "html")


def _image_out(img: Image, mode: str) -> Any:
    if mode == "image":
        return img
    if mode == "array":
        return img.to_numpy()
    if mode == "pil":
        return img.to_pil()
    return str(img.file_path())


_FAST: dict[type, str | None] = {
    type(None): None, bool: "bool", int: "number", float: "number", str: "str"
}  # fmt: skip


def _cell(v: Any, column: str) -> tuple[Any, str | None]:
    """Normalise one cell value and return it with its type (None for an empty cell)."""
    kind = _FAST.get(type(v), "")
    if kind != "":
        return v, kind
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0:  # numpy scalars
        x = v.item()
        kind = _FAST.get(type(x), "")
        if kind != "":
            return x, kind
    if isinstance(v, bool):
        return v, "bool"
    if isinstance(v, str):
        return v, "str"
    if isinstance(v, (int, float)):
        if type(v) not in (int, float):  # numpy.float64, IntEnum, ...
            v = int(v) if isinstance(v, int) else float(v)
        return v, "number"
    if isinstance(v, Image):
        return v, "image"
    if _is_pil(v):
        return Image(v), "image"
    if getattr(v, "_nbt_media", None) == "html":
        return v, "html"
    kind = type(v).__module__
    if kind == "numpy":
        if getattr(v, "ndim", None) == 0:
            v = v.item()
            return _cell(v, column)
        if hasattr(v, "tolist"):
            return _plain_list(v.tolist(), column), "list"
    if isinstance(v, numbers.Real):
        return (bool(v), "bool") if type(v).__name__ == "bool_" else (float(v), "number")
    if isinstance(v, (list, tuple)):
        return _plain_list(list(v), column), "list"
    if isinstance(v, Mapping):
        _json_check(v, column)
        return dict(v), "dict"
    if hasattr(v, "detach"):  # torch scalars and tensors, duck-typed
        import numpy as np

        from ._media import tensor_to_numpy

        arr = np.asarray(tensor_to_numpy(v))
        return _cell(arr.item() if arr.ndim == 0 else arr, column)
    msg = (
        f"column {column!r}: a table cell cannot hold a {type(v).__module__}."
        f"{type(v).__qualname__}; use numbers, strings, bools, None, Image, lists or dicts"
    )
    raise TypeError(msg)


def _plain_list(v: list[Any], column: str) -> list[Any]:
    _json_check(v, column)
    return v


def _json_check(v: Any, column: str) -> None:
    from .._util import to_jsonable

    try:
        json.dumps(to_jsonable(v, warn=False))
    except (TypeError, ValueError) as exc:
        msg = f"column {column!r}: list and dict cells must hold plain values ({exc})"
        raise TypeError(msg) from exc
    if any(
        isinstance(x, Image) or _is_pil(x) for x in (v.values() if isinstance(v, Mapping) else v)
    ):
        msg = f"column {column!r}: put images in their own column, not inside a list or dict"
        raise TypeError(msg)


def _same(x: Any, y: Any) -> bool:
    if _is_missing(x) and _is_missing(y):
        return True
    if isinstance(x, Image) and isinstance(y, Image):  # pixel-equal (arrays carry no caption)
        return x.same_pixels(y)
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    try:
        return bool(x == y)
    except ValueError:  # arrays
        return False
