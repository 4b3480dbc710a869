"""Image: arrays, tensors, PIL images and files -> one PNG per distinct image, by content hash."""

from __future__ import annotations

import io
import json
import math
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from ..errors import ValueConversionWarning
from . import _media
from ._png import MODES, box_reduce, decode_png, encode_png

_warned: set[str] = set()
MAX_SIDE = 4096
KEEP_PIXELS_BYTES = 64 * 1024
MAX_PIXELS = 16_000_000
_MODE_CHANNELS = {v: k for k, v in MODES.items()}


class Image:
    """An image to log alone, in a list, or in a :class:`Table` cell.

    Parameters
    ----------
    data_or_path : array, tensor, PIL image, path or file object
        * numpy arrays of shape ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with C in 1-4
          (leading axes of size 1 are dropped). ``uint8`` is kept as it is; ``bool`` becomes
          0/255; other numbers follow W&B: values in [0, 1] are scaled by 255, values in
          [-1, 1] are mapped from -1..1 to 0..255, anything else is clipped to 0..255 (with
          a warning when values fall outside it). Floats are rounded, not truncated.
        * torch tensors (anything with ``.detach().cpu().numpy()``; 3-D tensors are read
          as ``(C, H, W)`` first, as torchvision lays them out), or objects with ``.numpy()``.
        * ``PIL.Image.Image`` objects, in any mode (converted to L, LA, RGB or RGBA).
        * a path or binary file object of any image format Pillow reads (PNG files need no
          Pillow).
    mode : {"L", "LA", "RGB", "RGBA"}, optional
        Convert to this mode (for example ``"L"`` turns RGB into grayscale).
    caption : str, optional
        Shown under the image (always as text, never as HTML).
    normalize : bool
        ``False`` keeps numeric values as they are (clipped to 0..255) instead of
        guessing their range.
    grouping, classes, boxes, masks, file_type
        Accepted for W&B compatibility and ignored (images are always stored as PNG).

    Images larger than 4096 pixels a side or 16 megapixels are down-scaled by an integer
    factor (box average), with a warning. The PNG bytes are deterministic, so the same
    pixels always give the same file name: an image logged twice is stored once.
    """

    _nbt_media = "image"

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: str | None = None,
        grouping: int | None = None,
        classes: Any = None,
        boxes: Any = None,
        masks: Any = None,
        file_type: str | None = None,
        normalize: bool = True,
    ) -> None:
        self._png: bytes | None = None
        self._sha: str | None = None
        self._file: Path | None = None
        self._meta: dict[str, Any] | None = None
        if isinstance(data_or_path, Image):
            self._pixels: Any = data_or_path._pixels_now()
            self._png, self._sha = data_or_path._png, data_or_path._sha
            caption = data_or_path.caption if caption is None else caption
        elif isinstance(data_or_path, (str, os.PathLike)) or hasattr(data_or_path, "read"):
            self._pixels = _from_bytes(_read_source(data_or_path))
        elif _is_pil(data_or_path):
            self._pixels = _from_pil(data_or_path)
            if caption is None and isinstance(data_or_path.info.get("caption"), str):
                caption = data_or_path.info["caption"]
        elif hasattr(data_or_path, "savefig"):  # a matplotlib figure
            buf = io.BytesIO()
            data_or_path.savefig(buf, format="png")
            self._pixels = _from_bytes(buf.getvalue())
        else:
            self._pixels = _from_array(data_or_path, normalize)
        if mode is not None:
            self._pixels = _convert_mode(self._pixels, mode)
            self._png = self._sha = None
        self._pixels = _limit_size(self._pixels)
        self.caption = None if caption is None else str(caption)

    @classmethod
    def _from_file(cls, path: Path, meta: dict[str, Any]) -> Image:
        """An image stored in a run folder; pixels are read on first use."""
        self = cls.__new__(cls)
        self._png, self._pixels, self._file = None, None, Path(path)
        self._sha = meta.get("sha256")
        self.caption = meta.get("caption")
        self._meta = meta
        return self

    @property
    def _span(self) -> tuple[int | None, int | None]:
        """Where the PNG sits in ``_file``: ``(offset, length)`` in a pack, else (None, None)."""
        meta = self._meta or {}
        off = meta.get("offset")
        return (None, None) if off is None else (int(off), int(meta.get("length") or 0))

    def file_path(self) -> Path:
        """The stored PNG file of an image read back from a run. A packed image is
        extracted beside its pack as ``<sha256>.png`` on first request."""
        if self._file is None:
            msg = "images='path' needs a table read back from a run (nbtracker.media.load_table)"
            raise ValueError(msg)
        if self._span[0] is None:
            return self._file
        path = self._file.parent / f"{self.sha256}.png"
        _media.write_once(path.parent, path.name, self.png_bytes())
        return path

    # -- pixels and bytes ------------------------------------------------------------------
    def _pixels_now(self) -> Any:
        if self._pixels is None:
            assert self._file is not None or self._png is not None
            self._pixels = _from_bytes(self.png_bytes())
        return self._pixels

    def to_numpy(self) -> Any:
        """The pixels as a ``uint8`` array, ``(H, W)`` or ``(H, W, C)`` (read-only)."""
        arr = self._pixels_now()
        arr.flags.writeable = False
        return arr

    def to_pil(self) -> Any:
        """A ``PIL.Image.Image`` (needs Pillow); the caption is kept in ``.info["caption"]``."""
        pil = _need_pil()
        img = pil.fromarray(self._pixels_now(), mode=self.mode)
        if self.caption is not None:
            img.info["caption"] = self.caption
        return img

    @property
    def image(self) -> Any:
        """The image as PIL (as ``wandb.Image.image``)."""
        return self.to_pil()

    def png_bytes(self) -> bytes:
        """The PNG file content (deterministic for the same pixels)."""
        if self._png is None:
            if self._file is not None and self._pixels is None:
                self._png = _media.read_bytes(self._file, *self._span)
            else:
                self._png = encode_png(self._pixels)
        return self._png

    @property
    def sha256(self) -> str:
        """Content hash (first 32 hex digits of the PNG's sha256), also its file name."""
        if self._sha is None:
            self._sha = _media.content_hash(self.png_bytes())
        return self._sha

    @property
    def width(self) -> int:
        if self._pixels is None and self._meta and self._meta.get("width") is not None:
            return int(self._meta["width"])
        return int(self._pixels_now().shape[1])

    @property
    def height(self) -> int:
        if self._pixels is None and self._meta and self._meta.get("height") is not None:
            return int(self._meta["height"])
        return int(self._pixels_now().shape[0])

    @property
    def mode(self) -> str:
        if self._pixels is None and self._meta and self._meta.get("mode"):
            return str(self._meta["mode"])
        arr = self._pixels_now()
        return MODES[1 if arr.ndim == 2 else arr.shape[2]]

    # -- storage ---------------------------------------------------------------------------
    def _store(self, run_dir: Path) -> dict[str, Any]:
        """Write the PNG into the run's media folder (once) and return its reference."""
        return store_images([self], run_dir)[id(self)]

    def _ref(self, where: tuple[str, int | None, int | None]) -> dict[str, Any]:
        rel, offset, length = where
        ref = {
            "_type": "image-file", "path": rel, "sha256": self.sha256, "format": "png",
            "width": self.width, "height": self.height, "mode": self.mode,
            "caption": self.caption,
        }  # fmt: skip
        if offset is not None:
            ref["offset"], ref["length"] = offset, length
        if self._pixels is not None and self._pixels.nbytes > KEEP_PIXELS_BYTES:
            # Once stored, keep only the (smaller) PNG, as wandb frees its pixels; they are
            # decoded again if asked for.
            self._meta = {"width": ref["width"], "height": ref["height"], "mode": ref["mode"]}
            self._pixels = None
        return ref

    def _to_history(self, run: Any, key: str, step: int) -> tuple[str, str]:
        try:
            ref = self._store(run.dir)
        except OSError as exc:  # disk full, permissions: warn, never stop training
            ref = {"_type": "image-file", **_media.storage_failed("image", key, step, exc)}
        return "image", json.dumps(ref, ensure_ascii=False)

    # -- display and comparison ------------------------------------------------------------
    def _repr_html_(self) -> str:
        from ._render import image_html

        return image_html(self, max_side=256)

    def __repr__(self) -> str:
        cap = f", caption={self.caption!r}" if self.caption is not None else ""
        return f"Image({self.width}x{self.height} {self.mode}{cap})"

    def same_pixels(self, other: Image) -> bool:
        """True when both images have the same mode, size and pixel values."""
        if self._sha is not None and self._sha == other._sha:
            return True
        a, b = self._pixels_now(), other._pixels_now()
        return a.shape == b.shape and bool((a == b).all())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return self.caption == other.caption and self.same_pixels(other)

    def __hash__(self) -> int:
        return hash((self.sha256, self.caption))


