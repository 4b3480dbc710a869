"""W&B code run unchanged: random state, run names, environment, module attributes, the
rest of W&B's module surface (login, Settings, term*), and stand-ins for what is not built.

Where process-level state matters (the random generators, environment variables, module
attributes before any ``init()``), the W&B-style code runs in a fresh ``python`` process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nbtracker
from nbtracker import _paths
from nbtracker.errors import UsageError


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACKER_", "WANDB_"))}
    env.update(extra)
    return env


def run_script(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; fail with its stderr if it fails."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out


# -- 1. init() never touches the user's random generators -----------------------------------
SEEDED = """
    import random, sys
    import numpy as np
    random.seed(0)
    np.random.seed(0)
    import nbtracker as wandb
    run = wandb.init(project="seeded", config={"lr": random.random()})
    for step in range(5):
        wandb.log({"loss": random.random(), "noise": float(np.random.rand())})
    wandb.finish()
    print(run.id, run.name)
"""


def test_a_seeded_script_runs_twice_as_two_runs(tmp_path) -> None:
    ids = [run_script(SEEDED, tmp_path).stdout.split()[0] for _ in range(2)]
    assert ids[0] != ids[1]  # the same id would raise "run ... already exists"
    runs = nbtracker.Api(tmp_path / "nbruns").runs("seeded")
    assert sorted(r.id for r in runs) == sorted(ids)
    assert {r.config["lr"] for r in runs} == {0.8444218515250481}  # random.seed(0)'s first


STREAM = """
    import json, random, sys
    import numpy as np
    track = sys.argv[1] == "1"
    random.seed(1234)
    np.random.seed(1234)
    torch = None
    try:
        import torch
        torch.manual_seed(1234)
    except ImportError:
        pass
    draws = []

    def draw():
        draws.append([random.random(), random.getrandbits(32), float(np.random.rand())])
        if torch is not None:
            draws[-1].append(float(torch.rand(1)))

    import nbtracker as wandb
    draw()
    if track:
        run = wandb.init(project="stream", config={"seed": 1234})
    draw()
    for step in range(3):
        if track:
            wandb.log({"loss": 1.0 / (step + 1), "hist": wandb.Histogram([1, 2, 2, 3]),
                       "img": wandb.Image(np.zeros((4, 4, 3), dtype=np.uint8))})
        draw()
    if track:
        wandb.finish()
        wandb.Api().runs("stream")  # reading back does not draw either
    draw()
    print(json.dumps(draws))
"""


def test_the_users_random_stream_is_the_same_with_and_without_tracking(tmp_path) -> None:
    # random, numpy.random (and torch when installed), drawn between the calls
    def draws(track: str) -> list:
        script = f"import sys; sys.argv[1:] = [{track!r}]\n" + textwrap.dedent(STREAM)
        return json.loads(run_script(script, tmp_path).stdout)

    without, with_tracking = draws("0"), draws("1")
    assert with_tracking == without
    assert len(nbtracker.Api(tmp_path / "nbruns").runs("stream")) == 1


SHARED_DRAWS = re.compile(
    r"(?<![\w.])random\.(?!SystemRandom\b)\w+\("  # the random module's shared generator
    r"|\b(?:np|numpy)\.random\.\w+\("  # numpy's global generator
    r"|\btorch\.(?:manual_seed|seed|rand\w*|randn\w*|randperm|bernoulli|multinomial|normal)\("
)


def test_nothing_in_the_package_draws_from_shared_generators() -> None:
    pkg = Path(nbtracker.__file__).parent
    offenders = [
        f"{path.name}:{i}: {line.strip()}"
        for path in pkg.rglob("*.py")
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SHARED_DRAWS.search(line.split("#", 1)[0])
    ]
    assert not offenders, offenders
    assert SHARED_DRAWS.search("x = random.choice(names)")
    assert SHARED_DRAWS.search("np.random.rand(3)") and SHARED_DRAWS.search("torch.randn(2)")
    assert not SHARED_DRAWS.search("_rng = random.SystemRandom()")
    assert not SHARED_DRAWS.search("_rng.random() + secrets.token_hex(4)")


# -- 2. run names are numbered from a per-project counter (O(1)) ---------------------------
def test_run_numbers_count_every_new_run_and_survive_a_lost_counter(init, root) -> None:
    names = [init(reinit="finish_previous").name for _ in range(2)]
    names.append(init(reinit="finish_previous", name="mine").name)
    names.append(init(reinit="finish_previous").name)
    nbtracker.finish()
    assert [n.rsplit("-", 1)[-1] for n in names] == ["1", "2", "mine", "4"]
    counter = _paths.run_counter(root, "p")
    assert counter.stat().st_size == 4
    counter.unlink()  # an older store, or a deleted counter: seeded from the run folders
    run = init(reinit="finish_previous")
    assert run.name.endswith("-5") and counter.stat().st_size == 5
    run.finish()
    assert len(nbtracker.Api(root).runs("p")) == 5  # the counter file is not a run


def test_run_numbers_are_unique_across_concurrent_processes(tmp_path) -> None:
    code = """
        import nbtracker
        for _ in range(3):
            run = nbtracker.init(project="busy", reinit="create_new")
            print(run.name)
            run.finish()
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    numbers = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        numbers += [int(name.rsplit("-", 1)[1]) for name in out.split()]
    assert sorted(numbers) == list(range(1, 13))


