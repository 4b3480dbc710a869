"""Static fallback of a finished run panel (issue 4, "Static fallback").

Executes a notebook with nbclient (no browser, no network), saves it, exports it with
``jupyter nbconvert --to html`` and checks that the HTML carries the fallback: the final
chart as ``<img src="data:image/png;base64,...">`` and the summary table with the metric
names. Prints the saved notebook's size (run pytest with ``-s`` to see it).

The last test opens that HTML in Debian's Chromium with every non-local request aborted:
the default nbconvert template loads require.js, the widget html-manager and MathJax from
public CDNs, so offline the widget output stays blank and what a reader sees is the
fallback, which must be visible (not hidden by the live view's style rule) and must not
need any network of its own. (No Jupyter server needed: the page is a file.)
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

KEYS = ("train/loss", "val/acc")
SOURCE = """\
import time, nbtracker
run = nbtracker.init(project="export", name="exported-run", config={"lr": 0.01, "epochs": 3})
for step in range(50):
    run.log({"train/loss": 1.0 / (step + 1), "val/acc": step / 50})
print("epoch 1 done <b>not bold</b>")
run.alert(title="<script>alert(1)</script> loss diverged", text="loss > 10", level="WARN")
time.sleep(1.2)  # long enough for a system sample (a run of under ~0.75 s has none)
run.finish()
"""
MAX_NOTEBOOK_BYTES = 1_000_000  # the 878 KB vega bundle must not be saved into the notebook

_IMG = re.compile(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', re.I)
_TABLE = re.compile(r"<table\b.*?</table>", re.I | re.S)


class Exported(dict):  # type: ignore[type-arg]
    def __repr__(self) -> str:  # keep pytest's failure reports short
        return f"<Exported {self.get('ipynb')}>"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from nbclient import NotebookClient

    work = tmp_path_factory.mktemp("nbconvert")
    data = work / "nbruns"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(SOURCE)]
    mp = pytest.MonkeyPatch()
    mp.setenv("NBTRACKER_DIR", str(data))  # the kernel inherits it
    try:
        NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}
        ).execute()
    finally:
        mp.undo()
    ipynb = work / "executed.ipynb"
    nbformat.write(nb, ipynb)
    proc = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", "--output", "executed", str(ipynb)],
        cwd=work, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    html_path = work / "executed.html"
    size = ipynb.stat().st_size
    print(f"\nsaved notebook with one finished run panel: {size:,} bytes ({size / 1024:.1f} KiB); "
          f"HTML export: {html_path.stat().st_size:,} bytes")  # fmt: skip
    return Exported(nb=nb, ipynb=ipynb, html=html_path.read_text(), size=size, data=data)


def _outputs_text(nb: object) -> str:
    return "\n".join(
        str(o.get("text", "")) + str(o.get("traceback", ""))
        for c in nb.cells  # type: ignore[attr-defined]
        for o in c.get("outputs", [])
    )


def test_cell_ran_without_error(exported: dict[str, object]) -> None:
    nb = exported["nb"]
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]  # type: ignore[attr-defined]
    assert not errors, _outputs_text(nb)


def test_html_has_chart_image(exported: dict[str, object]) -> None:
    html = str(exported["html"])
    imgs = _IMG.findall(html)
    assert imgs, 'no <img src="data:image/png;base64,..."> in the nbconvert HTML'
    from PIL import Image

    im = Image.open(io.BytesIO(base64.b64decode(re.sub(r"\s", "", imgs[0]))))
    im.load()
    assert im.width >= 100 and im.height >= 50, im.size
    colors = im.convert("RGBA").getcolors(maxcolors=1_000_000) or []
    assert len(colors) > 8, f"fallback chart image looks blank ({len(colors)} colours)"


def test_html_has_summary_table(exported: dict[str, object]) -> None:
    html = str(exported["html"])
    tables = [t for t in _TABLE.findall(html) if all(k in t for k in KEYS)]
    assert tables, f"no <table> naming all of {KEYS} in the nbconvert HTML"


def test_saved_notebook_small_and_without_paths(exported: dict[str, object]) -> None:
    text = Path(exported["ipynb"]).read_text()  # type: ignore[arg-type]
    size = int(exported["size"])  # type: ignore[call-overload]
    assert size < MAX_NOTEBOOK_BYTES, f"saved notebook is {size:,} bytes"
    data = str(exported["data"])
    assert data not in text, "the saved notebook contains the local storage path"
    assert "<nbtracker" not in text and " object at 0x" not in text, "unreadable text/plain"


# What nbconvert's own template asks for (not nbtracker's doing); those requests are aborted.
TEMPLATE_CDNS = ("cdnjs.cloudflare.com", "cdn.jsdelivr.net", "unpkg.com")
CHROMIUM = os.environ.get("NBTRACKER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(
    os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[1] / "test-artifacts"
)


# Run in a subprocess: Playwright's sync API allows one instance per thread, and the browser
# tier (tests/browser) keeps its own open for the whole session.
_CHECK = r"""
import json, sys
from pathlib import Path
from playwright.sync_api import expect, sync_playwright
chromium, flags, html, shot, k0, k1 = json.loads(sys.argv[1])
outside, errors = [], []
def route(r):
    url = r.request.url
    if url.split(":", 1)[0] in ("file", "data", "blob", "about"):
        r.continue_()
    else:
        outside.append(url)
        r.abort()
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=flags)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(f"{e.name}: {e.message}"))
        page.route("**/*", route)
        page.goto(Path(html).as_uri())
        img = page.locator('img[src^="data:image/png;base64,"]').first
        expect(img).to_be_visible(timeout=10_000)
        page.wait_for_function(
            "el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=10_000
        )
        expect(page.locator("table", has_text=k0).filter(has_text=k1).first).to_be_visible()
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shot, full_page=True)
    finally:
        browser.close()
