"""Locators and readers for the run panel's DOM contract (see js/README.md).

Contract: root ``[data-testid=nbt-run-panel]``; ``nbt-run-state`` (running / finished / ...);
``nbt-run-step``; one ``nbt-chart`` per metric with ``data-key="<metric>"`` and a
``data-points`` attribute (current number of points).
"""

from __future__ import annotations

import re
import time
from typing import Any

from nbt_browser import Notebook, expect

PANEL_TIMEOUT_MS = 30_000

# Counts points from the chart's own data-points attribute; else from SVG point marks.
_POINTS_JS = """el => {
  const v = el.getAttribute('data-points');
  if (v !== null && v !== '') return Number(v);
  const marks = el.querySelectorAll('svg g.mark-symbol path, svg g.mark-point path');
  return marks.length ? marks.length : -1;
}"""


def panel(nb: Notebook, cell: int) -> Any:
    """The run panel in cell ``cell``'s output (exactly one is expected there)."""
    return nb.output(cell).get_by_test_id("nbt-run-panel")


def wait_panel(nb: Notebook, cell: int) -> Any:
    p = panel(nb, cell)
    try:
        expect(p).to_be_visible(timeout=PANEL_TIMEOUT_MS)
    except AssertionError:
        msg = (
            f"no visible [data-testid=nbt-run-panel] in cell {cell}'s output; "
            f"output text:\n{nb.output_text(cell)}{nb.diagnostics()}"
        )
        raise AssertionError(msg) from None
    return p


def chart(p: Any, key: str) -> Any:
    return p.locator(f'[data-testid="nbt-chart"][data-key="{key}"]')


def points(c: Any) -> int:
    """Current number of points on chart locator ``c`` (-1: nothing countable)."""
    return int(c.evaluate(_POINTS_JS, timeout=5_000))


def wait_points(c: Any, cond: Any, timeout: float = 20, what: str = "") -> int:
    """Poll the chart's point count until ``cond(n)``; returns n."""
    deadline = time.monotonic() + timeout
    n = -2
    while time.monotonic() < deadline:
        try:
            n = points(c)
        except Exception:  # noqa: BLE001 - element (re)rendering: try again
            n = -2
        if cond(n):
            return n
        time.sleep(0.05)
    msg = f"chart points never satisfied {what or cond} within {timeout} s (last read: {n})"
    raise AssertionError(msg)


def state_text(p: Any) -> str:
    return p.get_by_test_id("nbt-run-state").first.inner_text().strip().lower()


def step_number(p: Any) -> int | None:
    txt = p.get_by_test_id("nbt-run-step").first.inner_text()
    m = re.search(r"\d[\d,]*", txt)
    return int(m.group(0).replace(",", "")) if m else None


def expect_state(p: Any, state: str, timeout_ms: int = 30_000) -> None:
    expect(p.get_by_test_id("nbt-run-state").first).to_contain_text(
        state, ignore_case=True, timeout=timeout_ms
    )
