"""The static snapshot shown under a panel where no widget JS runs (GitHub, nbviewer,
nbconvert, a reopened notebook): summary table + chart image, every string escaped.

The live view hides it with a ``<style>`` rule keyed on the widget's ``_uid``
(``[data-nbt-fallback="<uid>"]``), so it is only seen when the live view is not there.
"""

from __future__ import annotations

import json
import math
import re
from html import escape
from typing import Any

from ..media import media_label, parse_ref

MAX_TABLE_ITEMS = 200
MAX_TEXT = 200
# keys whose values are secrets: a whole name part such as "api_key", "password",
# "secret", "token" or "auth_token" (not "tokens_seen" or "max_tokens"); values that look
# like keys of common services. Numbers are never masked.
_SECRET = re.compile(
    r"(?:^|[._/-])(?:api[_-]?key|apikey|password|passwd|secret|secret[_-]?key|token|"
    r"access[_-]?token|auth[_-]?token|private[_-]?key|credentials?)$",
    re.I,
)
_SECRET_VALUE = re.compile(
    r"^(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|"
    r"AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})$"
)

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


def _hist_svg(bins: list[float], values: list[float], w: int = 220, h: int = 60) -> str:
    if not values or len(bins) != len(values) + 1:
        return ""
    lo, hi = float(bins[0]), float(bins[-1])
    span = (hi - lo) or 1.0
    top = max(max(float(v) for v in values), 1e-12)
    bars = []
    for i, v in enumerate(values):
        x0 = (float(bins[i]) - lo) / span * w
        x1 = (float(bins[i + 1]) - lo) / span * w
        bh = max(0.0, float(v)) / top * (h - 2)
        if bh > 0:
            bars.append(
                f'<rect x="{x0:.1f}" y="{h - bh:.1f}" width="{max(0.5, x1 - x0 - 0.5):.1f}" '
                f'height="{bh:.1f}" fill="#1f77b4"/>'
            )
    return (
        f'<svg style="display:block" width="{w}" height="{h}" viewBox="0 0 {w} {h}">{"".join(bars)}</svg>'
        f'<div style="opacity:.7">{escape(fmt(lo))} … {escape(fmt(hi))}</div>'
    )


def media_html(media: dict[str, dict[str, Any]], max_keys: int = 8) -> str:
    """The last image(s) / histogram of each media key (thumbnails as data: URIs)."""
    cards = []
    for key, tr in list(media.items())[:max_keys]:
        entries = tr.get("entries") or []
        if not entries:
            continue
        e = entries[-1]
        if tr.get("kind") == "histogram":
            body = _hist_svg(e.get("bins") or [], e.get("values") or [])
        else:
            figs = []
            for im in e.get("images") or []:
                src = str(im.get("src") or "")
                if not src.startswith("data:image/png;base64,"):
                    continue
                cap = escape(str(im["caption"])) if im.get("caption") else ""
                figs.append(
                    f'<figure style="margin:0"><img src="{src}" width="{int(im["w"])}" '
                    f'height="{int(im["h"])}" alt="{cap}" style="image-rendering:pixelated">'
                    + (f'<figcaption style="max-width:12em">{cap}</figcaption>' if cap else "")
                    + "</figure>"
                )
            body = f'<div style="display:flex;gap:6px;flex-wrap:wrap">{"".join(figs)}</div>'
        cards.append(
            f'<div style="border:1px solid #ddd;padding:2px 6px"><b>{escape(str(key))}</b> '
            f'<span style="opacity:.7">step {escape(fmt(e.get("step")))}</span>{body}</div>'
        )
    if not cards:
        return ""
    return f'<div style="display:flex;gap:8px;flex-wrap:wrap;margin:4px 0">{"".join(cards)}</div>'


_LEVEL_COLOUR = {"ERROR": "#b00020", "WARN": "#b26a00"}
MAX_ALERTS = 5
MAX_LOG_LINES = 20


def alerts_html(alerts: list[dict[str, Any]]) -> str:
    """The run's latest alerts (newest first), level, title and text, escaped."""
    items = []
    for a in list(alerts or [])[-MAX_ALERTS:][::-1]:
        if not isinstance(a, dict):
            continue
        level = str(a.get("level") or "INFO").upper()
        colour = _LEVEL_COLOUR.get(level, "inherit")
        text = str(a.get("text") or "")[:MAX_TEXT]
        items.append(
            f'<li data-nbt-alert="{escape(level)}"><b style="color:{colour}">{escape(level)}</b> '
            f"{escape(str(a.get('title') or '')[:MAX_TEXT])}"
            + (f' <span style="opacity:.7">{escape(text)}</span>' if text else "")
            + "</li>"
        )
    if not items:
        return ""
    n = len(alerts)
    more = f" (latest {len(items)} of {n})" if n > len(items) else ""
    return (
        f'<div data-nbt-static="alerts"><b>Alerts</b>{escape(more)}'
        f'<ul style="margin:2px 0 4px 18px;padding:0">{"".join(items)}</ul></div>'
    )


def system_table(system: dict[str, Any]) -> dict[str, str]:
    """System metrics as ``{key: "last (min – max)"}`` for the snapshot."""
    out: dict[str, str] = {}
    for key, ser in sorted((system or {}).items()):
        vals = [
            float(v)
            for v in (ser or {}).get("v") or []
            if isinstance(v, (int, float)) and math.isfinite(v)
        ]
        if not vals:
            continue
        name = key[len("system/") :] if key.startswith("system/") else key
        out[name] = f"{fmt(vals[-1])} ({fmt(min(vals))} – {fmt(max(vals))})"
        if len(out) >= 40:
            break
    return out


