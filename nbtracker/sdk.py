"""``init()`` and the module-level functions that follow the current run."""

from __future__ import annotations

import getpass
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from . import _paths, _state, _util, segments
from ._util import HOSTNAME, clean_text, new_id, private_rng, process_start_ticks
from .config import Config, _as_mapping, defaults_from_environment
from .errors import StorageError, UsageError
from .run import Run, new_record
from .store import Store

MODES = ("online", "offline", "disabled")
RESUME = ("allow", "must", "never", "auto")
REINIT = ("default", "return_previous", "finish_previous", "create_new")

_ADJ = (
    "amber autumn bold brisk calm clever cosmic crisp dapper dark dazzling eager fancy "
    "fiery fluent frosty gentle glad golden graceful hardy hearty honest icy jolly keen "
    "lively lucky lunar misty noble polar proud quiet rapid royal rustic silent silver "
    "smart snowy solar stellar stoic summer sunny swift twilight vivid warm wild witty"
).split()
_NOUN = (
    "aurora bird breeze brook butterfly cloud comet dawn dew dream dust feather field "
    "fire firefly flower fog forest frog galaxy glade grass haze hill lake leaf meadow "
    "moon morning mountain night ocean paper pine planet pond rain river sea shadow sky "
    "snow sound star sun surf thunder tree violet water wave wind wood"
).split()
_rng = private_rng  # names never draw from the user's seeded `random`
_ID_OK = re.compile(r"^[^\x00-\x1f/\\]{1,128}$")


def _pick(value: Any, env_name: str, default: Any = None) -> Any:
    if value is not None:
        return value
    return _paths.env(env_name, default)


