"""Tables <-> Arrow / Parquet: the file layout, standalone exports, and reading both back.

Versions logged into a run are written by :mod:`._logged` (through DuckDB, so logging
never waits for pyarrow and pandas to import) in this same layout.

Every table file carries its column types in the Parquet schema metadata under
``b"nbtracker"``: ``{"format": "nbtracker.table", "version": 1, "key", "step", "images",
"columns": [{"name", "type"}]}``. Column storage by type:

========  =================================================================================
number    int64 when every value is an int, else float64
bool      bool
str       string
html      string (the HTML source; shown as text or in a sandboxed frame, never injected)
list,     string holding JSON
dict,
mixed
image     struct ``{path, sha256, width, height, mode, caption}``; ``images`` is ``"run"``
          (``path`` relative to the run folder, for tables logged into a run, plus
          ``offset, length`` for an image inside a pack, else null), ``"path"``
          (absolute paths) or ``"png"`` (a ``png`` binary field instead of ``path``)
========  =================================================================================
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from .._util import dumps
from . import _media
from .image import Image

META_KEY = b"nbtracker"


def _image_type(images: str):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    first = {"png": ("png", pa.binary()), "index": ("idx", pa.int64())}.get(
        images, ("path", pa.string())
    )
    return pa.struct(
        [first, ("sha256", pa.string()),
         ("width", pa.int32()), ("height", pa.int32()), ("mode", pa.string()),
         ("caption", pa.string())]
    )  # fmt: skip


def table_meta(table: Any, images: str, meta: dict[str, Any]) -> str:
    """The JSON stored under ``b"nbtracker"`` in a table file's metadata."""
    cols = [{"name": n, "type": t} for n, t in zip(table.columns, table._types, strict=False)]
    full = {"format": "nbtracker.table", "version": 1, **meta, "images": images, "columns": cols}
    return json.dumps(full, ensure_ascii=False)


