"""Sweep agents: run a function in this process (notebook-safe, no fork) or a program as a
subprocess, one trial after another, until the sweep is done or ``count`` runs are made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

from . import join
from .study import SweepStudy, Trial, metric_value

MAX_CONSECUTIVE_FAILURES = 5  # as W&B's agent: stop after this many failed runs in a row
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


def _say(msg: str) -> None:
    from .._paths import env_flag

    if not env_flag("SILENT"):
        print(f"nbtracker: {msg}", file=sys.stderr, flush=True)


def run_agent(sweep: SweepStudy, function: Callable[[], Any] | None, count: int | None) -> int:
    """Run trials until the sweep is done, ``count`` runs were made, or 5 failed in a row.
    Returns the number of runs made. KeyboardInterrupt ends the current run as failed
    (its trial failed, the sweep resumable) and is raised again."""
    view = _sweep_view(sweep)
    join.quiet_panels = view is not None  # the sweep view shows the runs: no panel each
    try:
        return _loop(sweep, function, count, view)
    finally:
        join.quiet_panels = False


def _loop(sweep: SweepStudy, function: Callable[[], Any] | None, count: int | None,
          view: Any) -> int:  # fmt: skip
    made = failures = 0
    while count is None or made < count:
        trial = sweep.next_trial()
        if trial is None:
            _say(f"sweep {sweep.id}: {sweep.done_reason() or 'done'}; agent stops")
            break
        made += 1
        ctx = join.TrialContext(sweep.id, sweep.project, str(sweep.store.root), trial.number,
                                trial.trial_id, trial.run_id, trial.config, sweep.brackets,
                                (sweep.metric or {}).get("name"), sweep=sweep,
                                store_url=sweep.url)  # fmt: skip
        if function is not None:
            ok = _function_trial(sweep, trial, ctx, function)
        else:
            ok = _program_trial(sweep, trial, ctx)
        failures = 0 if ok else failures + 1
        if view is not None:
            from .view import refresh_chart

            refresh_chart(view, sweep)
        if failures >= MAX_CONSECUTIVE_FAILURES:
            _say(f"{failures} runs failed in a row; agent stops (the sweep can be resumed)")
            break
    return made


def _sweep_view(sweep: SweepStudy) -> Any:
    """In a notebook: the sweep's live workspace and trials chart, above the runs' panels."""
    from .. import _state

    if not _state.in_notebook():
        return None
    try:
        from .view import show_sweep

        return show_sweep(sweep)
    except Exception as exc:  # noqa: BLE001 - a display problem never stops the sweep
        _say(f"could not show the sweep view ({exc!r})")
        return None


def _function_trial(sweep: SweepStudy, trial: Trial, ctx: join.TrialContext,
                    function: Callable[[], Any]) -> bool:  # fmt: skip
    """One trial in this process: True unless it failed."""
    join.current = ctx
    outcome, value = "fail", None
    try:
        try:
            function()
        except join.StopRun:
            outcome = "pruned"
        except KeyboardInterrupt as exc:
            if ctx.run is not None:
                ctx.run._mark_failed(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - the user's error fails this run only
            traceback.print_exc()
            if ctx.run is not None:
                ctx.run._mark_failed(exc)
            _say(f"run {trial.run_id} failed: {type(exc).__name__}: {exc}")
            return False
        run = ctx.run
        if run is None:
            _say("the sweep function did not call nbtracker.init(); no run was made")
            return False
        run.finish()
        if outcome == "pruned":
            return True
        if run.state != "finished":
            return False
        metric = sweep.metric
        value = metric_value(run.summary.as_dict(), metric) if metric else None
        outcome = "complete"
        return True
    finally:
        join.current = None
        sweep.tell(trial, value, outcome)


def _program_trial(sweep: SweepStudy, trial: Trial, ctx: join.TrialContext) -> bool:
    """One trial as a subprocess running the sweep's ``program``."""
    from ..store import Store

    store: Store = sweep.store
    cmd = build_command(sweep, trial)
    env = {**os.environ, **ctx.env()}
    _say(f"run {trial.run_id}: {' '.join(cmd)}")
    outcome, value = "fail", None
    try:
        proc = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)  # noqa: PLW1509
        try:
            rc = proc.wait()
        except BaseException:
            _stop_child(proc)
            raise
        rdir = store.run_dir(sweep.project, trial.run_id)
        rec = store.read_record(rdir)
        if rec is None:
            _say(f"run {trial.run_id}: the program exited ({rc}) without calling init()")
            return False
        rec = store.check_alive(rdir, rec)
        if rec.get("state") == "killed":
            outcome = "pruned"
            return True
        if rc != 0 or rec.get("state") != "finished":
            _say(f"run {trial.run_id} {rec.get('state')} (exit status {rc})")
            return False
        metric = sweep.metric
        value = metric_value(rec.get("summary") or {}, metric) if metric else None
        outcome = "complete"
        return True
    finally:
        sweep.tell(trial, value, outcome)


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C in the agent: a terminal's Ctrl-C reached the program too (it fails its run,
    exit 130); else it gets a SIGINT of its own; SIGTERM / SIGKILL if it does not end."""
    import signal

    for sig, wait in ((None, 2.0), (signal.SIGINT, 10.0), (signal.SIGTERM, 5.0)):
        if sig is not None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the agent dies (Linux), so a killed agent's run ends
    (and is seen as crashed) instead of running on unowned."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001, S110 - not Linux: the child may outlive the agent
        pass


# -- command macros ------------------------------------------------------------------------
def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def build_command(sweep: SweepStudy, trial: Trial) -> list[str]:
    """The program's command line from the sweep's ``command`` and W&B's macros."""
    params = _flat(trial.config)
    command = sweep.config.get("command") or DEFAULT_COMMAND
    program = sweep.config.get("program")
    out: list[str] = []
    for item in command:
        if item == "${env}":
            out.append("/usr/bin/env")
        elif item == "${interpreter}":
            out.append(sys.executable)
        elif item == "${program}":
            out.append(str(program))
        elif item == "${args}":
            out += [f"--{k}={_text(v)}" for k, v in params.items()]
        elif item == "${args_no_hyphens}":
            out += [f"{k}={_text(v)}" for k, v in params.items()]
        elif item == "${args_no_boolean_flags}":
            for k, v in params.items():
                if v is True:
                    out.append(f"--{k}")
                elif v is not False:
                    out.append(f"--{k}={_text(v)}")
        elif item == "${args_json}":
            out.append(json.dumps(trial.config))
        elif item == "${args_json_file}":
            folder = sweep.store.sweep_file(sweep.dir, "args")
            folder.mkdir(exist_ok=True)
            path = folder / f"{trial.run_id}.json"
            path.write_text(json.dumps(trial.config), encoding="utf-8")
            out.append(str(path))
        else:
            out.append(str(item))
    return out