def log_html(tail: str) -> str:
    """The console log's last lines, escaped, collapsed."""
    lines = [ln for ln in str(tail or "").split("\n")][-MAX_LOG_LINES:]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return ""
    body = escape("\n".join(ln[:500] for ln in lines))
    return (
        f'<details data-nbt-static="logs"><summary><b>Logs</b> (last {len(lines)} lines)'
        '</summary><pre style="font-size:11px;max-height:20em;overflow:auto;margin:2px 0">'
        f"{body}</pre></details>"
    )


# A reopened notebook (no kernel, or a new one) has no model for a widget output, and
# JupyterLab / Notebook 7 print "Error displaying widget: model not found" in its place: an
# empty ``.jupyter-widgets`` output (a live view or "Loading widget..." is not one). The
# static copy right under it says everything, so this rule hides that line; it only acts
# where the page renders the snapshot's HTML unsanitised (a trusted notebook, the normal
# case for one's own notebooks); elsewhere the line stays and the copy's hint explains it.
HIDE_DEAD_WIDGET = (
    "<style>.jp-OutputArea-child:has(> .jp-OutputArea-output.jupyter-widgets)"
    ":not(:has(> .jp-OutputArea-output > *))"  # (:has cannot nest in :has)
    ":has(+ .jp-OutputArea-child [data-nbt-fallback]) { display: none; }</style>"
)


def render(
    state: dict[str, Any], png_b64: str | None, media: dict[str, dict[str, Any]] | None = None
) -> str:
    """The snapshot's HTML. ``state`` holds the panel's traits (name, project, ...);
    ``media`` the panel's image / histogram entries (the last of each is shown)."""
    uid = "".join(c for c in str(state["uid"]) if c in "0123456789abcdef")
    run_state = str(state.get("state") or "")
    head = (
        f'<div style="font-size:14px"><b>{escape(str(state.get("run_name") or ""))}</b> '
        f'<span style="opacity:.7">{escape(str(state.get("project") or ""))} / '
        f"{escape(str(state.get('run_id') or ''))}</span> · {escape(run_state)} · "
        f"step {escape(fmt(state.get('step', 0)))} · {escape(duration(state.get('elapsed')))}</div>"
    )
    ref = f"{state.get('project') or ''}/{state.get('run_id') or ''}"
    if state.get("run_id"):
        head += (
            '<div data-nbt-static-hint="1" style="opacity:.7">static copy: run '
            f"<code>nbtracker.show({escape(repr(ref))})</code> for the live view</div>"
        )
    error = str(state.get("error") or "")
    if error:
        head += (
            '<div data-nbt-error="1" style="color:#b00020;white-space:pre-wrap">'
            f"{escape(error)}</div>"
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
    system = system_table(state.get("system") or {})
    if system:
        tables += table("System (last, min – max)", system, open_=False)
    if state.get("env_info"):
        tables += table("Environment", state["env_info"], open_=False)
    return (
        f'<div class="nbt-fallback" data-nbt-fallback="{uid}" '
        'style="font-family:sans-serif;font-size:12px;padding:4px 0">'
        f"{HIDE_DEAD_WIDGET}{head}{alerts_html(state.get('alerts') or [])}{img}{media_html(media or {})}"
        f'<div style="display:flex;gap:24px;flex-wrap:wrap">{tables}</div>'
        f"{log_html(state.get('log_tail') or '')}</div>"
    )


def plain(state: dict[str, Any]) -> str:
    """The snapshot's ``text/plain``."""
    lines = [
        f"nbtracker run {state.get('run_name')!r} ({state.get('project')}/{state.get('run_id')}): "
        f"{state.get('state')}, step {fmt(state.get('step', 0))}, {duration(state.get('elapsed'))}"
    ]
    if state.get("error"):
        lines.append(f"  error: {state['error']}")
    for k, v in list((state.get("summary") or {}).items())[:20]:
        lines.append(f"  {k}: {fmt(v)}")
    return "\n".join(lines)


def table_view(d: dict[str, Any]) -> dict[str, Any]:
    """Flatten, shorten and mask values for display (small, secret-free widget state)."""
    from .._util import flatten

    out: dict[str, Any] = {}
    for k, v in flatten(d).items():
        if len(out) >= MAX_TABLE_ITEMS:
            out["…"] = f"{len(d) - MAX_TABLE_ITEMS} more"
            break
        k = str(k)[:MAX_TEXT]
        if isinstance(v, str) and (_SECRET.search(k) or _SECRET_VALUE.match(v.strip())):
            out[k] = "•••"
        elif isinstance(v, bool) or v is None:
            out[k] = v
        elif isinstance(v, (int, float)):
            out[k] = v if math.isfinite(v) else str(v)
        elif (ref := parse_ref(v)) is not None:
            out[k] = media_label(ref)
        elif isinstance(v, str):
            out[k] = v if len(v) <= MAX_TEXT else v[: MAX_TEXT - 1] + "…"
        else:
            try:
                s = json.dumps(v, default=str)
            except (TypeError, ValueError):
                s = str(v)
            out[k] = s if len(s) <= MAX_TEXT else s[: MAX_TEXT - 1] + "…"
    return out
