"""What a run captures by itself (issue 13, points 1-3): system metrics, console output,
git and environment. Real scripts in subprocesses, a real git repository in a temp folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from nbt_testutil import wait_until

import nbtracker
from nbtracker.errors import UsageError

_CAPTURE_ENV = ("CONSOLE", "X_DISABLE_STATS", "_DISABLE_STATS", "X_STATS_SAMPLING_INTERVAL",
                "DISABLE_GIT", "SAVE_CODE", "DISABLE_CODE", "X_DISABLE_META")  # fmt: skip


@pytest.fixture(autouse=True)
def _no_capture_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _CAPTURE_ENV:
        for prefix in ("NBTRACKER_", "WANDB_", "WANDB_"):
            monkeypatch.delenv(prefix + name, raising=False)
    monkeypatch.delenv("WANDB__DISABLE_STATS", raising=False)


def run_script(tmp: Path, code: str, *, env: dict[str, str] | None = None,
               cwd: Path | None = None, name: str = "train.py") -> subprocess.CompletedProcess:  # type: ignore[type-arg]  # fmt: skip
    script = (cwd or tmp) / name
    script.write_text(textwrap.dedent(code))
    full = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACKER_"))}
    full.update({"NBTRACKER_DIR": str(tmp / "store"), "PYTHONUNBUFFERED": "1"})
    full.update(env or {})
    return subprocess.run([sys.executable, str(script)], cwd=cwd or tmp, env=full,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def only_run(root: Path) -> nbtracker.api.ApiRun:
    runs = nbtracker.Api(root).runs("p")
    assert len(runs) == 1
    return runs[0]


# -- system metrics ----------------------------------------------------------------------------
def test_system_metrics_arrive_within_two_seconds_on_their_own_timeline(tmp_path: Path) -> None:
    root = tmp_path / "store"
    script = tmp_path / "live.py"
    script.write_text(
        textwrap.dedent("""
        import sys, time
        import nbtracker as wandb
        run = wandb.init(project="p", id="live")
        for i in range(5):
            run.log({"loss": 1.0 / (i + 1)})
        print("ready", flush=True)
        sys.stdin.readline()  # stay alive until the test has looked
        run.finish()
    """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACKER_"))}
    env["NBTRACKER_DIR"] = str(root)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        api = nbtracker.Api(root)

        def first_sample():  # type: ignore[no-untyped-def]
            h = api.run("p/live").history(stream="system", samples=None)
            return [h] if len(h) else None

        (h,) = wait_until(first_sample, timeout=10)
        rec = json.loads((root / "runs" / "p" / "live" / "run.json").read_text())
        assert h["_timestamp"].iloc[0] - rec["created_at"] < 2.0  # while the run is live
        for key in ("system/cpu", "system/memory_percent", "system/proc.memory.rssMB",
                    "system/proc.cpu.threads", "system/disk./.usagePercent",
                    "system/cpu.0.cpu_percent", "system/proc.memory.percent"):  # fmt: skip
            assert key in h.columns, key
        assert 0 < h["system/proc.memory.rssMB"].iloc[0] < 1e6
        assert not [c for c in h.columns if c.startswith("system/gpu")]  # no GPU here: quiet
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0
    run = api.run("p/live")
    user = run.history(samples=None)  # the user's steps are as logged, nothing else
    assert list(user.columns) == ["_step", "_timestamp", "_runtime", "loss"]
    assert user["_step"].tolist() == [0, 1, 2, 3, 4]
    assert run.summary["_step"] == 4 and not any(k.startswith("system") for k in run.summary)
    system = nbtracker.sql("SELECT count(*) AS n FROM system WHERE key = 'system/cpu'", root=root)
    assert system["n"][0] >= 1
    hist = nbtracker.sql("SELECT count(*) AS n FROM history WHERE key LIKE 'system%'", root=root)
    assert hist["n"][0] == 0


def test_sampling_interval_from_settings_and_a_final_sample(init, api) -> None:
    run = init(id="fast", settings=nbtracker.Settings(x_stats_sampling_interval=0.2))
    run.log({"x": 1})
    wait_until(lambda: run._capture.samples >= 4, timeout=10)
    run.finish()
    h = api.run("p/fast").history(stream="system", samples=None)
    assert len(h) >= 4 and h["_step"].tolist() == list(range(len(h)))
    quick = init(id="quick")  # ended before its sampler started (~0.75 s): none, as W&B
    quick.finish()
    assert len(api.run("p/quick").history(stream="system", samples=None)) == 0
    short = init(id="short")  # ended between the sampler's start and the first sample
    wait_until(lambda: short._capture._sampler is not None, timeout=10)
    short.finish()
    assert len(api.run("p/short").history(stream="system", samples=None)) >= 1


def test_disable_stats_by_settings_and_environment(init, api, monkeypatch) -> None:
    init(id="a", settings={"x_disable_stats": True}).finish()
    monkeypatch.setenv("WANDB__DISABLE_STATS", "true")
    init(id="b").finish()
    for rid in ("a", "b"):
        assert len(api.run(f"p/{rid}").history(stream="system")) == 0
        assert not (api.run(f"p/{rid}").dir / "system").exists()


@pytest.mark.parametrize("bad", [0.01, "soon", -1])
def test_a_bad_sampling_interval_is_a_clear_error(init, bad) -> None:
    with pytest.raises(UsageError, match="x_stats_sampling_interval"):
        init(settings={"x_stats_sampling_interval": bad})
    assert nbtracker.run is None


def test_resumed_run_counts_its_samples_on(init, api) -> None:
    for resume in (None, "allow"):  # each lasts until its sampler runs: one sample each
        run = init(id="r", resume=resume)
        wait_until(lambda run=run: run._capture._sampler is not None, timeout=10)
        run.finish()
    h = api.run("p/r").history(stream="system", samples=None)
    assert h["_step"].tolist() == [0, 1]


# -- console -----------------------------------------------------------------------------------
TQDM_SCRIPT = """
    import sys
    import nbtracker as wandb
    from tqdm import tqdm
    run = wandb.init(project="p")
    print("hello from the script")
    for i in tqdm(range(300), mininterval=0):
        pass
    print("an error line", file=sys.stderr)
    print("partial", end="")
    print(" line ended")
    run.finish()
    print("after finish: not in the log")