# -- 3. environment variables ----------------------------------------------------------------
ENV_SCRIPT = """
    import warnings
    import nbtracker as wandb
    print(wandb.login())
    wandb.termlog("a termlog line")
    run = wandb.init(project="envp"{args})
    run.log({{"x": 1}}, step=5)
    run.log({{"x": 2}}, step=1)  # a StepWarning: warnings are not silenced
    wandb.finish()
    print("ROOT", run.dir.parent.parent.parent)
"""


def test_wandb_environment_variables_are_honoured(tmp_path) -> None:
    out = run_script(
        ENV_SCRIPT.format(args=""), tmp_path,
        WANDB_NOTES="from env", WANDB_TAGS="a, b,,c", WANDB_RUN_GROUP="grp",
        WANDB_JOB_TYPE="train", WANDB_NAME="env-name", WANDB_DIR=str(tmp_path / "wb"),
        WANDB_SILENT="true", WANDB_CONSOLE="off",
    )  # fmt: skip
    assert "termlog" not in out.stderr and "login" not in out.stderr  # silent
    assert "StepWarning" in out.stderr  # warnings stay
    assert out.stdout.split("\n")[0] == "True"
    assert Path(out.stdout.split("ROOT ")[1].strip()) == tmp_path / "wb"
    (r,) = nbtracker.Api(tmp_path / "wb").runs("envp")
    assert (r.notes, r.group, r.job_type, r.name) == ("from env", "grp", "train", "env-name")
    assert r.tags == ["a", "b", "c"]
    assert not (tmp_path / "nbruns").exists()


def test_nbtracker_spelling_wins_and_arguments_win_over_both(tmp_path) -> None:
    env = {"WANDB_NOTES": "w", "NBTRACKER_NOTES": "n", "WANDB_DIR": str(tmp_path / "wb"),
           "NBTRACKER_DIR": str(tmp_path / "nb"), "WANDB_TAGS": "w", "NBTRACKER_TAGS": "n",
           "WANDB_RUN_GROUP": "w", "WANDB_SILENT": "true", "NBTRACKER_SILENT": "false"}  # fmt: skip
    out = run_script(ENV_SCRIPT.format(args=""), tmp_path, **env)
    assert "nbtracker: a termlog line" in out.stderr
    assert "no login needed" in out.stderr
    (r,) = nbtracker.Api(tmp_path / "nb").runs("envp")
    assert (r.notes, r.tags, r.group) == ("n", ["n"], "w")
    args = ', notes="arg", tags=["t"], group="g", job_type="j", name="nm"'
    run_script(ENV_SCRIPT.format(args=args), tmp_path, **env, WANDB_JOB_TYPE="w", WANDB_NAME="w")
    r = next(r for r in nbtracker.Api(tmp_path / "nb").runs("envp") if r.name == "nm")
    assert (r.notes, r.tags, r.group, r.job_type) == ("arg", ["t"], "g", "j")


# -- 4. module attributes --------------------------------------------------------------------
def test_module_attributes_before_init_can_be_probed(tmp_path) -> None:
    code = """
        import nbtracker as wandb
        assert wandb.run is None
        assert hasattr(wandb, "summary") and hasattr(wandb, "config") and hasattr(wandb, "run")
        s = wandb.summary
        assert len(s) == 0 and "acc" not in s and s.get("acc", 7) == 7 and list(s) == []
        for bad in (lambda: s["acc"], lambda: s.__setitem__("acc", 1), lambda: wandb.log({"a": 1})):
            try:
                bad()
            except wandb.UsageError as exc:
                assert "init()" in str(exc)
            else:
                raise AssertionError("no UsageError")
        wandb.config.lr = 0.1
        run = wandb.init(project="attrs")
        assert wandb.run is run and wandb.config.lr == 0.1
        wandb.summary["best"] = 3
        assert run.summary["best"] == 3
        wandb.finish()
        assert wandb.run is None and len(wandb.summary) == 0
        print("ok")
    """
    assert run_script(code, tmp_path).stdout.strip() == "ok"


def test_create_new_leaves_wandb_run_on_the_first_run(init) -> None:
    first = init()
    second = init(reinit="create_new")
    assert nbtracker.run is first and second is not first  # as W&B: create_new never moves it
    nbtracker.log({"x": 1})  # goes to the first run
    second.log({"y": 2})
    assert first.step == 1 and second.step == 1
    second.finish()
    first.finish()
    alone = init(reinit="create_new")  # no current run: the new one becomes current
    assert nbtracker.run is alone


