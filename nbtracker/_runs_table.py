"""``%nbt_runs``: the runs as a readable table (not a raw DataFrame dump).

Columns: name, state, project / id, created (local time), last step, tags, then every
``config.*`` and ``summary.*`` column that has a value in some run. Missing values,
NaN and empty lists show as blank cells; numbers use the panels' number format. The
full DataFrame stays available as ``.df``. Every string is escaped in the HTML.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

MAX_ROWS = 200


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, (list, tuple, dict)) and not v:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(v)) if not hasattr(v, "__len__") or isinstance(v, str) else False
    except (TypeError, ValueError, ImportError):
        return False


def _cell(col: str, v: Any) -> str:
    from .widgets._fallback import fmt

    if _blank(v):
        return ""
    if col == "created_at":
        try:
            return v.to_pydatetime(warn=False).astimezone().strftime("%Y-%m-%d %H:%M")
        except (AttributeError, TypeError, ValueError):
            pass
        try:
            return v.astimezone().strftime("%Y-%m-%d %H:%M")
        except (AttributeError, TypeError, ValueError, OSError):
            return str(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if hasattr(v, "item") and not isinstance(v, str):
        try:
            v = v.item()
        except (TypeError, ValueError):
            pass
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt(float(v)) if isinstance(v, float) else str(v)
    return str(v)


class RunsTable:
    """What ``%nbt_runs`` shows. ``.df`` is the full DataFrame (newest first)."""

    def __init__(self, df: Any) -> None:
        self.df = df
        cols = [c for c in ("name", "state", "run_id", "project", "created_at", "last_step",
                            "tags", "error") if c in df.columns]  # fmt: skip
        extra = [c for c in df.columns if str(c).startswith(("config.", "summary."))]
        self.columns = [c for c in cols + extra if not all(_blank(v) for v in df[c])]

    def __len__(self) -> int:
        return len(self.df)

    def rows(self) -> list[list[str]]:
        return [[_cell(c, v) for c, v in zip(self.columns, r, strict=True)]
                for r in self.df[self.columns].head(MAX_ROWS).itertuples(index=False)]  # fmt: skip

    def headers(self) -> list[str]:
        names = {"run_id": "id", "created_at": "created", "last_step": "step"}
        return [names.get(c, c) for c in self.columns]

    def _repr_html_(self) -> str:
        th = "".join(f'<th style="text-align:left">{escape(h)}</th>' for h in self.headers())
        body = "".join(
            "<tr>" + "".join(f'<td style="text-align:left">{escape(c)}</td>' for c in r) + "</tr>"
            for r in self.rows()
        )
        more = len(self.df) - MAX_ROWS
        tail = (
            f"<div>… {more} more runs (the full table: <code>.df</code>)</div>" if more > 0 else ""
        )
        return (f'<div class="nbt-runs-table"><table><thead><tr>{th}</tr></thead>'
                f"<tbody>{body}</tbody></table>{tail}</div>")  # fmt: skip

    def __repr__(self) -> str:
        rows = [self.headers(), *self.rows()]
        if len(rows) == 1:
            return "no runs"
        widths = [min(max(len(r[i]) for r in rows), 40) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(c[:40].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        )
