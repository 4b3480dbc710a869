"""Helpers of the real-browser test tier (imported by conftest.py and the tests).

Recipe: /work/shared/browser-testing.md (JupyterLab 4 + Playwright + Debian Chromium).

* The server runs on a free 127.0.0.1 port with a random token, in temp root / settings /
  workspaces / runtime dirs, so it never touches the repo's notebooks or ~/.local.
* Chromium is Debian's (``/usr/bin/chromium``): ``playwright install`` is never needed.
* Every page records page errors, console errors and every request/websocket URL; the
  ``page`` fixture fails the test if any URL leaves the local machine or an unexpected
  page error appeared.
* The browser tier FAILS (never skips) when chromium or playwright is missing.

Fixtures: ``lab`` (session; the server + browser + helpers), ``page`` (one fresh tab per
test, checked at teardown). Helpers on ``lab``: ``write_notebook``, ``open`` (returns a
:class:`Notebook` with ``run``/``wait_done``/``output``/``prompt``), ``screenshot``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture fails with a clear message
    expect = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SCREENSHOT_DIR") or REPO / "test-artifacts") / "browser"
CHROMIUM = os.environ.get("NBTRACKER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
KERNEL_START_S = 60
RUN_TIMEOUT_S = 90

# Page errors Notebook 7 logs on every load (design.md section 4): allowed there only.
NOTEBOOK7_NOISE = ("reading 'schema'", "filebrowser:open-path' not registered")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _fail_missing(what: str) -> None:
    pytest.fail(
        f"browser tests need {what}. Install Debian's chromium with "
        "`apt-get install chromium` and the Python deps with `pip install -e '.[test]'` "
        "(never `playwright install`; scripts/test.sh does both). These tests fail, "
        "they never skip.",
        pytrace=False,
    )


def is_local_url(url: str) -> bool:
    """True for URLs that stay on this machine (the Jupyter server, blob:, data:, about:)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("blob", "data", "about", "chrome-error"):
        return scheme != "chrome-error"
    if scheme in ("http", "https", "ws", "wss"):
        return (urlsplit(url).hostname or "") in LOCAL_HOSTS
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------


