"""Real-browser test tier: one JupyterLab server and one Chromium per pytest session.

See nbt_browser.py for the helpers and /work/shared/browser-testing.md for the recipe.
"""

from __future__ import annotations

import os
import shutil
import warnings
from typing import Any

import pytest
from nbt_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    JupyterServer,
    Lab,
    Recorded,
    _fail_missing,
)

# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _playwright() -> Any:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _fail_missing(f"a Chromium binary (none at {CHROMIUM})")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _fail_missing("the `playwright` Python package")
        raise
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(_playwright: Any) -> Any:
    b = _playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def jupyter_server() -> Any:
    for mod in ("jupyterlab", "notebook", "nbformat"):
        try:
            __import__(mod)
        except ImportError:
            _fail_missing(f"the `{mod}` Python package")
    server = JupyterServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lab(browser: Any, jupyter_server: JupyterServer) -> Any:
    # Fresh screenshots every session (the folder is git-ignored; CI keeps it as an artifact).
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    helper = Lab(jupyter_server, browser)
    yield helper
    if helper.dropped_keypresses:
        warnings.warn(
            f"JupyterLab dropped {helper.dropped_keypresses} Ctrl+Enter keypress(es); "
            "the harness retried them",
            stacklevel=1,
        )


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def page(lab: Lab, recorded: Recorded, request: pytest.FixtureRequest) -> Any:
    """A fresh tab (own context) that records errors and URLs; checked at teardown."""
    context = lab.browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    recorded.attach(pg)
    pg._nbt_recorded = recorded  # lets helpers put page errors into failure messages
    yield pg
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001,S110 - best effort
            pass
    context.close()
    lab.server.shutdown_kernels()
    if not failed:
        recorded.check()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
