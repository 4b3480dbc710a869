"""Issue 10 (panel fixes) in a real JupyterLab: charts of one run the way W&B users expect.

- ``define_metric("val/*", step_metric="epoch")`` draws val metrics against epoch by
  default; a step metric is never smoothed;
- each chart has its own x axis / log scale / smoothing, and the panel's controls set all;
- the mouse wheel zooms x and rescales y to what is visible; "reset zoom" undoes it;
- a metric with one point shows the number, not an empty chart;
- axes use one number format (SI suffixes for large values, whole numbers on step axes);
- a reopened notebook without a kernel shows the static copy and no "model not found".
"""

from __future__ import annotations

import pytest
from nbt_browser import expect
from nbt_panel import chart, expect_state, wait_panel, wait_points

pytestmark = pytest.mark.browser

STEPS = 200

TRAIN = f"""%load_ext nbtracker
import nbtracker as wandb
run = wandb.init(project="charts", name="chart-run")
wandb.define_metric("epoch")
wandb.define_metric("val/*", step_metric="epoch")
for step in range({STEPS}):
    wandb.log({{"train/loss": 2.0 / (step + 1) + (0.3 if step % 2 else 0.0),
               "big": 1_000_000 + step * 1000}})
    if step % 20 == 19:
        wandb.log({{"epoch": step // 20, "val/acc": 0.5 + step / 500}})
wandb.log({{"test/acc": 0.9871}})
wandb.finish()
"""

SVG = 'p2 = wandb.show(run, renderer="svg")'


def data(c, name: str) -> str:  # noqa: ANN001
    return c.get_attribute(f"data-{name}") or ""


def axis_labels(c, axis: str) -> list[str]:  # noqa: ANN001
    sel = f'svg g.role-axis[aria-label^="{axis}-axis"] g.role-axis-label text'
    return c.locator(sel).evaluate_all("els => els.map(e => e.textContent || '')")


