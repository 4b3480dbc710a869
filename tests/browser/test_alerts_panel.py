"""Issue 13.6 in a real JupyterLab: alerts raised while the training cell runs appear in
the run panel at once (newest first, earlier ones folded), as text (a title with markup
stays text); light and dark screenshots."""

from __future__ import annotations

import pytest
from nbt_browser import expect
from nbt_panel import expect_state, wait_panel

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"

TRAIN = f"""
import os, time
import nbtracker as nbt
run = nbt.init(project="alerts", name="alert-run")
for step in range(30):
    run.log({{"loss": 1 / (step + 1)}})
    if step == 5:
        nbt.alert("warm-up done", "learning rate now 0.1", level=nbt.AlertLevel.INFO)
        # the test lets training go on once it has seen this first alert live
        deadline = time.time() + 90
        while not os.path.exists("alerts-go") and time.time() < deadline:
            time.sleep(0.05)
    if step == 12:
        nbt.alert("loss spike", "loss jumped 4x at step 12", level="WARN")
    if step == 20:
        nbt.alert({XSS!r}, "a title with markup stays text", level=nbt.AlertLevel.ERROR)
    if step == 22:
        nbt.alert("checkpoint", "saved ckpt-22.pt")
    time.sleep(0.15)
time.sleep(1.0)
run.finish()
"""


def test_alerts_show_live_in_the_panel(lab, page, recorded) -> None:  # noqa: ANN001
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    nb = lab.open(page, "alerts_panel", [TRAIN])
    nb.run(0, wait=False)
    p = wait_panel(nb, 0)
    alerts = p.get_by_test_id("nbt-alert")
    expect(alerts.first).to_contain_text("warm-up done", timeout=60_000)
    assert nb.is_running(0)  # live: shown while the cell runs
    (lab.root / "alerts-go").write_text("go")
    expect(alerts.first).to_contain_text("checkpoint", timeout=30_000)  # newest first
    expect_state(p, "finished", timeout_ms=60_000)
    strip = p.get_by_test_id("nbt-alerts")
    expect(strip.locator("details summary")).to_have_text("1 earlier")
    assert alerts.nth(1).get_attribute("data-level") == "ERROR"
    assert XSS in alerts.nth(1).inner_text() and not dialogs
    assert alerts.nth(2).get_attribute("data-level") == "WARN"
    lab.screenshot(p, "alerts-panel-light")
    nb.set_theme("JupyterLab Dark")
    try:
        page.wait_for_timeout(1500)
        lab.screenshot(p, "alerts-panel-dark")
    finally:
        nb.set_theme("JupyterLab Light")