_POOL: Any = None
_WORKERS = 4
_POOL_MIN_BYTES = 4 << 20  # encode in threads past this many pixel bytes (zlib drops the GIL)
# Per run folder: where each stored image is, by sha256: (relative path, offset, length).
_INDEX: dict[str, dict[str, tuple[str, int | None, int | None]]] = {}
_INDEX_LOCK = threading.Lock()


def _encode_all(images: list[Image]) -> None:
    """Compute every image's PNG bytes and hash (in a few threads for big images)."""
    global _POOL
    todo = [img for img in images if img._sha is None]
    size = sum(img._pixels.nbytes for img in todo if img._pixels is not None)
    if len(todo) < 2 or size < _POOL_MIN_BYTES:
        for img in todo:
            img.sha256  # noqa: B018 - encodes and hashes
        return
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="nbtracker-media")
    chunks = [todo[i::_WORKERS] for i in range(_WORKERS)]
    list(_POOL.map(lambda c: [img.sha256 for img in c], chunks))


def _run_index(run_dir: Path) -> dict[str, tuple[str, int | None, int | None]]:
    """The images already stored in a run folder (built once per process from its files,
    so a resumed run does not store an image again)."""
    key = os.path.abspath(run_dir)
    index = _INDEX.get(key)
    if index is not None:
        return index
    index = {}
    folder = Path(run_dir) / _media.IMAGES
    try:
        names = sorted(e.name for e in os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    for name in names:
        rel = f"{_media.IMAGES}/{name}"
        if name.startswith(_media.PACK_PREFIX) and name.endswith(_media.PACK_SUFFIX):
            try:
                with open(folder / name, "rb") as f:
                    for off, n in _media.pack_contents(folder / name):
                        f.seek(off)
                        index.setdefault(_media.content_hash(f.read(n)), (rel, off, n))
            except OSError:
                continue
        elif name.endswith(".png") and len(name) == 36:
            index[name[:32]] = (rel, None, None)
    _INDEX[key] = index
    return index


def forget_run(run_dir: Path | str) -> None:
    """Drop a finished run's index of stored images (rebuilt from its files if needed)."""
    with _INDEX_LOCK:
        _INDEX.pop(os.path.abspath(run_dir), None)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def store_images(images: list[Image], run_dir: Path) -> dict[int, dict[str, Any]]:
    """Store many images and return ``{id(image): reference}``.

    Each distinct image (by PNG hash) is stored once per run. The images that are new are
    written together: one pack file for several, a ``<sha256>.png`` file for one alone.
    """
    unique = list({id(img): img for img in images}.values())
    _encode_all(unique)
    with _INDEX_LOCK:
        index = _run_index(run_dir)
        present: dict[str, bool] = {}
        new: dict[str, Image] = {}
        for img in unique:
            sha = img.sha256
            where = index.get(sha)
            if where is not None:
                rel = where[0]
                if where[1] is None:  # a file of its own: intact (not torn by a crash)?
                    if _size(os.path.join(run_dir, rel)) == len(img.png_bytes()):
                        continue
                else:
                    if rel not in present:  # the folder may have been removed meanwhile
                        present[rel] = os.path.exists(os.path.join(run_dir, rel))
                    if present[rel]:
                        continue
            new.setdefault(sha, img)
        if len(new) == 1:
            ((sha, img),) = new.items()
            rel = f"{_media.IMAGES}/{sha}.png"
            _media.write_once(run_dir, rel, img.png_bytes())
            index[sha] = (rel, None, None)
        elif new:
            blobs = [img.png_bytes() for img in new.values()]
            rel, offsets = _media.write_pack(run_dir, blobs)
            for sha, off, blob in zip(new, offsets, blobs, strict=True):
                index[sha] = (rel, off, len(blob))
        return {id(img): img._ref(index[img.sha256]) for img in unique}


class ImageList:
    """A list of images logged under one key (``log({"samples": [Image, ...]})``)."""

    def __init__(self, images: list[Image]) -> None:
        self.images = list(images)

    def _to_history(self, run: Any, key: str, step: int) -> tuple[str, str]:
        ref: dict[str, Any] = {"_type": "images/separated", "count": len(self.images)}
        try:
            refs = store_images(self.images, run.dir)
            ref["items"] = [refs[id(img)] for img in self.images]
        except OSError as exc:  # disk full, permissions: warn, never stop training
            ref.update(_media.storage_failed("images", key, step, exc), items=[])
        return "images", json.dumps(ref, ensure_ascii=False)


# -- conversion helpers --------------------------------------------------------------------
def _warn_once(what: str, msg: str) -> None:
    if what not in _warned:
        _warned.add(what)
        warnings.warn(msg, ValueConversionWarning, stacklevel=4)


def _need_pil() -> Any:
    try:
        from PIL import Image as PILImage
    except ImportError as exc:
        msg = (
            "this needs Pillow: pip install pillow (numpy arrays, PNG files and "
            "images='array' / 'image' work without it)"
        )
        raise ImportError(msg) from exc
    return PILImage


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "getbands")


