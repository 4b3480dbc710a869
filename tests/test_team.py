"""Team store (issue 14): runs from several processes ("machines", each with its own local
root and store client) land in one PostgreSQL + object store, and every reader queries it
as one. A real PostgreSQL (pgserver) per session, a fresh database per test; S3 through
moto's server, a test double (see pg_testutil)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from nbt_testutil import wait_until
from pg_testutil import PG, pg_folder

import nbtracker
from nbtracker import team
from nbtracker.cli import cli
from nbtracker.errors import StorageWarning, UsageError

PROCS = Path(__file__).parent / "procs"
SECRET = "pw-Zq81xT"


def _env(tmp_path: Path, url: str, name: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NBTRACKER_STORE=url,
        NBTRACKER_STORE_INTERVAL="0.2",
        NBTRACKER_CACHE=str(tmp_path / f"cache-{name}"),
        **extra,
    )
    return env


def _writer(tmp_path: Path, url: str, name: str, steps: int, **kw: object) -> subprocess.Popen:
    args = [sys.executable, str(PROCS / "team_writer.py"), str(tmp_path / f"local-{name}"),
            "team", name, str(steps)]  # fmt: skip
    for k, v in kw.items():
        args += [f"--{k}", str(v)]
    return subprocess.Popen(
        args, env=_env(tmp_path, url, name), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _check_runs(api: nbtracker.Api, steps: dict[str, int]) -> None:
    runs = {r.id: r for r in api.runs("team")}
    assert sorted(runs) == sorted(steps)
    for rid, n in steps.items():
        run = runs[rid]
        assert run.state == "finished"
        assert run.summary["done"] is True
        assert run.config["seed"] == 1
        h = run.history(samples=None)
        assert h["_step"].tolist() == list(range(n)), rid  # nothing lost, nothing twice
        assert h["b"].tolist() == [i / 2 for i in range(n)]


def test_url_parsing_and_masking() -> None:
    url = team.parse(
        f"postgresql://me:{SECRET}@db.example:5432/team?data=s3://bkt/nbt&sslmode=require"
    )
    assert url.data == "s3://bkt/nbt"
    assert SECRET not in url.masked and SECRET not in repr(url) and SECRET not in str(url)
    assert url.masked.startswith("postgresql://me:***@db.example:5432/team")
    assert "sslmode=require" in url.conninfo and "data=" not in url.conninfo
    assert SECRET not in team.mask(f"postgresql://u@h/db?password={SECRET}")
    from nbtracker.team.url import mask_arg

    assert mask_arg(f"--store=postgresql://me:{SECRET}@h/db") == "--store=postgresql://me:***@h/db"
    assert mask_arg("--lr=0.1") == "--lr=0.1"
    with pytest.raises(UsageError, match="not a team store URL"):
        team.parse(f"mysql://me:{SECRET}@h/db")
    try:
        team.parse(f"mysql://me:{SECRET}@h/db")
    except UsageError as exc:
        assert SECRET not in str(exc)
    with pytest.raises(UsageError, match="names no database"):
        team.parse("postgresql://me@host")


def test_four_writers_and_a_reader_lose_nothing(tmp_path: Path, pg_url: str) -> None:
    steps = {f"w{i}": 300 + 50 * i for i in range(4)}
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, str(PROCS / "team_reader.py"), "team", str(stop)],
        env=_env(tmp_path, pg_url, "reader"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    writers = [_writer(tmp_path, pg_url, rid, n, sleep=0.002) for rid, n in steps.items()]
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        assert "team store" not in err, err  # no warning about the store
    stop.touch()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert out.strip().endswith("ok")
    assert "read 2:" in out  # it read while the writers wrote
    _check_runs(nbtracker.Api(store=pg_url), steps)
    # each writer's files are in the store once, by name
    assert pg_rows(pg_url, "SELECT count(*) FROM nbtracker.runs") == "4"


def pg_rows(url: str, sql: str) -> str:
    import psycopg

    with psycopg.connect(url) as con:
        return "|".join(str(x) for x in con.execute(sql).fetchone())


def test_store_goes_away_mid_run_and_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = PG(pg_folder())  # its own server: this test stops it
    try:
        db = server.new_db()
        url = server.url(db, password=SECRET)
        monkeypatch.setenv("NBTRACKER_CACHE", str(tmp_path / "cache"))
        progress = tmp_path / "progress"
        # the URL on the command line too: run metadata records the arguments
        w = _writer(tmp_path, url, "r1", 600, sleep=0.01, progress=progress, note=url)
        wait_until(lambda: progress.exists() and int(progress.read_text()) >= 100, timeout=60)
        server.stop()
        t_down = time.monotonic()
        before = int(progress.read_text())
        # training goes on while the store is away
        wait_until(lambda: int(progress.read_text()) >= before + 150, timeout=60)
        assert time.monotonic() - t_down < 30
        server.start()
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        assert err.count("cannot reach the team store") == 1, err  # warned once
        assert SECRET not in err and SECRET not in out
        _check_runs(nbtracker.Api(store=url), {"r1": 600})
        # the password is in no stored record and no committed file
        assert (
            pg_rows(url, f"SELECT count(*) FROM nbtracker.runs WHERE record LIKE '%{SECRET}%'")
            == "0"
        )
        local = tmp_path / "local-r1"
        assert any(b"postgres:***@" in p.read_bytes() for p in local.rglob("*") if p.is_file())
        assert not any(SECRET.encode() in p.read_bytes() for p in local.rglob("*") if p.is_file())
    finally:
        server.close()
        shutil.rmtree(server.folder.parent, ignore_errors=True)


def test_sync_twice_uploads_once(tmp_path: Path, pg_url: str, root: Path) -> None:
    for rid in ("s1", "s2"):
        run = nbtracker.init(project="team", id=rid, dir=str(root), config={"seed": 1})
        for i in range(50):
            run.log({"a": i, "b": i / 2})
        run.summary["done"] = True
        run.finish()
    nbtracker.store.wait_for_background()
    runner = CliRunner()
    first = runner.invoke(cli, ["sync", "--to", pg_url, "--root", str(root)])
    assert first.exit_code == 0, first.output
    assert "synced 2 runs" in first.output and "2 new or changed run records" in first.output
    files = pg_rows(pg_url, "SELECT count(*), sum(ver) FROM nbtracker.files")
    assert files.split("|")[0] != "0"
    second = runner.invoke(cli, ["sync", "--to", pg_url, "--root", str(root)])
    assert second.exit_code == 0, second.output
    assert "0 new files, 0 new or changed run records" in second.output
    assert pg_rows(pg_url, "SELECT count(*), sum(ver) FROM nbtracker.files") == files
    assert pg_rows(pg_url, "SELECT sum(ver) FROM nbtracker.runs") == "2"
    _check_runs(nbtracker.Api(store=pg_url), {"s1": 50, "s2": 50})
    # the CLI reads the team store like a folder
    listing = runner.invoke(cli, ["runs", "team", "--store", pg_url, "--csv"])
    assert listing.exit_code == 0, listing.output
    assert "s1" in listing.output and "s2" in listing.output
    sql = runner.invoke(
        cli, ["sql", "SELECT count(*) AS n FROM history", "--store", pg_url, "--csv"]
    )
    assert sql.output.split() == ["n", "200"]  # 2 runs x 50 steps x 2 keys


def test_objects_on_s3_test_double(
    tmp_path: Path, pg_url: str, s3_test_double: str, root: Path
) -> None:
    url = f"{pg_url}&data={s3_test_double}/nbt"
    w = _writer(tmp_path, url, "s3run", 120)
    out, err = w.communicate(timeout=120)
    assert w.returncode == 0, err
    import boto3

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=s3_test_double[5:])["Contents"]]  # fmt: skip
    assert all(k.startswith("nbt/runs/team/s3run/") for k in keys), keys  # the run's files
    assert any(k.startswith("nbt/runs/team/s3run/history/h-") for k in keys), keys
    assert pg_rows(pg_url, "SELECT count(*) FROM nbtracker.blobs") == "0"
    _check_runs(nbtracker.Api(store=url), {"s3run": 120})
    assert (
        nbtracker.sql("SELECT max(value) FROM history WHERE key = 'a'", store=url).iloc[0, 0] == 119
    )


def test_unreachable_store_warns_once_and_keeps_logging_locally(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACKER_STORE_INTERVAL", "0.05")
    url = f"postgresql://me:{SECRET}@/nodb?host={tmp_path}/no-such-socket"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        run = nbtracker.init(project="p", dir=str(root), store=url)
        for i in range(200):
            run.log({"x": i})
        time.sleep(0.5)  # several commit attempts fail meanwhile
        run.finish()
        assert time.perf_counter() - t0 < 5
        nbtracker.store.wait_for_background()
    team_warnings = [w for w in caught if "team store" in str(w.message)]
    assert len(team_warnings) == 1
    assert issubclass(team_warnings[0].category, StorageWarning)
    assert SECRET not in str(team_warnings[0].message)
    assert "me:***@" in str(team_warnings[0].message)
    assert len(nbtracker.Api(root).run(f"p/{run.id}").history(samples=None)) == 200
    assert SECRET not in (root / "runs" / "p" / run.id / "run.json").read_text()


def test_offline_mode_keeps_the_run_local(tmp_path: Path, pg_url: str, root: Path) -> None:
    run = nbtracker.init(project="p", dir=str(root), store=pg_url, mode="offline")
    run.log({"x": 1})
    run.finish()
    nbtracker.store.wait_for_background()
    assert len(nbtracker.Api(store=pg_url).runs("p")) == 0
    res = CliRunner().invoke(cli, ["sync", "--to", pg_url, "--root", str(root), "p"])
    assert res.exit_code == 0, res.output
    assert len(nbtracker.Api(store=pg_url).runs("p")) == 1


OPTUNA_AGENT = r"""
import sys, optuna
from nbtracker import team
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="s", storage=team.optuna_storage(sys.argv[1]))
study.optimize(lambda t: (t.suggest_float("x", -1, 1)) ** 2, n_trials=int(sys.argv[2]))
"""


def test_sweep_storage_hook_shares_one_study_across_processes(pg_url: str) -> None:
    import optuna

    # three agents open the storage at once (the tables do not exist yet) ...
    opened = [
        subprocess.Popen([sys.executable, "-c", "import sys; from nbtracker import team; "
                          "team.optuna_storage(sys.argv[1])", pg_url],
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for p in opened:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    # ... then the study is created before the agents start, as documented
    optuna.create_study(study_name="s", storage=team.optuna_storage(pg_url))
    agents = [
        subprocess.Popen([sys.executable, "-c", OPTUNA_AGENT, pg_url, "5"],
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for p in agents:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    trials = optuna.load_study(study_name="s", storage=team.optuna_storage(pg_url)).trials
    assert len(trials) == 15
    assert sorted(t.number for t in trials) == list(range(15))
    # optuna's tables live beside ours, in their own schema
    assert pg_rows(pg_url, "SELECT count(*) FROM nbtracker_optuna.trials") == "15"
    with pytest.raises(UsageError, match="name a team store"):
        team.optuna_storage(None)


def test_readers_see_a_live_run_grow(tmp_path: Path, pg_url: str) -> None:
    progress = tmp_path / "progress"
    w = _writer(tmp_path, pg_url, "live", 400, sleep=0.01, progress=progress)
    try:
        api = wait_until(lambda: (a := nbtracker.Api(store=pg_url)).runs("team") and a, timeout=60)
        run = api.run("team/live")
        first = len(run.history(samples=None))
        # Api(store=) reads the store as of its creation; flush() fetches what changed
        wait_until(
            lambda: (api.flush(), len(api.run("team/live").history(samples=None)))[1] > first,
            timeout=60,
        )
        # a live reader (what show() uses) keeps its cache folder growing by itself
        st = team.reader_store(team.parse(pg_url), live=True)
        local = nbtracker.Api(store=st)
        n0 = len(local.run("team/live").history(samples=None))
        wait_until(lambda: len(local.run("team/live").history(samples=None)) > n0, timeout=60)
    finally:
        out, err = w.communicate(timeout=120)
    assert w.returncode == 0, err
    wait_until(lambda: local.run("team/live").state == "finished", timeout=30)
    assert len(local.run("team/live").history(samples=None)) == 400


def test_a_shared_run_over_two_machines_is_one_run_in_the_team_store(
    tmp_path: Path, pg_url: str
) -> None:
    """Multi-node training: rank 0 and rank 1 on "machines" of their own (own local roots,
    own store clients) write one shared run; the team store shows one run with both."""
    rank_proc = PROCS / "rank_proc.py"
    procs = []
    for rank in ("1", "0"):  # the worker first: it starts before the primary exists
        env = _env(tmp_path, pg_url, f"node{rank}", RANK=rank)
        env.pop("LOCAL_RANK", None)
        env.pop("TORCHELASTIC_RUN_ID", None)
        cmd = [sys.executable, str(rank_proc), str(tmp_path / f"local-node{rank}"), "mn", "10",
               "finish"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "team store" not in err, err
    # the worker's machine has no run.json: only the primary's process sends the record
    assert not (tmp_path / "local-node1" / "ranks" / "mn" / "run.json").exists()
    assert not list((tmp_path / "local-node1").rglob("run.json"))
    run = nbtracker.Api(store=pg_url).run("ranks/mn")
    assert run.state == "finished" and run.config == {"lr": 0.5}
    hist = run.history(samples=None)
    assert list(hist["loss"]) == list(range(10)) == list(hist["rank_1/loss"])
    assert run.summary["rank_1/loss"] == 9.0  # folded in from the other machine's rank
    assert [(r["label"], r["primary"], r["state"]) for r in run.ranks] == [
        ("rank_0", True, "finished"),
        ("rank_1", False, "finished"),
    ]
    system = run.history(stream="system", samples=None)
    for label in ("rank_0", "rank_1"):
        assert system[f"system/{label}/memory_percent"].notna().any()
    assert {"output.log", "output_rank_1.log"} <= {f.name for f in run.files()}
    # one record in the store (the primary's), every file once
    assert pg_rows(pg_url, "SELECT count(*) FROM nbtracker.runs") == "1"
    dup = "SELECT count(*) FROM (SELECT path FROM nbtracker.files GROUP BY path HAVING count(*) > 1) d"
    assert pg_rows(pg_url, dup) == "0"


def test_a_worker_that_ends_after_the_primary_is_committed_too(tmp_path: Path, pg_url: str) -> None:
    """Same machine, one folder: rank 0 ends (its process commits and stops following the
    run) before rank 1 logs anything; rank 1's rows still reach the team store."""
    rank_proc, go, local = PROCS / "rank_proc.py", tmp_path / "go", tmp_path / "local"

    def rank(r: str, *more: str) -> subprocess.Popen[str]:
        env = _env(tmp_path, pg_url, f"rank{r}", RANK=r)
        env.pop("LOCAL_RANK", None)
        env.pop("TORCHELASTIC_RUN_ID", None)
        cmd = [sys.executable, str(rank_proc), str(local), "late", "10", "finish", *more]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip

    worker = rank("1", str(go))
    primary = rank("0")
    _, err = primary.communicate(timeout=120)
    assert primary.returncode == 0, err
    go.touch()
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    run = nbtracker.Api(store=pg_url).run("ranks/late")
    hist = run.history(samples=None)
    assert list(hist["rank_1/loss"].dropna()) == list(range(10))
    assert run.summary["rank_1/loss"] == 9.0
    assert [(r["label"], r["state"]) for r in run.ranks] == [
        ("rank_0", "finished"),
        ("rank_1", "finished"),
    ]
