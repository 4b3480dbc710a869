"""The team store's two halves: the catalog in PostgreSQL (psycopg) and the objects
(Parquet segments, media) in a pyarrow filesystem or in PostgreSQL itself.

Tables (schema ``nbtracker``)::

    runs  (project, run_id) -> record (the run's run.json, verbatim), ver
    sweeps (project, sweep_id) -> record (the sweep's sweep.json; its optuna study is in
                                 schema ``nbtracker_optuna``, see sweeps_storage.py)
    files (project, run_id, path) -> size, mtime_ns, object, ver
    blobs (object) -> data                  only when the URL has no data=

A commit writes its objects first, then the rows of all its files and the run's record in
one transaction. Rows are keyed by the file's path in its run folder (segment files are
named by their step range and writer, and never change), so repeating a commit stores
nothing twice; ``ver`` grows when a row really changes, which is how readers fetch only
what changed.
"""

from __future__ import annotations

import atexit
import os
import posixpath
from collections.abc import Iterable
from typing import Any

from ..errors import NbtrackerError
from .url import StoreURL

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS nbtracker;
CREATE TABLE IF NOT EXISTS nbtracker.runs (
    project text NOT NULL, run_id text NOT NULL, record text NOT NULL,
    ver bigint NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, run_id));
CREATE TABLE IF NOT EXISTS nbtracker.files (
    project text NOT NULL, run_id text NOT NULL, path text NOT NULL,
    size bigint NOT NULL, mtime_ns bigint NOT NULL, object text NOT NULL,
    ver bigint NOT NULL DEFAULT 1, committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, run_id, path));
CREATE TABLE IF NOT EXISTS nbtracker.blobs (object text PRIMARY KEY, data bytea NOT NULL);
CREATE TABLE IF NOT EXISTS nbtracker.sweeps (
    project text NOT NULL, sweep_id text NOT NULL, record text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (project, sweep_id));
"""
_SCHEMA_LOCK = 0x6E6274726B  # advisory lock id: agents creating the schema at once wait


class StoreUnavailable(NbtrackerError):
    """The team store cannot be reached or refused the request (the message is masked)."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        from ..errors import UsageError

        msg = "a team store needs psycopg: pip install 'nbtracker[team]'"
        raise UsageError(msg) from None
    return psycopg


