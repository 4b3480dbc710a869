"""Issue 5 item 4 in a real JupyterLab: a notebook cell logs a Table (with images), a
Histogram and an Image every step. The table widget appears in that cell's output while
it runs (thumbnails visible), the run panel's summary shows short media labels, and the
histogram / image step sliders work; user strings stay text. Offline: the ``page``
fixture fails on any page error or request leaving localhost.
"""

from __future__ import annotations

import io

import pytest
from nbt_browser import expect
from nbt_panel import expect_state, wait_panel

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
STEPS = 40

TRAIN = f"""
import os, time
import numpy as np
import nbtracker as nbt
XSS = {XSS!r}
rng = np.random.default_rng(0)
run = nbt.init(project="media", name="media-run")
for step in range({STEPS}):
    if step == 5:  # the test lets training go on once it has seen the media live
        _t = time.time()
        while not os.path.exists("go-media") and time.time() - _t < 90:
            time.sleep(0.05)
    if step % 10 == 0:
        t = nbt.Table(columns=["image", "pred", "target", XSS])
        for i in range(30):
            t.add_data(nbt.Image(rng.integers(0, 256, (28, 28), dtype=np.uint8), caption=XSS),
                       i % 10, (i * 3 + step // 10) % 10, XSS if i == 0 else f"row {{i}}")
        run.log({{"predictions_table": t}}, commit=False)
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., step % 3] = 200
    img[step % 32] = 255
    run.log({{"loss": 1 / (step + 1),
             "weights": nbt.Histogram(rng.normal(step / 10, 1, 500)),
             "sample": nbt.Image(img, caption=f"step {{step}} " + XSS)}})
    time.sleep(0.15)
run.finish()
"""


def colours(png: bytes) -> int:
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGBA")
    return len(im.getcolors(maxcolors=1_000_000) or [])


def set_range(slider, value: int) -> None:  # noqa: ANN001
    slider.evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }",
        value,
    )