def _read_source(src: Any) -> bytes:
    if hasattr(src, "read"):
        data = src.read()
        if not isinstance(data, bytes):
            msg = "Image() needs a binary file object (open the file with 'rb')"
            raise TypeError(msg)
        return data
    path = Path(os.fspath(src)).expanduser()
    if not path.is_file():
        msg = f"Image(): no image file at {str(path)!r}"
        raise FileNotFoundError(msg)
    return path.read_bytes()


def _from_bytes(data: bytes) -> Any:
    arr = decode_png(data)
    if arr is not None:
        return arr
    pil = _need_pil()
    try:
        img = pil.open(io.BytesIO(data))
        img.load()
    except Exception as exc:
        msg = f"Image(): could not read the image data ({exc})"
        raise ValueError(msg) from exc
    return _from_pil(img)


def _from_pil(img: Any) -> Any:
    import numpy as np

    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _from_array(np.asarray(img), True)
    elif mode not in _MODE_CHANNELS:
        img = img.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    return np.array(img, dtype=np.uint8)


def _to_numpy(data: Any) -> Any:
    import numpy as np

    if hasattr(data, "detach"):  # torch, duck-typed
        arr = np.asarray(_media.tensor_to_numpy(data))
        return arr, True
    if not isinstance(data, np.ndarray) and hasattr(data, "numpy"):  # TF eager tensors
        return np.asarray(data.numpy()), False
    if isinstance(data, (list, tuple)):
        return np.asarray(data), False
    if isinstance(data, np.ndarray):
        return data, False
    msg = (
        f"Image() cannot read a {type(data).__module__}.{type(data).__qualname__}; pass a "
        "numpy array, a torch tensor, a PIL image or a file path"
    )
    raise TypeError(msg)


