"""The static snapshot shown under a panel where no widget JS runs (GitHub, nbviewer,
nbconvert, a reopened notebook): summary table + chart image, every string escaped.

The live view hides it with a ``<style>`` rule keyed on the widget's ``_uid``
(``[data-nbt-fallback="<uid>"]``), so it is only seen when the live view is not there.
"""

from __future__ import annotations

from html import escape
from typing import Any

_TD = 'style="padding:1px 10px 1px 0;text-align:left;vertical-align:top"'


def fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        a = abs(v)
        return f"{v:.3e}" if a and (a >= 1e5 or a < 1e-3) else f"{v:.5g}"
    return str(v)


def duration(sec: float | None) -> str:
    if sec is None:
        return "–"
    sec = max(0, int(sec))
    h, m, s = sec // 3600, sec % 3600 // 60, sec % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def table(title: str, data: dict[str, Any], *, open_: bool = True) -> str:
    rows = "".join(
        f"<tr><td {_TD}>{escape(str(k))}</td><td {_TD}>{escape(fmt(v))}</td></tr>"
        for k, v in data.items()
    )
    head = f"<summary><b>{escape(title)}</b> ({len(data)})</summary>"
    body = f'<table style="border-collapse:collapse;font-size:12px">{rows}</table>'
    return f"<details{' open' if open_ else ''}>{head}{body}</details>"


def render(state: dict[str, Any], png_b64: str | None) -> str:
    """The snapshot's HTML. ``state`` holds the panel's traits (name, project, ...)."""
    uid = "".join(c for c in str(state["uid"]) if c in "0123456789abcdef")
    run_state = str(state.get("state") or "")
    head = (
        f'<div style="font-size:14px"><b>{escape(str(state.get("run_name") or ""))}</b> '
        f'<span style="opacity:.7">{escape(str(state.get("project") or ""))} / '
        f"{escape(str(state.get('run_id') or ''))}</span> · {escape(run_state)} · "
        f"step {escape(fmt(state.get('step', 0)))} · {escape(duration(state.get('elapsed')))}</div>"
    )
    if png_b64:
        img = (
            f'<img alt="{escape("charts of " + str(state.get("run_name") or "run"))}" '
            f'style="max-width:100%" src="data:image/png;base64,{png_b64}">'
        )
    elif run_state == "running":
        img = "<div><i>The run is in progress; this snapshot shows its charts when it finishes.</i></div>"
    else:
        img = ""
    tables = table("Summary", state.get("summary") or {}) + table(
        "Config", state.get("config") or {}, open_=False
    )
    return (
        f'<div class="nbt-fallback" data-nbt-fallback="{uid}" '
        'style="font-family:sans-serif;font-size:12px;padding:4px 0">'
        f'{head}{img}<div style="display:flex;gap:24px;flex-wrap:wrap">{tables}</div></div>'
    )


def plain(state: dict[str, Any]) -> str:
    """The snapshot's ``text/plain``."""
    lines = [
        f"nbtracker run {state.get('run_name')!r} ({state.get('project')}/{state.get('run_id')}): "
        f"{state.get('state')}, step {fmt(state.get('step', 0))}, {duration(state.get('elapsed'))}"
    ]
    for k, v in list((state.get("summary") or {}).items())[:20]:
        lines.append(f"  {k}: {fmt(v)}")
    return "\n".join(lines)