def init(
    project: str | None = None,
    entity: str | None = None,
    config: Any = None,
    name: str | None = None,
    notes: str | None = None,
    tags: Sequence[str] | None = None,
    group: str | None = None,
    job_type: str | None = None,
    id: str | None = None,  # noqa: A002 - wandb's name
    resume: bool | str | None = None,
    dir: str | None = None,  # noqa: A002 - wandb's name
    mode: str | None = None,
    reinit: bool | str | None = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
    allow_val_change: bool | None = None,
    store: Store | str | None = None,
    **ignored: Any,
) -> Run:
    """Start a run and make it the current one.

    Parameters
    ----------
    project : str, optional
        Project name (any text). Default ``$NBTRACKER_PROJECT`` / ``$WANDB_PROJECT`` or
        ``"uncategorized"``. Runs are appended to an existing project.
    entity : str, optional
        Stored with the run; defaults to the local user name.
    config : dict, argparse.Namespace, absl flags or YAML path, optional
        Hyperparameters; merged over ``config-defaults.yaml`` and ``--configs`` files.
    name, notes, tags, group, job_type : optional
        Run metadata. A readable name (``"swift-river-3"``) is made when none is given.
    id : str, optional
        Run id, unique within the project (default: 8 random characters).
    resume : {"allow", "must", "never"} or bool, optional
        Continue an existing run with this ``id``: its step counter, history and summary.
    dir : str, optional
        Storage root folder (default ``$NBTRACKER_DIR`` or ``./nbruns``).
    mode : {"online", "offline", "disabled", "shared"}, optional
        Both online and offline store locally (there is no server). ``disabled`` makes
        every call a no-op (``mode="online" if rank == 0 else "disabled"``: only rank 0
        logs). ``shared``: several processes (DDP ranks) log into one run, as
        ``settings=Settings(mode="shared")``. Default ``$NBTRACKER_MODE`` / ``$WANDB_MODE``.
    reinit : bool or {"finish_previous", "return_previous", "create_new"}, optional
        What a second ``init()`` does while a run is active. Default: finish the
        previous run in a notebook, return it in a script.
    config_exclude_keys, config_include_keys : list of str, optional
        Filter the keys taken from ``config``.
    allow_val_change : bool, optional
        Let ``config`` override values from config files without a warning.
    store : Store or str, optional
        Use this store instead of the default root. A ``postgresql://...`` URL (or
        ``$NBTRACKER_STORE``) is a team store: the run is written to the local root as
        always and committed to the team store in the background (``mode="offline"``
        keeps it local; ``nbtracker sync --to`` uploads it later). See docs/team-store.md.
    settings : Settings or dict, optional (keyword)
        W&B's capture settings: ``x_disable_stats``, ``x_stats_sampling_interval``
        (seconds, default 15), ``x_stats_disk_paths``, ``console`` (``"off"`` stops the
        copy into ``output.log``), ``x_disable_meta``, ``disable_git``,
        ``x_save_requirements``, ``save_code``, ``disable_code``. Multi-rank (DDP) runs:
        ``mode="shared"`` with ``x_primary`` (default: ``RANK`` 0), ``x_label`` (default
        ``rank_<RANK>``), ``x_update_finish_state`` (accepted; only the primary ends the
        run); see the README's "Multi-rank (DDP) runs". Others are ignored.
    save_code : bool, optional (keyword)
        Store the script (or the notebook and its session history) with the run.
    **ignored
        Other wandb arguments (``anonymous``, ...) are accepted for compatibility and
        ignored.

    Returns
    -------
    Run

    Examples
    --------
    >>> import nbtracker as wandb
    >>> run = wandb.init(project="cats", config={"lr": 1e-3}, mode="disabled")
    >>> wandb.log({"loss": 0.5})
    >>> wandb.finish()
    """
    mode = (_pick(mode, "MODE", "online") or "online").lower()
    role = _shared_role(mode, ignored.get("settings")) if mode != "disabled" else None
    if mode == "shared":  # W&B's multi-rank mode: stored locally, as online
        mode = "online"
    if mode in ("dryrun", "run"):
        mode = "offline" if mode == "dryrun" else "online"
    if mode not in MODES:
        msg = f"init(mode={mode!r}): use one of {', '.join(MODES)}"
        raise UsageError(msg)
    reinit = _reinit_choice(reinit)
    prev = _state.current
    if prev is not None and not prev._finished:
        if reinit == "return_previous":
            return prev
        if reinit == "finish_previous":
            prev.finish()
    # W&B's environment variables (NBTRACKER_* first); arguments win over them
    notes, group = _pick(notes, "NOTES"), _pick(group, "RUN_GROUP")
    job_type = _pick(job_type, "JOB_TYPE")
    if tags is None:
        tags = [t.strip() for t in (_paths.env("TAGS") or "").split(",") if t.strip()]
    trial = _sweep_trial()  # a sweep agent's run: its project, id and locked parameters
    trial_store = None
    if trial is not None:
        project, id = trial.before_init(project, id)
        dir = dir or trial.root  # noqa: A001
        trial_store = trial.store_url  # a team sweep's runs go to its team store
    project = clean_text(str(_pick(project, "PROJECT", "uncategorized")), "project")
    notes, group, job_type = (
        _text(notes, "notes"),
        _text(group, "group"),
        _text(job_type, "job_type"),
    )
    entity = str(_pick(entity, "ENTITY") or _user())
    if isinstance(tags, str):
        tags = [tags]
    tags = [clean_text(str(t), "a tag") for t in (tags or [])]
    if role is not None and _pick(id, "RUN_ID") is None:  # torchrun's job id, else a warning
        from ._shared import default_id

        id = default_id(role)  # noqa: A001
    run_id = clean_text(str(_pick(id, "RUN_ID") or new_id()), "id")
    if not _ID_OK.match(run_id):
        msg = f"init(id={run_id!r}): ids may not contain '/', '\\' or control characters"
        raise UsageError(msg)
    resume = _resume_choice(_pick(resume, "RESUME"))

    cfg = _build_config(config, config_exclude_keys, config_include_keys, bool(allow_val_change))
    if trial is not None:
        trial.apply_config(cfg)
    if mode == "disabled":
        rec = new_record(run_id=run_id, project=project, entity=entity, name=name or "disabled",
                         notes=notes, tags=tags, group=group, job_type=job_type, mode=mode)  # fmt: skip
        run = Run(None, rec, cfg, disabled=True)
        _make_current(run, reinit, prev)
        return run

    team_url = None
    if store is None or isinstance(store, str):
        from . import team

        if store is None:
            store = trial_store
        team_url = team.resolve(store) if mode != "offline" else None
        store = None
    from . import capture

    capture_settings = capture.resolve(ignored.get("settings"), ignored.get("save_code"))
    store = store or Store(dir)
    rdir = store.run_dir(project, run_id)
    if role is not None and not role.primary:  # a worker rank joins the primary's run
        run = _join_shared(store, rdir, role, cfg, run_id=run_id, project=project,
                           entity=entity, notes=notes, tags=tags, group=group,
                           job_type=job_type)  # fmt: skip
        run._init_settings = ignored.get("settings")  # alert webhook (alerts.py)
        _make_current(run, reinit, prev)
        if team_url is not None:  # a rank on another machine: its own files go up too
            team.follow(store, run.dir, team_url, worker=(project, run_id, role.label))
        capture.start(run, capture_settings)
        return run
    if role is not None and resume is None:  # a relaunched shared job goes on (torchrun)
        resume = "allow"
    fresh_dir = not rdir.exists()
    try:
        release = store.lock_run(rdir)
    except OSError as exc:
        msg = (
            f"nbtracker could not create the run folder {rdir} ({exc}). Free disk space or "
            "choose another folder with init(dir=...) or NBTRACKER_DIR."
        )
        raise StorageError(msg) from exc
    try:
        run = _open_run(store, rdir, project, run_id, entity, resume, cfg, name, notes, tags,
                        group, job_type, mode)  # fmt: skip
        if trial is not None:
            trial.attach(run)
        if role is not None:  # the primary of a shared (multi-rank) run
            run._role = role
            run._rec.update(mode="shared", shared={"label": role.label})
        run._begin(release)
    except BaseException as exc:
        release()
        if fresh_dir:
            store.discard_run_dir(rdir)
        if isinstance(exc, OSError):
            msg = (
                f"nbtracker could not write the run record in {rdir} ({exc}). Free disk "
                "space or choose another folder with init(dir=...) or NBTRACKER_DIR."
            )
            raise StorageError(msg) from exc
        raise
    run._init_settings = ignored.get("settings")  # alert webhook (alerts.py)
    _make_current(run, reinit, prev)
    if team_url is not None:  # commits run.dir to the team store in the background
        team.follow(store, run.dir, team_url)
    capture.start(run, capture_settings)
    if _state.in_notebook():  # the live panel, even without %load_ext nbtracker
        from . import _cells
        from .display import install_notebook_hook

        install_notebook_hook()
        _cells.install()
    for hook in list(_state.init_hooks):
        try:
            hook(run)
        except Exception as exc:  # noqa: BLE001 - a display problem must not stop training
            warnings.warn(f"nbtracker could not show the run panel: {exc!r}", stacklevel=2)
    return run


