"""Where logged media live inside a run folder, and how files get there (content-addressed).

Layout under ``<run>/media/``::

    images/<sha256[:32]>.png                 an image logged alone (PNG bytes hash)
    images/pack-<random>.pngs                the new images of one log() call, PNG files
                                             end to end (a table's 1,000 images: one file)
    images/<sha256[:32]>.png                 also: a packed image extracted on request
                                             (``images="path"``)
    html/<sha256[:32]>.html                  one file per distinct Html value
    tables/<slug(key)>/<step:08d>.parquet     one file per logged version of a table

Every path stored in a reference is relative to the run folder and uses ``/``. A packed
image's reference adds ``offset`` and ``length`` (its bytes inside the pack). Each distinct
image (by the sha256 of its PNG bytes) is stored once per run: later references point to
the copy already there.

Why packs: creating a file costs ~25 us on an idle disk but up to ~1 ms on a busy one
(measured here while another process deleted files), so 1,000 files per logged table
took a second; one pack per call takes milliseconds. Packs are written to a temp name
and moved into place, so a crash never leaves a torn one.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import secrets
import struct
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


def _ensure_folder(parent: str, *, again: bool = False) -> None:
    """Make a media folder, once per process (``again``: it was removed meanwhile)."""
    if again or parent not in _made_dirs:
        os.makedirs(parent, exist_ok=True)
        _made_dirs.add(parent)


def write_once(run_dir: Path | str, rel: str, data: bytes) -> None:
    """Write a content-addressed file unless an intact copy is already there.

    One exclusive create for a new file (no stat first); an existing file is kept when its
    size matches. No temp file: a torn write (crash) leaves a file of the wrong size, which
    the size check rewrites next time; readers only follow references written after it.
    """
    path = os.path.join(run_dir, rel)
    parent = os.path.dirname(path)
    _ensure_folder(parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if os.stat(path).st_size == len(data):
            return
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:  # the folder was removed after we made it
        _ensure_folder(parent, again=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


PACK_PREFIX = "pack-"
PACK_SUFFIX = ".pngs"


def write_pack(run_dir: Path | str, blobs: list[bytes]) -> tuple[str, list[int]]:
    """Write PNG files end to end into a new pack (temp name, then rename); return its
    relative path and the offset of each blob."""
    rel = f"{IMAGES}/{PACK_PREFIX}{secrets.token_hex(8)}{PACK_SUFFIX}"
    path = os.path.join(run_dir, rel)
    parent = os.path.dirname(path)
    _ensure_folder(parent)
    offsets, pos = [], 0
    for b in blobs:
        offsets.append(pos)
        pos += len(b)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        f = open(tmp, "wb")  # noqa: SIM115
    except FileNotFoundError:  # the folder was removed after we made it
        _ensure_folder(parent, again=True)
        f = open(tmp, "wb")  # noqa: SIM115
    with f:
        f.writelines(blobs)  # no joined copy: a pack of big images stays one copy in memory
    os.replace(tmp, path)
    return rel, offsets


def read_bytes(path: Path | str, offset: int | None = None, length: int | None = None) -> bytes:
    """A stored file's bytes, or ``length`` bytes at ``offset`` of a pack."""
    with open(path, "rb") as f:
        if offset is None:
            return f.read()
        f.seek(int(offset))
        data = f.read(int(length or 0))
    if len(data) != int(length or 0):
        msg = f"{path} is shorter than the image reference says (offset {offset}, length {length})"
        raise OSError(msg)
    return data


def pack_contents(path: Path | str) -> list[tuple[int, int]]:
    """``[(offset, length), ...]`` of the PNG files in a pack, found by walking their chunks
    (used to rebuild a run's image index after a restart)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _walk_pngs(data)


def _walk_pngs(data: Any) -> list[tuple[int, int]]:
    out, pos, n = [], 0, len(data)
    while pos + 8 <= n and data[pos : pos + 8] == b"\x89PNG\r\n\x1a\n":
        start, pos = pos, pos + 8
        while pos + 8 <= n:
            (size,) = struct.unpack(">I", data[pos : pos + 4])
            tag = data[pos + 4 : pos + 8]
            pos += 12 + size
            if tag == b"IEND":
                break
        if pos > n:
            break
        out.append((start, pos - start))
    return out


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