def test_step_metrics_per_chart_controls_zoom_and_single_values(lab, page, recorded) -> None:  # noqa: ANN001
    nb = lab.open(page, "panel_charts", [TRAIN, SVG])
    nb.run(0)
    p = wait_panel(nb, 0)
    expect_state(p, "finished")
    loss, val, epoch, test = (chart(p, k) for k in ("train/loss", "val/acc", "epoch", "test/acc"))
    wait_points(loss, lambda n: n == STEPS, what=f"== {STEPS}")
    wait_points(val, lambda n: n == STEPS // 20, what=f"== {STEPS // 20}")

    # define_metric's step metric is the default x axis of the val charts, only theirs
    expect(val).to_have_attribute("data-x", "epoch")
    expect(loss).to_have_attribute("data-x", "step")
    # one point: the value itself
    expect(test).to_have_attribute("data-single", "1")
    expect(test.get_by_test_id("nbt-chart-single-value")).to_have_text("0.9871")
    expect(loss).to_have_attribute("data-single", "0")

    # panel-wide smoothing: every chart but the step metric (an axis is never smoothed)
    p.get_by_test_id("nbt-smoothing").fill("0.6")
    expect(loss).to_have_attribute("data-smoothing", "0.6")
    expect(val).to_have_attribute("data-smoothing", "0.6")
    expect(epoch).to_have_attribute("data-smoothing", "0")

    # this chart's own controls: log scale and smoothing for train/loss only
    loss.get_by_test_id("nbt-chart-opts-btn").click()
    opts = loss.get_by_test_id("nbt-chart-opts")
    expect(opts).to_be_visible()
    opts.get_by_test_id("nbt-chart-log").check()
    opts.get_by_test_id("nbt-chart-smoothing").fill("0.9")
    expect(loss).to_have_attribute("data-log-y", "true")
    expect(loss).to_have_attribute("data-smoothing", "0.9")
    expect(val).to_have_attribute("data-log-y", "false")
    expect(val).to_have_attribute("data-smoothing", "0.6")
    opts.get_by_test_id("nbt-chart-x").select_option("time")
    expect(loss).to_have_attribute("data-x", "time")
    expect(val).to_have_attribute("data-x", "epoch")
    wait_points(loss, lambda n: n == STEPS, what=f"== {STEPS} on this chart's time axis")
    lab.screenshot(p, "panel-charts-own-controls")
    opts.get_by_test_id("nbt-chart-opts-reset").click()
    expect(loss).to_have_attribute("data-x", "step")
    expect(loss).to_have_attribute("data-log-y", "false")
    expect(loss).to_have_attribute("data-smoothing", "0.6")

    # the panel's x axis sets every chart, then "step" gives val back its epoch axis
    loss.get_by_test_id("nbt-chart-opts-btn").click()
    p.get_by_test_id("nbt-x-axis").select_option("time")
    for c in (loss, val):
        expect(c).to_have_attribute("data-x", "time")
    p.get_by_test_id("nbt-x-axis").select_option("step")
    expect(val).to_have_attribute("data-x", "epoch")
    p.get_by_test_id("nbt-smoothing").fill("0")
    expect(loss).to_have_attribute("data-smoothing", "0")

    # wheel zoom on x rescales y to the visible part (loss is ~2 at the start, < 0.4 later)
    wait_points(loss, lambda n: n == STEPS, what=f"== {STEPS} before zooming")
    canvas = loss.locator("canvas").first
    box = canvas.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5)
    reset = loss.get_by_test_id("nbt-reset-zoom")
    expect(reset).to_be_hidden()
    for _ in range(4):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(100)
    expect(loss).to_have_attribute("data-zoomed", "1")
    expect(reset).to_be_visible()
    page.wait_for_function(
        "el => el.dataset.yDomain && Number(el.dataset.yDomain.split(',')[1]) < 1.0",
        arg=loss.element_handle(),
        timeout=10_000,
    )
    lab.screenshot(p, "panel-charts-zoomed")
    reset.click()
    expect(loss).to_have_attribute("data-zoomed", "0")
    expect(reset).to_be_hidden()
    wait_points(loss, lambda n: n == STEPS, what=f"== {STEPS} after reset")
    lab.screenshot(p, "panel-charts-light")

    # one number format on the axes (read from the SVG renderer of the same panel)
    nb.run(1)
    p2 = wait_panel(nb, 1)
    big = chart(p2, "big")
    wait_points(big, lambda n: n == STEPS, what=f"== {STEPS} in the svg panel")
    labels = axis_labels(big, "Y")
    assert any(t.endswith("M") for t in labels), labels  # 1.1M, not 1100000
    step_labels = axis_labels(chart(p2, "train/loss"), "X")
    assert step_labels and all(t.replace("k", "").isdigit() for t in step_labels if t), step_labels
    recorded.check()


def test_reopened_notebook_shows_no_model_not_found(lab, page, recorded) -> None:  # noqa: ANN001
    cell = (
        "%load_ext nbtracker\nimport nbtracker\n"
        'run = nbtracker.init(project="reopen", name="reopened")\n'
        'for i in range(5):\n    run.log({"loss": 1 / (i + 1)})\nrun.finish()'
    )
    nb = lab.open(page, "reopen", [cell])
    nb.run(0)
    p = wait_panel(nb, 0)
    expect_state(p, "finished")
    nb.eval_app("await app.commands.execute('docmanager:save');")
    lab.server.shutdown_kernels()
    page.reload()
    expect(nb.cells).to_have_count(1, timeout=60_000)
    lab.wait_kernel_ready(page, "reopen.ipynb")
    fb = nb.output(0).locator("[data-nbt-fallback]").first
    expect(fb).to_be_visible(timeout=10_000)
    expect(fb).to_contain_text("for the live view")
    # JupyterLab renders its "Error displaying widget: model not found" line (the kernel
    # that held the model is gone) ...
    err = nb.output_area(0).get_by_text("model not found")
    expect(err).to_have_count(1, timeout=15_000)
    # ... and the static copy right under it hides that line
    expect(err).to_be_hidden()
    lab.screenshot(nb.cell(0), "reopened-no-model-not-found")
    recorded.check()
