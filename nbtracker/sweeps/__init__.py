"""Sweeps: ``sweep(config)`` stores a W&B-style sweep, ``agent(sweep_id, function)`` runs it.

Search (grid / random / bayes), early termination (hyperband) and the storage several agent
processes share come from optuna (``pip install 'nbtracker[sweeps]'``), imported only when a
sweep is used. With a team store (``store="postgresql://..."`` or ``$NBTRACKER_STORE``) the
sweep lives in the team's PostgreSQL and agents on any machine join it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from .schema import SweepConfigError

__all__ = ["SweepConfigError", "agent", "sweep"]

_created_in_team: dict[str, Any] = {}  # sweep id -> StoreURL, for agent(id) in this process


def _team_sweep(sweep_id: str, store: Any) -> tuple[Any, str]:
    """The team store of a sweep path and the path without it: ``<store-url>/project/id``,
    or ``store=``, or ``$NBTRACKER_STORE``, or a team sweep this process created."""
    from .. import team

    path = str(sweep_id)
    if team.is_url(path):
        head, _, sid = path.rstrip("/").rpartition("/")
        base, _, project = head.rpartition("/")
        if not (sid and project and team.is_url(base) and base.split("://", 1)[-1:] != [""]
                and "://" in base):  # fmt: skip
            msg = f"agent({team.mask(path)!r}): write the sweep as <store-url>/<project>/<id>"
            raise SweepConfigError(msg)
        return team.parse(base), f"{project}/{sid}"
    url = team.resolve(store)
    if url is None:
        url = _created_in_team.get(path.rstrip("/").rpartition("/")[2])
    return url, path


def _load_config(sweep: Any) -> Mapping[str, Any]:
    if callable(sweep) and not isinstance(sweep, Mapping):
        sweep = sweep()
    if isinstance(sweep, (str, os.PathLike)):
        import yaml

        try:
            with open(sweep, encoding="utf-8") as fh:
                sweep = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            msg = f"{sweep}: not valid YAML ({exc}); write macros as block list items: - ${{env}}"
            raise SweepConfigError(msg) from None
    return sweep  # type: ignore[no-any-return]


def sweep(
    sweep: Any,
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
    *,
    dir: str | None = None,  # noqa: A002 - as init()
    store: Any = None,
) -> str:
    """Store a sweep and return its id (W&B's ``wandb.sweep``).

    Parameters
    ----------
    sweep : dict, YAML path or callable returning a dict
        W&B's sweep configuration: ``method``, ``metric``, ``parameters``, ``run_cap``,
        ``early_terminate``, ``program``, ``command``, ...
    entity : str, optional
        Stored with the sweep.
    project : str, optional
        Default: the config's ``project``, ``$NBTRACKER_PROJECT`` / ``$WANDB_PROJECT``, or
        ``"uncategorized"``.
    prior_runs : list of str, optional
        Accepted for wandb compatibility; ignored.
    dir : str, optional
        Storage root (default ``$NBTRACKER_DIR`` or ``./nbruns``).
    store : str, optional
        A team store, ``postgresql://user@host/db`` (default ``$NBTRACKER_STORE``): the
        sweep's optuna study and record go to its PostgreSQL, so agents on any machine can
        join with ``nbtracker agent <store-url>/<project>/<id>``. Give the password through
        PGPASSWORD or ~/.pgpass; one in the URL is never printed or stored.

    Returns
    -------
    str
        The sweep id, for :func:`agent` (``"project/id"`` works too).

    Raises
    ------
    SweepConfigError
        The configuration is not valid; the message names the key.

    Examples
    --------
    >>> sweep_id = nbtracker.sweep({"method": "random", "parameters": {"lr": {"min": 0.001,
    ...                              "max": 0.1}}}, project="demo")        # doctest: +SKIP
    >>> nbtracker.agent(sweep_id, function=train, count=5)                  # doctest: +SKIP
    """
    from .. import _paths, team
    from ..store import Store
    from .study import SweepStudy

    config = _load_config(sweep)
    url = team.resolve(store)
    cfg_project = config.get("project") if isinstance(config, Mapping) else None
    project = str(project or cfg_project or _paths.env("PROJECT") or "uncategorized")
    st = SweepStudy.create(Store(dir), config, project, entity or _paths.env("ENTITY"), url)
    from .runner import _say

    if url is None:
        _say(f"created sweep {st.id} in project {project!r} ({st.config['method']})")
        _say(f"run agents with nbtracker.agent({st.id!r}, function=...) or "
             f"`nbtracker agent {project}/{st.id}`")  # fmt: skip
        return st.id
    _created_in_team[st.id] = url
    _say(f"created sweep {st.id} in project {project!r} ({st.config['method']}) in the team "
         f"store {url.masked}")  # fmt: skip
    _say(f"run agents on any machine with `nbtracker agent '{st.agent_path}'` or "
         f"nbtracker.agent({st.path!r}, function=..., store=...){team_password_hint(url)}")  # fmt: skip
    return st.id


def team_password_hint(url: Any) -> str:
    """A note for printed agent commands when the store URL had a password (left out)."""
    if "***" not in url.masked:
        return ""
    return " (the password is left out: give agents PGPASSWORD or a ~/.pgpass line)"


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    *,
    dir: str | None = None,  # noqa: A002 - as init()
    store: Any = None,
) -> int:
    """Run a sweep's trials (W&B's ``wandb.agent``).

    With ``function`` each trial runs in this process, no fork: safe in a notebook. The
    function calls ``init()``, which joins the trial: its ``config`` holds the trial's
    parameters. An exception fails that run and the agent goes on (it stops after 5 failed
    runs in a row); Ctrl-C (the notebook's stop button) ends the current run as failed and
    stops the agent; the sweep can be resumed by another ``agent()`` call. Without
    ``function`` the sweep's ``program`` runs as a subprocess per trial, as the CLI agent
    does. Several agents (processes) may work on one sweep at once.

    Parameters
    ----------
    sweep_id : str
        ``id``, ``project/id`` or ``entity/project/id``; for a sweep in a team store also
        ``<store-url>/<project>/<id>`` (``postgresql://user@host/db/project/id``).
    function : callable, optional
        The training function (no arguments).
    entity : str, optional
        Accepted for wandb compatibility; ignored.
    project : str, optional
        The sweep's project (needed only when the id is in several projects).
    count : int, optional
        Make at most this many runs (default: until the sweep is done).
    dir : str, optional
        Storage root (default ``$NBTRACKER_DIR`` or ``./nbruns``). With a team store this
        machine's runs are written here first and committed to the team store.
    store : str, optional
        The team store holding the sweep (default ``$NBTRACKER_STORE``, or the store of
        a team sweep this process created).

    Returns
    -------
    int
        The number of runs this agent made.
    """
    from ..store import Store
    from .runner import run_agent
    from .study import SweepStudy

    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        msg = f"agent(count={count!r}): a non-negative int"
        raise SweepConfigError(msg)
    url, sweep_id = _team_sweep(sweep_id, store)
    st = SweepStudy.open(Store(dir), sweep_id, project, url=url)
    if function is None and not st.config.get("program"):
        msg = f"sweep {st.id} has no program: pass agent(..., function=train)"
        raise SweepConfigError(msg)
    return run_agent(st, function, count)
