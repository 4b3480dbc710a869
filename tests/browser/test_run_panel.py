"""Issue 4 "Tests": the live run panel in a real JupyterLab / Notebook 7, offline.

Each test opens a fresh notebook (fresh kernel) on the session's server; the ``page``
fixture fails the test on any unexpected page error or any request leaving localhost.
"""

from __future__ import annotations

import io

import pytest
from nbt_browser import NOTEBOOK7_NOISE, expect
from nbt_panel import chart, expect_state, state_text, step_number, wait_panel, wait_points

pytestmark = pytest.mark.browser

STEPS = 60  # x 0.1 s: the loop runs ~6 s, long enough to read the chart twice while it runs
KEYS = ("train/loss", "train/acc", "val/loss")


def live_cell(name: str, ext: bool, finish: bool, project: str = "browser") -> str:
    return "\n".join(
        [
            *(["%load_ext nbtracker"] if ext else []),
            "import time",
            "import nbtracker",
            f'run = nbtracker.init(project="{project}", name="{name}", '
            'config={"lr": 0.01, "batch_size": 32})',
            f"for step in range({STEPS}):",
            f'    run.log({{"train/loss": 1.0 / (step + 1), "train/acc": step / {STEPS}, '
            '"val/loss": 2.0 / (step + 1)})',
            "    time.sleep(0.1)",
            # the test lets training go on once it has seen points live (a slow CI machine
            # may show the panel seconds late: without this the loop could end first)
            "    if step == 3:",
            "        import os",
            "        _t = time.time()",
            f'        while not os.path.exists("go-{name}") and time.time() - _t < 90:',
            "            time.sleep(0.05)",
            *(["run.finish()"] if finish else []),
        ]
    )


def assert_grows_while_running(nb, cell: int, c, go: str) -> tuple[int, int]:  # noqa: ANN001
    """Read the chart's point count twice while cell ``cell``'s prompt still shows [*]
    (the training loop waits at step 3 for the file ``go`` the test writes in between)."""
    n1 = wait_points(c, lambda n: n >= 1, timeout=60, what=">= 1 point")
    shot1 = c.screenshot()
    running1 = nb.is_running(cell)  # read AFTER n1 and its picture
    assert running1, (
        f"the chart showed its first points ({n1}) only after the cell had finished "
        f"(prompt {nb.prompt_text(cell)!r}): points are not delivered while the cell runs"
    )
    (nb.lab.root / go).write_text("go")
    n2 = wait_points(c, lambda n: n > n1, timeout=10, what=f"> {n1} (growth)")
    c.page.wait_for_timeout(300)  # one animation frame or so: the view draws asynchronously
    shot2 = c.screenshot()
    running2 = nb.is_running(cell)  # read AFTER n2 and its picture
    assert running2, (
        f"chart went {n1} -> {n2} points but the cell had already finished "
        f"(prompt {nb.prompt_text(cell)!r}): growth not seen while running"
    )
    assert n2 > n1
    assert shot1 != shot2, f"data-points went {n1} -> {n2} but the chart's pixels did not change"
    assert colours(shot2) > 8, "the live chart looks blank"
    return n1, n2


def colours(png: bytes) -> int:
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGBA")
    return len(im.getcolors(maxcolors=1_000_000) or [])


def assert_final(p, steps: int = STEPS, keys=KEYS) -> None:  # noqa: ANN001
    expect_state(p, "finished")
    assert state_text(p) == "finished", state_text(p)
    step = step_number(p)
    assert step is not None and steps - 1 <= step <= steps, f"step shown: {step}"
    for key in keys:
        c = chart(p, key)
        expect(c).to_have_count(1)
        n = wait_points(c, lambda n: n == steps, timeout=10, what=f"== {steps} (all points)")
        assert n == steps
        expect(c).to_have_attribute("data-last-step", str(steps - 1))
    last = float(chart(p, "train/loss").get_attribute("data-last-value") or "nan")
    # float32 on the wire (seen 0.01666667 for 1/60): fine for a chart
    assert abs(last - 1.0 / steps) < 1e-6, f"train/loss newest point {last}, logged {1.0 / steps}"
    summary = p.get_by_test_id("nbt-summary")
    expect(summary).to_be_visible()
    for key in keys:
        expect(summary).to_contain_text(key)