def _open_run(
    store: Store, rdir: Any, project: str, run_id: str, entity: str, resume: str | None,
    cfg: Config, name: Any, notes: Any, tags: list[str], group: Any, job_type: Any, mode: str,
) -> Run:  # fmt: skip
    """The new or resumed Run for ``rdir`` (whose writer lock the caller holds)."""
    # a new id needs no wait for this process's finishing runs (a sweep's back-to-back runs)
    existing = store.read_record(rdir) if (rdir / "run.json").exists() else None
    if existing is not None and existing.get("project") == project:
        if resume in (None, "never"):
            msg = (
                f"run {project}/{run_id} already exists in {store.root}; pass "
                "resume='allow' to continue it, or leave id= out to start a new run."
            )
            raise UsageError(msg)
        return _resume(store, existing, cfg, name, notes, tags, group, job_type)
    if resume == "must":
        msg = f"resume='must' but there is no run {project}/{run_id} in {store.root}"
        raise UsageError(msg)
    name = _readable_name(store, project, name or _paths.env("NAME"))
    rec = new_record(run_id=run_id, project=project, entity=entity, name=clean_text(str(name), "name"),
                     notes=notes, tags=tags, group=group, job_type=job_type, mode=mode)  # fmt: skip
    return Run(store, rec, cfg)


