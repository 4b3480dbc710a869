"""TableView in real JupyterLab: thumbnails, sort, filter, search, paging, enlarge, XSS probe."""

from __future__ import annotations

import re

import pytest
from nbt_browser import NOTEBOOK7_NOISE, expect

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"

SETUP = f"""
import numpy as np
import nbtracker as nbt
from nbtracker.widgets.table_view import TableView
XSS = {XSS!r}
run = nbt.init(project="tv", dir="runs")
rng = np.random.default_rng(0)
t = nbt.Table(columns=["image", "pred", "target", "name", "score", XSS])
for i in range(60):
    img = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    t.add_data(nbt.Image(img, caption=XSS), i % 10, (i * 3) % 10,
               XSS if i == 0 else f"row {{i}}", round(i / 60, 4), i)
run.log({{"preds": t}})  # in a notebook this shows the table widget in this cell
run.finish()
"""

SHOW_VIEW = """
view = TableView.for_run(run, "preds")
view
"""


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_table_view_in_lab(lab, page, recorded, ui) -> None:  # noqa: ANN001
    if ui == "notebook":
        recorded.allowed_page_errors = NOTEBOOK7_NOISE
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    cells = [SETUP, SHOW_VIEW, "print('sort', view.query.get('sort'))"]
    nb = lab.open(page, f"table_view_{ui}", cells, ui=ui)
    nb.run(0)
    nb.assert_no_error_output(0)
    expect(nb.output(0).get_by_test_id("nbt-tv")).to_have_count(1)  # shown by log()
    nb.run(1)
    nb.assert_no_error_output(1)
    tv = nb.output(1).get_by_test_id("nbt-tv")
    expect(tv).to_be_visible(timeout=20_000)
    thumbs = tv.locator("img.nbt-tv-thumb")
    expect(thumbs).to_have_count(25)
    page.wait_for_function(
        "root => [...root.querySelectorAll('img.nbt-tv-thumb')].every("
        "e => e.complete && e.naturalWidth === 28)",
        arg=tv.element_handle(),
    )
    # the thumbnails came as binary buffers (blob: URLs), not base64 inside the JSON
    srcs = thumbs.evaluate_all("els => els.map(e => e.src)")
    assert all(s.startswith("blob:") for s in srcs), srcs[:3]
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–25 of 60")
    snapshot = nb.output_area(1).locator(".nbt-fallback:has(table.nbt-table)")
    expect(snapshot).to_have_count(1)  # the static snapshot is there, under the widget...
    expect(snapshot).to_be_hidden()  # ...and hidden while the live view runs
    # XSS probe: the string is text in a cell, a header and every caption; nothing ran.
    expect(tv.locator("td", has_text=XSS).first).to_be_visible()
    expect(tv.locator(f'th[data-col="{XSS}"]')).to_have_count(1)
    assert page.locator('img[src="x"]').count() == 0
    lab.screenshot(tv, f"table-view-first-page-{ui}")

    # sort by score, descending (two clicks on its header)
    tv.locator('th[data-col="score"]').click()
    expect(tv.locator('th[data-col="score"]')).to_have_text("score ▲")
    tv.locator('th[data-col="score"]').click()
    expect(tv.locator('th[data-col="score"]')).to_have_text("score ▼")
    expect(tv.locator("tbody tr").first.locator("td").nth(4)).to_have_text("0.9833")

    # filter with a DuckDB expression
    tv.get_by_test_id("nbt-tv-filter").fill("pred != target")
    tv.get_by_test_id("nbt-tv-filter").press("Enter")
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text(re.compile(r"\(filtered from 60\)"))
    expect(tv.get_by_test_id("nbt-tv-error")).to_have_text("")
    tv.get_by_test_id("nbt-tv-filter").fill("nope >")
    tv.get_by_test_id("nbt-tv-filter").press("Enter")
    expect(tv.get_by_test_id("nbt-tv-error")).to_have_text(re.compile("^filter:"))
    tv.get_by_test_id("nbt-tv-filter").fill("")
    tv.get_by_test_id("nbt-tv-search").fill("row 4")
    tv.get_by_test_id("nbt-tv-search").press("Enter")
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–11 of 11 (filtered from 60)")
    tv.get_by_test_id("nbt-tv-search").fill("")
    tv.get_by_test_id("nbt-tv-search").press("Enter")
    tv.get_by_test_id("nbt-tv-next").click()
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 26–50 of 60")

    # click a thumbnail: the full image opens in an overlay; a click closes it
    thumb_src = thumbs.first.get_attribute("src")
    thumbs.first.click()
    zoom = page.get_by_test_id("nbt-tv-zoom")
    expect(zoom).to_be_visible()
    expect(zoom.locator("div")).to_have_text(XSS)
    page.wait_for_function(  # the full image arrived (a buffer of its own) and decoded
        "([img, old]) => img.src.startsWith('blob:') && img.src !== old && img.complete "
        "&& img.naturalWidth === 28",
        arg=[zoom.locator("img").element_handle(), thumb_src],
    )
    lab.screenshot(page, f"table-view-enlarged-{ui}")
    page.keyboard.press("Escape")
    expect(zoom).to_have_count(0)
    thumbs.nth(1).click()
    expect(zoom).to_be_visible()
    zoom.click()
    expect(zoom).to_have_count(0)
    tv.get_by_test_id("nbt-tv-size").select_option("10")
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–10 of 60")
    expect(thumbs).to_have_count(10)

    nb.run(2)
    expect(nb.output(2)).to_have_text("sort score")  # the view's query reached the kernel
    assert dialogs == [], f"a script ran: {dialogs}"
    assert page.locator('img[src="x"]').count() == 0
    recorded.check()


