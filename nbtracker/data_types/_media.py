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

from .._paths import slug

MEDIA = "media"
IMAGES = f"{MEDIA}/images"
HTML = f"{MEDIA}/html"
TABLES = f"{MEDIA}/tables"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def table_path(key: str, step: int) -> str:
    return f"{TABLES}/{slug(key)}/{int(step):08d}.parquet"


def write_once(run_dir: Path, rel: str, data: bytes) -> None:
    """Write a content-addressed file unless it is already there (temp file + rename)."""
    path = run_dir / rel
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def resolve_in_run(run_dir: Path, rel: str) -> Path:
    """Turn a stored relative path into a real path, refusing anything outside the run."""
    base = Path(run_dir).resolve()
    path = (base / rel).resolve()
    if base != path and base not in path.parents:
        msg = f"media path {rel!r} points outside the run folder {base}"
        raise ValueError(msg)
    return path