def _shared_role(mode: str, settings: Any) -> Any:
    """The process's role in a shared (multi-rank) run, or None (``_shared`` loads only
    for shared runs)."""
    if mode != "shared" and settings is None:
        return None
    from ._shared import role

    return role(mode, settings)


def _join_shared(store: Store, rdir: Any, role: Any, cfg: Config, **meta: Any) -> Run:
    """A worker of a shared run (``x_primary=False``): no writer lock and no ``run.json``
    (those are the primary's); its rows, system metrics and console go to files of its own
    in the same run folder, and its state to ``ranks/<label>.json``."""
    try:
        rdir.mkdir(parents=True, exist_ok=True)
        rec = new_record(name=role.label, mode="shared", **meta)
        rec["shared"] = {"label": role.label}
        from ._shared import earlier_record

        before = earlier_record(rdir, role)  # a relaunched job: count on
        start_step = 0
        if before is not None:
            start_step = int(before.get("last_step") or -1) + 1
            rec["resumed"] = int(before.get("resumed") or 0) + 1
        run = Run(store, rec, cfg, role=role, start_step=start_step,
                  key_types=(before or {}).get("history_keys"))  # fmt: skip
        run._begin(None)
    except OSError as exc:
        msg = (
            f"nbtracker could not write to the run folder {rdir} ({exc}). Free disk space or "
            "choose another folder with init(dir=...) or NBTRACKER_DIR."
        )
        raise StorageError(msg) from exc
    return run


def _sweep_trial() -> Any:
    """The sweep trial this ``init()`` joins (an agent set one), or None; cheap otherwise."""
    mod = sys.modules.get("nbtracker.sweeps.join")
    if mod is None and "NBTRACKER_SWEEP_PARAMS" not in os.environ:
        return None
    from .sweeps.join import context_for_init

    return context_for_init()


def _text(value: Any, what: str) -> Any:
    """A name, tag or note from the user, as storable text (None stays None)."""
    return None if value is None else clean_text(str(value), what)


_USER: list[str] = []  # the login name, looked up once per process (~1 ms a time)


def _user() -> str:
    if not _USER:
        try:
            _USER.append(getpass.getuser())
        except Exception:  # noqa: BLE001
            _USER.append("local")
    return _USER[0]


def _reinit_choice(reinit: Any) -> str:
    if reinit is True:
        return "finish_previous"
    if reinit in (None, False, "default"):
        return "finish_previous" if _state.in_notebook() else "return_previous"
    if reinit not in REINIT:
        msg = f"init(reinit={reinit!r}): use one of {', '.join(REINIT)}"
        raise UsageError(msg)
    return str(reinit)


def _resume_choice(resume: Any) -> str | None:
    if resume in (None, False, "false", "False"):
        return None
    if resume in (True, "true", "True", "auto"):
        return "allow"
    if resume not in RESUME:
        msg = f"init(resume={resume!r}): use 'allow', 'must' or 'never'"
        raise UsageError(msg)
    return str(resume)


def _build_config(config: Any, exclude: Any, include: Any, allow: bool) -> Config:
    cfg = Config()
    defaults = defaults_from_environment()
    if defaults:
        cfg.update(defaults, allow_val_change=True)
    given = _as_mapping(config)
    if include:
        given = {k: v for k, v in given.items() if k in set(include)}
    if exclude:
        given = {k: v for k, v in given.items() if k not in set(exclude)}
    cfg.update(given, allow_val_change=True)
    pre = _state.preinit_config
    if pre is not None and len(pre):
        cfg.update(pre.as_dict(), allow_val_change=allow or True)
        _state.preinit_config = None
    return cfg