def test_log_takes_a_dict_and_stores_other_keys_as_text(init, api) -> None:
    run = init()
    for bad in ("x", [("a", 1)], 5, None):
        with pytest.raises(TypeError, match="log\\(\\) takes a dict"):
            nbtracker.log(bad)  # type: ignore[arg-type]
    # W&B raises TypeError for a key that is not a string; nbtracker logs it as str(key)
    nbtracker.log({1: 0.5, "ok": 1.0})  # type: ignore[dict-item]
    run.finish()
    assert set(api.run(f"p/{run.id}").summary) >= {"1", "ok"}


# -- 5. login, term*, Settings, define_metric(step_sync=), stand-ins -------------------------
def test_login_says_once_that_storage_is_local(capsys, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    monkeypatch.delenv("NBTRACKER_SILENT", raising=False)
    monkeypatch.setattr(nbtracker._wandb_compat, "_printed", set())
    assert nbtracker.login() is True
    assert nbtracker.login(key="abc", relogin=True) is True
    err = capsys.readouterr().err
    assert err.count("no login needed") == 1 and "stored locally" in err
    nbtracker.termlog("two\nlines")
    nbtracker.termwarn("careful")
    nbtracker.termerror("broken")
    nbtracker.termlog("same", repeat=False)
    nbtracker.termlog("same", repeat=False)
    assert capsys.readouterr().err.splitlines() == [
        "nbtracker: two", "nbtracker: lines", "nbtracker: WARNING careful",
        "nbtracker: ERROR broken", "nbtracker: same",
    ]  # fmt: skip
    monkeypatch.setenv("WANDB_SILENT", "True")
    nbtracker.termerror("hidden")
    assert capsys.readouterr().err == ""


def test_settings_take_any_keyword(init) -> None:
    s = nbtracker.Settings(console="off", start_method="thread", x_disable_stats=True)
    assert (s.console, s.start_method, s.x_disable_stats, s.mode) == (
        "off",
        "thread",
        True,
        "online",
    )
    with pytest.raises(AttributeError):
        s.no_such_setting  # noqa: B018
    run = init(settings=s, sync_tensorboard=False)  # accepted, ignored
    run.define_metric("val/*", step_metric="epoch", step_sync=True)
    nbtracker.define_metric("acc", summary="max", step_sync=True)
    nbtracker.setup()
    nbtracker.mark_preempting()
    nbtracker.teardown()
    assert run.state == "finished" and nbtracker.run is None


def test_run_settings_offline_and_resumed(init) -> None:
    run = init(id="r1", mode="offline", group="g")
    assert run.offline and not run.resumed
    assert (run.settings.mode, run.settings.run_id, run.settings.run_group) == (
        "offline",
        "r1",
        "g",
    )
    run.finish()
    again = init(id="r1", resume="allow")
    assert again.resumed
    assert Path(again.settings.files_dir) == again.dir


UNSUPPORTED = ["controller", "plot", "Video", "Audio",
               "Object3D", "Molecule", "Plotly", "Graph", "tensorboard"]  # fmt: skip


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_w_and_b_apis_not_built_yet_name_themselves_when_used(name) -> None:
    assert hasattr(nbtracker, name)  # probes and `from wandb import Video` keep working
    stand_in = getattr(nbtracker, name)
    with pytest.raises(nbtracker.NotSupportedError, match=f"wandb.{name} yet"):
        stand_in("arg", key="value")
    assert issubclass(nbtracker.NotSupportedError, NotImplementedError)
    assert issubclass(nbtracker.NotSupportedError, UsageError)


def test_stand_ins_behave_like_classes_and_modules() -> None:
    assert not isinstance(3, nbtracker.Video) and nbtracker.Video is nbtracker.Video
    with pytest.raises(NotImplementedError, match="wandb.plot.line yet"):
        nbtracker.plot.line(None, "x", "y")
    with pytest.raises(NotImplementedError, match="wandb.Plotly yet"):
        nbtracker.Plotly(object())
    assert not hasattr(nbtracker, "no_such_api")  # unknown names are plain AttributeErrors
    assert not hasattr(nbtracker.Video, "_private")
    with pytest.raises(AttributeError):
        nbtracker.no_such_api  # noqa: B018
    assert nbtracker.Error is nbtracker.NbtrackerError


def test_a_forked_child_draws_other_run_ids_than_its_parent() -> None:
    """Run ids come from a private generator, seeded again in a forked child."""
    import os

    from nbtracker._util import new_id

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(w, " ".join(new_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = os.read(r, 1000).decode().split()
    os.close(r)
    parent = [new_id() for _ in range(5)]
    assert len(child) == 5 and not set(child) & set(parent)


def test_module_log_is_the_current_runs_log_as_in_wandb(init) -> None:
    """As W&B sets ``wandb.log = run.log`` at init: ``nbtracker.log`` is the current run's
    method while it runs, and the module function again after ``finish()`` (which says
    to call init first)."""
    run = init()
    assert nbtracker.log == run.log
    nbtracker.log({"x": 1})
    assert run.step == 1
    run.finish()
    with pytest.raises(nbtracker.UsageError, match="init"):
        nbtracker.log({"x": 2})
    assert run.step == 1