BIG = """
import numpy as np, time
import nbtracker as nbt
rng = np.random.default_rng(0)
run = nbt.init(project="tv-big", dir="runs")
imgs = [nbt.Image(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(1000)]
t = nbt.Table(columns=["image", "pred", "target"] + [f"score_{i}" for i in range(10)])
scores = rng.random((100_000, 10)).round(6)
for i in range(100_000):
    t.add_data(imgs[i % 1000], i % 10, (i * 7) % 10, *scores[i])
run.log({"big": t})
run.finish()
best = float(scores[:, 3].max())
print("built")
"""

SHOW = """
t0 = time.perf_counter()
from nbtracker.widgets.table_view import TableView
view = TableView.for_run(run, "big")
display(view)
print(f"kernel {time.perf_counter() - t0:.3f}")
"""


def test_table_view_100k_rows_timing(lab, page, recorded) -> None:  # noqa: ANN001
    """First page and sort of a 100k-row table, as a person sees them (kernel + browser)."""
    import json
    import time

    from nbt_browser import ARTIFACTS

    nb = lab.open(page, "table_view_big", [BIG, SHOW, "print(f'{best:.6g}')"])
    nb.run(0, timeout=240)
    nb.assert_no_error_output(0)
    t0 = time.perf_counter()
    nb.run(1, wait=False)
    tv = nb.output(1).get_by_test_id("nbt-tv")
    thumbs = tv.locator("img.nbt-tv-thumb")
    expect(thumbs).to_have_count(25, timeout=30_000)
    page.wait_for_function(  # query the DOM each time: a redraw replaces the elements
        "root => [...root.querySelectorAll('img.nbt-tv-thumb')].every("
        "e => e.complete && e.naturalWidth === 28)",
        arg=tv.element_handle(),
        polling="raf",
        timeout=30_000,
    )
    first_page = time.perf_counter() - t0
    nb.wait_done(1)
    kernel_s = float(re.search(r"kernel ([0-9.]+)", nb.output_text(1)).group(1))
    nb.run(2)
    best = nb.output(2).inner_text().strip()
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–25 of 100000")
    header = tv.locator('th[data-col="score_3"]')
    header.click()  # ascending
    expect(header).to_have_text("score_3 ▲")
    expect(tv).to_have_attribute("data-busy", "0", timeout=30_000)  # the kernel answered
    first_cell = tv.locator("tbody tr").first.locator("td").nth(6)
    before = first_cell.inner_text()
    t0 = time.perf_counter()
    header.click()  # descending: the best score comes first
    page.wait_for_function(
        "([root, old]) => root.dataset.busy === '0' && "
        "root.querySelector('tbody tr td:nth-child(7)').textContent !== old",
        arg=[tv.element_handle(), before],
        polling="raf",
        timeout=30_000,
    )
    sort = time.perf_counter() - t0
    assert abs(float(first_cell.inner_text()) - float(best)) < 1e-4
    figures = {
        "rows": 100_000,
        "first_page_s": round(first_page, 3),
        "first_page_kernel_s": kernel_s,
        "sort_s": round(sort, 3),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "table_view_timings.json").write_text(json.dumps(figures))
    print("TABLE VIEW TIMINGS", figures)
    lab.screenshot(tv, "table-view-100k-sorted")
    # Targets (issue 5): first page <= 0.5 s, sort <= 0.3 s. This machine is shared and
    # noisy, so the test only guards against a regression by an order of magnitude.
    assert first_page < 5 and sort < 3, figures
    recorded.check()


