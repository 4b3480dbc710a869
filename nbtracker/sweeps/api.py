"""``Api().sweep(path)``: a stored sweep's config, state, runs and best run."""

from __future__ import annotations

from typing import Any

from .study import SweepStudy, metric_value, trial_info


class ApiSweep:
    """A sweep as W&B's ``Api().sweep()`` returns it: ``id``, ``name``, ``project``,
    ``config``, ``state``, ``runs``, ``best_run()``, ``expected_run_count``."""

    def __init__(self, api: Any, study: SweepStudy) -> None:
        self._api, self._study = api, study
        self.id: str = study.id
        self.project: str = study.project
        self.entity: str | None = study.record.get("entity")
        self.name: str = study.record.get("name") or study.id
        self.config: dict[str, Any] = study.config
        self.method: str = study.config["method"]

    @classmethod
    def open(cls, api: Any, path: str) -> ApiSweep:
        url = getattr(api.store, "team_url", None)  # Api(store=...): the team's sweeps
        return cls(api, SweepStudy.open(api.store, path, url=url))

    def __repr__(self) -> str:
        return f"<Sweep {self.project}/{self.id} ({self.name}) {self.state}>"

    @property
    def path(self) -> list[str]:
        return [self.entity or "local", self.project, self.id]

    @property
    def url(self) -> str:
        """Where the sweep is: its folder, or for a team sweep ``<store-url>/project/id``
        with no password."""
        if self._study.url is not None:
            return self._study.agent_path
        return self._study.dir.as_uri()

    @property
    def state(self) -> str:
        """``pending``, ``running`` or ``finished`` (grid covered, run_cap or target met)."""
        return self._study.state()

    @property
    def expected_run_count(self) -> int | None:
        cap = self.config.get("run_cap")
        grid = self._study.record.get("grid_size")
        if grid is not None:
            return min(grid, cap) if cap else int(grid)
        return int(cap) if cap else None

    @property
    def runs(self) -> Any:
        """The sweep's runs (``Runs``), oldest first."""
        from ..api import ApiRun, Runs
        from ..query import load_runs

        recs = [r for r in load_runs(self._api.store, self.project) if r.get("sweep_id") == self.id]
        recs.sort(key=lambda r: r.get("created_at") or 0)
        return Runs(self._api.store, [ApiRun(self._api.store, r) for r in recs])

    def best_run(self, order: str | None = None) -> Any:
        """The run with the best value of the sweep metric (``order``: another summary
        key, ``-`` first for descending); None when no run has logged it."""
        metric = self.config.get("metric")
        if order:
            name = order.lstrip("+-").removeprefix("summary_metrics.").removeprefix("summary.")
            metric = {"name": name, "goal": "maximize" if order.startswith("-") else "minimize"}
        if not metric:
            return None
        scored = []
        for r in self.runs:
            v = metric_value(r.summary, metric)
            if v is not None and v == v:
                scored.append((v, r))
        if not scored:
            return None
        pick = max if metric["goal"] == "maximize" else min
        return pick(scored, key=lambda x: x[0])[1]

    def trials(self) -> Any:
        """optuna's view of the sweep: one row per trial (number, state, value, params,
        run_id), a DataFrame."""
        import pandas as pd

        rows = []
        for t in self._study.trials():
            rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                         "run_id": trial_info(t).get("run_id"),
                         **{f"config.{k}": v for k, v in _flat(trial_info(t).get("config") or {}).items()}})  # fmt: skip
        return pd.DataFrame(rows)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def list_sweeps(api: Any, project: str | None = None) -> list[ApiSweep]:
    """Every stored sweep (of one project), newest first."""
    from .._util import read_json
    from ..store import Store

    store: Store = api.store
    url = getattr(store, "team_url", None)
    if url is not None:
        import json

        from ..team.remote import Remote

        with Remote(url) as remote:
            records = [json.loads(r) for r in remote.sweeps(project)]
        return [ApiSweep(api, SweepStudy(store, store.sweep_dir(r["project"], r["id"]), r, url))
                for r in records]  # fmt: skip
    out = []
    for sdir in store.sweep_dirs(project):
        try:
            rec = read_json(store.sweep_file(sdir, "record"))
            out.append(ApiSweep(api, SweepStudy(store, sdir, rec)))
        except (OSError, ValueError):
            continue
    out.sort(key=lambda s: -(s._study.record.get("created_at") or 0))
    return out
