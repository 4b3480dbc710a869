"""The run methods of issue 13 that live in their own modules: ``save``, ``alert``,
artifacts (``log_artifact``, ``use_artifact``, ``log_model``, ``use_model``), ``watch`` /
``unwatch``; and the module-level functions that call them on the current run.

Each imports its module on first use, so ``import nbtracker`` stays light (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RunExtras:
    """Mixed into :class:`nbtracker.Run`."""

    # -- files -------------------------------------------------------------------------------
    def save(
        self,
        glob_str: Any = None,
        base_path: Any = None,
        policy: str = "live",
        glob: bool = True,
    ) -> list[str]:
        """Copy files into the run's files (``Api().run(path).files()`` lists them).

        Parameters
        ----------
        glob_str : str or path
            A file, or a glob (``"ckpt/*.pt"``), relative to the working directory or
            absolute.
        base_path : str or path, optional
            The folder the stored names are relative to (default: the working directory;
            for an absolute ``glob_str``, its parent's parent, as W&B).
        policy : {"live", "now", "end"}
            ``now`` copies once; ``end`` at ``finish()``; ``live`` now, again whenever the
            file changes (checked every 2 s off the training thread) and at ``finish()``;
            live globs also pick up files that appear later.
        glob : bool
            False takes ``glob_str`` literally (names with ``[``, ``*``).

        Returns
        -------
        list of str
            The stored copies' paths.

        Raises
        ------
        ValueError
            A bad policy, or a name that would leave the run's folder (``..``, a path
            outside ``base_path``, a symbolic link in the way).
        """
        from .files import save

        return save(self, glob_str, base_path, policy, glob)  # type: ignore[arg-type]

    # -- alerts ------------------------------------------------------------------------------
    def alert(
        self,
        title: str,
        text: str,
        level: Any = None,
        wait_duration: Any = None,
    ) -> None:
        """Raise an alert: stored with the run, shown in its panel, and POSTed to the
        webhook in ``NBTRACKER_ALERT_WEBHOOK`` (if set; from a background thread).

        Parameters
        ----------
        title, text : str
        level : AlertLevel or {"INFO", "WARN", "ERROR"}, optional
            Default ``INFO``.
        wait_duration : int, float or timedelta, optional
            Another alert with the same title within this many seconds is dropped
            (default 60 s, as W&B).
        """
        from .alerts import alert

        alert(self, title, text, level, wait_duration)

    # -- artifacts ---------------------------------------------------------------------------
    def log_artifact(
        self,
        artifact_or_path: Any,
        name: str | None = None,
        type: str | None = None,  # noqa: A002 - W&B's name
        aliases: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Any:
        """Store an :class:`Artifact` (or a file or folder path) as an output of this run.

        Identical content makes no new version: the existing version is returned (with the
        new ``aliases`` added). Returns the logged Artifact (``.version`` is set).
        """
        from .artifacts import log_artifact

        return log_artifact(self, artifact_or_path, name, type, aliases, tags)

    def use_artifact(
        self,
        artifact_or_name: Any,
        type: str | None = None,  # noqa: A002 - W&B's name
        aliases: Sequence[str] | None = None,
        use_as: str | None = None,
    ) -> Any:
        """Record that this run uses an artifact version and return it.

        ``artifact_or_name``: ``"name"`` (latest), ``"name:v3"``, ``"name:<alias>"``,
        ``"project/name:v1"``, or an :class:`Artifact` (logged first if it is new).

        Raises
        ------
        ArtifactNotFound
        """
        from .artifacts import use_artifact

        return use_artifact(self, artifact_or_name, type, aliases)

    def log_model(
        self, path: Any, name: str | None = None, aliases: Sequence[str] | None = None
    ) -> Any:
        """Log a model file or folder as an artifact of type ``model``."""
        from .artifacts import log_artifact

        return log_artifact(self, path, name, "model", aliases, None)

    def use_model(self, name: str) -> str:
        """Use a model artifact and return the path it was downloaded to."""
        from .artifacts import use_artifact

        return str(use_artifact(self, name, None, None).download())

    # -- watch -------------------------------------------------------------------------------
    def watch(
        self,
        models: Any,
        criterion: Any = None,
        log: str | None = "gradients",
        log_freq: int = 1000,
        idx: int | None = None,
        log_graph: bool = False,
    ) -> None:
        """Log histograms of a torch model's gradients and/or parameters every
        ``log_freq`` training steps (``gradients/<name>``, ``parameters/<name>``).

        Parameters
        ----------
        models : torch.nn.Module or list of them
        criterion
            Accepted for W&B compatibility; ignored.
        log : {"gradients", "parameters", "all", None}
        log_freq : int
            Log every this many backward passes (gradients) / forward passes (parameters).
        idx : int, optional
            A prefix index when several models are watched (as W&B: ``graph_<idx>``).
        log_graph : bool
            Store the module tree (``repr``) in the run's config under ``_wandb_graph``.
        """
        from .torch_watch import watch

        watch(self, models, log=log, log_freq=log_freq, idx=idx, log_graph=log_graph)

    def unwatch(self, models: Any = None) -> None:
        """Remove the hooks ``watch()`` added (for ``models``, or all)."""
        from .torch_watch import unwatch

        unwatch(self, models)


def _current(action: str) -> Any:
    from .sdk import current_run

    return current_run(action)


def save(glob_str: Any = None, base_path: Any = None, policy: str = "live",
         glob: bool = True) -> list[str]:  # fmt: skip
    """Copy files into the current run; see :meth:`Run.save`."""
    return _current("save").save(glob_str, base_path, policy, glob)  # type: ignore[no-any-return]


def alert(title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
    """Raise an alert on the current run; see :meth:`Run.alert`."""
    _current("alert").alert(title, text, level, wait_duration)


def log_artifact(artifact_or_path: Any, name: str | None = None, type: str | None = None,  # noqa: A002
                 aliases: Sequence[str] | None = None, tags: Sequence[str] | None = None) -> Any:  # fmt: skip
    """Log an artifact from the current run; see :meth:`Run.log_artifact`."""
    return _current("log_artifact").log_artifact(artifact_or_path, name, type, aliases, tags)


def use_artifact(artifact_or_name: Any, type: str | None = None,  # noqa: A002
                 aliases: Sequence[str] | None = None, use_as: str | None = None) -> Any:  # fmt: skip
    """Use an artifact in the current run; see :meth:`Run.use_artifact`."""
    return _current("use_artifact").use_artifact(artifact_or_name, type, aliases)


def log_model(path: Any, name: str | None = None, aliases: Sequence[str] | None = None) -> Any:
    """Log a model artifact from the current run; see :meth:`Run.log_model`."""
    return _current("log_model").log_model(path, name, aliases)


def use_model(name: str) -> str:
    """Use a model artifact in the current run; see :meth:`Run.use_model`."""
    return _current("use_model").use_model(name)  # type: ignore[no-any-return]


def watch(models: Any, criterion: Any = None, log: str | None = "gradients",
          log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:  # fmt: skip
    """Watch a torch model on the current run; see :meth:`Run.watch`."""
    _current("watch").watch(models, criterion, log, log_freq, idx, log_graph)


def unwatch(models: Any = None) -> None:
    """Remove ``watch()`` hooks from the current run's models (no-op without a run)."""
    from . import _state

    run = _state.current
    if run is not None:
        run.unwatch(models)


def restore(name: str, run_path: str | None = None, replace: bool = False,
            root: str | None = None) -> Any:  # fmt: skip
    """Copy a file saved to a run (``run_path``, default the current run) to ``root``
    (default: the current run's files folder, else ``.``) and return it opened, as W&B.

    Returns None when the run has no such file.
    """
    from . import _state
    from .api import Api

    run = _state.current
    if run_path is None:
        if run is None:
            from .errors import UsageError

            msg = "restore() needs run_path='project/run_id' or a current run (init())"
            raise UsageError(msg)
        api_run = Api(store=run._store).run(f"{run.project}/{run.id}")
    else:
        api_run = Api(store=run._store if run is not None else None).run(run_path)
    found = api_run.files([name])
    if not found:
        return None
    if root is None:
        root = str(run._store.files_dir(run.dir)) if run is not None and run._store else "."
    return found[0].download(root, replace=True)
