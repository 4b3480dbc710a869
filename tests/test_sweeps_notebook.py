"""An agent in a real notebook kernel (nbclient, no browser): the cell shows the sweep's
workspace and its trials chart (no panel per run); the stop button (KeyboardInterrupt)
fails the current run and leaves the sweep resumable."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

import nbtracker

CELLS = [
    """\
import os, nbtracker as wandb
os.environ["NBTRACKER_DIR"] = {root!r}
sweep_id = wandb.sweep({{"method": "grid", "metric": {{"name": "acc", "goal": "maximize"}},
                        "parameters": {{"x": {{"values": [1, 2, 3, 4]}}}}}}, project="nb")
""",
    """\
def main():
    wandb.init()
    for i in range(3):
        wandb.log({"acc": wandb.config.x * (i + 1)})
wandb.agent(sweep_id, function=main, count=2)
""",
    """\
def stopped():
    wandb.init()
    wandb.log({"acc": 0})
    raise KeyboardInterrupt  # what the notebook's stop button raises
wandb.agent(sweep_id, function=stopped)
""",
    "print(sweep_id)",
]


def test_agent_cell_shows_the_sweep_and_the_stop_button_leaves_it_resumable(
    tmp_path: Path, root: Path
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nb.cells = [nbformat.v4.new_code_cell(c.format(root=str(root)) if i == 0 else c)
                for i, c in enumerate(CELLS)]  # fmt: skip
    NotebookClient(nb, timeout=180, allow_errors=True, kernel_name="python3").execute()
    agent_cell = nb.cells[1]
    views = [o for o in agent_cell.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]  # fmt: skip
    assert len(views) == 1, agent_cell.outputs  # the sweep's workspace, no panel per run
    assert "Workspace" in views[0]["data"]["text/plain"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in agent_cell.outputs)
    assert "data:image/png;base64" in html and "(grid)" in html
    stop_cell = nb.cells[2]
    assert any(o.get("ename") == "KeyboardInterrupt" for o in stop_cell.outputs)
    sweep_id = nb.cells[3].outputs[0]["text"].strip()
    sw = nbtracker.Api(root).sweep(f"nb/{sweep_id}")
    states = [(r.config["x"], r.state, r.metadata["exit_code"]) for r in sw.runs]
    assert states == [(1, "finished", 0), (2, "finished", 0), (3, "failed", 130)]
    assert sw.state == "pending"  # x=4 is still queued: another agent() goes on
    assert list(sw.trials()["state"]) == ["complete", "complete", "fail", "waiting"]
