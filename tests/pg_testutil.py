"""A real PostgreSQL for tests (pgserver: PostgreSQL 16 started from the test extra, no
apt, works as root) and moto's S3 server, which is a TEST DOUBLE for object storage: it
checks our calls against an S3-like API, not S3's real behaviour (consistency, limits,
errors under load cannot be verified on these machines).

tests/conftest.py makes the fixtures ``pg``, ``pg_url`` and ``s3_test_double`` available to
every test module.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

_db_numbers = itertools.count()


class PG:
    """One PostgreSQL server in a folder: databases on demand, stop and start again."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR here
            warnings.simplefilter("ignore")
            import pgserver

        self._pgserver = pgserver
        self.folder = folder
        self.server = pgserver.get_server(folder, cleanup_mode="stop")
        info = self.server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)

    def url(self, db: str, password: str | None = None) -> str:
        cred = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{cred}@/{db}?host={self.socket_dir}"

    def new_db(self) -> str:
        name = f"t{os.getpid()}_{next(_db_numbers)}"
        self.server.psql(f"CREATE DATABASE {name};")
        return name

    def psql(self, db: str, sql: str) -> str:
        exe = self._pgserver._commands.POSTGRES_BIN_PATH / "psql"
        return subprocess.check_output(
            [str(exe), "-At", self.url(db), "-c", sql], text=True, timeout=30
        ).strip()

    def stop(self) -> None:
        exe = self._pgserver._commands.POSTGRES_BIN_PATH / "pg_ctl"
        res = subprocess.run(
            [str(exe), "-D", str(self.folder), "-w", "-m", "fast", "stop"],
            capture_output=True, text=True, user=self.server.system_user, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr

    def start(self) -> None:
        try:
            self.server.ensure_postgres_running()
        except subprocess.CalledProcessError:
            raise AssertionError((self.folder / "log").read_text()[-3000:]) from None
        assert str(self.server.get_postmaster_info().socket_dir) == self.socket_dir

    def close(self) -> None:
        try:
            self.server.cleanup()
        except Exception:  # noqa: BLE001 - already stopped
            pass


def pg_folder() -> Path:
    """A new folder for a server's data, outside pytest's temp folders (pytest removes
    old ones, and other pytest sessions on the machine may remove a running test's)."""
    return Path(tempfile.mkdtemp(prefix="nbt-pg-")) / "data"


@pytest.fixture(scope="session")
def pg() -> Iterator[PG]:
    """A PostgreSQL server shared by the session's tests (each gets its own database)."""
    server = PG(pg_folder())
    yield server
    server.close()
    shutil.rmtree(server.folder.parent, ignore_errors=True)


@pytest.fixture
def pg_url(pg: PG, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database's URL; readers' caches go to the test's own folder."""
    monkeypatch.setenv("NBTRACKER_CACHE", str(tmp_path / "team-cache"))
    return pg.url(pg.new_db())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_test_double(moto_s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on moto's S3 server (a test double, see the module doc); the AWS
    variables point every process the test starts at it. Returns ``s3://bucket``."""
    import boto3

    env = {
        "AWS_ENDPOINT_URL": moto_s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bucket = f"nbt-{os.getpid()}-{next(_db_numbers)}"
    boto3.client("s3", endpoint_url=moto_s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
