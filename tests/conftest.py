"""Shared fixtures: a fresh storage root per test and clean process-wide state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_testutil import moto_s3_server, pg, pg_url, s3_test_double  # noqa: F401 - fixtures

import nbtracker
from nbtracker import _state
from nbtracker.store import wait_for_background


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in ("NBTRACKER_DIR", "NBTRACKER_PROJECT", "NBTRACKER_MODE", "WANDB_MODE",
                "WANDB_PROJECT", "WANDB_DIR", "NBTRACKER_RUN_ID", "WANDB_RUN_ID",
                "NBTRACKER_RESUME", "WANDB_RESUME", "NBTRACKER_ENTITY", "WANDB_ENTITY",
                "NBTRACKER_NAME", "WANDB_NAME", "NBTRACKER_STORE", "NBTRACKER_CACHE"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no config-defaults.yaml, no ./nbruns outside tmp
    yield
    _state.reset()
    wait_for_background()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def init(root: Path) -> Callable[..., nbtracker.Run]:
    """``init(**kw)``: nbtracker.init with dir= set to the test's root."""

    def make(**kw: object) -> nbtracker.Run:
        kw.setdefault("project", "p")
        return nbtracker.init(dir=str(root), **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def api(root: Path) -> nbtracker.Api:
    return nbtracker.Api(root)
