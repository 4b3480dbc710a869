"""Team store URLs: ``postgresql://user:password@host:port/db?data=s3://bucket/prefix``.

The PostgreSQL part goes to libpq as it is (its own query parameters too, ``sslmode=...``);
``data=`` says where the Parquet and media objects go: ``s3://bucket/prefix`` (any pyarrow
filesystem URI: ``gs://``, ``file:///shared/folder``, an absolute path), or nothing: the
objects are kept in PostgreSQL itself. Passwords never leave this module unmasked except to
the driver: :attr:`StoreURL.masked` is what logs, warnings and records may show.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import UsageError

SCHEMES = ("postgresql", "postgres")


def is_url(value: object) -> bool:
    """True for a string that names a team store (``postgresql://...``)."""
    return isinstance(value, str) and value.split(":", 1)[0].lower() in SCHEMES


_SECRET_KEYS = ("password", "secret", "secret_key", "session_token", "token")
MASK = "***"


def _mask_netloc(netloc: str, drop: bool = False) -> str:
    if "@" not in netloc:
        return netloc
    cred, host = netloc.rsplit("@", 1)
    if ":" in cred:
        cred = cred.split(":", 1)[0] + ("" if drop else ":" + MASK)
    return f"{cred}@{host}"


def mask(url: str, *, drop: bool = False) -> str:
    """``url`` with every password replaced by ``***`` (also inside ``data=``, and a
    ``password=`` query parameter); ``drop=True`` leaves them out instead (a URL that
    still works where the password comes from PGPASSWORD or ~/.pgpass). Never raises:
    text that is not a URL comes back as ``<store URL>`` when it could hold a secret."""
    try:
        parts = urlsplit(url)
        query = []
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if k.lower() in _SECRET_KEYS:
                if drop:
                    continue
                v = MASK
            elif "://" in v:
                v = mask(v, drop=drop)
            query.append((k, v))
        return urlunsplit(
            (parts.scheme, _mask_netloc(parts.netloc, drop), parts.path,
             urlencode(query, safe="/:*"), parts.fragment)
        )  # fmt: skip
    except ValueError:
        return "<store URL>"


def mask_arg(arg: str) -> str:
    """A command-line argument with the password of any URL in it masked
    (``--store=postgresql://me:pw@h/db`` -> ``--store=postgresql://me:***@h/db``)."""
    if "://" not in arg:
        return arg
    head = arg.split("://", 1)[0]
    if "=" in head:
        name, _, value = arg.partition("=")
        return f"{name}={mask(value)}"
    return mask(arg)


@dataclass(frozen=True)
class StoreURL:
    """A parsed team store URL."""

    conninfo: str = field(repr=False)  # for the driver only: may hold the password
    data: str | None
    masked: str

    def __repr__(self) -> str:
        return f"StoreURL({self.masked!r})"

    __str__ = __repr__

    @property
    def shareable(self) -> str:
        """The URL without any password (not even ``***``): what printed commands show;
        libpq then reads the password from PGPASSWORD or ~/.pgpass."""
        return mask(self.secret_url(), drop=True)

    def secret_url(self) -> str:
        """The whole URL, password included: only for a child process's environment
        (``NBTRACKER_STORE``), never for text a person or a record may see."""
        if not self.data:
            return self.conninfo
        sep = "&" if urlsplit(self.conninfo).query else "?"
        return f"{self.conninfo}{sep}{urlencode({'data': self.data}, safe='/:')}"

    @property
    def key(self) -> str:
        """A short name for this store that holds no secret (the cache folder's name)."""
        return hashlib.sha1(self.masked.encode()).hexdigest()[:16]


def parse(url: str) -> StoreURL:
    """Check and split a team store URL (no network).

    Raises
    ------
    UsageError
        Not a ``postgresql://`` URL, or one without a database name.
    """
    if not is_url(url):
        shown = mask(url) if isinstance(url, str) else type(url).__name__
        msg = (
            f"store={shown!r} is not a team store URL: use "
            "'postgresql://user@host/db' (optionally '?data=s3://bucket/prefix'), or a "
            "folder with dir=/root= for a local store."
        )
        raise UsageError(msg)
    parts = urlsplit(url)
    if parts.password == MASK:  # a masked URL copied from a log: the password comes from
        parts = parts._replace(netloc=_mask_netloc(parts.netloc, drop=True))  # PGPASSWORD
    if not parts.path.strip("/") and "dbname" not in parts.query:
        msg = f"store={mask(url)!r} names no database: add '/dbname' after the host."
        raise UsageError(msg)
    data = None
    query = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k == "data":
            data = v or None
        else:
            query.append((k, v))
    conninfo = urlunsplit(
        (parts.scheme, parts.netloc, parts.path, urlencode(query, quote_via=quote), "")
    )
    return StoreURL(conninfo=conninfo, data=data, masked=mask(url))