def assert_fallback_hidden(nb, cell: int) -> None:  # noqa: ANN001
    """The static snapshot under a rendered live panel exists but is hidden (no duplicate)."""
    fb = nb.output(cell).locator("[data-nbt-fallback]")
    expect(fb.first).to_be_attached(timeout=10_000)
    for i in range(fb.count()):
        expect(fb.nth(i)).to_be_hidden()


def test_panel_live_in_lab_with_load_ext(lab, page, recorded) -> None:  # noqa: ANN001
    nb = lab.open(page, "live_ext", [live_cell("live-ext", ext=True, finish=False), "run.finish()"])
    nb.run(0, wait=False)
    p = wait_panel(nb, 0)
    expect_state(p, "running")
    expect(p.get_by_test_id("nbt-run-name")).to_have_text("live-ext")
    expect(p.get_by_test_id("nbt-run-project")).to_contain_text("browser")
    config = p.get_by_test_id("nbt-config")
    expect(config).to_contain_text("lr")
    expect(config).to_contain_text("batch_size")
    for key in KEYS:
        expect(chart(p, key)).to_have_count(1, timeout=20_000)
    n1, n2 = assert_grows_while_running(nb, 0, chart(p, "train/loss"), "go-live-ext")
    print(f"live growth while running: {n1} -> {n2} points")
    nb.wait_done(0)
    nb.assert_no_error_output(0)
    nb.run(1)
    nb.assert_no_error_output(1)
    assert_final(p)
    assert_fallback_hidden(nb, 0)
    lab.screenshot(p, "run-panel-lab-light")
    light = p.evaluate("el => getComputedStyle(el).color")
    try:
        nb.set_theme("JupyterLab Dark")
        lab.screenshot(p, "run-panel-lab-dark")
        dark = p.evaluate("el => getComputedStyle(el).color")
    finally:
        nb.set_theme("JupyterLab Light")
    assert light != dark, f"panel text colour is {light} in both themes: not following the theme"

    # Save and reload the page: the kernel is still alive, so Lab restores the widget; the
    # new view must fetch the library (no cell is running now) and redraw from the
    # widget's synced snapshot: finished, all points.
    nb.eval_app("await app.commands.execute('docmanager:save');")
    page.reload()
    expect(nb.cells).to_have_count(2, timeout=60_000)
    lab.wait_kernel_ready(page, "live_ext.ipynb")
    p = wait_panel(nb, 0)
    assert_final(p)
    assert_fallback_hidden(nb, 0)

    # Kernel gone (restart, or the notebook reopened another day): Lab says "model not
    # found" for the widget, and the static snapshot under it must show the final result.
    lab.server.shutdown_kernels()
    page.reload()
    expect(nb.cells).to_have_count(2, timeout=60_000)
    lab.wait_kernel_ready(page, "live_ext.ipynb")
    fb = nb.output(0).locator("[data-nbt-fallback]").first
    expect(fb).to_be_visible(timeout=10_000)
    img = fb.locator('img[src^="data:image/png;base64,"]').first
    expect(img).to_be_visible()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    for key in KEYS:
        expect(fb.locator("table").first).to_contain_text(key)
    expect(fb).to_contain_text("finished")
    lab.screenshot(nb.cell(0), "run-panel-reopened-no-kernel")
    recorded.check()


