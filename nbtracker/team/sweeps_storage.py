"""The hook for sweeps across machines: optuna's RDB storage in the team store's
PostgreSQL database, in its own schema ``nbtracker_optuna`` (next to ``nbtracker``).

Several agents that open the storage at once would race to create optuna's tables (one of
three agents crashed that way in a measurement): the first open takes a PostgreSQL
advisory lock, so they create them one after the other. Create the study once, before the
agents start (``create_study``), then every agent ``load_study`` on the same storage.

A sweep created with a team store (``nbtracker.sweep(config, store=url)``) uses this: its
study is named ``<project>/<sweep_id>``, its record is a row of ``nbtracker.sweeps``, and
handing out its next trial is serialised by a PostgreSQL advisory lock per sweep
(:class:`SweepLock`), the team's counterpart of the local sweep's lock file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .remote import _psycopg
from .url import StoreURL

SCHEMA = "nbtracker_optuna"
_LOCK = 0x6E62746F70  # advisory lock id for creating optuna's tables
_SWEEP_LOCK = 0x6E6273  # advisory lock class of sweeps (the object: a hash of the study name)
_storages: dict[str, Any] = {}  # one RDBStorage (engine, connection pool) per store and process


def sqlalchemy_url(url: StoreURL) -> str:
    """The store's PostgreSQL as a SQLAlchemy URL (driver psycopg 3); holds the password
    when the store URL has one: never print it (use ``url.masked``)."""
    parts = urlsplit(url.conninfo)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, parts.query, ""))


def rdb_storage(url: StoreURL, **kwargs: Any) -> Any:
    """An ``optuna.storages.RDBStorage`` in the team store (extra keyword arguments go to
    RDBStorage). Safe to call from several processes at once."""
    from optuna.storages import RDBStorage

    psycopg = _psycopg()
    engine_kwargs = dict(kwargs.pop("engine_kwargs", None) or {})
    connect_args = dict(engine_kwargs.pop("connect_args", None) or {})
    connect_args.setdefault("options", f"-csearch_path={SCHEMA}")
    engine_kwargs["connect_args"] = connect_args
    engine_kwargs.setdefault("pool_pre_ping", True)  # survive a PostgreSQL restart
    with psycopg.connect(url.conninfo, autocommit=False) as con:
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        with con.transaction():  # the lock is held while optuna makes its tables
            con.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            return RDBStorage(sqlalchemy_url(url), engine_kwargs=engine_kwargs, **kwargs)


def shared_storage(url: StoreURL) -> Any:
    """This process's RDBStorage for the store (made once: each one has its own pool)."""
    key = url.masked + url.conninfo
    if key not in _storages:
        _storages[key] = rdb_storage(url)
    return _storages[key]


class SweepLock:
    """A PostgreSQL advisory lock per sweep, held while an agent hands out a trial (so that
    agents on several machines never take one grid point twice or pass ``run_cap``). One
    connection, opened on first use; a dropped connection frees the lock by itself."""

    def __init__(self, url: StoreURL) -> None:
        from .remote import Remote

        self._remote = Remote(url)

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        from .remote import StoreUnavailable

        psycopg = _psycopg()
        con = self._remote.connect()  # raises StoreUnavailable (masked)
        try:
            tx = con.transaction()
            tx.__enter__()
            con.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SWEEP_LOCK, name))
        except psycopg.Error as exc:
            self._remote.close()
            raise StoreUnavailable(self._remote._why(exc)) from None
        try:
            yield
        except BaseException as exc:
            tx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        tx.__exit__(None, None, None)

    def close(self) -> None:
        self._remote.close()