"""


def test_output_log_has_prints_and_the_final_tqdm_bar(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    res = run_script(tmp_path, TQDM_SCRIPT)
    assert res.returncode == 0, res.stderr
    # the user's own output is untouched
    assert "hello from the script" in res.stdout and "after finish" in res.stdout
    assert res.stderr.count("%|") > 100 and "300/300" in res.stderr  # every redraw
    log = only_run(tmp_path / "store").dir / "files" / "output.log"
    text = log.read_text()
    lines = [line.rpartition("\r")[2] for line in text.split("\n")]  # as a terminal shows it
    assert lines[0] == "hello from the script"
    assert "100%" in lines[1] and "300/300" in lines[1]
    assert lines[2:5] == ["an error line", "partial line ended", ""]
    assert "after finish" not in text
    assert text.count("\r") < 20  # ~1 bar state per second, not 300


def test_console_off_by_environment_and_settings(tmp_path: Path) -> None:
    res = run_script(tmp_path, TQDM_SCRIPT.replace('project="p"', 'project="p", id="a"'),
                     env={"WANDB_CONSOLE": "off"})  # fmt: skip
    assert res.returncode == 0 and "hello from the script" in res.stdout
    res = run_script(
        tmp_path,
        TQDM_SCRIPT.replace(
            'project="p"', 'project="p", id="b", settings=wandb.Settings(console="off")'
        ),
    )
    assert res.returncode == 0 and "hello from the script" in res.stdout
    for rid in ("a", "b"):
        assert not (tmp_path / "store" / "runs" / "p" / rid / "files" / "output.log").exists()


def test_console_log_is_bounded_with_a_note(tmp_path: Path) -> None:
    res = run_script(
        tmp_path,
        """
        import nbtracker as wandb
        run = wandb.init(project="p", settings={"x_console_max_bytes": 20000})
        for i in range(3000):
            print(f"line {i:05d}")
        run.finish()
    """,
    )
    assert res.returncode == 0 and res.stdout.count("\n") == 3000
    files = only_run(tmp_path / "store").dir / "files"
    log, old = (files / "output.log").read_text(), (files / "output.log.1").read_text()
    assert len(log) + len(old) <= 20000 + 200
    assert log.startswith("[nbtracker: earlier output is in output.log.1")
    assert "older output were dropped" in log
    assert log.rstrip().endswith("line 02999")


def test_a_console_log_that_cannot_be_written_loses_no_output(tmp_path: Path) -> None:
    res = run_script(
        tmp_path,
        """
        import os, warnings
        import nbtracker as wandb
        run = wandb.init(project="p", id="x")
        os.makedirs(run.dir / "files" / "output.log")  # the log's name taken by a folder
        for i in range(5):
            print("still printed", i)
        run.log({"loss": 1.0})
        run.finish()
    """,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("still printed") == 5
    assert "could not write the console log" in res.stderr
    assert only_run(tmp_path / "store").history()["loss"].tolist() == [1.0]


def test_forked_child_prints_and_the_parent_keeps_its_log(tmp_path: Path) -> None:
    res = run_script(
        tmp_path,
        """
        import os, sys
        import nbtracker as wandb
        run = wandb.init(project="p", settings={"x_stats_sampling_interval": 0.1})
        print("parent before")
        for i in range(3):
            pid = os.fork()
            if pid == 0:
                print("child says hi", i, flush=True)
                run.log({"child": i})
                sys.stdout.flush()
                os._exit(0)
            os.waitpid(pid, 0)
        print("parent after")
        run.finish()
    """,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("child says hi") == 3
    log = (only_run(tmp_path / "store").dir / "files" / "output.log").read_text()
    assert log == "parent before\nparent after\n"


def test_detach_gives_the_streams_back(init) -> None:
    off = init(id="off", settings={"console": "off"})
    assert off.settings.console == "off"
    off.finish()
    before = sys.stdout, sys.stderr
    run = init()
    assert run.settings.console == "auto"
    assert sys.stdout is not before[0] and sys.stdout.isatty() == before[0].isatty()
    run.finish()
    assert (sys.stdout, sys.stderr) == before


# -- environment and code ----------------------------------------------------------------------
def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_diff_requirements_and_code(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _git(repo, "remote", "add", "origin", "https://alice:ghp_SECRET123@example.com/team/proj.git")
    code = """
        import nbtracker as wandb
        run = wandb.init(project="p", save_code=True)
        run.log({"loss": 0.5})
        run.finish()
    """
    (repo / "src" / "train.py").write_text(textwrap.dedent(code))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    changed = textwrap.dedent(code) + "# an uncommitted change\n"
    res = run_script(tmp_path, changed, cwd=repo / "src")
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path / "store")
    meta = run.metadata
    assert meta["git"] == {"commit": head, "branch": "main", "dirty": True,
                           "remote": "https://example.com/team/proj.git"}  # fmt: skip
    assert meta["codePath"] == "src/train.py" and meta["program"].endswith("train.py")
    assert meta["python"].split()[-1] == ".".join(map(str, sys.version_info[:3]))
    assert meta["host"] and meta["os"] and meta["cpu_count_logical"] == os.cpu_count()
    files = run.dir / "files"
    diff = (files / "diff.patch").read_text()
    assert "+# an uncommitted change" in diff and "src/train.py" in diff
    reqs = (files / "requirements.txt").read_text().splitlines()
    assert any(line.lower().startswith("duckdb==") for line in reqs)
    assert (files / "code" / "src" / "train.py").read_text().endswith("# an uncommitted change\n")
    # nowhere is the token stored
    for path in run.dir.rglob("*"):
        if path.is_file() and path.suffix != ".parquet":
            assert b"SECRET123" not in path.read_bytes(), path
    # queryable as columns
    root = tmp_path / "store"
    got = nbtracker.sql("SELECT metadata->>'$.git.commit' AS c FROM runs", root=root)
    assert got["c"].tolist() == [head]
    got = nbtracker.sql("SELECT text FROM metadata WHERE key = 'git.remote'", root=root)
    assert got["text"].tolist() == ["https://example.com/team/proj.git"]
    # catalog rows (ended runs are read from the catalog) keep it too
    api = nbtracker.Api(root)
    assert api.runs("p")[0].metadata["git"]["commit"] == head
    assert len(api.runs("p", filters={"metadata.git.branch": "main"})) == 1
    assert len(api.runs("p", filters={"metadata.git.branch": "other"})) == 0
    df = api.runs("p").to_pandas()
    assert df["metadata.git.commit"].tolist() == [head] and df["metadata.git.dirty"].all()


def test_clean_repo_has_no_diff_and_switches_turn_parts_off(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "x.txt").write_text("x")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    code = """
        import nbtracker as wandb
        wandb.init(project="p", id="ID").finish()
    """
    assert run_script(tmp_path, code.replace("ID", "clean"), cwd=repo).returncode == 0
    env = {"WANDB_DISABLE_GIT": "true", "WANDB_X_SAVE_REQUIREMENTS": "false"}
    assert run_script(tmp_path, code.replace("ID", "nogit"), cwd=repo, env=env).returncode == 0
    env = {"WANDB__DISABLE_META": "true"}
    assert run_script(tmp_path, code.replace("ID", "nometa"), cwd=repo, env=env).returncode == 0
    api = nbtracker.Api(tmp_path / "store")
    clean = api.run("p/clean")
    assert clean.metadata["git"]["dirty"] is False
    assert not (clean.dir / "files" / "diff.patch").exists()
    assert not (clean.dir / "files" / "code").exists()  # save_code is off by default
    nogit = api.run("p/nogit")
    assert "git" not in nogit.metadata and nogit.metadata["python"]
    assert not (nogit.dir / "files" / "requirements.txt").exists()
    nometa = api.run("p/nometa")
    assert "python" not in nometa.metadata and not (nometa.dir / "files").exists()


def test_remote_urls_lose_their_credentials() -> None:
    from nbtracker.capture.environment import strip_credentials

    assert strip_credentials("https://u:p@h.com/a/b.git") == "https://h.com/a/b.git"
    assert strip_credentials("https://tok@h.com:8443/a.git?x=1") == "https://h.com:8443/a.git"
    assert strip_credentials("ssh://git@h.com/a.git") == "ssh://h.com/a.git"
    assert strip_credentials("git@github.com:a/b.git") == "git@github.com:a/b.git"


# -- the run panel -----------------------------------------------------------------------------
def test_panel_shows_system_logs_and_environment_without_paths(tmp_path: Path) -> None:
    from nbtracker.widgets.run_panel import RunPanel

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "dev")
    _git(repo, "remote", "add", "origin", "https://bob:tok3n@example.com/x.git")
    res = run_script(tmp_path, """
        import nbtracker as wandb
        run = wandb.init(project="p", settings={"x_stats_sampling_interval": 0.2})
        print("\\x1b[31mred\\x1b[0m line", "<b>not bold</b>")
        for i in range(3):
            run.log({"loss": 1.0 / (i + 1)})
        import time; time.sleep(1.6)
        run.finish()
    """, cwd=repo)  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path / "store")
    panel = RunPanel.for_folder(run.dir, follow=False)
    try:
        assert panel.log_tail.splitlines()[0] == "red line <b>not bold</b>"  # colour codes gone
        assert "system/cpu" in panel.system and "system/cpu.0.cpu_percent" not in panel.system
        cpu = panel.system["system/cpu"]
        assert len(cpu["t"]) == len(cpu["v"]) >= 2 and all(t >= 0 for t in cpu["t"])
        env = panel.env_info
        assert env["program"] == "train.py" and env["python"].startswith("CPython")
        assert env["remote"] == "https://example.com/x.git"
        state = json.dumps({"env": env, "log": panel.log_tail, "system": panel.system})
        assert str(tmp_path) not in state and "tok3n" not in state
    finally:
        panel.close()


def test_logging_handlers_made_before_init_are_copied_too(init) -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    lg = logging.getLogger("nbt-capture-test")
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    try:
        before = handler.stream
        run = init(id="lg")
        lg.info("from logging")
        run.finish()
        assert handler.stream is before  # given back
        lg.info("after finish")
    finally:
        lg.removeHandler(handler)
    log = (run.dir / "files" / "output.log").read_text()
    assert log == "INFO:nbt-capture-test:from logging\n"


def test_killed_run_keeps_its_samples_and_repair_compacts_them(tmp_path: Path) -> None:
    import signal

    root = tmp_path / "store"
    script = tmp_path / "killed.py"
    script.write_text(
        textwrap.dedent("""
        import time
        import nbtracker as wandb
        run = wandb.init(project="p", id="k", settings={"x_stats_sampling_interval": 0.1})
        print("started", flush=True)
        while True:
            time.sleep(0.05)
    """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACKER_"))}
    env["NBTRACKER_DIR"] = str(root)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    sdir = root / "runs" / "p" / "k" / "system"
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        wait_until(lambda: sdir.is_dir() and len(list(sdir.glob("h-*.parquet"))) >= 5, 20)
        log = root / "runs" / "p" / "k" / "files" / "output.log"
        wait_until(lambda: log.is_file() and log.read_text() == "started\n", 10)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    api = nbtracker.Api(root)
    n = len(api.run("p/k").history(stream="system", samples=None))
    assert n >= 5 and api.run("p/k").state == "crashed"
    store = nbtracker.Store(root)
    store.repair()
    assert len(list(sdir.glob("h-*.parquet"))) == 1
    assert len(api.run("p/k").history(stream="system", samples=None)) == n


# A stand-in for nvidia-ml-py on a machine without an NVIDIA GPU (a test double of that
# library, not of ours): two GPUs, the second without a temperature sensor. Values are in
# NVML's units (bytes, milliwatts, degrees C).
FAKE_PYNVML = """
class _Util:
    def __init__(self, gpu, memory):
        self.gpu, self.memory = gpu, memory