def _from_array(data: Any, normalize: bool) -> Any:
    import numpy as np

    arr, chw_first = _to_numpy(data)
    shape = arr.shape
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3:
        c_last, c_first = arr.shape[2] <= 4, arr.shape[0] <= 4
        if c_first and (chw_first or not c_last):
            arr = np.moveaxis(arr, 0, 2)
        elif not c_last:
            arr = None
        if arr is not None and arr.shape[2] == 1:
            arr = arr[:, :, 0]
    if arr is None or arr.ndim not in (2, 3) or 0 in arr.shape:
        msg = (
            f"Image() needs an array of shape (H, W), (H, W, C) or (C, H, W) with C in 1-4; "
            f"got shape {tuple(shape)}"
        )
        raise ValueError(msg)
    kind = arr.dtype.kind
    if kind == "u" and arr.dtype.itemsize == 1:
        return np.ascontiguousarray(arr)
    if kind == "b":
        return arr.astype(np.uint8) * 255
    if kind not in "iuf":
        msg = f"Image() needs numbers or bools; got an array of dtype {arr.dtype}"
        raise TypeError(msg)
    arr = arr.astype(np.float64)
    if kind == "f" and not np.isfinite(arr).all():
        _warn_once(
            "nan", "Image(): NaN/inf pixels were replaced (NaN -> 0, inf -> 255, -inf -> 0)."
        )
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if normalize and 0 <= lo and hi <= 1:
        arr = arr * 255
    elif normalize and -1 <= lo and hi <= 1:
        arr = (arr + 1) * 127.5
    elif lo < 0 or hi > 255:
        _warn_once(
            "clip",
            f"Image(): values range from {lo:g} to {hi:g}; they were clipped to 0..255 "
            "(shown once per process). Scale them to 0..1 or 0..255 to keep them.",
        )
    return np.rint(np.clip(arr, 0, 255)).astype(np.uint8)