def test_panel_live_in_lab_without_load_ext(lab, page, recorded) -> None:  # noqa: ANN001
    # The second run's names and config are hostile: they must show as text, never as HTML,
    # and a secret-looking config value must be masked.
    second = (
        "import math\n"
        'run2 = nbtracker.init(project="noext", name="<b id=pwn1>second</b>", config={\n'
        '    "<img src=x onerror=window.pwn2=1>": "<script>window.pwn3=1</script>",\n'
        '    "api_key": "sk-SECRET123"})\n'
        "for i in range(30):\n"
        '    run2.log({"train/loss": 2 / (i + 1), "<img src=y onerror=window.pwn4=1>": i,\n'
        '              "odd/nan": math.nan if i % 3 == 0 else i})\n'
        "run2.finish()"
    )
    cells = [live_cell("live-noext", ext=False, finish=True, project="noext"), second]
    nb = lab.open(page, "live_noext", [*cells, 'panels = nbtracker.show("noext")'])
    nb.run(0, wait=False)
    p = wait_panel(nb, 0)
    assert_grows_while_running(nb, 0, chart(p, "train/loss"), "go-live-noext")
    nb.wait_done(0)
    nb.assert_no_error_output(0)
    assert_final(p)
    exercise_controls(page, p)
    lab.screenshot(p, "run-panel-controls")
    # A second run in the next cell: its own panel (library already on the page).
    nb.run(1)
    nb.assert_no_error_output(1)
    p2 = wait_panel(nb, 1)
    expect(p2.get_by_test_id("nbt-run-name")).to_have_text("<b id=pwn1>second</b>")
    expect_state(p2, "finished")
    assert wait_points(chart(p2, "train/loss"), lambda n: n == 30, timeout=10, what="== 30") == 30
    xss_key = "<img src=y onerror=window.pwn4=1>"
    assert wait_points(chart(p2, xss_key), lambda n: n == 30, timeout=10, what="== 30") == 30
    assert wait_points(chart(p2, "odd/nan"), lambda n: n == 20, timeout=10, what="== 20") == 20
    expect(p2.get_by_test_id("nbt-chart")).to_have_count(3)
    expect(p2.get_by_test_id("nbt-config")).to_contain_text("<script>window.pwn3=1</script>")
    injected = page.evaluate(
        "() => [window.pwn2, window.pwn3, window.pwn4, !!document.getElementById('pwn1')]"
    )
    assert injected == [None, None, None, False], f"user text ran as HTML: {injected}"
    assert "sk-SECRET123" not in nb.output_text(1), "secret config value shown in the panel"
    assert_fallback_hidden(nb, 1)
    # show(<project>): the runs workspace, a row per run, all runs' points.
    nb.run(2)
    nb.assert_no_error_output(2)
    rp = nb.output(2).get_by_test_id("nbt-workspace")
    expect(rp).to_be_visible(timeout=20_000)
    rows = rp.get_by_test_id("nbt-ws-row")
    expect(rows).to_have_count(2)
    for i in range(2):
        expect_state(rows.nth(i), "finished")
    expect(rp).to_contain_text("live-noext")
    expect(rp).to_contain_text("<b id=pwn1>second</b>")
    total = STEPS + 30
    assert (
        wait_points(ws_chart(rp, "train/loss"), lambda n: n == total, what=f"== {total}") == total
    )
    injected = page.evaluate(
        "() => [window.pwn2, window.pwn3, window.pwn4, !!document.getElementById('pwn1')]"
    )
    assert injected == [None, None, None, False], f"user text ran as HTML: {injected}"
    lab.screenshot(rp, "workspace-of-a-project")
    recorded.check()


def ws_chart(ws, key: str):  # noqa: ANN001, ANN201
    """An overlay chart of the workspace (``data-points``: the points of all drawn runs)."""
    return ws.locator(f'[data-testid="nbt-ws-chart"][data-key="{key}"]')


def exercise_controls(page, p) -> None:  # noqa: ANN001
    """Shared hover readout, smoothing, log scale, x axis: no errors, no lost points."""
    loss, acc = chart(p, "train/loss"), chart(p, "train/acc")
    box = loss.bounding_box()
    assert box, "train/loss chart has no box"
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    readout = p.get_by_test_id("nbt-hover-readout")
    expect(readout).to_contain_text("step", timeout=5_000)
    expect(loss.get_by_test_id("nbt-chart-readout")).not_to_have_text("")
    expect(acc.get_by_test_id("nbt-chart-readout")).not_to_have_text("")  # shared hover
    p.get_by_test_id("nbt-smoothing").fill("0.9")
    expect(p).to_contain_text("0.90")
    p.get_by_test_id("nbt-log-y").check()
    p.get_by_test_id("nbt-x-axis").select_option("time")
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    expect(readout).to_contain_text("time", timeout=5_000)
    # Log scale drops train/acc's 0 at step 0 (seen: 59 points): fine; off again -> all back.
    wait_points(loss, lambda n: n == STEPS, timeout=5, what=f"== {STEPS} in log scale")
    p.get_by_test_id("nbt-log-y").uncheck()
    for key in KEYS:
        wait_points(
            chart(p, key), lambda n: n == STEPS, timeout=5, what=f"== {STEPS} after controls"
        )


