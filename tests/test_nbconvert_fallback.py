"""Static fallback of a finished run panel (issue 4, "Static fallback").

Executes a notebook with nbclient (no browser, no network), saves it, exports it with
``jupyter nbconvert --to html`` and checks that the HTML carries the fallback: the final
chart as ``<img src="data:image/png;base64,...">`` and the summary table with the metric
names. Prints the saved notebook's size (run pytest with ``-s`` to see it).
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

KEYS = ("train/loss", "val/acc")
SOURCE = """\
import nbtracker
run = nbtracker.init(project="export", name="exported-run", config={"lr": 0.01, "epochs": 3})
for step in range(50):
    run.log({"train/loss": 1.0 / (step + 1), "val/acc": step / 50})
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
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
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
    assert imgs, "no <img src=\"data:image/png;base64,...\"> in the nbconvert HTML"
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
