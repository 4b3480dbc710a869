"""Multi-rank (DDP) runs: a real 2-rank torchrun job (CPU, gloo) logging into one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbt_testutil
import pytest

import nbtracker

SCRIPT = Path(__file__).parent / "procs" / "ddp_train.py"
RANK_PROC = Path(__file__).parent / "procs" / "rank_proc.py"


def _torchrun(root: Path, run_id: str, how: str) -> str:
    pytest.importorskip("torch")
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
    # the run panel: each rank's system charts once, each rank's log under its label
    from nbtracker.widgets._capture_view import CaptureView

    shown = CaptureView(run.dir).poll(force=True)
    charts = [k for k in shown["system"] if k.endswith("/memory_percent")]
    assert charts == ["system/rank_0/memory_percent", "system/rank_1/memory_percent"]
    tail = shown["log_tail"]
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


def _rank(root: Path, run_id: str, rank: str, how: str = "finish", *more: str,
          steps: int = 10, env_name: str = "RANK", job: str | None = None) -> subprocess.Popen[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NBTRACKER_", "WANDB_")) and k not in ("RANK", "LOCAL_RANK")}  # fmt: skip
    env[env_name] = rank
    env.pop("TORCHELASTIC_RUN_ID", None)
    if job is not None:
        env["TORCHELASTIC_RUN_ID"] = job
    cmd = [sys.executable, str(RANK_PROC), str(root), run_id, str(steps), how, *more]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(*procs: subprocess.Popen[str]) -> list[tuple[int, str, str]]:
    return [(p.wait(60), *p.communicate()) for p in procs]


def test_labels_and_primary_come_from_rank_and_local_rank(root: Path) -> None:
    w = _rank(root, "env", "1", "define", env_name="LOCAL_RANK")
    p = _rank(root, "env", "0", "define")
    (rc_w, out_w, err_w), (rc_p, out_p, _) = _wait(w, p)
    assert (rc_w, rc_p) == (0, 0), err_w
    assert out_w.strip() == "rank_1 primary=False" and out_p.strip() == "rank_0 primary=True"
    run = nbtracker.Api(root).run("ranks/env")
    assert [(r["label"], r["state"]) for r in run.ranks] == [
        ("rank_0", "finished"),
        ("rank_1", "finished"),
    ]
    hist = run.history(samples=None)
    assert list(hist["loss"]) == list(range(10)) == list(hist["rank_1/loss"])
    # define_metric on a worker applies to its own keys
    assert run.summary["loss"] == run.summary["rank_1/loss"] == {"min": 0.0}


def test_a_worker_that_starts_first_joins_the_primary_run(root: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    w = _rank(root, "early", "1", "finish", str(go), steps=5)
    nbt_testutil.wait_until(lambda: (root / "runs" / "ranks" / "early" / "ranks").exists())
    assert not (root / "runs" / "ranks" / "early" / "run.json").exists()  # the primary's
    p = _rank(root, "early", "0", steps=5)
    nbt_testutil.wait_until(lambda: (root / "runs" / "ranks" / "early" / "run.json").exists())
    go.touch()
    assert [rc for rc, *_ in _wait(w, p)] == [0, 0]
    runs = nbtracker.Api(root).runs("ranks")
    assert [r.id for r in runs] == ["early"] and runs[0].state == "finished"
    assert runs[0].summary["rank_1/loss"] == 4.0 and runs[0].summary["loss"] == 4.0


def test_rank_zero_crash_is_a_crashed_run_not_running_forever(root: Path) -> None:
    w = _rank(root, "crash0", "1")
    p = _rank(root, "crash0", "0", "die")
    (rc_w, _, err), (rc_p, _, _) = _wait(w, p)
    assert rc_w == 0, err
    assert rc_p == -9
    run = nbtracker.Api(root).run("ranks/crash0")
    assert run.state == "crashed"
    assert [(r["label"], r["state"]) for r in run.ranks] == [
        ("rank_0", "crashed"),
        ("rank_1", "finished"),
    ]
    hist = run.history(samples=None)
    assert hist["loss"].notna().sum() == 10 and hist["rank_1/loss"].notna().sum() == 10


def test_a_worker_crash_shows_in_ranks_and_the_run_finishes(root: Path) -> None:
    w = _rank(root, "crash1", "1", "die")
    p = _rank(root, "crash1", "0")
    t0 = time.monotonic()
    (rc_w, _, _), (rc_p, _, err) = _wait(w, p)
    assert rc_w == -9 and rc_p == 0, err
    assert time.monotonic() - t0 < 9  # the primary did not wait out the dead worker
    run = nbtracker.Api(root).run("ranks/crash1")
    assert run.state == "finished"
    assert [(r["label"], r["state"]) for r in run.ranks] == [
        ("rank_0", "finished"),
        ("rank_1", "crashed"),
    ]
    assert run.history(samples=None)["rank_1/loss"].notna().sum() == 10


def test_config_set_on_a_worker_warns_and_rank_zero_config_stands(root: Path) -> None:
    w = _rank(root, "cfg", "1", "config")
    p = _rank(root, "cfg", "0")
    (rc_w, _, err_w), (rc_p, _, _) = _wait(w, p)
    assert (rc_w, rc_p) == (0, 0)
    assert "config changed on rank_1" in err_w and "not stored" in err_w
    assert nbtracker.Api(root).run("ranks/cfg").config == {"lr": 0.5}


def test_without_an_id_the_torchrun_job_id_names_the_run(root: Path) -> None:
    procs = [_rank(root, "-", r, job="8c1f-job") for r in ("1", "0")]
    assert [rc for rc, *_ in _wait(*procs)] == [0, 0]
    runs = nbtracker.Api(root).runs("ranks")
    assert [r.id for r in runs] == ["ddp-8c1f-job"]
    assert [r["label"] for r in runs[0].ranks] == ["rank_0", "rank_1"]
    # torchrun without --standalone / --rdzv-id says "none": each rank warns, and says why
    procs = [_rank(root, "-", r, job="none") for r in ("1", "0")]
    done = _wait(*procs)
    assert all(rc == 0 and "without id=" in err for rc, _, err in done)


def test_a_relaunched_job_counts_on_in_the_same_run(root: Path) -> None:
    for _ in range(2):  # as torchrun restarts every rank of a failed job
        procs = [_rank(root, "again", r, steps=5) for r in ("1", "0")]
        assert [rc for rc, *_ in _wait(*procs)] == [0, 0]
    run = nbtracker.Api(root).run("ranks/again")
    hist = run.history(samples=None)
    assert list(hist["loss"].dropna()) == list(hist["rank_1/loss"].dropna()) == [*range(5)] * 2
    assert run.state == "finished" and run.summary["rank_1/loss"] == 4.0
    system = run.history(stream="system", samples=None)
    for label in ("rank_0", "rank_1"):  # both launches' samples, none overwritten
        assert system[f"system/{label}/memory_percent"].notna().sum() >= 2


def test_mode_shared_alone_is_a_primary_and_a_plain_second_writer_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RANK", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    run = nbtracker.init(project="solo", id="s1", dir=str(root), mode="shared")
    assert run.settings.mode == "shared"
    # a process that is not in shared mode is still refused while the primary writes
    holder = subprocess.run(
        [sys.executable, "-c", "import nbtracker, sys; nbtracker.init(project='solo', "
         "id='s1', dir=sys.argv[1], resume='allow')", str(root)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert holder.returncode != 0 and "being written by another process" in holder.stderr
    run.log({"loss": 1.0})
    run.finish()
    stored = nbtracker.Api(root).run("solo/s1")
    assert [(r["label"], r["primary"]) for r in stored.ranks] == [("rank_0", True)]
    assert stored.history(samples=None)["loss"].tolist() == [1.0]
