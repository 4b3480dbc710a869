"""The workspace's static snapshot (GitHub, nbviewer, nbconvert, a reopened notebook): the
runs table as HTML (colour swatches, every string escaped) and the overlay charts as one
PNG. Hidden by the live view through ``[data-nbt-fallback="<uid>"]`` like the run panel's.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from typing import Any

from ._fallback import HIDE_DEAD_WIDGET, duration, fmt

_TD = 'style="padding:1px 8px 1px 0;text-align:left;white-space:nowrap"'
MAX_ROWS = 100


def _cell(col: str, v: Any) -> str:
    if v is None:
        return ""
    if col == "created":
        try:
            return _dt.datetime.fromtimestamp(float(v)).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            return ""
    if col == "runtime":
        return duration(float(v))
    text = fmt(v)
    return text if len(text) <= 60 else text[:59] + "…"


def render(
    uid: str,
    title: str,
    total: int,
    cols: list[str],
    rows: list[list[Any]],
    runs: dict[str, dict[str, Any]],
    png: str | None,
) -> str:
    safe_uid = "".join(c for c in uid if c in "0123456789abcdef")
    head = "".join(f"<th {_TD}>{escape(h)}</th>" for h in ["", "run", *cols])
    body = []
    for r in rows[:MAX_ROWS]:
        rid, cells = str(r[0]), r[1:]
        info = runs.get(rid, {})
        color = str(info.get("color", "#888"))
        if not (color.startswith("#") and all(c in "0123456789abcdefABCDEF" for c in color[1:])):
            color = "#888"
        swatch = (
            f'<span style="display:inline-block;width:10px;height:10px;background:{color};'
            'border-radius:2px"></span>'
        )
        name = escape(str(info.get("name", rid)))
        tds = "".join(
            f"<td {_TD}>{escape(_cell(c, v))}</td>" for c, v in zip(cols, cells, strict=False)
        )
        body.append(
            f"<tr><td {_TD}>{swatch}</td><td {_TD}><b>{name}</b> {escape(rid)}</td>{tds}</tr>"
        )
    more = (
        f"<div><i>… {total - MAX_ROWS} more runs (the live workspace lists them all)</i></div>"
        if total > MAX_ROWS
        else ""
    )
    img = (
        f'<img alt="overlay charts of the drawn runs" style="max-width:100%" '
        f'src="data:image/png;base64,{png}">'
        if png
        else "<div><i>Runs in progress; this snapshot shows their charts when they end.</i></div>"
    )
    return (
        f'<div class="nbt-fallback" data-nbt-fallback="{safe_uid}" '
        'style="font-family:sans-serif;font-size:12px;padding:4px 0">'
        f"{HIDE_DEAD_WIDGET}"
        f'<div style="font-size:14px"><b>{escape(title)}</b> · {total} runs</div>{img}'
        '<div style="overflow:auto;max-height:480px"><table style="border-collapse:collapse;'
        f'font-size:12px"><tr>{head}</tr>{"".join(body)}</table></div>{more}</div>'
    )
