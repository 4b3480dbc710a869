"""Sweeps across machines (issue 14 point 2): a sweep created with a team store keeps its
optuna study in the team's PostgreSQL; agents in separate processes, each with its own local
root and reader cache (standing in for machines), join it by ``<store-url>/<project>/<id>``.
A real PostgreSQL (pgserver), real agent and program processes, no mocks."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from pg_testutil import PG

import nbtracker
from nbtracker import team
from nbtracker.cli import cli
from nbtracker.sweeps import SweepConfigError, _team_sweep

SECRET = "pw-Sw33pQ"
CLI = [sys.executable, "-m", "nbtracker"]

TRAIN = """
import argparse, time
import nbtracker as wandb
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--bs", type=int)
args = p.parse_args()
run = wandb.init(config=args)
for i in range(3):
    wandb.log({"loss": args.lr * (3 - i) + args.bs / 100})
    time.sleep(0.05)
"""

GRID = """
method: grid
program: train.py
metric: {name: loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.01, 0.001]}
  bs: {values: [8, 16, 32, 64]}
"""


@pytest.fixture
def url(pg: PG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database's URL with a password in it (the server trusts local sockets, so
    the password is not checked: the point is that it is never shown or stored)."""
    monkeypatch.setenv("NBTRACKER_CACHE", str(tmp_path / "cache-test"))
    return pg.url(pg.new_db(), password=SECRET)