class _Mem:
    def __init__(self, used, total):
        self.used, self.total = used, total
class NVMLError(Exception):
    pass
_open = [0]
def nvmlInit(): _open[0] += 1
def nvmlShutdown(): _open[0] -= 1
def nvmlDeviceGetCount(): return 2
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetName(h): return b"Test Double GPU" if h == 0 else "Test Double GPU"
def nvmlDeviceGetUtilizationRates(h): return _Util(37 + h, 12)
def nvmlDeviceGetMemoryInfo(h): return _Mem(4 << 30, 16 << 30)
def nvmlDeviceGetTemperature(h, sensor):
    if h == 1:
        raise NVMLError("not supported")
    return 61
def nvmlDeviceGetPowerUsage(h): return 150_000
def nvmlDeviceGetEnforcedPowerLimit(h): return 300_000
"""


def test_gpu_metrics_and_names_through_nvml(tmp_path: Path) -> None:
    """The NVML path, on a machine without a GPU: W&B's keys and units per GPU, a metric
    a GPU does not offer left out, and the GPUs in the run's metadata."""
    fake = tmp_path / "fake_nvml"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_PYNVML)
    out = run_script(
        tmp_path,
        """
        import nbtracker, time
        run = nbtracker.init(project="p", id="gpu",
                             settings=nbtracker.Settings(x_stats_sampling_interval=0.2))
        for i in range(5):
            run.log({"x": i})
            time.sleep(0.2)
        run.finish()
        """,
        env={"PYTHONPATH": str(fake)},
    )
    assert out.returncode == 0, out.stderr
    run = nbtracker.Api(tmp_path / "store").run("p/gpu")
    h = run.history(stream="system", samples=None)
    assert len(h) >= 2
    last = h.iloc[-1]
    assert last["system/gpu.0.gpu"] == 37 and last["system/gpu.1.gpu"] == 38
    assert last["system/gpu.0.memory"] == 12
    assert last["system/gpu.0.memoryAllocated"] == 25.0
    assert last["system/gpu.0.memoryAllocatedBytes"] == 4 << 30
    assert last["system/gpu.0.powerWatts"] == 150.0
    assert last["system/gpu.1.powerPercent"] == 50.0
    assert last["system/gpu.0.temp"] == 61
    assert "system/gpu.1.temp" not in h.columns  # not offered by that GPU: left out
    meta = run.metadata
    assert meta["gpu"] == "Test Double GPU" and meta["gpu_count"] == 2
    assert [g["memoryTotal"] for g in meta["gpu_nvidia"]] == [16 << 30, 16 << 30]