def _convert_mode(arr: Any, mode: str) -> Any:
    import numpy as np

    if mode not in _MODE_CHANNELS:
        msg = f"Image(mode={mode!r}): mode must be one of L, LA, RGB, RGBA"
        raise ValueError(msg)
    c = 1 if arr.ndim == 2 else arr.shape[2]
    want = _MODE_CHANNELS[mode]
    if c == want:
        return arr
    base = arr if arr.ndim == 3 else arr[:, :, None]
    color = base[:, :, : (1 if c <= 2 else 3)]
    alpha = base[:, :, c - 1 : c] if c in (2, 4) else np.full_like(base[:, :, :1], 255)
    if want in (1, 2) and color.shape[2] == 3:  # ITU-R 601-2 luma, as PIL's convert("L")
        color = np.rint(color @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[:, :, None]
    elif want in (3, 4) and color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    out = np.concatenate([color, alpha], axis=2) if want in (2, 4) else color
    return out[:, :, 0] if want == 1 else np.ascontiguousarray(out)


def _limit_size(arr: Any) -> Any:
    h, w = arr.shape[:2]
    if h <= MAX_SIDE and w <= MAX_SIDE and h * w <= MAX_PIXELS:
        return arr
    factor = max(
        math.ceil(h / MAX_SIDE), math.ceil(w / MAX_SIDE), math.ceil(math.sqrt(h * w / MAX_PIXELS))
    )
    if factor <= 1:
        return arr
    out = box_reduce(arr, factor)
    warnings.warn(
        f"Image(): a {w}x{h} image is larger than nbtracker stores ({MAX_SIDE} px a side, "
        f"{MAX_PIXELS // 1_000_000} megapixels); it was down-scaled {factor}x to "
        f"{out.shape[1]}x{out.shape[0]}. Resize it yourself to choose how.",
        ValueConversionWarning,
        stacklevel=3,
    )
    return out
