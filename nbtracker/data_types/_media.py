"""Where logged media live inside a run folder, and how files get there (content-addressed).

Layout under ``<run>/media/``::

    images/<sha256[:32]>.png                 one file per distinct image (PNG bytes hash)
    html/<sha256[:32]>.html                  one file per distinct Html value
    tables/<slug(key)>/<step:08d>.parquet     one file per logged version of a table

Every path stored in a reference is relative to the run folder and uses ``/``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .._paths import slug

MEDIA = "media"
IMAGES = f"{MEDIA}/images"
HTML = f"{MEDIA}/html"
TABLES = f"{MEDIA}/tables"
_made_dirs: set[str] = set()  # folders this process created (skip repeated makedirs)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def table_path(key: str, step: int) -> str:
    return f"{TABLES}/{slug(key)}/{int(step):08d}.parquet"


def write_once(run_dir: Path | str, rel: str, data: bytes) -> None:
    """Write a content-addressed file unless an intact copy is already there.

    One exclusive create for a new file (no stat first); an existing file is kept when its
    size matches. No temp file: a torn write (crash) leaves a file of the wrong size, which
    the size check rewrites next time; readers only follow references written after it.
    """
    path = os.path.join(run_dir, rel)
    parent = os.path.dirname(path)
    if parent not in _made_dirs:
        os.makedirs(parent, exist_ok=True)
        _made_dirs.add(parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if os.stat(path).st_size == len(data):
            return
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:  # the folder was removed after we made it
        _made_dirs.discard(parent)
        os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def resolve_in_run(run_dir: Path, rel: str) -> Path:
    """Turn a stored relative path into a real path, refusing anything outside the run."""
    base = Path(run_dir).resolve()
    path = (base / rel).resolve()
    if base != path and base not in path.parents:
        msg = f"media path {rel!r} points outside the run folder {base}"
        raise ValueError(msg)
    return path


def storage_failed(what: str, key: str, step: int, exc: OSError) -> dict[str, str]:
    """Warn (once per place) that a media file could not be written; the run goes on."""
    import warnings

    from ..errors import StorageWarning

    warnings.warn(
        f"nbtracker could not store {what} {key!r} at step {step} ({exc}); your code "
        "continues, this value is missing from the run.",
        StorageWarning,
        stacklevel=5,
    )
    return {"error": str(exc)}


def tensor_to_numpy(t: Any) -> Any:
    """A torch tensor (duck-typed) as a numpy array: detached, on the CPU; bfloat16 and
    other dtypes numpy lacks go through ``.float()`` first."""
    t = t.detach().cpu()
    try:
        return t.numpy()
    except TypeError:
        return t.float().numpy()
