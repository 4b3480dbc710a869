"""A notebook cell that raised while a run was live (issue 10.2).

Real notebooks executed by nbclient in a real kernel (no browser): the run must not be
recorded as finished when its cell raised; the next ``init()``, ``finish()`` or the
kernel's exit records it as failed with the error (readable through the Api), the panel
shows the error at once, and a run the user keeps logging to is running again.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nbtracker

HEAD = """\
import os, nbtracker
os.environ["NBTRACKER_DIR"] = {root!r}
run = nbtracker.init(project="cells", id="first")
for i in range(5):
    run.log({{"loss": 1 / (i + 1)}})
"""


def execute(root: Path, *cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(HEAD.format(root=str(root)))]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
    return nb


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(str(out.get("text", "")))
        data = out.get("data", {})
        parts.append(str(data.get("text/plain", "")) + str(data.get("text/html", "")))
        parts.append(str(out.get("ename", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("then", ["nbtracker.init(project='cells', id='second')", "run.finish()"])
def test_a_raising_cell_leaves_the_run_failed_with_its_error(tmp_path: Path, then: str) -> None:
    root = tmp_path / "nbruns"
    nb = execute(
        root,
        "for i in range(5, 8):\n    run.log({'loss': 1 / (i + 1)})\n1 / 0",
        # the panel shows the error at once, before anything else happens
        "print('panel:', nbtracker.run.state, '|', nbtracker.run._rec.get('error'))",
        then,
        "from nbtracker.store import wait_for_background; wait_for_background()",
    )
    assert "ZeroDivisionError" in outputs_text(nb.cells[1])
    assert "panel: running | ZeroDivisionError: division by zero" in outputs_text(nb.cells[2])
    first = nbtracker.Api(root).run("cells/first")
    assert first.state == "failed"
    assert first.metadata["error"] == "ZeroDivisionError: division by zero"
    assert first.metadata["exit_code"] == 1
    assert first.history(samples=None)["loss"].tolist() == [1 / (i + 1) for i in range(8)]
    runs = nbtracker.Api(root).runs("cells").to_pandas()
    row = runs[runs["run_id"] == "first"].iloc[0]
    assert (row["state"], row["error"]) == ("failed", "ZeroDivisionError: division by zero")
    sql = nbtracker.sql("SELECT state, error FROM runs WHERE run_id = 'first'", root=str(root))
    assert sql.values.tolist() == [["failed", "ZeroDivisionError: division by zero"]]


def test_a_run_logged_to_after_a_failed_cell_runs_again(tmp_path: Path) -> None:
    root = tmp_path / "nbruns"
    execute(
        root,
        "raise ValueError('bad batch')",
        "run.log({'loss': 0.01})\nrun.finish()",
        "from nbtracker.store import wait_for_background; wait_for_background()",
    )
    first = nbtracker.Api(root).run("cells/first")
    assert first.state == "finished" and "error" not in first.metadata


def test_kernel_exit_after_a_stop_button_records_keyboard_interrupt(tmp_path: Path) -> None:
    root = tmp_path / "nbruns"
    execute(root, "raise KeyboardInterrupt")  # the kernel then shuts down: atexit finishes
    first = nbtracker.Api(root).run("cells/first")
    assert first.state == "failed"
    assert first.metadata["error"] == "KeyboardInterrupt" and first.metadata["exit_code"] == 130


def test_the_panel_and_its_snapshot_show_the_error(tmp_path: Path) -> None:
    root = tmp_path / "nbruns"
    nb = execute(
        root,
        "1 / 0",
        "from nbtracker.widgets.run_panel import RunPanel\n"
        "p = RunPanel.for_run(run, show_tables=False)\n"
        "print('state', p.state, '|', p.error)\n"
        "from IPython.display import HTML\n"
        "HTML(p.fallback_bundle()['text/html'])",
    )
    text = outputs_text(nb.cells[2])
    assert "state failed | ZeroDivisionError: division by zero" in text
    assert 'data-nbt-error="1"' in text and "ZeroDivisionError: division by zero" in text
