"""Images and histograms logged per step, as the run panel's step sliders show them
(thumbnails as ``data:`` URIs, bin counts), kept bounded per key."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..media import MEDIA_KINDS, media_kind

MAX_MEDIA_ENTRIES = 100  # per key; older entries are thinned (every other one dropped)
MEDIA_THUMB = 96  # px, longest side of an image thumbnail in the panel
MAX_MEDIA_IMAGES = 8  # thumbnails per step for a logged list of images
_MAX_CAPTION = 200


def _thumb(rdir: Path, ref: dict[str, Any]) -> dict[str, Any] | None:
    if not ref.get("path"):
        return None
    off = ref.get("offset")
    span = (None, None) if off is None else (int(off), int(ref.get("length") or 0))
    hit = _thumb_of_file(str(rdir), str(ref["path"]), *span)
    if hit is None:
        return None
    cap = ref.get("caption")
    return {**hit, "caption": None if cap is None else str(cap)[:_MAX_CAPTION]}


@functools.lru_cache(maxsize=512)
def _thumb_of_file(
    rdir: str, rel: str, offset: int | None = None, length: int | None = None
) -> dict[str, Any] | None:
    """Thumbnail of a stored image (files and packs are never rewritten: safe to cache)."""
    from ..data_types import _media
    from ..data_types._render import thumbnail_uri
    from ..data_types.image import Image

    try:
        img = Image._from_file(
            _media.resolve_in_run(Path(rdir), rel), {"offset": offset, "length": length}
        )
        src = thumbnail_uri(img, MEDIA_THUMB)
        w, h = int(img.width), int(img.height)
    except (OSError, ValueError):
        return None
    zoom = min(MEDIA_THUMB / max(w, h, 1), 4.0)  # tiny images drawn larger (pixelated)
    return {"src": src, "w": max(1, round(w * zoom)), "h": max(1, round(h * zoom))}


def media_entry(rdir: Path, step: int, ref: dict[str, Any]) -> dict[str, Any] | None:
    """What the panel's slider shows at one step: a histogram's bins and counts, or image
    thumbnails as ``data:`` URIs (never a path)."""
    kind = media_kind(ref)
    if kind == "histogram":
        bins, vals = ref.get("bins") or [], ref.get("values") or []
        if len(bins) != len(vals) + 1:
            return None
        return {"step": int(step), "bins": bins, "values": vals}
    if kind == "image":
        th = _thumb(rdir, ref)
        return None if th is None else {"step": int(step), "images": [th]}
    if kind == "images":
        items = list(ref.get("items") or [])
        thumbs = [th for it in items[:MAX_MEDIA_IMAGES] if (th := _thumb(rdir, it))]
        return {"step": int(step), "images": thumbs, "count": len(items)}
    return None


class MediaTracks:
    """Per media key, a bounded list of entries by step (recent ones denser: when a key has
    more than ``cap`` entries, every other older entry is dropped), plus what is new since
    the last :meth:`take` (``{key: {"kind", "add": [entries], "drop": [steps]}}``)."""

    def __init__(self, cap: int = MAX_MEDIA_ENTRIES) -> None:
        self.cap = max(4, cap)
        self.tracks: dict[str, dict[str, Any]] = {}
        self.outbox: dict[str, dict[str, Any]] = {}

    def add(self, key: str, kind: str, entry: dict[str, Any]) -> None:
        tr = self.tracks.get(key)
        if tr is None or tr["kind"] != kind:
            tr = self.tracks[key] = {"kind": kind, "entries": []}
        ents: list[dict[str, Any]] = tr["entries"]
        step = entry["step"]
        dropped: list[int] = []
        if ents and ents[-1]["step"] >= step:
            ents[:] = [e for e in ents if e["step"] < step]
        ents.append(entry)
        if len(ents) > self.cap:
            old = ents[:-1]
            dropped = [e["step"] for e in old[1::2]]
            tr["entries"] = [*old[::2], entry]
        ob = self.outbox.get(key)
        if ob is None or ob["kind"] != kind:
            ob = self.outbox[key] = {"kind": kind, "add": [], "drop": []}
        gone = set(dropped)
        ob["add"] = [e for e in ob["add"] if e["step"] not in gone and e["step"] < step] + [entry]
        ob["drop"] += dropped

    def take(self) -> dict[str, dict[str, Any]]:
        out, self.outbox = self.outbox, {}
        return out

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            k: {"kind": tr["kind"], "entries": list(tr["entries"])} for k, tr in self.tracks.items()
        }

    def meta(self) -> dict[str, dict[str, Any]]:
        """Small synced state: kind, number of entries kept and the last step, per key."""
        return {
            k: {"kind": tr["kind"], "n": len(tr["entries"]),
                "last": tr["entries"][-1]["step"] if tr["entries"] else None}
            for k, tr in self.tracks.items()
        }  # fmt: skip

    def load_history(self, rdir: Path, key_types: dict[str, str]) -> None:
        """Fill from a run folder's flushed history (a finished run, or a followed one:
        called again, it adds only the steps after the last one kept)."""
        from .. import media

        for key, kt in key_types.items():
            if not str(kt).startswith("media:") or kt[6:] not in MEDIA_KINDS:
                continue
            try:
                refs = media.history_refs(rdir, key)
            except (OSError, ValueError):
                continue
            tr = self.tracks.get(key)
            if tr and tr["entries"]:
                last = tr["entries"][-1]["step"]
                refs = [r for r in refs if r[0] > last]
            if len(refs) > self.cap:  # evenly spaced, the last one always kept
                n = len(refs)
                idx = sorted({round(i * (n - 1) / (self.cap - 1)) for i in range(self.cap)})
                refs = [refs[i] for i in idx]
            for step, ref in refs:
                kind = media_kind(ref)
                entry = media_entry(rdir, step, ref) if kind else None
                if entry is not None:
                    self.add(key, kind, entry)  # type: ignore[arg-type]