def test_media_in_training_cell(lab, page, recorded) -> None:  # noqa: ANN001
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    cells = [TRAIN, "nbt.show(t)", 'run.table("predictions_table", step=10)']
    nb = lab.open(page, "media_panel", cells)
    nb.run(0, wait=False)

    # -- while the cell runs: the table widget is there, with its thumbnails --------------
    out = nb.output(0)
    tv = out.get_by_test_id("nbt-tv")
    expect(tv).to_be_visible(timeout=30_000)
    thumbs = tv.locator("img.nbt-tv-thumb")
    expect(thumbs).to_have_count(25)
    page.wait_for_function(
        "root => [...root.querySelectorAll('img.nbt-tv-thumb')].every("
        "e => e.complete && e.naturalWidth === 28)",
        arg=tv.element_handle(),
    )
    p = wait_panel(nb, 0)
    media = p.get_by_test_id("nbt-media")
    weights = media.locator('[data-testid="nbt-media-item"][data-key="weights"]')
    expect(weights).to_be_visible(timeout=20_000)
    n1 = int(weights.get_attribute("data-entries") or 0)
    assert nb.is_running(0), "the table widget / media only showed after the cell finished"
    (lab.root / "go-media").write_text("go")
    page.wait_for_function(
        f"el => Number(el.dataset.entries) > {n1}", arg=weights.element_handle(), timeout=10_000
    )
    assert nb.is_running(0), "histogram entries did not arrive while the cell ran"

    nb.wait_done(0)
    nb.assert_no_error_output(0)
    expect_state(p, "finished")
    expect(out.get_by_test_id("nbt-tv")).to_have_count(1)  # one widget per table key
    # The table widget followed the later versions (steps 0, 10, 20, 30).
    step_sel = tv.locator("select[title^='version']")
    expect(step_sel.locator("option")).to_have_count(4)
    expect(step_sel).to_have_value("30")
    expect(tv.locator("tbody tr").first.locator("td").nth(2)).to_have_text("3")  # step 30's

    # -- summary: short labels, never the raw reference JSON -----------------------------
    summary = p.get_by_test_id("nbt-summary")
    expect(summary).to_contain_text("table 30×4 (step 30)")
    expect(summary).to_contain_text("histogram (64 bins)")
    expect(summary).to_contain_text("image 32×32")
    assert '"_type"' not in summary.inner_text()

    # -- histogram: bars at the latest step, over-time heatmap, slider ------------------
    expect(weights).to_have_attribute("data-kind", "histogram")
    expect(weights).to_have_attribute("data-step", str(STEPS - 1))
    bars = int(weights.get_by_test_id("nbt-media-hist").get_attribute("data-bars") or 0)
    assert bars >= 10, f"histogram drew {bars} bars"
    heat = weights.get_by_test_id("nbt-media-heatmap")
    expect(heat).to_be_visible()
    assert colours(heat.screenshot()) > 8, "the histogram-over-time view looks blank"
    set_range(weights.get_by_test_id("nbt-media-slider"), 0)
    expect(weights).to_have_attribute("data-step", "0")
    expect(weights.get_by_test_id("nbt-media-step")).to_contain_text("step 0")

    # -- image: the thumbnail at the latest step, then at the first one -----------------
    sample = media.locator('[data-testid="nbt-media-item"][data-key="sample"]')
    expect(sample).to_have_attribute("data-kind", "image")
    img = sample.get_by_test_id("nbt-media-image")
    expect(img).to_have_count(1)
    page.wait_for_function("e => e.complete && e.naturalWidth === 32", arg=img.element_handle())
    last_src = img.get_attribute("src")
    assert last_src and last_src.startswith("data:image/png;base64,")
    expect(sample.locator("figcaption")).to_have_text(f"step {STEPS - 1} {XSS}")
    # every logged step is on the slider (it kept 24 of 40, and lost step 0)
    expect(sample).to_have_attribute("data-entries", str(STEPS))
    expect(weights).to_have_attribute("data-entries", str(STEPS))
    slider = sample.get_by_test_id("nbt-media-slider")
    for i in (1, 17, 38):
        set_range(slider, i)
        expect(sample).to_have_attribute("data-step", str(i))
        expect(sample.locator("figcaption")).to_have_text(f"step {i} {XSS}")
    set_range(sample.get_by_test_id("nbt-media-slider"), 0)
    expect(sample).to_have_attribute("data-step", "0")
    expect(sample.get_by_test_id("nbt-media-step")).to_have_text(f"step 0 (1 of {STEPS} kept)")
    expect(sample.locator("figcaption")).to_have_text(f"step 0 {XSS}")
    assert (
        img.count() == 1
        and sample.get_by_test_id("nbt-media-image").get_attribute("src") != last_src
    )
    lab.screenshot(p, "media-panel")
    lab.screenshot(media, "media-sliders")
    light = heat.screenshot()
    try:
        nb.set_theme("JupyterLab Dark")
        expect(heat).to_have_attribute("data-theme", "dark")
        lab.screenshot(media, "media-sliders-dark")
        # the redraw reaches the screen within a frame or two: look a few times
        for _ in range(20):
            if heat.screenshot() != light:
                break
            page.wait_for_timeout(250)
        else:
            raise AssertionError("the heatmap did not follow the dark theme")
    finally:
        nb.set_theme("JupyterLab Light")
    lab.screenshot(tv, "media-table-in-training-cell")

    # -- show(table) and run.table(key, step): one widget each ---------------------------
    nb.run(1)
    nb.assert_no_error_output(1)
    tv1 = nb.output(1).get_by_test_id("nbt-tv")
    expect(tv1).to_have_count(1)
    expect(tv1.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–25 of 30")
    expect(tv1.locator("img.nbt-tv-thumb")).to_have_count(25)
    nb.run(2)
    nb.assert_no_error_output(2)
    tv2 = nb.output(2).get_by_test_id("nbt-tv")
    expect(tv2).to_have_count(1)
    expect(tv2.locator("select[title^='version']")).to_have_value("10")
    expect(tv2.locator("tbody tr").first.locator("td").nth(2)).to_have_text("1")  # step 10's
    lab.screenshot(tv2, "media-run-table-step10")

    assert dialogs == [], f"a script ran: {dialogs}"
    assert page.locator('img[src="x"]').count() == 0

    # -- reload (kernel alive): the new view asks for the media entries it never got ----
    nb.eval_app("await app.commands.execute('docmanager:save');")
    page.reload()
    expect(nb.cells).to_have_count(3, timeout=60_000)
    lab.wait_kernel_ready(page, "media_panel.ipynb")
    p = wait_panel(nb, 0)
    weights = p.locator('[data-testid="nbt-media-item"][data-key="weights"]')
    expect(weights).to_have_attribute("data-step", str(STEPS - 1), timeout=20_000)
    assert int(weights.get_attribute("data-entries") or 0) > 10
    img = p.locator('[data-testid="nbt-media-item"][data-key="sample"]').get_by_test_id(
        "nbt-media-image"
    )
    page.wait_for_function("e => e.complete && e.naturalWidth === 32", arg=img.element_handle())
    expect(nb.output(0).get_by_test_id("nbt-tv").locator("img.nbt-tv-thumb")).to_have_count(25)

    # -- kernel gone: the static snapshot shows the last image and histogram -------------
    lab.server.shutdown_kernels()
    page.reload()
    expect(nb.cells).to_have_count(3, timeout=60_000)
    lab.wait_kernel_ready(page, "media_panel.ipynb")
    fb = nb.output(0).locator("[data-nbt-fallback]").first
    expect(fb).to_be_visible(timeout=10_000)
    expect(fb.locator("figcaption")).to_have_text(f"step {STEPS - 1} {XSS}")
    expect(fb.locator("svg rect").first).to_be_attached()
    expect(fb).to_contain_text("histogram (64 bins)")
    table_fb = nb.output(0).locator(".nbt-fallback .nbt-more")
    expect(table_fb).to_have_text("predictions_table (step 30): first 10 of 30 rows")
    lab.screenshot(nb.cell(0), "media-reopened-no-kernel")

    # -- nothing a user wrote ran ---------------------------------------------------------
    assert dialogs == [], f"a script ran: {dialogs}"
    assert page.locator('img[src="x"]').count() == 0
    recorded.check()