def _readable_name(store: Store, project: str, given: Any = None) -> str:
    """``given``, or a name such as ``swift-river-7``: 7 is the run's number in the project.

    Every new run counts (named ones too), in ``runs/<project>/.counter`` (one byte per
    run, see :func:`_util.count_up`): O(1), where counting the run folders made ``init()``
    slower as the project grew. The words come from the OS's randomness, never from the
    user's seeded ``random`` stream.
    """
    counter = _paths.run_counter(store.root, project)
    try:
        counter.parent.mkdir(parents=True, exist_ok=True)
        n = _util.count_up(counter, lambda: sum(1 for _ in store.iter_run_dirs(project)))
    except OSError:  # a read-only or odd file system: count the folders as before
        n = sum(1 for _ in store.iter_run_dirs(project)) + 1
    if given:
        return str(given)
    return f"{_rng.choice(_ADJ)}-{_rng.choice(_NOUN)}-{n}"


def _make_current(run: Run, reinit: str, prev: Run | None) -> None:
    """Make ``run`` the current run (``nbtracker.run``, ``nbtracker.log``), except that
    ``reinit="create_new"`` leaves an active current run in place, as W&B leaves
    ``wandb.run`` (a create_new run becomes current only when there is none)."""
    _state.set_current(run)
    if reinit == "create_new" and prev is not None and not prev._finished:
        _state.current = prev
        _state.bind_log(prev)


def _resume(
    store: Store, rec: dict[str, Any], cfg: Config, name: Any, notes: Any, tags: list[str],
    group: Any, job_type: Any,
) -> Run:  # fmt: skip
    import time

    rdir = store.run_dir(rec["project"], rec["id"])
    files, _, next_seq = segments.list_files(store.history_dir(rdir))
    last_step = -1
    if files:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for f in files:
            col = pq.read_table(f, columns=["step"]).column("step")
            if len(col):
                last_step = max(last_step, pc.max(col).as_py())
    stored = Config(rec.get("config") or {})
    stored.update(cfg.as_dict(), allow_val_change=True)
    rec.pop("dir", None)
    rec.update(state="running", pid=os.getpid(), pid_start=process_start_ticks(),
               host=HOSTNAME, finished_at=None, exit_code=None,
               resumed=int(rec.get("resumed") or 0) + 1, updated_at=time.time())  # fmt: skip
    for key, val in (("name", name), ("notes", notes), ("group", group), ("job_type", job_type)):
        if val is not None:
            rec[key] = val
    if tags:
        rec["tags"] = list(dict.fromkeys([*(rec.get("tags") or []), *tags]))
    run = Run(store, rec, stored, start_step=last_step + 1, first_seq=next_seq,
              key_types=rec.get("history_keys") or {})  # fmt: skip
    summary = {k: v for k, v in (rec.get("summary") or {}).items() if not k.startswith("_")}
    run.summary.restore(summary)
    for m in rec.get("metrics") or []:
        run.define_metric(m["name"], step_metric=m.get("step_metric"),
                          summary=m.get("summary") or None, goal=m.get("goal"),
                          hidden=m.get("hidden"))  # fmt: skip
    return run


def current_run(action: str) -> Run:
    run = _state.current
    if run is None:
        msg = f"Call nbtracker.init() before nbtracker.{action}()."
        raise UsageError(msg)
    return run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None,
        sync: bool | None = None) -> None:  # fmt: skip
    """Log a row to the current run; see :meth:`Run.log`."""
    run = _state.current
    if run is None:
        current_run("log")  # raises, saying what to do
    if data.__class__ is not dict and not isinstance(data, Mapping):
        msg = f"log() takes a dict of {{name: value}}, not {type(data).__name__}: log({{'loss': 0.1}})"
        raise TypeError(msg)
    run.log(data, step, commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the current run (no-op when there is none); see :meth:`Run.finish`."""
    run = _state.current
    if run is not None:
        run.finish(exit_code=exit_code)


def define_metric(name: str, step_metric: str | None = None, step_sync: bool | None = None,
                  hidden: bool | None = None, summary: str | None = None,
                  goal: str | None = None, overwrite: bool | None = None) -> Any:  # fmt: skip
    """Define how a metric is summarised on the current run; see :meth:`Run.define_metric`."""
    return current_run("define_metric").define_metric(
        name, step_metric=step_metric, hidden=hidden, summary=summary, goal=goal
    )