class JupyterServer:
    """``python -m jupyterlab`` as in the recipe; serves both /lab and /notebooks (Notebook 7)."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="nbt-browser-"))
        self.root = self.tmp / "root"
        self.settings = self.tmp / "settings"
        self.workspaces = self.tmp / "workspaces"
        self.runtime = self.tmp / "runtime"
        self.config = self.tmp / "config"
        self.data_dir = self.tmp / "nbruns"  # NBTRACKER_DIR of every kernel and subprocess
        for d in (self.root, self.settings, self.workspaces, self.runtime, self.config):
            d.mkdir(parents=True)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JUPYTER_RUNTIME_DIR=str(self.runtime),
            JUPYTER_CONFIG_DIR=str(self.config),
            NBTRACKER_DIR=str(self.data_dir),
            PYTHONUNBUFFERED="1",
        )
        # Kernels and the scripts they start use the same interpreter as the tests.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        for k in (
            "WANDB_DIR",
            "NBTRACKER_PROJECT",
            "WANDB_PROJECT",
            "WANDB_MODE",
            "NBTRACKER_MODE",
        ):
            env.pop(k, None)
        return env

    def _write_settings(self) -> None:
        s = self.settings
        _write_json(s / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                    {"windowingMode": "none"})  # fmt: skip
        _write_json(s / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False})  # fmt: skip
        _write_json(s / "@jupyterlab/apputils-extension/themes.jupyterlab-settings",
                    {"theme": "JupyterLab Light"})  # fmt: skip

    def start(self) -> None:
        self._write_settings()
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={self.settings}",
            f"--LabApp.workspaces_dir={self.workspaces}",
            "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",
            # Notebook 7 reads its own settings dir; keep it in the temp tree too.
            f"--JupyterNotebookApp.user_settings_dir={self.settings}",
            f"--JupyterNotebookApp.workspaces_dir={self.workspaces}",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}"
                raise RuntimeError(msg)
            try:
                if self.api("GET", "/api/status", timeout=2)[0] == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        msg = f"jupyter lab not ready after 60 s:\n{self.log_tail()}"
        raise RuntimeError(msg)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def api(self, method: str, path: str, timeout: float = 10) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.base + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - localhost only
            body = r.read()
            return r.status, (json.loads(body) if body else None)

    def shutdown_kernels(self) -> None:
        """Stop every kernel (one test's kernel must not eat the next test's CPU)."""
        try:
            for s in self.api("GET", "/api/sessions")[1] or []:
                self.api("DELETE", f"/api/sessions/{s['id']}")
            for k in self.api("GET", "/api/kernels")[1] or []:
                self.api("DELETE", f"/api/kernels/{k['id']}")
        except (OSError, urllib.error.URLError):
            pass

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
        if not os.environ.get("NBT_KEEP_BROWSER_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Page recording and notebook helpers
# ---------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """What one browser tab did: page errors, console errors, every URL it asked for."""

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    allowed_page_errors: tuple[str, ...] = ()

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda e: self.page_errors.append(f"{e.name}: {e.message}"))
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.on("popup", lambda p: self.attach(p))

    def unexpected_page_errors(self) -> list[str]:
        return [e for e in self.page_errors if not any(a in e for a in self.allowed_page_errors)]

    def outside_urls(self) -> list[str]:
        return sorted({u for u in self.urls if not is_local_url(u)})

    def check(self) -> None:
        """Raise AssertionError on an unexpected page error, a request leaving the machine, or
        a console error naming nbtracker (other console errors are JupyterLab's own noise,
        e.g. "widget model not found" after a kernel restart: they only go in the message)."""
        problems = []
        if bad := self.unexpected_page_errors():
            problems.append(f"page errors: {bad}")
        if out := self.outside_urls():
            problems.append(f"requests leaving localhost: {out}")
        if ours := [c for c in self.console_errors if "nbtracker" in c.lower()]:
            problems.append(f"nbtracker console errors: {ours}")
        assert not problems, "; ".join(problems) + (
            f"\n(console errors: {self.console_errors})" if self.console_errors else ""
        )


PROMPT_DONE = re.compile(r"^\[\d+\]:$")


class Notebook:
    """One open notebook in a tab (JupyterLab or Notebook 7: same DOM for cells)."""

    def __init__(self, lab: Lab, page: Any, name: str) -> None:
        self.lab, self.page, self.name = lab, page, name
        self.cells = page.locator(".jp-Notebook .jp-Cell")

    def cell(self, i: int) -> Any:
        return self.cells.nth(i)

    def prompt(self, i: int) -> Any:
        return self.cell(i).locator(".jp-InputArea-prompt")

    def prompt_text(self, i: int) -> str:
        return self.prompt(i).inner_text().strip()

    def output(self, i: int) -> Any:
        """Locator for everything in cell ``i``'s output area (scope every assertion to it)."""
        return self.cell(i).locator(".jp-OutputArea-output")

    def output_area(self, i: int) -> Any:
        return self.cell(i).locator(".jp-OutputArea")

    def diagnostics(self) -> str:
        """Page and console errors so far (for failure messages)."""
        rec = getattr(self.page, "_nbt_recorded", None)
        if rec is None:
            return ""
        return f"\npage errors: {rec.page_errors}\nconsole errors: {rec.console_errors[-10:]}"

    def output_text(self, i: int) -> str:
        try:
            return self.output_area(i).inner_text(timeout=2000)
        except Exception as e:  # noqa: BLE001 - diagnostics only
            return f"<no output text: {e}>"

    def run(self, i: int, wait: bool = True, timeout: float = RUN_TIMEOUT_S) -> None:
        """Run cell ``i`` (select it via its prompt, Ctrl+Enter); wait for ``[n]:`` if asked."""
        old = self.prompt_text(i)
        assert old != "[*]:", f"cell {i} is already running"
        # The prompt turns to [*] at once on the client side when a run is taken. Right after
        # a notebook opens, Lab sometimes drops the first keypress (seen: prompt stays [ ]):
        # then, and only then, try again; a taken run can never be sent twice this way.
        for attempt in range(3):
            self.prompt(i).click()
            self.page.keyboard.press("Control+Enter")
            try:
                expect(self.prompt(i)).not_to_have_text(old, timeout=4_000)
                break
            except AssertionError:
                self.lab.dropped_keypresses += 1
                if attempt == 2:
                    raise
        if wait:
            self.wait_done(i, timeout)

    def wait_running(self, i: int, timeout: float = 10) -> None:
        expect(self.prompt(i)).to_have_text("[*]:", timeout=timeout * 1000)

    def wait_done(self, i: int, timeout: float = RUN_TIMEOUT_S) -> None:
        try:
            expect(self.prompt(i)).to_have_text(PROMPT_DONE, timeout=timeout * 1000)
        except AssertionError as e:
            msg = f"cell {i} did not finish in {timeout} s; its output:\n{self.output_text(i)}"
            raise AssertionError(msg + self.diagnostics()) from e

    def is_running(self, i: int) -> bool:
        return self.prompt_text(i) == "[*]:"

    def assert_no_error_output(self, i: int) -> None:
        err = self.cell(i).locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'],"
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        if err.count():
            msg = f"cell {i} wrote an error/stderr:\n{self.output_text(i)}"
            raise AssertionError(msg)

    def eval_app(self, js: str) -> Any:
        """Evaluate JS with ``app`` bound to ``window.jupyterapp`` (expose_app_in_browser)."""
        return self.page.evaluate(f"async () => {{ const app = window.jupyterapp; {js} }}")

    def set_theme(self, theme: str) -> None:
        """Switch theme ('JupyterLab Light' / 'JupyterLab Dark') and wait for it to apply."""
        self.eval_app(
            f"await app.commands.execute('apputils:change-theme', {{theme: {json.dumps(theme)}}});"
        )
        light = "true" if "Light" in theme else "false"
        self.page.wait_for_function(
            f"document.body.dataset.jpThemeLight === '{light}'", timeout=15_000
        )
        self.page.wait_for_timeout(300)  # let CSS variables propagate to the widgets


