"""Issue 13 (points 1-3) in a real JupyterLab: the run panel's collapsed System section
(charts of the system metrics), the Logs section with the live tail of the console log
(prints and a tqdm bar of the training cell, while it runs) and the Environment table;
light and dark screenshots. User text stays text (a printed tag is not markup)."""

from __future__ import annotations

import pytest
from nbt_browser import expect
from nbt_panel import expect_state, wait_panel

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"

TRAIN = f"""
import os, time
import nbtracker as nbt
from tqdm import tqdm
run = nbt.init(project="capture", name="capture-run",
               settings=nbt.Settings(x_stats_sampling_interval=0.5))
print("printed before training", {XSS!r})
# the test lets training go on once it has seen the print live (a slow machine may show
# the panel seconds late: without this the loop could end first)
_t = time.time()
while not os.path.exists("go-capture") and time.time() - _t < 90:
    time.sleep(0.05)
for step in tqdm(range(40), mininterval=0.1):
    run.log({{"loss": 1 / (step + 1)}})
    if step % 10 == 0:
        print(f"epoch {{step // 10}} done")
    time.sleep(0.1)
time.sleep(1.5)
run.finish()
"""


def test_system_logs_and_environment(lab, page, recorded) -> None:  # noqa: ANN001
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    nb = lab.open(page, "capture_panel", [TRAIN])
    nb.run(0, wait=False)
    p = wait_panel(nb, 0)
    logs = p.get_by_test_id("nbt-logs")
    expect(logs).to_be_visible(timeout=30_000)
    logs.locator("summary").click()
    text = p.get_by_test_id("nbt-logs-text")
    expect(text).to_contain_text("printed before training", timeout=60_000)
    assert nb.is_running(0)  # live: the tail arrives while the cell runs
    (lab.root / "go-capture").write_text("go")
    system = p.get_by_test_id("nbt-system")
    expect(system).to_be_visible(timeout=20_000)
    assert system.get_attribute("open") is None  # collapsed until opened
    expect_state(p, "finished", timeout_ms=60_000)
    expect(text).to_contain_text("epoch 3 done")
    expect(text).to_contain_text("40/40")  # tqdm's last state, not its 40 redraws
    assert text.inner_text().count("40/40") == 1
    assert XSS in text.inner_text() and not dialogs
    system.locator("summary").click()
    charts = system.get_by_test_id("nbt-system-chart")
    expect(charts.first).to_be_visible(timeout=20_000)
    assert charts.count() >= 5
    expect(system.locator('[data-key="system/cpu"] svg').first).to_be_visible()
    env = p.get_by_test_id("nbt-environment")
    env.locator("summary").click()
    expect(env).to_contain_text("python")
    expect(env).to_contain_text("CPython")
    lab.screenshot(p, "capture-panel-light")
    nb.set_theme("JupyterLab Dark")
    try:
        page.wait_for_timeout(1500)
        lab.screenshot(p, "capture-panel-dark")
    finally:
        nb.set_theme("JupyterLab Light")
