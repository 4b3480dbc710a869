"""Static HTML for tables and images: the fallback wherever no widget JavaScript runs.

Everything a user wrote (column names, strings, captions, HTML cells, list contents) goes
through :func:`html.escape`, so ``<img src=x onerror=alert(1)>`` shows as text. Images are
inlined as ``data:image/png;base64`` thumbnails (never larger than ``thumb`` pixels a side).
The widget engineer may reuse :func:`table_html`, :func:`thumbnail_uri` and :func:`cell_html`.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from typing import Any

from ._png import box_reduce, encode_png

STYLE = (
    "<style>.nbt-table{border-collapse:collapse;font:12px/1.4 system-ui,sans-serif}"
    ".nbt-table th,.nbt-table td{border:1px solid #ddd;padding:2px 6px;vertical-align:top;"
    "text-align:left}.nbt-table th{background:#f4f4f4}.nbt-table td.nbt-num{text-align:right;"
    "font-variant-numeric:tabular-nums}.nbt-table img{image-rendering:pixelated;display:block}"
    ".nbt-cap{color:#555;font-size:11px;max-width:12em}.nbt-more{color:#666;font:12px "
    "system-ui,sans-serif;margin:4px 0}</style>"
)


def thumbnail_png(img: Any, max_side: int = 64) -> bytes:
    """PNG bytes of the image, box-reduced to at most ``max_side`` pixels a side."""
    if max(img.width, img.height) <= max_side:
        return img.png_bytes()
    factor = math.ceil(max(img.width, img.height) / max_side)
    return encode_png(box_reduce(img.to_numpy(), factor))


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def thumbnail_uri(img: Any, max_side: int = 64) -> str:
    """A ``data:`` URI of the image, box-reduced to at most ``max_side`` pixels a side."""
    return png_uri(thumbnail_png(img, max_side))


def image_html(img: Any, max_side: int = 64, *, scale_to: int | None = None) -> str:
    """An ``<img>`` (plus its escaped caption) for one image."""
    w, h = img.width, img.height
    zoom = min((scale_to or max_side) / max(w, h), 4.0)  # tiny images drawn larger, pixelated
    dw, dh = max(1, round(w * zoom)), max(1, round(h * zoom))
    cap = escape(img.caption) if img.caption else ""
    tag = (
        f'<img src="{thumbnail_uri(img, max_side)}" width="{dw}" height="{dh}" '
        f'alt="{cap}" title="{cap}">'
    )
    return tag + (f'<div class="nbt-cap">{cap}</div>' if cap else "")


def _short(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def cell_html(value: Any, kind: str | None) -> str:
    """The inside of one ``<td>``, escaped."""
    if value is None:
        return ""
    if kind == "image":
        return image_html(value, 64)
    if kind == "html":
        return escape(_short(value.data))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return escape(f"{value:.6g}")
    if isinstance(value, (list, dict)):
        return escape(_short(json.dumps(value, ensure_ascii=False, default=str)))
    return escape(_short(str(value)))


def table_html(
    columns: list[str],
    types: list[str | None],
    rows: list[list[Any]],
    *,
    max_rows: int = 20,
    total: int | None = None,
    title: str | None = None,
    style: bool = True,
) -> str:
    """The first ``max_rows`` rows as an HTML ``<table class="nbt-table">``."""
    total = len(rows) if total is None else total
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows[:max_rows]:
        tds = []
        for v, kind in zip(row, types, strict=False):
            cls = ' class="nbt-num"' if kind == "number" else ""
            tds.append(f"<td{cls}>{cell_html(v, kind)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    shown = min(max_rows, len(rows))
    more = (
        f'<div class="nbt-more">{shown} of {total} rows, {len(columns)} columns</div>'
        if total > shown
        else f'<div class="nbt-more">{total} rows, {len(columns)} columns</div>'
    )
    cap = f"<caption>{escape(title)}</caption>" if title else ""
    return (
        (STYLE if style else "")
        + f'<table class="nbt-table">{cap}<thead><tr>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table>"
        + more
    )