class Remote:
    """One connection to a team store (not thread-safe: one per thread)."""

    def __init__(self, url: StoreURL, *, connect_timeout: float = 5.0) -> None:
        self.url = url
        self._timeout = connect_timeout
        self._con: Any = None
        self._fs: Any = None
        self._prefix = ""

    # -- connection --------------------------------------------------------------------
    def connect(self) -> Any:
        if self._con is not None and not self._con.closed:
            return self._con
        psycopg = _psycopg()
        try:
            con = psycopg.connect(
                self.url.conninfo, connect_timeout=max(1, int(self._timeout)), autocommit=False
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(self._why(exc)) from None
        try:
            with con.transaction():
                con.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                exists = con.execute("SELECT to_regclass('nbtracker.sweeps')").fetchone()[0]
                if exists is None:
                    con.execute(SCHEMA_SQL)
        except psycopg.Error as exc:
            con.close()
            raise StoreUnavailable(self._why(exc)) from None
        self._con = con
        return con

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            except Exception:  # noqa: BLE001
                pass
            self._con = None

    def _why(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # libpq may quote the connection string back: never show its password
        for secret in _secrets(self.url.conninfo):
            text = text.replace(secret, "***")
        return f"{self.url.masked}: {text}"

    def _run(self, fn: Any) -> Any:
        """Run ``fn(con)``; any driver or object-store error becomes StoreUnavailable (the
        connection is dropped so that the next call reconnects)."""
        psycopg = _psycopg()
        con = self.connect()
        try:
            return fn(con)
        except (psycopg.Error, OSError) as exc:
            self.close()
            raise StoreUnavailable(self._why(exc)) from None

    # -- objects -----------------------------------------------------------------------
    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None and self.url.data:
            import pyarrow.fs as pafs

            data = self.url.data
            if data.startswith("s3://"):
                bucket_path = data[len("s3://") :].strip("/")
                opts: dict[str, Any] = {}
                endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
                    "AWS_ENDPOINT_URL"
                )
                if endpoint:
                    scheme, _, host = endpoint.partition("://")
                    opts["endpoint_override"] = host or scheme
                    if host:
                        opts["scheme"] = scheme
                region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                if region:
                    opts["region"] = region
                self._fs, self._prefix = pafs.S3FileSystem(**opts), bucket_path
                _finalize_s3_at_exit()
            elif data.startswith("/"):
                self._fs, self._prefix = pafs.LocalFileSystem(), data.rstrip("/")
            else:
                self._fs, self._prefix = pafs.FileSystem.from_uri(data)
                self._prefix = self._prefix.rstrip("/")
        return self._fs, self._prefix

    def put_objects(self, items: list[tuple[str, bytes]]) -> None:
        """Store objects (name, bytes); an existing name is overwritten whole."""
        if not items:
            return
        if not self.url.data:

            def put(con: Any) -> None:
                with con.transaction():
                    with con.cursor() as cur:
                        cur.executemany(
                            "INSERT INTO nbtracker.blobs (object, data) VALUES (%s, %s) "
                            "ON CONFLICT (object) DO UPDATE SET data = EXCLUDED.data",
                            items,
                        )

            self._run(put)
            return
        fs, prefix = self._filesystem()
        try:
            for name, data in items:
                path = posixpath.join(prefix, name)
                if isinstance(fs, _local_fs_type()):  # readers must never see half a file
                    fs.create_dir(posixpath.dirname(path), recursive=True)
                    tmp = posixpath.join(posixpath.dirname(path), f".{os.getpid()}.tmp")
                    with fs.open_output_stream(tmp) as out:
                        out.write(data)
                    fs.move(tmp, path)
                else:  # an object store's PUT is atomic
                    with fs.open_output_stream(path) as out:
                        out.write(data)
        except OSError as exc:
            raise StoreUnavailable(self._why(exc)) from None

    def get_objects(self, names: list[str]) -> dict[str, bytes]:
        if not names:
            return {}
        if not self.url.data:

            def get(con: Any) -> dict[str, bytes]:
                with con.transaction():
                    rows = con.execute(
                        "SELECT object, data FROM nbtracker.blobs WHERE object = ANY(%s)",
                        (names,),
                    ).fetchall()
                return {name: bytes(data) for name, data in rows}

            return self._run(get)
        fs, prefix = self._filesystem()
        out = {}
        try:
            for name in names:
                with fs.open_input_stream(posixpath.join(prefix, name)) as src:
                    out[name] = src.read()
        except FileNotFoundError:
            pass  # a row whose object is gone (deleted by hand): skipped, the rest reads
        except OSError as exc:
            raise StoreUnavailable(self._why(exc)) from None
        return out

    # -- rows --------------------------------------------------------------------------
    def committed_files(self, project: str, run_id: str) -> dict[str, tuple[int, int]]:
        """``{path: (size, mtime_ns)}`` of one run's committed files."""

        def q(con: Any) -> dict[str, tuple[int, int]]:
            with con.transaction():
                rows = con.execute(
                    "SELECT path, size, mtime_ns FROM nbtracker.files "
                    "WHERE project = %s AND run_id = %s",
                    (project, run_id),
                ).fetchall()
            return {p: (s, m) for p, s, m in rows}

        return self._run(q)

    def commit(
        self,
        project: str,
        run_id: str,
        record: str | None,
        files: Iterable[tuple[str, int, int, str]],
    ) -> None:
        """One transaction: the file rows ``(path, size, mtime_ns, object)`` and the run's
        record (its run.json text; None leaves it as it is)."""
        files = list(files)

        def tx(con: Any) -> None:
            with con.transaction():
                if files:
                    with con.cursor() as cur:
                        cur.executemany(
                            "INSERT INTO nbtracker.files "
                            "(project, run_id, path, size, mtime_ns, object) "
                            "VALUES (%s, %s, %s, %s, %s, %s) "
                            "ON CONFLICT (project, run_id, path) DO UPDATE SET "
                            "size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, "
                            "object = EXCLUDED.object, ver = files.ver + 1, committed_at = now() "
                            "WHERE (files.size, files.mtime_ns, files.object) IS DISTINCT FROM "
                            "(EXCLUDED.size, EXCLUDED.mtime_ns, EXCLUDED.object)",
                            [(project, run_id, p, s, m, o) for p, s, m, o in files],
                        )
                if record is not None:
                    con.execute(
                        "INSERT INTO nbtracker.runs (project, run_id, record) "
                        "VALUES (%s, %s, %s) ON CONFLICT (project, run_id) DO UPDATE SET "
                        "record = EXCLUDED.record, ver = runs.ver + 1, updated_at = now() "
                        "WHERE runs.record IS DISTINCT FROM EXCLUDED.record",
                        (project, run_id, record),
                    )

        self._run(tx)

    def versions(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str, str], Any]]:
        """Every run's ``ver`` and every file's ``(ver, object, size)``: what a reader
        compares with its cache to fetch only what changed."""

        def q(con: Any) -> Any:
            with con.transaction():
                runs = con.execute("SELECT project, run_id, ver FROM nbtracker.runs").fetchall()
                files = con.execute(
                    "SELECT project, run_id, path, ver, object, size FROM nbtracker.files"
                ).fetchall()
            return (
                {(p, r): v for p, r, v in runs},
                {(p, r, path): (v, o, s) for p, r, path, v, o, s in files},
            )

        return self._run(q)

    def records(self, keys: list[tuple[str, str]]) -> list[tuple[str, str, str, int]]:
        """``(project, run_id, record, ver)`` of the given runs."""
        if not keys:
            return []

        def q(con: Any) -> Any:
            with con.transaction():
                return con.execute(
                    "SELECT r.project, r.run_id, r.record, r.ver FROM nbtracker.runs r "
                    "JOIN unnest(%s::text[], %s::text[]) AS k(project, run_id) "
                    "USING (project, run_id)",
                    ([k[0] for k in keys], [k[1] for k in keys]),
                ).fetchall()

        return self._run(q)

    def put_sweep(self, project: str, sweep_id: str, record: str) -> None:
        """Store a new sweep's record (its id is new: an existing one is an error)."""

        def tx(con: Any) -> None:
            with con.transaction():
                con.execute(
                    "INSERT INTO nbtracker.sweeps (project, sweep_id, record) VALUES (%s, %s, %s)",
                    (project, sweep_id, record),
                )

        self._run(tx)

    def sweeps(self, project: str | None = None, sweep_id: str | None = None) -> list[str]:
        """The records of the stored sweeps (of one project, with one id), newest first."""

        def q(con: Any) -> list[str]:
            with con.transaction():
                rows = con.execute(
                    "SELECT record FROM nbtracker.sweeps WHERE (%s::text IS NULL OR project = %s)"
                    " AND (%s::text IS NULL OR sweep_id = %s) ORDER BY created_at DESC",
                    (project, project, sweep_id, sweep_id),
                ).fetchall()
            return [r[0] for r in rows]

        return self._run(q)


