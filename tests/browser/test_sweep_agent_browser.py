"""Issue 12: a sweep agent cell in a real JupyterLab, offline.

The cell that runs ``agent()`` shows the sweep's workspace, which grows while the agent
runs (one output, no panel per run); the kernel's stop button ends the current run as
failed and leaves the sweep resumable.
"""

from __future__ import annotations

import time

import pytest
from nbt_browser import expect

import nbtracker

pytestmark = pytest.mark.browser

CELLS = [
    """\
import time
import nbtracker as wandb
sweep_id = wandb.sweep({"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                        "parameters": {"lr": {"values": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}}},
                       project="sweep-nb")
def main():
    wandb.init()
    # the third trial runs until the stop button: the interrupt never lands between trials
    for i in range(15 if wandb.config.lr < 0.25 else 600):
        wandb.log({"acc": wandb.config.lr * (i + 1)})
        time.sleep(0.1)
wandb.agent(sweep_id, function=main)
""",
    "print(sweep_id)",
]


def test_agent_cell_grows_and_the_stop_button_leaves_the_sweep_resumable(lab, page) -> None:  # noqa: ANN001
    nb = lab.open(page, "sweep-agent", CELLS)
    nb.run(0, wait=False)
    out = nb.output(0)
    ws = out.get_by_test_id("nbt-workspace")
    expect(ws).to_be_visible(timeout=60_000)
    rows = ws.get_by_test_id("nbt-ws-row")
    seen = []
    deadline = time.monotonic() + 60
    while nb.is_running(0) and time.monotonic() < deadline:
        seen.append(rows.count())
        if seen[-1] >= 3:
            break
        time.sleep(0.3)
    assert max(seen) >= 3 and min(seen) < 3, f"rows seen while the agent ran: {seen}"
    expect(out.get_by_test_id("nbt-run-panel")).to_have_count(0)  # one view, not a panel each
    lab.screenshot(ws, "sweep-agent-cell")
    nb.eval_app("await app.commands.execute('notebook:interrupt-kernel');")
    nb.wait_done(0)
    assert "KeyboardInterrupt" in nb.output_text(0)
    nb.run(1)
    sweep_id = nb.output_text(1).strip().splitlines()[-1]
    sw = nbtracker.Api(lab.data_dir).sweep(f"sweep-nb/{sweep_id}")
    states = [r.state for r in sw.runs]
    assert states[-1] == "failed" and set(states[:-1]) == {"finished"}, states
    assert sw.runs[-1].metadata["exit_code"] == 130
    assert sw.state == "pending" and "waiting" in set(sw.trials()["state"])
