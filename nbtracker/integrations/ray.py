"""Ray (``pip install 'nbtracker[ray]'``), for users who already have a Ray cluster:
:func:`run_agents` runs a team sweep's agents as Ray tasks, and :class:`NbtrackerCallback`
records Ray Tune trials as nbtracker runs.

Ray is imported only here, never by ``import nbtracker``.

Examples
--------
>>> from nbtracker.integrations.ray import NbtrackerCallback, run_agents   # doctest: +SKIP
>>> sweep_id = nbtracker.sweep(config, project="cats", store=URL)            # doctest: +SKIP
>>> run_agents(sweep_id, train, num_agents=8, store=URL)  # runs made by each agent  +SKIP
>>> tune.Tuner(trainable, run_config=tune.RunConfig(
...     callbacks=[NbtrackerCallback(project="cats", store=URL)])).fit()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import NbtrackerWarning, UsageError

_HINT = "the Ray integration needs Ray: pip install 'nbtracker[ray]'"

try:  # the callback's base class; without Ray the names below raise the hint when used
    from ray.tune.logger import LoggerCallback as _Base
except ImportError:  # pragma: no cover - exercised only without the extra
    _Base = object  # type: ignore[assignment,misc]

__all__ = ["NbtrackerCallback", "run_agents"]

# Tune's own bookkeeping in every result: not metrics of the trial
_NOT_METRICS = frozenset({
    "config", "trial_id", "experiment_id", "date", "timestamp", "pid", "hostname", "node_ip",
    "done", "should_checkpoint", "experiment_tag", "checkpoint_dir_name",
})  # fmt: skip


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(_HINT) from None
    return ray


def run_agents(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    *,
    num_agents: int = 2,
    count: int | None = None,
    store: Any = None,
    project: str | None = None,
    dir: str | None = None,  # noqa: A002 - as agent()
    wait: bool = True,
    **task_options: Any,
) -> Any:
    """Run ``num_agents`` agents of a team sweep as Ray tasks (each is
    ``nbtracker.agent(...)`` on whichever node Ray picks).

    Parameters
    ----------
    sweep_id : str
        The sweep (``id``, ``project/id`` or ``<store-url>/<project>/<id>``). It must be in
        a team store: agents on several nodes share it there.
    function : callable, optional
        The training function (pickled by Ray, so a closure works); without it each agent
        runs the sweep's ``program``, which must exist on the nodes.
    num_agents : int
        How many agent tasks (each runs trials one after another).
    count : int, optional
        At most this many runs per agent (default: until the sweep is done).
    store : str, optional
        The team store (default ``$NBTRACKER_STORE``, or that of a team sweep this process
        created). The tasks get the URL as an argument, password included when it has one;
        it is never printed (prefer PGPASSWORD / ~/.pgpass on the nodes).
    project : str, optional
        The sweep's project (when the id alone is ambiguous).
    dir : str, optional
        Each node's local root for its runs (default ``$NBTRACKER_DIR`` or ``./nbruns`` in
        the worker's folder); the runs are committed from there to the team store.
    wait : bool
        Wait for the agents (default) and return the runs each made; False returns their
        Ray object refs at once.
    **task_options
        Passed to ``.options()`` of the Ray task (``num_cpus``, ``num_gpus``,
        ``resources``, ``runtime_env``, ...).

    Returns
    -------
    list of int, or list of ray.ObjectRef
        Runs made by each agent (``wait=True``), else the tasks' refs.

    Raises
    ------
    UsageError
        Ray is not installed, or the sweep is not in a team store.
    SweepNotFound
        No such sweep in the team store (checked before any task starts).
    """
    ray = _ray()
    from ..store import Store
    from ..sweeps import _team_sweep
    from ..sweeps.study import SweepStudy

    if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
        msg = f"run_agents(num_agents={num_agents!r}): a positive int"
        raise UsageError(msg)
    url, path = _team_sweep(sweep_id, store)
    if url is None:
        msg = (
            f"run_agents({sweep_id!r}): Ray agents need a sweep in a team store: create it "
            "with nbtracker.sweep(config, store='postgresql://...') and pass store= here (or "
            "set NBTRACKER_STORE)"
        )
        raise UsageError(msg)
    study = SweepStudy.open(Store(dir), path, project, url=url)  # fails here, not on the nodes
    task = ray.remote(_agent_task)
    if task_options:
        task = task.options(**task_options)
    secret = url.secret_url()
    refs = [task.remote(study.path, function, count, secret, dir) for _ in range(num_agents)]
    return ray.get(refs) if wait else refs


def _agent_task(path: str, function: Any, count: int | None, store: str, root: str | None) -> int:
    """One agent, in a Ray worker. Ray keeps workers alive after a task, so the runs are
    committed to the team store before the task returns (no exit hook would do it)."""
    from .. import team
    from ..sweeps import agent

    try:
        return agent(path, function=function, count=count, store=store, dir=root)
    finally:
        team.wait(60.0)


def _metrics(result: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The finite numbers of a Tune result, nested dicts flattened with ``/``."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if not prefix and key in _NOT_METRICS:
            continue
        if isinstance(value, Mapping):
            out.update(_metrics(value, f"{name}/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                out[name] = value
    return out


class NbtrackerCallback(_Base):  # type: ignore[misc,valid-type]
    """A Ray Tune callback: each Tune trial becomes an nbtracker run (its config the trial's
    config, one row per reported result at step ``training_iteration``, finished or failed
    as the trial ends), like W&B's ``WandbLoggerCallback``.

    The runs are made in the Tune driver process (several at once), so they have no system
    metrics or console copy of their own: those belong to the trial's worker.

    Parameters
    ----------
    project : str, optional
        Project of the runs (default ``$NBTRACKER_PROJECT`` or ``"uncategorized"``).
    store : str, optional
        A team store (``postgresql://...``, default ``$NBTRACKER_STORE``): the runs are
        committed there, so a Tune experiment on a cluster lands with the team's runs.
    dir : str, optional
        Local root of the runs (default ``$NBTRACKER_DIR`` or ``./nbruns``).
    group : str, optional
        Group of the runs (default: the Tune experiment's name).
    tags : list of str, optional
        Tags of every run.

    Raises
    ------
    UsageError
        Ray is not installed.
    """

    def __init__(self, project: str | None = None, *, store: Any = None, dir: str | None = None,  # noqa: A002
                 group: str | None = None, tags: list[str] | None = None) -> None:  # fmt: skip
        if _Base is object:
            raise UsageError(_HINT)
        super().__init__()
        self.project, self.store, self.dir = project, store, dir
        self.group, self.tags = group, list(tags or [])
        self._runs: dict[str, Any] = {}
        self._last_step: dict[str, int] = {}
        self._warned: set[str] = set()

    def _warn(self, trial: Any, what: str, exc: BaseException) -> None:
        key = f"{trial.trial_id}:{what}"
        if key not in self._warned:  # once per trial and kind: Tune goes on
            self._warned.add(key)
            warnings.warn(
                f"nbtracker could not {what} for Tune trial {trial.trial_id} ({exc!r}); the "
                "experiment continues.",
                NbtrackerWarning,
                stacklevel=3,
            )

    def _group(self, trial: Any) -> str | None:
        if self.group:
            return self.group
        try:
            return str(trial.experiment_dir_name) or None
        except Exception:  # noqa: BLE001 - a Trial without storage (older Ray)
            return None

    def log_trial_start(self, trial: Any) -> None:
        """Start the trial's run (a restarted trial keeps its run)."""
        if trial.trial_id in self._runs:
            return
        from .. import init

        try:
            run = init(
                project=self.project, dir=self.dir, store=self.store, name=str(trial),
                group=self._group(trial), tags=self.tags, job_type="tune",
                config=dict(trial.config or {}), reinit="create_new",
                settings={"x_disable_stats": True, "console": "off"},
            )  # fmt: skip
            run.summary["tune_trial_id"] = trial.trial_id
        except Exception as exc:  # noqa: BLE001 - never stop the experiment
            self._warn(trial, "start a run", exc)
            return
        self._runs[trial.trial_id] = run

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        """One row per result, at step ``training_iteration``."""
        if trial.trial_id not in self._runs:
            self.log_trial_start(trial)
        run = self._runs.get(trial.trial_id)
        if run is None:
            return
        step = result.get("training_iteration", iteration)
        last = self._last_step.get(trial.trial_id, -1)
        if not isinstance(step, int) or step <= last:  # a restored trial counts again
            step = last + 1
        self._last_step[trial.trial_id] = step
        try:
            run.log(_metrics(result), step=step)
        except Exception as exc:  # noqa: BLE001 - never stop the experiment
            self._warn(trial, "log a result", exc)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        """Finish the trial's run: ``failed`` when the trial errored."""
        run = self._runs.pop(trial.trial_id, None)
        self._last_step.pop(trial.trial_id, None)
        if run is None:
            return
        try:
            run.finish(exit_code=1 if failed else 0)
        except Exception as exc:  # noqa: BLE001 - never stop the experiment
            self._warn(trial, "finish its run", exc)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """Finish runs still open, and wait (bounded) until they are in the team store."""
        for trial in list(trials):
            if trial.trial_id in self._runs:
                self.log_trial_end(trial, failed=getattr(trial, "status", "") == "ERROR")
        from .. import team

        team.wait(60.0)