_s3_state = {"used": False, "registered": False, "finalized": False}


def _finalize_s3_at_exit() -> None:
    """Arrow's S3 client must be shut down before the interpreter exits (else a crash at
    exit), after the committers' last pass, never before it: the committers' exit handler
    calls :func:`finalize_s3` itself (an exit handler registered while exiting may never
    run); this one covers processes that only read."""
    _s3_state["used"] = True
    if _s3_state["registered"]:
        return
    _s3_state["registered"] = True

    def at_exit() -> None:
        from . import committer

        committer._close_all()
        finalize_s3()

    atexit.register(at_exit)


def finalize_s3() -> None:
    """Shut Arrow's S3 client down once, if it was used and no committer still runs."""
    if not _s3_state["used"] or _s3_state["finalized"]:
        return
    from . import committer

    if any(c._thread.is_alive() for c in committer._committers.values()):
        return  # still committing (the exit timeout passed): leave it to the process end
    _s3_state["finalized"] = True
    try:
        import pyarrow.fs as pafs

        pafs.finalize_s3()
    except Exception:  # noqa: BLE001
        pass


def _local_fs_type() -> Any:
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem


def _secrets(conninfo: str) -> list[str]:
    from urllib.parse import unquote, urlsplit

    try:
        pw = urlsplit(conninfo).password
    except ValueError:
        return []
    return [s for s in {pw, unquote(pw)} if s] if pw else []
