"""Team store: runs from several machines in one PostgreSQL catalog plus Parquet objects
(S3 or any pyarrow filesystem, or PostgreSQL itself). See docs/team-store.md.

The small interface the rest of nbtracker uses:

- :func:`resolve` turns a ``store=`` argument or ``$NBTRACKER_STORE`` into a URL (or None);
- :func:`follow` commits a run's local folder in the background while it trains;
- :func:`reader_store` gives a :class:`~nbtracker.store.Store` over the store's local
  cache, brought up to date first, for ``Api``, ``sql``, ``show`` and the CLI;
- :func:`sync` uploads existing local runs; :func:`mask` hides passwords in a URL;
- :func:`optuna_storage` is the sweeps' hook: optuna's RDB storage in the same PostgreSQL.

Nothing here is imported by ``import nbtracker``; psycopg is imported on first use.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from .url import StoreURL, is_url, mask, parse

__all__ = [
    "StoreURL", "follow", "is_url", "mask", "optuna_storage", "parse", "reader_store",
    "resolve", "sync",
]  # fmt: skip

ENV = "NBTRACKER_STORE"


def resolve(store: Any = None) -> StoreURL | None:
    """The team store named by ``store`` (a URL string) or, when ``store`` is None, by
    ``$NBTRACKER_STORE``; None for a local store. Raises UsageError for a bad URL."""
    if store is None:
        store = os.environ.get(ENV) or None
        if store is None:
            return None
    if isinstance(store, StoreURL):
        return store
    if isinstance(store, str):
        return parse(store)
    return None


def follow(
    store: Any, rdir: Path, url: StoreURL, *, worker: tuple[str, str, str] | None = None
) -> None:
    """Commit the run in ``rdir`` (of the local ``store``) to the team store from now on,
    in the background. ``worker``: ``(project, run id, label)`` of a shared run's worker
    rank (its machine may have no ``run.json``: see :func:`~.committer.commit_run`).
    Never raises: trouble is one StorageWarning."""
    try:
        from .committer import committer
        from .remote import _psycopg

        # imported here, in init()'s thread: an import in the committer thread would hold
        # the GIL for ~0.1 s while the training loop's first steps run
        _psycopg()
        committer(url).follow(Path(store.root), Path(rdir), worker=worker)
    except Exception as exc:  # noqa: BLE001 - never stop training over the team store
        from ..errors import StorageWarning

        warnings.warn(
            f"nbtracker cannot commit to the team store {url.masked} ({exc}); the run is "
            "logged locally: `nbtracker sync --to <store>` uploads it later.",
            StorageWarning,
            stacklevel=3,
        )


def wait(timeout: float = 30.0) -> bool:
    """Wait until this process's runs are committed (True) or ``timeout`` passes."""
    from .committer import _committers

    return all(c.wait_idle(timeout) for c in list(_committers.values()))


def reader_store(url: StoreURL, *, refresh: bool = True, live: bool = False) -> Any:
    """A local Store over this team store's cache folder, brought up to date first.
    When the store cannot be reached, the cache is read as it is, with one warning.
    ``live``: keep pulling in the background while runs are running (panels)."""
    from .. import _paths
    from ..store import Store
    from .mirror import cache_root, keep_fresh, pull
    from .remote import StoreUnavailable

    root = cache_root(url)
    if refresh:
        try:
            pull(url, root)
        except StoreUnavailable as exc:
            from ..errors import StorageWarning

            warnings.warn(
                f"nbtracker cannot reach the team store ({exc}); showing what was read "
                f"from it before (cached in {root}).",
                StorageWarning,
                stacklevel=3,
            )
    if live:
        keep_fresh(url, root, float(_paths.env("STORE_INTERVAL") or 2.0))
    store = Store(root)
    store.team_url = url  # readers that follow runs refresh through it
    return store


def optuna_storage(store: Any = None, **kwargs: Any) -> Any:
    """optuna's RDB storage in the team store's PostgreSQL (schema ``nbtracker_optuna``),
    for sweeps whose agents run on several machines: ``store`` is a URL or a StoreURL
    (default ``$NBTRACKER_STORE``). Create the study before the agents start. Needs optuna
    and SQLAlchemy. Raises UsageError when no team store is named."""
    from ..errors import UsageError
    from .sweeps_storage import rdb_storage

    url = resolve(store)
    if url is None:
        msg = "optuna_storage(): name a team store (postgresql://...) or set NBTRACKER_STORE"
        raise UsageError(msg)
    return rdb_storage(url, **kwargs)


def sync(url: StoreURL, root: Any = None, runs: list[str] | None = None) -> Any:
    """Upload local runs (all, or ``project`` / ``project/run_id`` names) to the store;
    idempotent. Returns a SyncReport. Raises StoreUnavailable."""
    from .. import _paths
    from ..store import Store
    from .committer import sync as _sync

    local = Store(root)
    if runs:
        rdirs = []
        for name in runs:
            project, _, run_id = name.partition("/")
            if run_id:
                rdirs.append(_paths.run_dir(local.root, project, run_id))
            else:
                rdirs.extend(d for d, _ in local.iter_run_dirs(project))
    else:
        rdirs = [d for d, _ in local.iter_run_dirs()]
    return _sync(url, local.root, sorted(set(rdirs)))
