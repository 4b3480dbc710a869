"""The nbconvert HTML of a finished run panel, opened in Chromium with no network.

The default nbconvert template loads require.js, the widget html-manager and MathJax from
public CDNs, so offline the widget output itself stays blank: what a reader sees is the
static fallback (chart image + summary table), which must therefore be visible (not hidden by
the style rule the live view uses) and must not need any network of its own.
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbt_browser import ARTIFACTS, expect, is_local_url

pytestmark = pytest.mark.browser

SOURCE = """\
import nbtracker
run = nbtracker.init(project="export", name="exported-run", config={"lr": 0.01})
for step in range(50):
    run.log({"train/loss": 1.0 / (step + 1), "val/acc": step / 50})
run.finish()
"""
KEYS = ("train/loss", "val/acc")
# What nbconvert's own template asks for (not nbtracker's doing); requests are aborted.
TEMPLATE_CDNS = ("cdnjs.cloudflare.com", "cdn.jsdelivr.net", "unpkg.com")


def test_exported_html_shows_fallback_offline(lab, page, recorded, tmp_path) -> None:  # noqa: ANN001
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(SOURCE)]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=lab.env)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    ipynb = tmp_path / "exported.ipynb"
    nbformat.write(nb, ipynb)
    proc = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(ipynb)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = tmp_path / "exported.html"

    outside: list[str] = []

    def block(route) -> None:  # noqa: ANN001
        url = route.request.url
        if url.startswith("file:") or is_local_url(url):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", block)
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    img = page.locator('img[src^="data:image/png;base64,"]').first
    expect(img).to_be_visible(timeout=10_000)
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=10_000
    )
    table = page.locator("table", has_text=KEYS[0]).filter(has_text=KEYS[1]).first
    expect(table).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-html-offline.png"), full_page=True)

    print(f"requests aborted (no network): {sorted(set(outside))}")
    ours = [u for u in outside if not any(h in u for h in TEMPLATE_CDNS)]
    assert not ours, f"the exported fallback itself asks the network for: {ours}"
    recorded.urls[:] = [u for u in recorded.urls if not u.startswith("file:") and u not in outside]
    recorded.page_errors[:] = [e for e in recorded.page_errors if "require" not in e.lower()]
    recorded.check()
