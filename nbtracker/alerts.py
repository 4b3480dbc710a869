"""``alert()``: W&B's run alerts, kept locally. Each alert is one JSON line in the run's
alerts file, shown in the run panel, readable with ``Api().run(path).alerts()`` and the
``alerts`` SQL table, and optionally POSTed as JSON to a webhook.

The webhook (``NBTRACKER_ALERT_WEBHOOK`` / ``WANDB_ALERT_WEBHOOK``, or
``init(settings={"alert_webhook_url": ...})``) is called from one background thread with a
short timeout; a failing or slow server costs the training loop nothing and is reported by
one warning.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import warnings
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _paths
from ._util import clean_text
from .errors import NbtrackerWarning, StorageWarning

if TYPE_CHECKING:
    from .run import Run

DEFAULT_WAIT_S = 60.0  # W&B's default wait_duration
WEBHOOK_TIMEOUT_S = 3.0
MAX_TEXT = 10_000
MAX_TITLE = 1_000


class AlertLevel(Enum):
    """W&B's alert levels (``wandb.AlertLevel``)."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class WebhookWarning(NbtrackerWarning):
    """The alert webhook could not be reached (said once per process; alerts are still
    stored with the run)."""


def _level(level: Any) -> str:
    if level is None:
        return "INFO"
    value = level.value if isinstance(level, Enum) else level
    if value not in ("INFO", "WARN", "ERROR"):
        msg = f"alert(level={level!r}): level must be one of 'INFO', 'WARN', or 'ERROR'"
        raise ValueError(msg)
    return str(value)


def _seconds(wait_duration: Any) -> float:
    if wait_duration is None or wait_duration == 0:
        return DEFAULT_WAIT_S
    if isinstance(wait_duration, bool):
        raise TypeError("wait_duration must be an int, float, or datetime.timedelta")  # noqa: EM101
    if isinstance(wait_duration, (int, float)):
        return float(wait_duration)
    if isinstance(wait_duration, timedelta) or callable(
        getattr(wait_duration, "total_seconds", None)
    ):
        return float(wait_duration.total_seconds())
    msg = "wait_duration must be an int, float, or datetime.timedelta"
    raise TypeError(msg)


def alert(run: Run, title: Any, text: Any, level: Any = None, wait_duration: Any = None) -> None:
    """See :meth:`nbtracker.Run.alert`."""
    lvl = _level(level)
    wait = _seconds(wait_duration)
    if run.disabled:
        return
    title = clean_text(str(title), "an alert title", warn=False)[:MAX_TITLE]
    text = clean_text(str(text), "an alert text", warn=False)[:MAX_TEXT]
    now = time.time()
    sent: dict[str, tuple[float, float]] = run.__dict__.setdefault("_alerts_sent", {})
    last = sent.get(title)
    if last is not None and now < last[0] + last[1]:
        return  # rate limited: the previous alert with this title asked to wait
    sent[title] = (now, wait)
    rec = {"title": title, "text": text, "level": lvl, "at": now, "step": max(run.step - 1, 0),
           "wait_duration": wait}  # fmt: skip
    store = run._store
    if store is not None:
        try:
            _append(store.alerts_file(run.dir), rec)
        except OSError as exc:
            if not run.__dict__.get("_alerts_warned"):
                run.__dict__["_alerts_warned"] = True
                warnings.warn(
                    f"nbtracker could not store an alert in {run.dir} ({exc}); training goes on.",
                    StorageWarning,
                    stacklevel=3,
                )
    for hook in list(run._hooks):
        try:
            hook("alert", dict(rec))
        except Exception:  # noqa: BLE001 - a widget must never break training
            pass
    url = webhook_url(run)
    if url:
        payload = {**rec, "project": run.project, "run_id": run.id, "run_name": run.name}
        _Poster.get().put(url, payload)


def webhook_url(run: Run) -> str | None:
    """The alert webhook: ``init(settings=...)``'s ``alert_webhook_url``, else
    ``NBTRACKER_ALERT_WEBHOOK`` / ``WANDB_ALERT_WEBHOOK``."""
    settings = getattr(run, "_init_settings", None)
    given = settings if isinstance(settings, dict) else getattr(settings, "__dict__", {})
    url = given.get("alert_webhook_url") if isinstance(given, dict) else None
    return str(url) if url else _paths.env("ALERT_WEBHOOK")


def _append(path: Path, rec: dict[str, Any]) -> None:
    """One line, one ``write()`` with O_APPEND: lines never interleave; a line cut short
    by a crash is skipped by the reader."""
    line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8", "replace")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_alerts(store: Any, rdir: Path) -> list[dict[str, Any]]:
    """A run's alerts, oldest first (lines that cannot be read are skipped)."""
    return read_alerts_file(store.alerts_file(rdir))


def read_alerts_file(path: Path) -> list[dict[str, Any]]:
    """The alerts in one alerts file, oldest first."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "title" in rec:
            out.append(rec)
    return out


class _Poster:
    """One daemon thread that POSTs alerts to webhooks; bounded queue, short timeout."""

    _instance: _Poster | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=100)
        self.warned = False
        self.sent = 0
        self.failed = 0
        self.thread = threading.Thread(target=self._loop, name="nbtracker-alerts", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _Poster:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    def put(self, url: str, payload: dict[str, Any]) -> None:
        try:
            self.q.put_nowait((url, payload))
        except queue.Full:  # the server is slower than the alerts: drop, say so once
            self._warn(url, "too many alerts waiting for a slow server; some were not sent")

    def _loop(self) -> None:
        import urllib.request

        while True:
            url, payload = self.q.get()
            try:
                req = urllib.request.Request(
                    url,
                    data=json.dumps(payload).encode("utf-8"),
                    headers={"Content-Type": "application/json", "User-Agent": "nbtracker"},
                    method="POST",
                )
                with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT_S) as resp:  # noqa: S310
                    resp.read(1024)
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - never reaches the training loop
                self.failed += 1
                self._warn(url, f"{type(exc).__name__}: {exc}")
            finally:
                self.q.task_done()

    def _warn(self, url: str, why: str) -> None:
        if self.warned:
            return
        self.warned = True
        from urllib.parse import urlsplit

        host = urlsplit(url).netloc or "?"  # never print a token in the URL's path
        warnings.warn(
            f"nbtracker could not POST an alert to the webhook at {host} ({why}); alerts are "
            "still stored with the run. Said once.",
            WebhookWarning,
            stacklevel=2,
        )

    def drain(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout``) until queued alerts were tried (tests, exit)."""
        deadline = time.monotonic() + timeout
        while self.q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
