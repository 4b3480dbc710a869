"""The hook for sweeps across machines: optuna's RDB storage in the team store's
PostgreSQL database, in its own schema ``nbtracker_optuna`` (next to ``nbtracker``).

Several agents that open the storage at once would race to create optuna's tables (one of
three agents crashed that way in a measurement): the first open takes a PostgreSQL
advisory lock, so they create them one after the other. Create the study once, before the
agents start (``create_study``), then every agent ``load_study`` on the same storage.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .remote import _psycopg
from .url import StoreURL

SCHEMA = "nbtracker_optuna"
_LOCK = 0x6E62746F70  # advisory lock id for creating optuna's tables


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