def to_arrow(table: Any, images: str, base: Path | None, meta: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Build the Arrow table; ``images`` is "path" (PNG files under ``base``), "png" or
    "index" (the row number, for views of a table in memory). Versions logged into a run
    are written by :mod:`._logged` instead."""
    import pyarrow as pa

    arrays = []
    for j, kind in enumerate(table._types):
        vals = [row[j] for row in table.data]
        if kind == "number":
            try:
                arr = pa.array(vals)
                if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
                    arr = pa.array(vals, pa.float64())
            except (pa.ArrowInvalid, OverflowError):
                arr = pa.array([None if v is None else float(v) for v in vals], pa.float64())
        elif kind == "bool":
            arr = pa.array(vals, pa.bool_())
        elif kind == "str":
            arr = pa.array(vals, pa.string())
        elif kind == "html":
            arr = pa.array([None if v is None else v.data for v in vals], pa.string())
        elif kind in ("list", "dict", "mixed"):
            arr = pa.array([None if v is None else dumps(v) for v in vals], pa.string())
        elif kind == "image":
            if images == "index":  # in memory (TableView): the cell points into table.data
                cells = [None if v is None else {"idx": i, "width": v.width, "height": v.height,
                         "mode": v.mode, "caption": v.caption} for i, v in enumerate(vals)]  # fmt: skip
            else:
                cells = [None if v is None else _image_cell(v, images, base) for v in vals]
            arr = pa.array(cells, _image_type(images))
        else:
            arr = pa.nulls(len(vals))
        arrays.append(arr)
    schema = pa.schema(
        [pa.field(name, a.type) for name, a in zip(table.columns, arrays, strict=False)],
        metadata={META_KEY: table_meta(table, images, meta)},
    )
    if not arrays:
        return schema.empty_table()
    return pa.Table.from_arrays(arrays, schema=schema)


def _image_cell(img: Image, images: str, base: Path | None) -> dict[str, Any]:
    cell = {"sha256": img.sha256, "width": img.width, "height": img.height, "mode": img.mode,
            "caption": img.caption}  # fmt: skip
    if images == "png":
        cell["png"] = img.png_bytes()
    else:  # "path"
        if img._file is not None and img._span[0] is None:  # a PNG file of its own
            cell["path"] = str(img._file)
        else:
            assert base is not None
            rel = f"{img.sha256}.png"
            _media.write_once(base, rel, img.png_bytes())
            cell["path"] = str((base / rel).resolve())
    return cell


def write_export(table: Any, path: Path, images: str) -> None:
    import pyarrow.parquet as pq

    if images not in ("png", "path"):
        msg = f"images must be 'png' or 'path', not {images!r}"
        raise ValueError(msg)
    base = path.parent / f"{path.stem}_images" if images == "path" else None
    tbl = to_arrow(table, images, base, {})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, path, compression="zstd")


def read_meta(path: Path, con: Any = None) -> dict[str, Any]:
    """A table file's ``nbtracker`` metadata. With a DuckDB connection ``con`` it is read
    by DuckDB (no pyarrow import: the table widget); else by pyarrow (~1 ms, no
    connection to open)."""
    if con is not None:
        rows = con.execute(
            "SELECT value FROM parquet_kv_metadata(?) WHERE key = ?", [str(path), META_KEY]
        ).fetchall()
        raw = rows[0][0] if rows else None
    else:
        import pyarrow.parquet as pq

        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    if raw is None:
        msg = f"{path} is not a table file written by nbtracker"
        raise ValueError(msg)
    return json.loads(raw)


def arrow_to_frame(tbl: Any, meta: dict[str, Any], base: Path | None, images: str):  # type: ignore[no-untyped-def]
    """Arrow table (as written by :func:`to_arrow`) -> pandas DataFrame with typed cells."""
    import pandas as pd

    from .table import IMAGE_MODES, _image_out

    if images not in IMAGE_MODES:
        msg = f"images must be one of {IMAGE_MODES}, not {images!r}"
        raise ValueError(msg)
    stored = meta.get("images", "run")
    types = {c["name"]: c["type"] for c in meta["columns"]}
    data: dict[str, Any] = {}
    for name, col in zip(tbl.column_names, tbl.columns, strict=False):
        kind = types.get(name)
        if kind == "image":
            cells = []
            resolved: dict[str, Path] = {}  # a pack's images share one path: resolve it once
            for cell in col.to_pylist():
                if cell is None:
                    cells.append(None)
                    continue
                if stored == "png":
                    img = Image(io.BytesIO(cell.pop("png")), caption=cell.get("caption"))
                    if images == "path":
                        msg = "images='path': this file embeds PNG bytes; use 'pil' or 'array'"
                        raise ValueError(msg)
                else:
                    p = cell["path"]
                    full = resolved.get(p)
                    if full is None:
                        in_run = stored == "run" and base
                        full = resolved[p] = _media.resolve_in_run(base, p) if in_run else Path(p)
                    img = Image._from_file(full, cell)
                cells.append(_image_out(img, images))
            data[name] = pd.Series(cells, dtype=object)
        elif kind in ("list", "dict", "mixed"):
            data[name] = pd.Series(
                [None if v is None else json.loads(v) for v in col.to_pylist()], dtype=object
            )
        elif kind is None:
            data[name] = pd.Series([None] * len(col), dtype=object)
        else:
            data[name] = col.to_pandas()
    df = pd.DataFrame(data, columns=list(tbl.column_names))
    df.attrs["nbtracker_types"] = {n: types.get(n) for n in tbl.column_names}
    return df


def read_frame(path: Path, images: str = "pil", base: Path | None = None):  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    meta = read_meta(path)
    if base is None and meta.get("images") == "run":
        base = path.parents[3]  # <run>/media/tables/<key>/<step>.parquet
    return arrow_to_frame(pq.read_table(path), meta, base, images)


def read_table_file(path: Path) -> Any:
    from .table import Table

    return Table(dataframe=read_frame(path, images="image"))