def test_static_html_runs_no_script(browser) -> None:  # noqa: ANN001
    """The static fallback (Table._repr_html_, TableView's text/html) shown as a page."""
    import numpy as np

    from nbtracker.data_types import Html, Image, Table

    t = Table(columns=[XSS, "image", "html", "list"])
    t.add_data(XSS, Image(np.zeros((8, 8, 3), np.uint8), caption=XSS), Html(XSS), [XSS])
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_content(f"<html><body>{t._repr_html_()}{Html(XSS)._repr_html_()}</body></html>")
    expect(page.locator("table.nbt-table img")).to_have_count(1)
    page.wait_for_function("() => document.querySelector('table.nbt-table img').complete")
    assert page.locator("table.nbt-table img").evaluate("e => e.naturalWidth") == 8
    expect(page.locator("td", has_text=XSS).first).to_be_visible()
    page.wait_for_timeout(300)  # give an injected handler every chance to fire
    assert dialogs == []
    assert page.locator('img[src="x"]').count() == 0
    page.close()


LIVE = """
import time
import numpy as np
import nbtracker as nbt
from nbtracker.widgets.table_view import TableView
run = nbt.init(project="tv-live", dir="runs")
t = nbt.Table(columns=["image", "epoch"])
t.add_data(nbt.Image(np.zeros((8, 8), np.uint8)), 0)
run.log({"live": t})  # in a notebook this shows the table widget (following the run)
for epoch in range(1, 8):
    time.sleep(0.6)
    t.add_data(nbt.Image(np.full((8, 8), 30 * epoch, np.uint8)), epoch)
    run.log({"live": t})
run.finish()
"""


def test_table_view_follows_a_live_run_while_the_cell_runs(lab, page, recorded) -> None:  # noqa: ANN001
    nb = lab.open(page, "table_view_live", [LIVE])
    nb.run(0, wait=False)
    tv = nb.output(0).get_by_test_id("nbt-tv")
    expect(tv).to_be_visible(timeout=30_000)
    # new versions arrive while the training cell is still running
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text(re.compile(r"of [3-7]$"), timeout=20_000)
    assert nb.is_running(0), "the cell ended before a new version was seen"
    nb.wait_done(0)
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–8 of 8")
    expect(tv.locator("img.nbt-tv-thumb")).to_have_count(8)
    recorded.check()


STEPS = """
import numpy as np
import nbtracker as nbt
run = nbt.init(project="tv-steps", dir="runs")
rng = np.random.default_rng(1)
digits = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
for epoch in range(3):
    t = nbt.Table(columns=["image", "pred", "target", "score"])
    for i, img in enumerate(digits):
        pred = (i + epoch * (i % 2)) % 4  # odd rows wrong at epoch 1 and 2, right at 0
        t.add_data(nbt.Image(img), pred, i % 4, round((i * 7 + epoch) % 20 / 20, 3))
    run.log({"preds": t, "epoch": epoch})
run.finish()
nbt.show(run, "preds", step="all")
"""


def test_table_versions_compared_across_steps(lab, page, recorded) -> None:  # noqa: ANN001
    nb = lab.open(page, "table_view_steps", [STEPS])
    nb.run(0)
    nb.assert_no_error_output(0)
    views = nb.output(0).get_by_test_id("nbt-tv")
    expect(views).to_have_count(2)  # log() showed the latest version; show() all three
    tv = views.filter(has=page.locator("b", has_text="preds (steps 0, 1, 2)"))
    expect(tv).to_have_count(1)
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–25 of 60")
    expect(tv.locator('th[data-col="step"]')).to_have_count(1)
    page.wait_for_function(
        "root => [...root.querySelectorAll('img.nbt-tv-thumb')].every("
        "e => e.complete && e.naturalWidth === 28)",
        arg=tv.element_handle(),
    )
    tv.get_by_test_id("nbt-tv-filter").fill("step = 2 AND pred != target")
    tv.get_by_test_id("nbt-tv-filter").press("Enter")
    expect(tv.get_by_test_id("nbt-tv-info")).to_have_text("rows 1–10 of 10 (filtered from 60)")
    first = tv.locator("tbody tr").first.locator("td")
    expect(first.nth(0)).to_have_text("2")
    lab.screenshot(tv, "table-view-compare-steps")
    recorded.check()
