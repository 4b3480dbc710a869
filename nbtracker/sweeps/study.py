"""The optuna side of a sweep: one study per sweep in an optuna journal file inside the store.

Several agent processes share the journal (optuna's file storage is safe across processes);
handing out the next trial is serialised by a file lock, so grid points are never given
twice and ``run_cap`` is never passed. A trial whose agent process is gone is failed by the
next agent or reader that looks.

A sweep created with a team store (``url``) keeps its study in the team's PostgreSQL
(optuna's RDB storage), its record in the team catalog and takes a PostgreSQL advisory lock
instead of the file lock (:mod:`nbtracker.team.sweeps_storage`): agents on any machine join
it; each agent's runs go to its own local root first and are committed to the team store.
"""

from __future__ import annotations

import fcntl
import math
import os
import secrets
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._util import HOSTNAME, atomic_write_json, new_id, pid_alive, process_start_ticks, read_json
from ..errors import RunNotFound
from ..store import Store
from . import schema
from .params import Param, nest

RUN_GRACE_S = 60.0  # a trial whose run ended this long ago and was never told: failed


class SweepNotFound(RunNotFound):
    """No sweep with this id (in this project) under the store root."""


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        from ..errors import UsageError

        msg = "sweeps need optuna: pip install 'nbtracker[sweeps]'"
        raise UsageError(msg) from exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class Trial:
    """One run of a sweep as handed to an agent: optuna's trial number, the run id it will
    get, and its parameters (nested as the config gets them)."""

    def __init__(self, number: int, trial_id: int, run_id: str, config: dict[str, Any]):
        self.number, self.trial_id, self.run_id, self.config = number, trial_id, run_id, config

    def __repr__(self) -> str:
        return f"<Trial {self.number} run={self.run_id} {self.config}>"