def _machine(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    """The environment of one "machine": its own local root and team-store cache."""
    env = {k: v for k, v in os.environ.items() if k != "NBTRACKER_STORE"}
    env.update(NBTRACKER_DIR=str(tmp_path / f"local-{name}"),
               NBTRACKER_CACHE=str(tmp_path / f"cache-{name}"),
               NBTRACKER_STORE_INTERVAL="0.2", PYTHONUNBUFFERED="1", **extra)  # fmt: skip
    return env


def _no_secret_under(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_cli_agents_on_two_machines_share_one_grid(tmp_path: Path, url: str, pg: PG) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "grid.yaml").write_text(textwrap.dedent(GRID))
    made = subprocess.run(
        [*CLI, "sweep", "--store", url, "--project", "grid-team", "grid.yaml"], cwd=tmp_path,
        env=_machine(tmp_path, "creator"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert SECRET not in made.stdout + made.stderr
    lines = made.stdout.strip().splitlines()
    sweep_id = lines[0].split()[-1]
    # the agent command names the store without its password, and says where it comes from
    cmd = lines[1].removeprefix("Run sweep agent with: ")
    assert shlex.split(cmd)[:2] == ["nbtracker", "agent"]
    path = shlex.split(cmd)[2]
    assert path.endswith(f"/grid-team/{sweep_id}") and path.startswith("postgresql://postgres@")
    assert "PGPASSWORD" in lines[2]

    # two agents, each on its own "machine", given the password as libpq reads it
    agents = [
        subprocess.Popen([*CLI, "agent", path], cwd=tmp_path, text=True,
                         env=_machine(tmp_path, name, PGPASSWORD=SECRET),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in agents]
    for p, (out, err) in zip(agents, outs, strict=True):
        assert p.returncode == 0, err
        assert SECRET not in out + err
    counts = [int(out.strip().split()[-2]) for out, _ in outs]
    assert sum(counts) == 12 and min(counts) > 0, counts  # both machines worked on it

    # every grid point ran exactly once, and every run is in the team store
    api = nbtracker.Api(store=url)
    runs = api.runs("grid-team")
    assert len(runs) == 12
    assert {r.sweep_id for r in runs} == {sweep_id}
    assert all(r.state == "finished" for r in runs)
    points = sorted((r.config["lr"], r.config["bs"]) for r in runs)
    assert points == sorted((lr, bs) for lr in (0.1, 0.01, 0.001) for bs in (8, 16, 32, 64))
    sweep = api.sweep(f"grid-team/{sweep_id}")
    assert sweep.state == "finished" and len(sweep.runs) == 12
    assert sweep.best_run().config == {"lr": 0.001, "bs": 8}
    assert SECRET not in sweep.url and sweep.url == path
    trials = sweep.trials()
    assert sorted(trials["state"]) == ["complete"] * 12
    assert trials["run_id"].is_unique and set(trials["run_id"]) == {r.id for r in runs}
    assert [s.id for s in api.sweeps("grid-team")] == [sweep_id]
    listing = CliRunner().invoke(cli, ["sweeps", "grid-team", "--store", url, "--json"])
    assert listing.exit_code == 0, listing.output
    (row,) = json.loads(listing.output)
    assert (row["sweep_id"], row["state"], row["runs"], row["best"]) == (
        sweep_id,
        "finished",
        12,
        pytest.approx(0.081),
    )
    # each machine's local root holds its own runs only
    local = [len(list((tmp_path / f"local-{n}" / "runs" / "grid-team").glob("*/run.json")))
             for n in ("a", "b")]  # fmt: skip
    assert local == counts
    # another agent finds nothing left to do
    late = subprocess.run([*CLI, "agent", path], cwd=tmp_path, env=_machine(tmp_path, "c"),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert late.returncode == 0 and late.stdout.strip() == "agent made 0 runs", late.stderr
    assert "every grid point was run" in late.stderr
    # the password is in no file of any machine and no record of the team store
    _no_secret_under(tmp_path)
    rows = pg.psql(url.split("?")[0].rsplit("/", 1)[1],
                   "SELECT string_agg(record, '') FROM nbtracker.runs")  # fmt: skip
    assert sweep_id in rows and SECRET not in rows


AGENT = """
import sys, time
import nbtracker as wandb
def train():
    wandb.init()
    for i in range(3):
        wandb.log({"score": wandb.config.x * i})
        time.sleep(0.05)
print("made", wandb.agent(sys.argv[1], function=train, count=int(sys.argv[2])))
"""


def test_function_agents_respect_count_and_run_cap(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "local-creator"))
    config = {"method": "random", "run_cap": 7, "metric": {"name": "score", "goal": "maximize"},
              "parameters": {"x": {"min": 0.0, "max": 1.0}}}  # fmt: skip
    sweep_id = nbtracker.sweep(config, project="cap-team", store=url)
    # no project and no store on the agents' side: $NBTRACKER_STORE and the id say it all
    agents = [
        subprocess.Popen([sys.executable, "-c", AGENT, f"cap-team/{sweep_id}", "5"],
                         env=_machine(tmp_path, n, NBTRACKER_STORE=url), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in ("a", "b")
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in agents]
    for p, (out, err) in zip(agents, outs, strict=True):
        assert p.returncode == 0, err
        assert SECRET not in out + err
    counts = [int(out.split()[-1]) for out, _ in outs]
    assert sum(counts) == 7 and max(counts) <= 5, counts  # run_cap 7, count 5 each
    runs = nbtracker.Api(store=url).runs("cap-team")
    assert len(runs) == 7 and {r.sweep_id for r in runs} == {sweep_id}
    assert all(r.state == "finished" and r.summary["score"] == 2 * r.config["x"] for r in runs)
    # this process created it: agent(id) here joins the team sweep without store=
    assert nbtracker.agent(sweep_id, function=lambda: None) == 0
    # the sweep's workspace shows every machine's runs, from the team store
    from nbtracker.sweeps.study import SweepStudy
    from nbtracker.sweeps.view import trials_frame
    from nbtracker.widgets.workspace import Workspace

    ws = nbtracker.show(f"cap-team/{sweep_id}", store=url)
    try:
        assert isinstance(ws, Workspace) and ws.total == 7 and ws.target == "summary.score"
    finally:
        ws.close()
    st = SweepStudy.open(
        nbtracker.Store(tmp_path / "local-creator"), f"cap-team/{sweep_id}", url=team.parse(url)
    )  # as an agent opens it: its local root is empty
    assert len(trials_frame(st)) == 7
    _no_secret_under(tmp_path)


def test_agent_paths_and_urls_without_secrets() -> None:
    url, path = _team_sweep(f"postgresql://me:{SECRET}@db.lab:5432/nbt?sslmode=require/p/abc", None)
    assert path == "p/abc" and "sslmode=require" in url.conninfo
    shown = url.shareable
    assert shown == "postgresql://me@db.lab:5432/nbt?sslmode=require" and SECRET not in shown
    # a masked URL copied from a log works too: libpq then reads PGPASSWORD / ~/.pgpass
    masked = team.parse(f"postgresql://me:{SECRET}@h/db?data=s3://bkt/x").masked
    assert team.parse(masked).conninfo == "postgresql://me@h/db"
    assert team.parse(masked).secret_url() == "postgresql://me@h/db?data=s3://bkt/x"
    with pytest.raises(SweepConfigError, match="<store-url>/<project>/<id>") as err:
        _team_sweep(f"postgresql://me:{SECRET}@h/db", None)
    assert SECRET not in str(err.value)


def test_trial_of_a_dead_agent_on_another_machine_is_failed(tmp_path: Path, url: str) -> None:
    """What an agent killed on another host leaves: its trial running in optuna and its
    run 'running' in the team store, with a heartbeat that stopped (the state is made
    here through the real stores; no second host is available)."""
    import time

    from nbtracker.store import Store
    from nbtracker.sweeps.study import SweepStudy
    from nbtracker.team.remote import Remote

    config = {"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}
    sweep_id = nbtracker.sweep(config, project="dead", store=url, dir=str(tmp_path / "me"))
    st = SweepStudy.open(Store(tmp_path / "me"), f"dead/{sweep_id}", url=team.parse(url))
    trial = st.next_trial()
    assert trial is not None
    elsewhere = {"run_id": trial.run_id, "config": trial.config,
                 "agent": {"host": "gpu-node-7", "pid": 4242, "pid_start": 1}}  # fmt: skip
    st.study()._storage.set_trial_user_attr(trial.trial_id, "nbtracker", elsewhere)
    rec = {"id": trial.run_id, "project": "dead", "state": "running", "host": "gpu-node-7",
           "pid": 4242, "sweep_id": sweep_id, "created_at": time.time() - 300}  # fmt: skip
    remote = Remote(team.parse(url))

    def states(heartbeat_age: float) -> list[str]:
        remote.commit("dead", trial.run_id,
                      json.dumps({**rec, "heartbeat_at": time.time() - heartbeat_age}), [])  # fmt: skip
        return list(nbtracker.Api(store=url).sweep(f"dead/{sweep_id}").trials()["state"])

    assert states(5) == ["running"]  # its heartbeat is fresh: the other machine trains
    assert states(200) == ["fail"]  # stopped 200 s ago (more than 90 s): failed
    remote.close()


HB_PROGRAM = """
import argparse
import nbtracker as wandb
CURVES = {"a": [9, 4, 3, 2], "b": [9, 5, 4, 3], "c": [9, 6, 5, 4]}
p = argparse.ArgumentParser()
p.add_argument("--curve")
args = p.parse_args()
wandb.init(config=args)
for v in CURVES[args.curve]:
    wandb.log({"loss": v})
"""


def test_hyperband_stops_a_program_run_through_the_team_store(tmp_path: Path, url: str) -> None:
    """A CLI agent's program asks hyperband in the team's PostgreSQL (it finds the store in
    its environment): c is 3rd of 3 at band 2 (top 2 go on) and stops there."""
    (tmp_path / "hb.py").write_text(HB_PROGRAM)
    config = {"method": "grid", "program": "hb.py", "metric": {"name": "loss", "goal": "minimize"},
              "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
              "parameters": {"curve": {"values": ["a", "b", "c"]}}}  # fmt: skip
    sweep_id = nbtracker.sweep(config, project="hb-team", store=url, dir=str(tmp_path / "me"))
    path = f"{team.parse(url).shareable}/hb-team/{sweep_id}"
    agent = subprocess.run([*CLI, "agent", path], cwd=tmp_path, env=_machine(tmp_path, "a"),
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert agent.returncode == 0, agent.stderr
    assert "hyperband stopped run" in agent.stderr and SECRET not in agent.stderr
    sweep = nbtracker.Api(store=url).sweep(f"hb-team/{sweep_id}")
    states = {r.config["curve"]: (r.state, r.summary["_step"]) for r in sweep.runs}
    assert states == {"a": ("finished", 3), "b": ("finished", 3), "c": ("killed", 1)}
    trials = dict(zip(sweep.trials()["config.curve"], sweep.trials()["state"], strict=True))
    assert trials == {"a": "complete", "b": "complete", "c": "pruned"}
