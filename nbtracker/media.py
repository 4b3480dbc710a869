"""Reading logged media back: tables as pandas DataFrames, images as PIL images or arrays.

How tables are found. Each ``run.log({key: table})`` writes one Parquet file (zstd) per
version, ``<run>/media/tables/<slug(key)>/<step:08d>.parquet``, before the history row that
references it. So the folder itself is the index of versions: these functions list it and
need neither the history files nor the catalog, and they see a live run's tables at once
(even before its history is flushed). Each file names its key and step in its metadata.
The history ``text`` column (and the summary) hold the same reference as JSON,
``{"_type": "table-file", "path": "media/tables/...", "nrows", "ncols", "columns", ...}``;
any function here accepts such a reference (dict or JSON string) instead of a key.

Images come back in the form ``images=`` asks for:

* ``"pil"`` (default): ``PIL.Image.Image`` objects (needs Pillow), caption in
  ``.info["caption"]``;
* ``"array"``: ``uint8`` numpy arrays, ``(H, W)`` or ``(H, W, C)``;
* ``"image"``: :class:`nbtracker.Image` objects that read their file on first use (cheap);
* ``"path"``: the absolute path of each stored PNG (a string); an image stored in a pack
  (the images of one ``log()`` call share one file) is extracted beside it as
  ``<sha256>.png`` on first request.

The frame keeps the column types in ``df.attrs["nbtracker_types"]``, so
``Table(dataframe=load_table(...))`` equals the logged table (same columns, values, and
pixel-equal images). To write a table elsewhere as Parquet use :func:`export_table`
(images embedded as PNG bytes, or as paths); ``Table.from_parquet`` reads it back. The
logged files are themselves plain Parquet: image cells are structs whose ``path`` is
relative to the run folder.

``Api().run(path).table(key, step=None)`` and ``run.table(key)`` are thin wrappers over
:func:`load_table` with the run's folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._paths import slug
from .data_types import _media
from .data_types._arrow import read_frame, read_meta
from .errors import NbtrackerError

__all__ = [
    "TableNotFound", "export_table", "history_refs", "list_tables", "load_histograms",
    "load_image", "load_images", "load_table", "read_table", "table_path", "table_versions",
]  # fmt: skip


class TableNotFound(NbtrackerError, LookupError):
    """No table was logged under that key (or at that step) in this run."""


def _ref(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            out = json.loads(value)
        except ValueError:
            return None
        return out if isinstance(out, dict) else None
    return None


def table_versions(run_dir: str | os.PathLike[str], key: str) -> list[tuple[int, Path]]:
    """``[(step, parquet path), ...]`` for every logged version of ``key``, by step."""
    folder = Path(run_dir) / _media.TABLES / slug(key)
    out = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for e in entries:
        name = e.name
        if name.endswith(".parquet") and name[:-8].isdigit():
            out.append((int(name[:-8]), Path(e.path)))
    return sorted(out)


def list_tables(run_dir: str | os.PathLike[str]) -> dict[str, list[int]]:
    """``{key: [steps...]}`` for every table logged in the run."""
    base = Path(run_dir) / _media.TABLES
    out: dict[str, list[int]] = {}
    try:
        folders = [Path(e.path) for e in os.scandir(base) if e.is_dir()]
    except FileNotFoundError:
        return {}
    for folder in sorted(folders):
        versions = _versions_in(folder)
        if not versions:
            continue
        try:
            key = read_meta(versions[-1][1]).get("key", folder.name)
        except (OSError, ValueError):
            key = folder.name
        out[str(key)] = [s for s, _ in versions]
    return out


def _versions_in(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for e in os.scandir(folder):
        if e.name.endswith(".parquet") and e.name[:-8].isdigit():
            out.append((int(e.name[:-8]), Path(e.path)))
    return sorted(out)


def table_path(run_dir: str | os.PathLike[str], key_or_ref: Any, step: int | None = None) -> Path:
    """The Parquet file of one logged version (the latest when ``step`` is None).

    Useful to query a logged table directly, e.g. with DuckDB's ``read_parquet``.
    """
    run_dir = Path(run_dir)
    ref = _ref(key_or_ref)
    if ref is not None:
        if ref.get("_type") != "table-file" or "path" not in ref:
            msg = f"not a table reference: {ref.get('_type')!r}"
            raise ValueError(msg)
        path = _media.resolve_in_run(run_dir, ref["path"])
        if not path.exists():
            msg = f"the table file {ref['path']} is missing from {run_dir}"
            raise TableNotFound(msg)
        return path
    key = str(key_or_ref)
    versions = table_versions(run_dir, key)
    if not versions:
        known = sorted(list_tables(run_dir))
        msg = f"no table logged under {key!r} in {run_dir}; tables logged: {known or 'none'}"
        raise TableNotFound(msg)
    if step is None:
        return versions[-1][1]
    for s, p in versions:
        if s == step:
            return p
    steps = [s for s, _ in versions]
    msg = f"table {key!r} was not logged at step {step}; it was logged at steps {steps}"
    raise TableNotFound(msg)


def load_table(
    run_dir: str | os.PathLike[str],
    key_or_ref: Any,
    step: int | None = None,
    *,
    images: str = "pil",
) -> Any:
    """A logged table as a pandas DataFrame (the latest version unless ``step`` is given).

    Parameters
    ----------
    run_dir : path
        The run's folder (``run.dir``).
    key_or_ref : str or dict
        The key the table was logged under, or its history/summary reference.
    step : int, optional
        Which version (the step it was logged at). Default: the latest.
    images : {"pil", "array", "image", "path"}
        What image cells become (see the module docstring).

    Raises
    ------
    TableNotFound
        Nothing was logged under that key or at that step (the message lists what was).
    """
    path = table_path(run_dir, key_or_ref, step)
    return read_frame(path, images=images, base=Path(run_dir))


def read_table(run_dir: str | os.PathLike[str], key_or_ref: Any, step: int | None = None) -> Any:
    """A logged table as an :class:`nbtracker.Table` (images read lazily)."""
    from .data_types import Table

    return Table(dataframe=load_table(run_dir, key_or_ref, step, images="image"))


def export_table(
    run_dir: str | os.PathLike[str],
    key_or_ref: Any,
    dest: str | os.PathLike[str],
    step: int | None = None,
    *,
    images: str = "png",
) -> Path:
    """Write a logged table to a standalone Parquet file (see ``Table.to_parquet``)."""
    dest = Path(dest)
    read_table(run_dir, key_or_ref, step).to_parquet(dest, images=images)
    return dest


def load_image(run_dir: str | os.PathLike[str], ref: Any, *, images: str = "pil") -> Any:
    """One logged image (a history/summary reference, or its relative path) as asked."""
    from .data_types.image import Image
    from .data_types.table import _image_out

    meta = _ref(ref) or {"path": str(ref)}
    if meta.get("_type") == "images/separated":
        msg = "this reference holds a list of images; use load_images()"
        raise ValueError(msg)
    path = _media.resolve_in_run(Path(run_dir), meta["path"])
    if not path.exists():
        msg = f"image file {meta['path']} is missing from {run_dir}"
        raise FileNotFoundError(msg)
    return _image_out(Image._from_file(path, meta), images)


def load_images(run_dir: str | os.PathLike[str], ref: Any, *, images: str = "pil") -> list[Any]:
    """A logged list of images (``log({"samples": [Image, ...]})``), or one image as a list."""
    meta = _ref(ref)
    if meta is not None and meta.get("_type") == "images/separated":
        return [load_image(run_dir, item, images=images) for item in meta["items"]]
    return [load_image(run_dir, ref, images=images)]


def history_refs(run_dir: str | os.PathLike[str], key: str) -> list[tuple[int, dict[str, Any]]]:
    """``[(step, reference), ...]`` of a media key (image, images, histogram, table, html)
    from the run's flushed history files, by step; the way to walk an image or a
    histogram logged every step (a step slider, a histogram-over-time view)."""
    import pyarrow.parquet as pq

    from . import query
    from .store import history_segments

    files = query.readable(history_segments(run_dir))  # a damaged file: skipped, warned
    out: dict[int, dict[str, Any]] = {}
    for f in files:
        tbl = pq.read_table(f, columns=["step", "key", "text"], filters=[("key", "=", key)])
        for step, text in zip(
            tbl.column("step").to_pylist(), tbl.column("text").to_pylist(), strict=True
        ):
            ref = _ref(text)
            if ref is not None and "_type" in ref:
                out[int(step)] = ref
    return sorted(out.items())


def load_histograms(run_dir: str | os.PathLike[str], key: str) -> Any:
    """A histogram logged per step as a long DataFrame: ``step, bin_start, bin_end, count``."""
    import pandas as pd

    rows = []
    for step, ref in history_refs(run_dir, key):
        if ref.get("_type") != "histogram":
            continue
        bins, counts = ref["bins"], ref["values"]
        rows.extend((step, bins[i], bins[i + 1], counts[i]) for i in range(len(counts)))
    return pd.DataFrame(rows, columns=["step", "bin_start", "bin_end", "count"])


# -- references to logged media (history/summary values) ----------------------------
def parse_ref(value: Any) -> dict[str, Any] | None:
    """A media reference (``{"_type": ...}``) from a history/summary value, else None."""
    if isinstance(value, dict):
        return value if "_type" in value else None
    if value.__class__ is str and value.startswith('{"_type"'):
        import json

        try:
            out = json.loads(value)
        except ValueError:
            return None
        return out if isinstance(out, dict) else None
    return None


def media_label(ref: dict[str, Any]) -> str:
    """A short label for a media reference: ``table 1000×13 (step 0)``, ``image 28×28``."""
    kind = str(ref.get("_type"))
    if kind == "table-file":
        return (
            f"table {ref.get('nrows', '?')}×{ref.get('ncols', '?')} (step {ref.get('step', '?')})"
        )
    if kind == "image-file":
        if ref.get("width") and ref.get("height"):
            return f"image {ref['width']}×{ref['height']}"
        return "image"
    if kind == "images/separated":
        n = ref.get("count", len(ref.get("items") or []))
        return f"{n} images"
    if kind == "histogram":
        return f"histogram ({len(ref.get('values') or [])} bins)"
    if kind == "html-file" or kind == "html":
        return "html"
    return kind[:40]


MEDIA_KINDS = ("image", "images", "histogram")  # what the panel shows per step


def media_kind(ref: dict[str, Any]) -> str | None:
    return {"image-file": "image", "images/separated": "images", "histogram": "histogram"}.get(
        str(ref.get("_type"))
    )