class SweepStudy:
    """A stored sweep: its record (``sweep.json``) and its optuna study."""

    def __init__(self, store: Store, sdir: Path, record: dict[str, Any], url: Any = None) -> None:
        self.store, self.dir, self.record = store, sdir, record
        self.url = url  # a team store's StoreURL, or None for a sweep in the local store
        self.config, self.params = schema.validate(record["config"])
        self.id: str = record["id"]
        self.project: str = record["project"]
        self._study: Any = None
        self._pg_lock: Any = None
        self._remote: Any = None
        et = self.config.get("early_terminate")
        self.brackets = schema.brackets(et) if et else []

    def __repr__(self) -> str:
        return f"<Sweep {self.project}/{self.id} {self.config['method']}>"

    @property
    def metric(self) -> dict[str, Any] | None:
        return self.config.get("metric")

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"

    @property
    def study_name(self) -> str:
        # one PostgreSQL holds every project's sweeps: the project is part of the name
        return f"{self.project}/{self.id}" if self.url is not None else self.id

    @property
    def agent_path(self) -> str:
        """What ``nbtracker agent`` takes: ``project/id``, or for a team sweep the store
        URL without its password (``postgresql://me@host/db/project/id``)."""
        if self.url is None:
            return self.path
        return f"{self.url.shareable.rstrip('/')}/{self.path}"

    # -- creating and opening --------------------------------------------------------------
    @classmethod
    def create(
        cls, store: Store, config: Mapping[str, Any], project: str, entity: str | None = None,
        url: Any = None,
    ) -> SweepStudy:  # fmt: skip
        cfg, params = schema.validate(config)
        sweep_id = new_id(8)
        sdir = store.sweep_dir(project, sweep_id)
        if url is None:
            sdir.mkdir(parents=True, exist_ok=False)
        now = time.time()
        rec = {"schema": 1, "id": sweep_id, "project": project, "entity": entity,
               "name": cfg.get("name") or sweep_id, "method": cfg["method"], "config": cfg,
               "created_at": now}  # fmt: skip
        sweep = cls(store, sdir, rec, url)
        optuna = _optuna()
        direction = (cfg.get("metric") or {}).get("goal", "minimize")
        study = optuna.create_study(storage=sweep._storage(), study_name=sweep.study_name,
                                    direction=direction)  # fmt: skip
        if cfg["method"] == "grid":
            points = grid_points(params)
            cap = cfg.get("run_cap")
            for fixed in points[: cap or None]:
                study.enqueue_trial(fixed)
            rec["grid_size"] = len(points)
        if url is not None:  # the record last: agents find the sweep once its study is ready
            import json

            from ..team.remote import Remote

            with Remote(url) as remote:
                remote.put_sweep(project, sweep_id, json.dumps(rec))
        else:
            atomic_write_json(store.sweep_file(sdir, "record"), rec)
        return sweep

    @classmethod
    def open(
        cls, store: Store, path: str, project: str | None = None, url: Any = None
    ) -> SweepStudy:
        """``sweep_id``, ``project/sweep_id`` or ``entity/project/sweep_id`` (in the team
        store ``url`` when given)."""
        parts = [p for p in str(path).split("/") if p]
        sweep_id = parts[-1] if parts else ""
        if len(parts) >= 2:
            project = parts[-2]
        if url is not None:
            return cls._open_team(store, url, sweep_id, project)
        found = store.sweep_dirs(project, sweep_id) if sweep_id else []
        if not found:
            where = f" in project {project!r}" if project else ""
            msg = (
                f"no sweep {sweep_id!r}{where} under {store.root}; create one with "
                "nbtracker.sweep(config, project=...) or `nbtracker sweep config.yaml`"
            )
            raise SweepNotFound(msg)
        if len(found) > 1:
            names = ", ".join(f"{d.parent.name}/{sweep_id}" for d in found)
            msg = f"sweep id {sweep_id!r} is in several projects ({names}): pass project/{sweep_id}"
            raise SweepNotFound(msg)
        rec = read_json(store.sweep_file(found[0], "record"))
        return cls(store, found[0], rec)

    @classmethod
    def _open_team(cls, store: Store, url: Any, sweep_id: str, project: str | None) -> SweepStudy:
        import json

        from ..team.remote import Remote

        records = []
        if sweep_id:
            with Remote(url) as remote:
                records = remote.sweeps(project, sweep_id)
        if not records:
            where = f" in project {project!r}" if project else ""
            msg = (
                f"no sweep {sweep_id!r}{where} in the team store {url.masked}; create one "
                "with nbtracker.sweep(config, project=..., store=...) or `nbtracker sweep "
                "--store URL config.yaml`"
            )
            raise SweepNotFound(msg)
        recs = [json.loads(r) for r in records]
        if len(recs) > 1:
            names = ", ".join(f"{r['project']}/{sweep_id}" for r in recs)
            msg = f"sweep id {sweep_id!r} is in several projects ({names}): pass project/{sweep_id}"
            raise SweepNotFound(msg)
        rec = recs[0]
        return cls(store, store.sweep_dir(rec["project"], rec["id"]), rec, url)

    def _storage(self) -> Any:
        if self.url is not None:
            from ..team.sweeps_storage import shared_storage

            return shared_storage(self.url)
        from optuna.storages import JournalStorage

        path = self.store.sweep_file(self.dir, "journal")
        return JournalStorage(_journal_backend(str(path)))

    def study(self) -> Any:
        if self._study is None:
            optuna = _optuna()
            self._study = optuna.load_study(
                study_name=self.study_name, storage=self._storage(), sampler=self._sampler(),
                pruner=self._pruner(),
            )  # fmt: skip
        return self._study

    def _sampler(self) -> Any:
        return sampler_for(self.config["method"])

    def _pruner(self) -> Any:
        return pruner_for(self.config.get("early_terminate"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self.url is not None:
            from ..team.sweeps_storage import SweepLock

            if self._pg_lock is None:
                self._pg_lock = SweepLock(self.url)
            with self._pg_lock.hold(self.study_name):
                yield
            return
        with open(self.store.sweep_file(self.dir, "lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- handing out trials ----------------------------------------------------------------
    def next_trial(self) -> Trial | None:
        """The next run to do, or None when the sweep is done (grid covered, ``run_cap``
        reached, the metric's target reached)."""
        study = self.study()
        with self._locked():
            self.reap()
            trials = study.get_trials(deepcopy=False)
            if self.done_reason(trials):
                return None
            trial = study.ask()  # grid: pops a queued point (done_reason saw one waiting)
            values = {p.path: p.suggest(trial) for p in self.params}
            config = nest(values)
            run_id = new_id(8)
            # one journal write (each is an fsync): run id, parameters, the agent process
            trial.set_user_attr("nbtracker", {"run_id": run_id, "config": config,
                                              "agent": {"host": HOSTNAME, "pid": os.getpid(),
                                                        "pid_start": process_start_ticks()}})  # fmt: skip
        return Trial(trial.number, trial._trial_id, run_id, config)

    def done_reason(self, trials: list[Any] | None = None) -> str | None:
        optuna = _optuna()
        if trials is None:
            trials = self.study().get_trials(deepcopy=False)
        cap = self.config.get("run_cap")
        started = [t for t in trials if t.state != optuna.trial.TrialState.WAITING]
        if cap and len(started) >= cap:
            return f"run_cap {cap} reached"
        if self.config["method"] == "grid" and not any(
            t.state == optuna.trial.TrialState.WAITING for t in trials
        ):
            return "every grid point was run"
        metric = self.metric or {}
        target = metric.get("target")
        if target is not None:
            sign = 1 if metric["goal"] == "maximize" else -1
            for t in trials:
                if t.state == optuna.trial.TrialState.COMPLETE and sign * (t.value - target) >= 0:
                    return f"the target {metric['name']} = {target} was reached"
        return None

    def tell(self, trial: Trial, value: float | None, state: str) -> None:
        """Record how a trial ended: ``complete`` (with its metric value, if any),
        ``pruned`` or ``fail``. Idempotent."""
        optuna = _optuna()
        ts = optuna.trial.TrialState
        study = self.study()
        if state == "complete" and self.metric is None:
            value = 0.0  # nothing to optimise: the trial is complete all the same
        if state == "complete" and (value is None or not math.isfinite(value)):
            state = "fail"  # no metric: optuna learns nothing from it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if state == "complete":
                study.tell(trial.number, value, skip_if_finished=True)
            elif state == "pruned":
                study.tell(trial.number, state=ts.PRUNED, skip_if_finished=True)
            else:
                study.tell(trial.number, state=ts.FAIL, skip_if_finished=True)

    def reap(self) -> int:
        """Fail the running trials whose agent process is gone (killed), or whose run ended
        long ago without the trial being told. Returns how many."""
        optuna = _optuna()
        study = self.study()
        n = 0
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            agent = trial_info(t).get("agent") or {}
            gone = agent.get("host") == HOSTNAME and not pid_alive(
                int(agent.get("pid") or 0), agent.get("pid_start")
            )
            if not gone:
                gone = self._run_ended_long_ago(trial_info(t).get("run_id"))
            if gone:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                n += 1
        return n

    def _run_ended_long_ago(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        rdir = self.store.run_dir(self.project, run_id)
        try:
            rec = read_json(rdir / "run.json")  # (a team reader's cache has every machine's)
        except (OSError, ValueError):
            rec = self._team_record(run_id)
            if rec is None:
                return False
        if rec.get("state") == "running" and self.url is not None:
            from ..store import process_gone  # another machine's run: its heartbeat stopped

            return process_gone(rec)
        ended = rec.get("finished_at") or 0
        return rec.get("state") != "running" and time.time() - float(ended) > RUN_GRACE_S

    def _team_record(self, run_id: str) -> dict[str, Any] | None:
        """A run's record as committed to the team store (a run of another machine)."""
        if self.url is None:
            return None
        import json

        from ..team.remote import Remote, StoreUnavailable

        if self._remote is None:
            self._remote = Remote(self.url)
        try:
            rows = self._remote.records([(self.project, run_id)])
        except StoreUnavailable:
            return None
        return json.loads(rows[0][2]) if rows else None

    # -- hyperband -------------------------------------------------------------------------
    def band_keeps(self, trial_id: int, band: int, value: float, best: float | None = None) -> bool:
        """Report the metric's ``band``-th logged value (``best``: the best so far); False
        when hyperband stops the run here."""
        optuna = _optuna()
        return band_check(optuna.trial.Trial(self.study(), trial_id), band, value, best,
                          self.config["early_terminate"])  # fmt: skip

    def band_still_keeps(self, trial: Trial | int, band: int, cond: float) -> bool:
        """W&B's later check of a running run that passed ``band`` (see
        :func:`.hyperband.still_keeps`); False when it stops now."""
        from . import hyperband

        number = trial.number if isinstance(trial, Trial) else trial
        et = self.config["early_terminate"]
        return hyperband.still_keeps(self.study(), number, band, cond, float(et["eta"]))

    # -- reading ---------------------------------------------------------------------------
    def trials(self) -> list[Any]:
        """Every trial, after failing those whose agent is gone."""
        with self._locked():
            self.reap()
        return list(self.study().get_trials(deepcopy=False))

    def state(self) -> str:
        """``finished`` (done), ``running`` (a trial is running) or ``pending``."""
        optuna = _optuna()
        trials = self.trials()
        if self.done_reason(trials):
            running = any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
            return "running" if running else "finished"
        if any(t.state == optuna.trial.TrialState.RUNNING for t in trials):
            return "running"
        return "pending"


def trial_info(t: Any) -> dict[str, Any]:
    """What the sweep stored on an optuna trial: ``run_id``, ``config``, ``agent``."""
    return t.user_attrs.get("nbtracker") or {}


def sampler_for(method: str, seed: int | None = None) -> Any:
    """optuna's sampler for a W&B method: TPE with constant liar (running trials count as
    guessed results) for bayes, random otherwise (grid trials are queued, never sampled)."""
    optuna = _optuna()
    if seed is None:
        seed = secrets.randbits(31)  # never the user's random / numpy stream
    if method == "bayes":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner_for(et: Mapping[str, Any] | None) -> Any:
    """optuna's pruner for W&B's ``early_terminate``: W&B's own hyperband rule
    (:mod:`.hyperband`), asked at each band with the run's value reported at ``step=band``."""
    optuna = _optuna()
    if not et:
        return optuna.pruners.NopPruner()
    from . import hyperband

    return hyperband.pruner(et, schema.brackets(et))


def band_check(trial: Any, band: int, value: float, best: float | None,
               et: Mapping[str, Any]) -> bool:  # fmt: skip
    """Report ``value`` at ``step=band`` on an optuna trial of a study whose pruner is
    ``pruner_for(et)``; True when the run goes on. ``best`` (the best value so far) is what
    ``strict: false`` compares."""
    from . import hyperband

    if et.get("strict") is False and best is not None:
        trial.set_user_attr(hyperband.BEST_ATTR, {str(band): float(best)})
    trial.report(float(value), step=int(band))
    return not trial.should_prune()


def grid_points(params: list[Param]) -> list[dict[str, Any]]:
    """Every grid point as optuna's fixed parameters, in W&B's order (last parameter
    fastest)."""
    import itertools

    axes = []
    for p in params:
        g = p.grid()
        assert g is not None
        axes.append([(p.name, ov) for ov, _ in g if p.distribution != "constant"] or [None])
    out = []
    for combo in itertools.product(*axes):
        out.append(dict(c for c in combo if c is not None))
    return out


def metric_value(summary: Mapping[str, Any], metric: Mapping[str, Any]) -> float | None:
    """The sweep metric from a run's summary (a define_metric summary such as
    ``{"min": ..}`` gives the value matching the goal)."""
    name = metric["name"]
    v = summary.get(name)
    if v is None and "." in name:  # nested logs: summary["val"]["acc"]
        cur: Any = summary
        for part in name.split("."):
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        v = cur
    if isinstance(v, Mapping):
        for op in ("best", "max" if metric["goal"] == "maximize" else "min", "last"):
            if op in v:
                v = v[op]
                break
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


_JOURNAL_CLS: Any = None


def _journal_backend(path: str) -> Any:
    """optuna's journal file of the sweep (appends under its usual lock, so agents of any
    version share it), without an ``fsync`` per append: each trial appends 4 entries, and
    4 fsyncs cost 4-34 ms a trial here, more than the rest of the agent. A crashed agent
    process loses nothing (its appends are in the OS's cache); like the runs' own files,
    the sweep's state is not guarded against a power cut."""
    global _JOURNAL_CLS
    if _JOURNAL_CLS is None:
        from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

        class _Journal(JournalFileBackend):  # type: ignore[misc]
            def __init__(self, file_path: str) -> None:
                self._nbt_path = file_path
                self._nbt_lock = JournalFileSymlinkLock(file_path)  # optuna's default lock
                super().__init__(file_path, lock_obj=self._nbt_lock)

            def append_logs(self, logs: list[dict[str, Any]]) -> None:
                import json

                data = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in logs)
                self._nbt_lock.acquire()
                try:
                    with open(self._nbt_path, "ab") as f:
                        f.write(data.encode("utf-8"))
                finally:
                    self._nbt_lock.release()

        _JOURNAL_CLS = _Journal
    return _JOURNAL_CLS(path)
