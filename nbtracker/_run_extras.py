"""The run methods of issue 13 that live in their own modules: ``save``, ``alert``,
artifacts (``log_artifact``, ``use_artifact``, ``log_model``, ``use_model``), ``watch`` /
``unwatch``; and the module-level functions that call them on the current run.

Each imports its module on first use, so ``import nbtracker`` stays light (no torch).
"""

from __future__ import annotations

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
