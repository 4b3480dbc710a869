"""Multi-rank (DDP) runs: a real 2-rank torchrun job (CPU, gloo) logging into one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import nbtracker

pytest.importorskip("torch")
SCRIPT = Path(__file__).parent / "procs" / "ddp_train.py"


def _torchrun(root: Path, run_id: str, how: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACKER_", "WANDB_"))}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(SCRIPT), str(root), run_id, how]  # fmt: skip
    # its own process group: a hung job is killed whole, no rank left behind
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError("torchrun hung:\n" + out[-3000:]) from None
    assert proc.returncode == 0, out[-3000:]
    return out


def test_two_rank_torchrun_is_one_run_with_both_ranks(root: Path) -> None:
    _torchrun(root, "ddp-shared", "shared")
    runs = nbtracker.Api(root).runs("ddp")
    assert [r.id for r in runs] == ["ddp-shared"]
    run = runs[0]
    assert run.state == "finished"
    assert run.config == {"lr": 0.1, "world": 2}  # rank 0's
    hist = run.history(samples=None)
    assert len(hist) == 30
    assert set(hist["rank"]) == {0} and set(hist["rank_1/rank"]) == {1}
    assert hist["loss"].notna().all() and hist["rank_1/loss"].notna().all()
    assert run.summary["rank_1/loss"] == hist["rank_1/loss"].iloc[-1]
    ranks = run.ranks
    assert [(r["label"], r["primary"], r["state"]) for r in ranks] == [
        ("rank_0", True, "finished"),
        ("rank_1", False, "finished"),
    ]
    system = run.history(stream="system", samples=None)
    for label in ("rank_0", "rank_1"):
        assert system[f"system/{label}/memory_percent"].notna().any()
    files = {f.name for f in run.files()}
    assert {"output.log", "output_rank_1.log"} <= files
    for r in ranks:
        text = (run.dir / "files" / r["console"]).read_text()
        assert f"rank {r['label'][-1]} of 2 done" in text
    tail = nbtracker.query.console_tail(run.dir)
    assert tail.index("── rank_0 ──") < tail.index("rank 0 of 2") < tail.index("── rank_1 ──")
    assert tail.index("── rank_1 ──") < tail.index("rank 1 of 2")


def test_only_rank_zero_logs_with_one_line(root: Path) -> None:
    _torchrun(root, "ddp-rank0", "rank0")
    runs = nbtracker.Api(root).runs("ddp")
    assert [r.id for r in runs] == ["ddp-rank0"]
    run = runs[0]
    assert run.state == "finished" and run.ranks == []
    hist = run.history(samples=None)
    assert len(hist) == 30 and set(hist["rank"]) == {0}
    assert [c for c in hist.columns if not c.startswith("_")] == ["loss", "rank"]
    assert "rank 0 of 2 done" in (run.dir / "files" / "output.log").read_text()
    assert "rank 1" not in (run.dir / "files" / "output.log").read_text()