print(json.dumps({"outside": sorted(set(outside)), "errors": errors}))
"""


@pytest.mark.browser
def test_html_fallback_renders_offline_in_chromium(exported: dict[str, object]) -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (never skipped)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail(
            "no `playwright` package: pip install -e '.[test]' (never `playwright install`)"
        )
    html_path = Path(str(exported["ipynb"])).with_suffix(".html")
    shot = ARTIFACTS / "export-html-offline.png"
    args = [CHROMIUM, CHROMIUM_FLAGS, str(html_path), str(shot), *KEYS]
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK, json.dumps(args)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"Chromium check failed:\n{proc.stdout[-3000:]}{proc.stderr[-5000:]}"
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    outside, page_errors = result["outside"], result["errors"]
    print(f"\nrequests aborted (no network): {outside}")
    ours = [u for u in outside if not any(h in u for h in TEMPLATE_CDNS)]
    assert not ours, f"the exported fallback itself asks the network for: {ours}"
    # Offline, the template's require.js never loads: errors naming it are expected.
    bad = [e for e in page_errors if "require" not in e.lower() and "define" not in e.lower()]
    assert not bad, f"page errors in the exported HTML: {bad}"


def test_html_has_alerts_logs_system_and_environment(exported: dict[str, object]) -> None:
    """Issue 13: what the capture keeps is in the static copy too, every string escaped."""
    html = str(exported["html"])
    part = next(
        str(o["data"]["text/html"])
        for c in exported["nb"].cells  # type: ignore[attr-defined]
        for o in c.get("outputs", [])
        if "nbt-fallback" in str(o.get("data", {}).get("text/html", ""))
    )
    # the HTML export carries the same parts (nbconvert re-serialises the markup)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; loss diverged" in html
    assert "System (last, min – max)" in html and "epoch 1 done &lt;b&gt;" in html
    assert 'data-nbt-alert="WARN"' in part
    assert "&lt;script&gt;alert(1)&lt;/script&gt; loss diverged" in part
    assert "<script>alert(1)</script>" not in html  # (the widget state JSON has it as <\\/script>)
    assert 'data-nbt-static="logs"' in part
    assert "epoch 1 done &lt;b&gt;not bold&lt;/b&gt;" in part
    assert "System (last, min – max)" in part and "cpu" in part
    assert "Environment" in part and "python" in part