class Lab:
    """Session helper: the server, the browser, and notebook helpers."""

    def __init__(self, server: JupyterServer, browser: Any) -> None:
        self.server, self.browser = server, browser
        self.dropped_keypresses = 0

    @property
    def root(self) -> Path:
        return self.server.root

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def env(self) -> dict[str, str]:
        return self.server.env

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Write ``<root>/<name>.ipynb`` with one code cell per source string."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3", "display_name": "Python 3", "language": "python",
        }  # fmt: skip
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        path = self.root / f"{name}.ipynb"
        nbformat.write(nb, path)
        return path

    def url(self, name: str, ui: str = "lab") -> str:
        tok = self.server.token
        if ui == "lab":
            return f"{self.server.base}/lab/tree/{name}.ipynb?reset&token={tok}"
        if ui == "notebook":
            return f"{self.server.base}/notebooks/{name}.ipynb?token={tok}"
        raise ValueError(ui)

    def open(
        self, page: Any, name: str, cells: list[str] | None = None, ui: str = "lab"
    ) -> Notebook:
        """(Write and) open a notebook, wait for its cells and an idle kernel."""
        if cells is not None:
            self.write_notebook(name, cells)
        n_cells = len(cells) if cells is not None else None
        page.goto(self.url(name, ui))
        nb = Notebook(self, page, name)
        if n_cells is not None:
            expect(nb.cells).to_have_count(n_cells, timeout=KERNEL_START_S * 1000)
        self.wait_kernel_ready(page, f"{name}.ipynb")
        # the theme is a user setting kept by the server: every test starts in the light one
        if page.evaluate("document.body.dataset.jpThemeLight") == "false":
            nb.set_theme("JupyterLab Light")
        return nb

    def wait_kernel_ready(self, page: Any, path: str) -> None:
        """Wait until the notebook's kernel is up on the server AND the page shows it idle.

        The page's execution indicator reads ``idle`` for a moment *before* the kernel has
        even started (seen: idle -> initializing -> connecting -> unknown -> idle), and a
        keypress in that window is dropped; so ask the server first, then the page.
        """
        deadline = time.monotonic() + KERNEL_START_S
        while True:
            sessions = self.server.api("GET", "/api/sessions")[1] or []
            if any(
                s.get("path") == path and s["kernel"]["execution_state"] == "idle" for s in sessions
            ):
                break
            if time.monotonic() > deadline:
                msg = f"no idle kernel for {path} after {KERNEL_START_S} s: {sessions}"
                raise AssertionError(msg)
            time.sleep(0.1)
        expect(
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
        ).to_be_attached(timeout=KERNEL_START_S * 1000)
        expect(page.locator(".jp-Spinner")).to_have_count(0, timeout=KERNEL_START_S * 1000)

    def screenshot(self, target: Any, name: str) -> Path:
        """Save ``target`` (a locator or a page) as ``test-artifacts/browser/<name>.png``.

        Lab scrolls the notebook inside its own panel, so a locator taller than the window
        would come out cut off: the window is made taller for the shot, then restored.
        """
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page = getattr(target, "page", None)
        size = page.viewport_size if page is not None else None
        box = target.bounding_box() if page is not None else None
        try:
            if size and box and box["height"] > size["height"] - 200:
                page.set_viewport_size({"width": size["width"], "height": int(box["height"]) + 300})
                target.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
            target.screenshot(path=str(path))
        finally:
            if page is not None and size and page.viewport_size != size:
                page.set_viewport_size(size)
        return path
