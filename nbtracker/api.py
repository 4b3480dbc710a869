"""Public read API: ``Api().runs(...)``, ``Api().run(path)``, history as pandas, SQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _paths, query
from ._util import to_jsonable
from .errors import RunNotFound, UsageError
from .filters import matches, sort_records
from .store import Store, record_file


class Api:
    """Read (and edit) the runs stored under one root folder.

    Parameters
    ----------
    root : path, optional
        Storage root (default ``$NBTRACKER_DIR`` or ``./nbruns``).
    overrides, timeout, api_key
        Accepted for wandb compatibility; ignored (there is no server).

    Examples
    --------
    >>> api = nbtracker.Api()                                       # doctest: +SKIP
    >>> runs = api.runs("cats", filters={"config.lr": {"$lt": 0.01}}, order="-summary_metrics.acc")
    >>> runs.to_pandas()                                            # one row per run
    >>> api.run("cats/abc123").history(keys=["loss"])              # a DataFrame
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        timeout: int | None = None,
        api_key: str | None = None,
        *,
        store: Store | str | None = None,
    ) -> None:
        if store is None and root is None or isinstance(store, str):
            from . import team  # a team store URL (or $NBTRACKER_STORE): read its cache

            url = team.resolve(store)
            store = team.reader_store(url) if url is not None else None
        self.store = store or Store(root)
        self.default_project = (overrides or {}).get("project")

    def __repr__(self) -> str:
        return f"Api(root={str(self.store.root)!r})"

    def projects(self) -> list[str]:
        """Names of the projects that have runs."""
        return sorted({r["project"] for r in query.load_runs(self.store)})

    def runs(
        self,
        path: str | None = None,
        filters: Mapping[str, Any] | None = None,
        order: str | None = "-created_at",
        per_page: int | None = None,
        include_sweeps: bool | None = None,
    ) -> Runs:
        """Runs of a project (``"project"`` or ``"entity/project"``; None: all projects).

        Parameters
        ----------
        filters : dict, optional
            MongoDB-style, as wandb's Api accepts: ``{"config.lr": {"$gt": 0.01}}``,
            ``{"summary_metrics.acc": {"$gte": 0.9}}``, ``{"tags": {"$in": ["paper"]}}``,
            ``{"state": "finished"}``, ``{"$or": [...]}``. Operators: ``$eq $ne $gt $gte
            $lt $lte $in $nin $exists $regex $and $or $nor $not``.
        order : str, optional
            A field, ``-`` for descending: ``"-created_at"``, ``"+summary_metrics.loss"``.
        per_page, include_sweeps
            Accepted for wandb compatibility; ignored.
        """
        project = self._project_of(path) if path else self.default_project
        records = query.load_runs(self.store, project)
        if filters:
            records = [r for r in records if matches(r, filters)]
        records = sort_records(records, order)
        return Runs(self.store, [ApiRun(self.store, r) for r in records])

    def _project_of(self, path: str) -> str:
        """``project`` or ``entity/project``; a project whose own name has a ``/`` is found
        when no project matches the entity reading."""
        parts = path.split("/")
        if len(parts) == 1:
            return path
        rest = "/".join(parts[1:])
        if (_paths.project_dir(self.store.root, rest)).is_dir() or not (
            _paths.project_dir(self.store.root, path)
        ).is_dir():
            return rest
        return path

    def run(
        self, path: str | None = None, *, project: str | None = None, run_id: str | None = None
    ) -> ApiRun:
        """One run: ``"project/run_id"`` or ``"entity/project/run_id"``.

        Raises
        ------
        RunNotFound
        """
        if path is not None:
            candidates = _split_run_path(path)
        elif project and run_id:
            candidates = [(project, run_id)]
        else:
            msg = "Api.run() needs 'project/run_id' (or project= and run_id=)"
            raise UsageError(msg)
        for project, run_id in candidates:
            rdir = self.store.run_dir(project, run_id)
            rec = self.store.read_record(rdir)
            if rec is not None and rec.get("project") == project:
                return ApiRun(self.store, self.store.check_alive(rdir, rec))
            if rec is None and record_file(rdir).exists():
                # run.json cannot be read (warned): the catalog's row stands in, if any
                rec = query.catalog_record(self.store, rdir)
                if rec is not None and rec.get("project") == project:
                    return ApiRun(self.store, rec)
        project, run_id = candidates[0]
        msg = f"no run {project}/{run_id} under {self.store.root}; see Api().runs({project!r})"
        raise RunNotFound(msg)

    def sweep(self, path: str) -> Any:
        """A sweep: ``"project/sweep_id"``, ``"entity/project/sweep_id"`` or the id alone;
        ``.config``, ``.state``, ``.runs``, ``.best_run()`` (see :mod:`nbtracker.sweeps`).

        Raises
        ------
        RunNotFound
            No such sweep (a ``SweepNotFound``).
        """
        from .sweeps.api import ApiSweep

        return ApiSweep.open(self, path)

    def sweeps(self, project: str | None = None) -> list[Any]:
        """The stored sweeps (of one project), newest first."""
        from .sweeps.api import list_sweeps

        return list_sweeps(self, self._project_of(project) if project else None)

    def sql(self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run SQL over views ``runs``, ``config``, ``summary``, ``tags`` and ``history``.

        Pass values as ``?`` or ``$name`` parameters, never by pasting them into the text.
        Returns a pandas DataFrame.
        """
        import duckdb

        for attempt in range(8):
            con = query.sql_connection(self.store)
            try:
                return con.execute(statement, params or []).df()
            except duckdb.Error as exc:
                # a live run merged history files under the view (list again), or a file
                # proved damaged (skipped from now on, with a warning): run it again
                if attempt == 7 or not query.blame(query.view_files(con), exc, ours=False):
                    raise
            finally:
                con.close()
        raise AssertionError  # pragma: no cover

    def artifact(self, name: str, type: str | None = None) -> Any:  # noqa: A002
        """One artifact version: ``"project/name:v1"``, ``"entity/project/name:latest"``,
        ``"project/name:<alias>"`` (``"name:v1"`` with ``overrides={"project": ...}``).

        Raises
        ------
        ArtifactNotFound
        """
        from .artifacts import api_artifact

        return api_artifact(self.store, name, type, self.default_project)

    def artifact_versions(self, type_name: str | None, name: str, per_page: int = 50) -> list[Any]:
        """Every version of ``"project/name"``, oldest first (W&B's argument order)."""
        from .artifacts import api_versions

        return api_versions(self.store, type_name, name, self.default_project)

    def artifacts(self, type_name: str | None, name: str, per_page: int = 50,
                  tags: Any = None) -> list[Any]:  # fmt: skip
        """Every version of ``"project/name"`` (same as :meth:`artifact_versions`)."""
        return self.artifact_versions(type_name, name, per_page)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:  # noqa: A002
        """True when ``"project/name:version"`` names a stored version."""
        from .artifacts import ArtifactNotFound

        try:
            self.artifact(name, type)
        except (ArtifactNotFound, ValueError):
            return False
        return True

    def flush(self) -> None:
        """Local stores: nothing to do, reads are always fresh. A team store: fetch what
        changed since this Api was made (or last flushed), as W&B's ``flush()`` does."""
        url = getattr(self.store, "team_url", None)
        if url is not None:
            from . import team

            team.reader_store(url)


def sql(
    statement: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    root: str | None = None,
    store: str | None = None,
) -> Any:
    """SQL over all runs under the default root (or the team store ``store=``, a
    ``postgresql://`` URL); see :meth:`Api.sql`.

    Examples
    --------
    >>> nbtracker.sql("SELECT run_id, max(value) FROM history WHERE key = ? GROUP BY 1",
    ...               ["acc"])                                      # doctest: +SKIP
    """
    return Api(root, store=store).sql(statement, params)


class Runs(Sequence["ApiRun"]):
    """A list of :class:`ApiRun`; ``to_pandas()`` gives one row per run."""

    def __init__(self, store: Store, runs: list[ApiRun]) -> None:
        self._store = store
        self._runs = runs

    def __getitem__(self, i):  # type: ignore[no-untyped-def,override]
        if isinstance(i, slice):
            return Runs(self._store, self._runs[i])
        return self._runs[i]

    def __len__(self) -> int:
        return len(self._runs)

    def __repr__(self) -> str:
        return f"<Runs {len(self)}>"

    def to_pandas(self) -> Any:
        """One row per run: id, name, state, tags, times, ``config.*``, ``summary.*`` and
        the environment's plain values as ``metadata.*`` (``metadata.git.commit``,
        ``metadata.python``, ...)."""
        import pandas as pd

        from ._util import flatten

        rows = []
        for r in self._runs:
            rec = r._rec
            row = {
                "project": rec["project"], "run_id": rec["id"], "name": rec.get("name"),
                "state": rec.get("state"), "group": rec.get("group"), "job_type": rec.get("job_type"),
                "tags": list(rec.get("tags") or []), "notes": rec.get("notes"),
                "created_at": rec.get("created_at"), "last_step": rec.get("last_step"),
                "error": rec.get("error"), "sweep_id": rec.get("sweep_id"),
            }  # fmt: skip
            for k, v in flatten(rec.get("config") or {}).items():
                row["config." + k] = v
            for k, v in (rec.get("summary") or {}).items():
                if not k.startswith("_"):
                    row["summary." + k] = v
            for k, v in flatten(_loads_dict(rec.get("metadata"))).items():
                if v is None or isinstance(v, (str, int, float, bool)):
                    row["metadata." + k] = v
            rows.append(row)
        df = pd.DataFrame(rows)
        base = [c for c in df.columns if not c.startswith(("config.", "summary.", "metadata."))]
        cfg = [c for c in df.columns if c.startswith("config.")]
        summ = [c for c in df.columns if c.startswith("summary.")]
        meta = [c for c in df.columns if c.startswith("metadata.")]
        df = df[base + cfg + summ + meta]
        if len(df):
            df["created_at"] = pd.to_datetime(df["created_at"], unit="s", utc=True)
        return df

    def histories(self, keys: Sequence[str] | None = None, samples: int | None = 500) -> Any:
        """All runs' histories in one DataFrame with a ``run_id`` column."""
        import pandas as pd

        frames = []
        for r in self._runs:
            h = r.history(keys=keys, samples=samples)
            h.insert(0, "run_id", r.id)
            frames.append(h)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class ApiRun:
    """A stored run, read from its folder. Edit ``config``/``summary``/``tags``/``notes``
    and call :meth:`update` to save."""

    def __init__(self, store: Store, rec: dict[str, Any]) -> None:
        self._store = store
        self._rec = rec
        self.config: dict[str, Any] = dict(rec.get("config") or {})
        self.summary: RunSummary = RunSummary(self, rec.get("summary") or {})
        self.tags: list[str] = list(rec.get("tags") or [])
        self.notes: str | None = rec.get("notes")
        self.name: str | None = rec.get("name")
        self.group: str | None = rec.get("group")
        self.job_type: str | None = rec.get("job_type")

    id = property(lambda self: self._rec["id"])
    project = property(lambda self: self._rec["project"])
    entity = property(lambda self: self._rec.get("entity") or "local")
    state = property(lambda self: self._rec.get("state"))
    created_at = property(lambda self: self._rec.get("created_at"))
    display_name = property(lambda self: self.name)
    sweep_id = property(lambda self: self._rec.get("sweep_id"), doc="The sweep that made it.")

    @property
    def dir(self) -> Path:
        return self._store.run_dir(self.project, self.id)

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def url(self) -> str:
        return self.dir.as_uri()

    @property
    def metadata(self) -> dict[str, Any]:
        """Where and when the run ran; ``error`` too when it failed with one; and the
        environment the capture recorded, with W&B's names (``os``, ``python``, ``program``,
        ``codePath``, ``git`` {``remote``, ``commit``, ``branch``, ``dirty``}, ``cpu_count``,
        ``gpu``, ...)."""
        keys = ("host", "pid", "created_at", "finished_at", "exit_code", "resumed")
        out = {**(_loads_dict(self._rec.get("metadata"))), **{k: self._rec.get(k) for k in keys}}
        if self._rec.get("error"):
            out["error"] = self._rec["error"]
        return out

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} ({self.name}) {self.state}>"

    @property
    def ranks(self) -> list[dict[str, Any]]:
        """The processes of a shared (multi-rank) run, the primary first: ``label``,
        ``primary``, ``state`` (a worker whose process died unfinished reads ``crashed``),
        ``host``, ``pid``, ``console`` (its console log among :meth:`files`), times;
        workers also their ``history_keys`` and ``summary``. Empty for a run that is not
        shared. A worker's rows are the history keys ``<label>/<key>``, each rank's system
        metrics ``system/<label>/...``."""
        from ._shared import ranks

        return ranks(self.dir, self._rec)

    def history(
        self,
        samples: int | None = 500,
        keys: Sequence[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
        *,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Any:
        """History as a DataFrame; down-sampled to about ``samples`` points per key.

        Down-sampling keeps each bucket's minimum and maximum (and the first and last
        step), so no spike is ever hidden. ``samples=None`` returns every row.
        ``stream="system"`` reads the system metrics (``system/cpu``, ``system/memory_percent``,
        ...; ``_step`` counts samples) instead of the logged ones, as W&B's.
        ``x_axis`` and ``pandas`` are accepted for wandb compatibility.

        Columns: ``_step``, ``_timestamp``, ``_runtime``, then one per key: int64 (Int64
        where a step lacks the key), boolean, float64, or objects for text and media (a key
        logged with both numbers and text keeps both). A logged key named like a system
        column reads back as ``"_step (logged)"`` (one warning). History files that cannot
        be read are skipped with a ``StorageWarning`` naming them.
        """
        keys = [keys] if isinstance(keys, str) else keys
        return query.history_frame(
            self._store, self.dir, self._rec, keys, samples, min_step, max_step, stream
        )

    def scan_history(
        self,
        keys: Sequence[str] | None = None,
        page_size: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> History:
        """Every row of the history, streamed: iterate for dicts (as wandb), or
        ``.to_pandas()`` for a DataFrame.

        Rows are read a window of steps at a time (at least ``page_size`` steps, about
        250,000 logged values), so memory stays small however long the run. Each row has
        ``_step``, ``_runtime``, ``_timestamp`` and the keys logged at that step (with
        ``keys``: every key asked for, None where it was not logged); a NaN that was logged
        stays NaN.
        """
        keys = [keys] if isinstance(keys, str) else keys
        return History(self, keys, min_step, max_step, page_size)

    def chart(self, key: str, **kwargs: Any) -> Any:
        """The Altair chart of one metric (see :meth:`nbtracker.Run.chart`)."""
        from .charts import run_chart

        return run_chart(self, key, **kwargs)

    def table(self, key: str, step: int | None = None, **kwargs: Any) -> Any:
        """A logged ``Table`` as a DataFrame (the latest version, or the one at ``step``)."""
        from . import media

        return media.load_table(self.dir, key, step, **kwargs)

    def files(self, names: Sequence[str] | None = None, per_page: int = 50) -> list[Any]:
        """Files saved to the run with ``save()`` (a list of :class:`nbtracker.files.File`:
        ``name``, ``size``, ``download(root)``); ``names`` picks some; ``per_page`` is
        accepted for wandb compatibility."""
        from .files import list_files

        return list_files(self._store, self.dir, list(names) if names else None)

    def file(self, name: str) -> Any:
        """One saved file by its name in the run (``"ckpt/model.pt"``).

        Raises
        ------
        FileNotFoundError
        """
        from .files import list_files

        found = list_files(self._store, self.dir, [name])
        if not found:
            msg = f"run {self.project}/{self.id} has no saved file {name!r}; see .files()"
            raise FileNotFoundError(msg)
        return found[0]

    def logged_artifacts(self, per_page: int = 100) -> list[Any]:
        """The artifact versions this run logged."""
        from .artifacts import run_artifacts

        return run_artifacts(self._store, self.project, self.id, used=False)

    def used_artifacts(self, per_page: int = 100) -> list[Any]:
        """The artifact versions this run used (``use_artifact``)."""
        from .artifacts import run_artifacts

        return run_artifacts(self._store, self.project, self.id, used=True)

    def alerts(self) -> list[dict[str, Any]]:
        """The run's ``alert()`` calls, oldest first: ``title``, ``text``, ``level``,
        ``at`` (seconds since the epoch), ``step``, ``wait_duration``."""
        from .alerts import read_alerts

        return read_alerts(self._store, self.dir)

    def update(self) -> None:
        """Save edited ``config``, ``summary``, ``tags``, ``notes``, ``name`` to the run
        (its run.json and the catalog)."""
        from .store import wait_for_released

        wait_for_released()  # a run this process just finished writes its record last
        rec = self._store.read_record(self.dir) or dict(self._rec)
        rec.pop("dir", None)
        rec.pop("json_mtime", None)
        rec["config"] = to_jsonable(self.config, "config")
        rec["summary"] = to_jsonable(dict(self.summary), "summary")
        rec["tags"] = [str(t) for t in self.tags]
        for key in ("notes", "name", "group", "job_type"):
            rec[key] = getattr(self, key)
        rec["updated_at"] = time.time()
        self._store.write_record(self.dir, rec)
        rec["dir"] = str(self.dir.relative_to(self._store.root))
        rec["json_mtime"] = record_file(self.dir).stat().st_mtime
        self._store.catalog_upsert([rec], timeout=5.0)
        self._rec = rec


class RunSummary(dict):  # type: ignore[type-arg]
    """A stored run's summary: a dict whose ``update()`` saves it to the run (run.json and
    the catalog), as wandb's public API does::

        run.summary["best"] = 0.93
        run.summary.update()                # or run.summary.update({"best": 0.93})

    ``run.update()`` saves it too.
    """

    def __init__(self, run: ApiRun, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self._run = run

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Set the given values (if any), then save the whole summary to the run."""
        super().update(*args, **kwargs)
        self._run.update()

    @property
    def _json_dict(self) -> dict[str, Any]:
        """The summary as a plain dict (wandb's ``HTTPSummary._json_dict``)."""
        return dict(self)

    def __reduce__(self) -> Any:  # pickles (and copies) as a plain dict
        return (dict, (dict(self),))


class History:
    """Every row of a run's history: iterate for row dicts (read a window of steps at a
    time, so memory stays bounded), or ``to_pandas()`` for one DataFrame."""

    def __init__(
        self,
        run: ApiRun,
        keys: Sequence[str] | None,
        lo: int | None,
        hi: int | None,
        page_size: int = 1000,
    ) -> None:
        self._run, self._keys, self._lo, self._hi = run, keys, lo, hi
        self._page_size = page_size
        self._len: int | None = None

    def to_pandas(self) -> Any:
        """All rows as a DataFrame (``history(samples=None)``)."""
        return self._run.history(
            samples=None, keys=self._keys, min_step=self._lo, max_step=self._hi
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        r = self._run
        return query.scan_history(
            r._store, r.dir, r._rec, self._keys, self._lo, self._hi, page_size=self._page_size
        )

    def __len__(self) -> int:
        if self._len is None:
            self._len = query.count_steps(
                self._run._store, self._run.dir, self._keys, self._lo, self._hi
            )
        return self._len

    def __repr__(self) -> str:
        return f"<History of {self._run.project}/{self._run.id}>"

    def _repr_html_(self) -> str:
        return self.to_pandas()._repr_html_()  # type: ignore[no-any-return]


def _split_run_path(path: str) -> list[tuple[str, str]]:
    """Candidate ``(project, run_id)`` pairs for ``project/run_id`` or
    ``entity/project/run_id`` (the run id is the last part). Project names may contain
    ``/`` themselves, so with three or more parts both readings are tried, entity first.
    """
    path = path.strip("/")
    if "/runs/" in path:  # wandb URLs: entity/project/runs/run_id
        path = path.replace("/runs/", "/")
    parts = path.split("/")
    if len(parts) < 2:
        msg = f"run path {path!r}: use 'project/run_id' or 'entity/project/run_id'"
        raise UsageError(msg)
    run_id = parts[-1]
    if len(parts) == 2:
        return [(parts[0], run_id)]
    return [("/".join(parts[1:-1]), run_id), ("/".join(parts[:-1]), run_id)]


def _loads_dict(value: Any) -> dict[str, Any]:
    """A record's JSON column (text from the catalog, a dict from run.json) as a dict."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}