OTHER_PROCESS = '''import os, pathlib, signal, subprocess, sys, time
import nbtracker
SCRIPT = r"""
import sys, time, nbtracker
run_id, steps, end = sys.argv[1], int(sys.argv[2]), sys.argv[3]
run = nbtracker.init(project="proc", id=run_id, name="script-" + run_id, config={"lr": 0.1})
run.log({"loss": 1.0, "acc": 0.0})
open(run_id + ".started", "w").close()
for step in range(1, steps):
    time.sleep(0.1)
    run.log({"loss": 1.0 / (step + 1), "acc": step / steps})
if end == "raise":
    raise RuntimeError("boom")
if end == "hang":
    time.sleep(1000)
run.finish()
"""
def start(run_id, steps, end="finish"):
    pathlib.Path(run_id + ".started").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, run_id, str(steps), end])
    t0 = time.time()
    while not pathlib.Path(run_id + ".started").exists():
        assert proc.poll() is None, f"script {run_id} exited with {proc.returncode}"
        assert time.time() - t0 < 30, f"script {run_id} never started its run"
        time.sleep(0.05)
    return proc
fails = start("fails", 20, "raise")
hangs = start("hangs", 20, "hang")
bg1 = start("bg1", 80)
nbtracker.show("proc/bg1")
'''
OTHERS = 'others = nbtracker.show(["proc/fails", "proc/hangs"])'
KILL = (
    "os.kill(hangs.pid, signal.SIGKILL)\n"
    "print('exit codes', bg1.wait(60), fails.wait(60), hangs.wait(60))"
)


def test_show_follows_run_of_another_process(lab, page, recorded) -> None:  # noqa: ANN001
    """show() follows scripts' runs: one grows then finishes, one fails, one is killed."""
    nb = lab.open(page, "other_process", [OTHER_PROCESS, OTHERS, KILL])
    nb.run(0, wait=False)
    p = wait_panel(nb, 0)
    expect(p.get_by_test_id("nbt-run-project")).to_contain_text("bg1")
    c = chart(p, "loss")
    expect(c).to_have_count(1, timeout=20_000)
    n1 = wait_points(c, lambda n: n >= 1, timeout=20, what=">= 1 point")
    state1 = state_text(p)
    n2 = wait_points(c, lambda n: n > n1, timeout=15, what=f"> {n1} (following the script)")
    assert state1 == "running", f"state {state1!r} while the script was still logging"
    assert n1 < 80, f"the script had already logged everything ({n1}) when first seen"
    print(f"followed another process: {n1} -> {n2} points")
    nb.wait_done(0)
    nb.assert_no_error_output(0)

    nb.run(1)  # the failing and the hanging script, compared in one workspace
    nb.assert_no_error_output(1)
    rp = nb.output(1).get_by_test_id("nbt-workspace")
    expect(rp).to_be_visible(timeout=20_000)
    expect(rp.get_by_test_id("nbt-ws-row")).to_have_count(2)
    failed = rp.locator('[data-testid="nbt-ws-row"][data-run-id="fails"]')
    hung = rp.locator('[data-testid="nbt-ws-row"][data-run-id="hangs"]')
    expect_state(failed, "failed", timeout_ms=30_000)
    nb.run(2)  # SIGKILL the hanging script; waits for all three
    expect(nb.output(2)).to_have_text("exit codes 0 1 -9")
    expect_state(hung, "crashed", timeout_ms=40_000)
    assert wait_points(ws_chart(rp, "loss"), lambda n: n == 40, timeout=10, what="== 40") == 40

    expect_state(p, "finished", timeout_ms=40_000)
    assert wait_points(c, lambda n: n == 80, timeout=10, what="== 80 (all points)") == 80
    lab.screenshot(p, "run-panel-other-process")
    lab.screenshot(nb.output_area(1), "run-panel-other-process-failed-crashed")
    recorded.check()


def test_panel_live_in_notebook7(lab, page, recorded) -> None:  # noqa: ANN001
    recorded.allowed_page_errors = NOTEBOOK7_NOISE
    nb = lab.open(page, "live_nb7", [live_cell("live-nb7", ext=True, finish=True)], ui="notebook")
    nb.run(0, wait=False)
    p = wait_panel(nb, 0)
    assert_grows_while_running(nb, 0, chart(p, "train/loss"), "go-live-nb7")
    nb.wait_done(0)
    nb.assert_no_error_output(0)
    assert_final(p)
    lab.screenshot(p, "run-panel-notebook7")
    recorded.check()
