"""init(): arguments, environment, names, reinit, disabled mode, context manager."""

from __future__ import annotations

import re
import time

import pytest

import nbtracker
from nbtracker.errors import UsageError


def test_init_stores_all_metadata(init, api) -> None:
    run = init(project="proj", entity="team", name="first", notes="n", tags=["a", "b"],
               group="g", job_type="train", config={"lr": 0.1}, id="run-1")  # fmt: skip
    assert (run.id, run.name, run.project, run.entity) == ("run-1", "first", "proj", "team")
    assert run.tags == ("a", "b") and run.group == "g" and run.job_type == "train"
    assert run.path == "team/proj/run-1"
    run.finish()
    r = api.run("proj/run-1")
    assert (r.name, r.notes, r.group, r.job_type, r.entity) == ("first", "n", "g", "train", "team")
    assert api.run("team/proj/run-1").id == "run-1"


def test_runs_append_to_a_project_with_readable_names(init, api) -> None:
    names = []
    for _ in range(3):
        run = init(reinit="finish_previous")
        names.append(run.name)
        run.log({"x": 1})
    nbtracker.finish()
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d+", n) for n in names), names
    assert [n.rsplit("-", 1)[1] for n in names] == ["1", "2", "3"]
    assert len(api.runs("p")) == 3


def test_environment_variables(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "envroot"))
    monkeypatch.setenv("NBTRACKER_PROJECT", "envproj")
    run = nbtracker.init()
    run.finish()
    assert run.project == "envproj"
    assert run.dir.is_relative_to(tmp_path / "envroot")
    assert len(nbtracker.Api().runs("envproj")) == 1
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert nbtracker.init().disabled


def test_disabled_mode_is_a_near_free_noop(tmp_path) -> None:
    run = nbtracker.init(mode="disabled", config={"a": 1})
    t = time.perf_counter()
    for i in range(10_000):
        nbtracker.log({"x": i})
    per_call = (time.perf_counter() - t) / 10_000
    assert per_call < 20e-6
    assert run.config.a == 1
    run.finish()
    assert not (tmp_path / "nbruns").exists()


def test_with_statement_finishes_or_fails(init, api) -> None:
    with init(id="ok") as run:
        run.log({"x": 1})
    assert api.run("p/ok").state == "finished"
    with pytest.raises(RuntimeError), init(id="bad", reinit="create_new") as run:
        run.log({"x": 1})
        raise RuntimeError("boom")
    assert api.run("p/bad").state == "failed"


def test_reinit_in_a_script_returns_the_previous_run(init) -> None:
    first = init()
    assert init() is first
    second = init(reinit="finish_previous")
    assert first.state == "finished" and second is not first
    third = init(reinit="create_new")
    assert third is not second
    assert second.state == "running" and nbtracker.run is second  # as W&B: run stays put


def test_reinit_in_a_notebook_finishes_the_previous_run(init, monkeypatch) -> None:
    from nbtracker import _state

    monkeypatch.setattr(_state, "in_notebook", lambda: True)
    first = init()
    second = init()
    assert first.state == "finished" and second.state == "running"


def test_bad_arguments_say_what_to_do(init) -> None:
    with pytest.raises(UsageError, match="mode"):
        init(mode="cloud")
    with pytest.raises(UsageError, match="resume"):
        init(resume="sometimes")
    with pytest.raises(UsageError, match="ids may not contain"):
        init(id="a/b")
    with pytest.raises(UsageError, match="resume='must'"):
        init(id="nope", resume="must")


def test_existing_id_needs_resume(init) -> None:
    init(id="dup").finish()
    with pytest.raises(UsageError, match="resume='allow'"):
        init(id="dup")
    with pytest.raises(UsageError):
        init(id="dup", resume="never")


def test_resume_continues_steps_history_and_summary(init, api) -> None:
    run = init(id="r", config={"lr": 1})
    for i in range(5):
        run.log({"loss": 10 - i})
    run.summary["note"] = "kept"
    run.finish()
    run = init(id="r", resume="allow")
    assert run.step == 5 and run.config.lr == 1 and run.summary["note"] == "kept"
    run.log({"loss": 1})
    run.finish()
    r = api.run("p/r")
    h = r.history(samples=None)
    assert list(h["_step"]) == [0, 1, 2, 3, 4, 5]
    assert list(h["loss"]) == [10, 9, 8, 7, 6, 1]
    assert r.summary["loss"] == 1 and r.summary["note"] == "kept"
