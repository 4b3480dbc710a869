"""What the run panel shows of the capture: system metrics charts, the console log's tail
and the environment (run info). Read from the run folder through the read layer, at most
once a second, and only when the files changed."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from .. import query
from .._shared import console_files
from ..store import capture_path, stream_dir

POLL_S = 1.0
TAIL_BYTES = 12_000  # the log tail kept in widget state (saved with the notebook)
TAIL_LINES = 120
# per-core CPU and usage in GB stay in the data; the panel charts the rest (a shared run's
# keys carry "<rank label>/" first)
_HIDDEN = re.compile(r"^system/([^/]+/)?(cpu\.\d+\.cpu_percent|disk\..*\.usageGB)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class CaptureView:
    """Polls one run folder for the panel's System, Logs and Environment parts."""

    def __init__(self, rdir: Path) -> None:
        self.rdir = Path(rdir)
        self._at = 0.0
        self._log_sig: Any = None
        self._sys_sig: Any = None

    def poll(self, force: bool = False) -> dict[str, Any]:
        """``{"system": ..., "log_tail": ...}`` for what changed since the last poll."""
        now = time.monotonic()
        if not force and now - self._at < POLL_S:
            return {}
        self._at = now
        out: dict[str, Any] = {}
        ranks = [p for _, p in console_files(self.rdir)]  # a shared run: each rank's log
        sig = _sig(ranks or [capture_path(self.rdir, "console")])
        if sig != self._log_sig:
            self._log_sig = sig
            out["log_tail"] = log_tail(self.rdir)
        sdir = stream_dir(self.rdir, "system")
        try:
            names = sorted(e.name for e in os.scandir(sdir) if e.name.endswith(".parquet"))
        except OSError:
            names = []
        sig = tuple(names)
        if names and sig != self._sys_sig:
            self._sys_sig = sig
            series = query.system_series(self.rdir)
            out["system"] = {k: v for k, v in series.items() if not _HIDDEN.match(k)}
        return out


def _sig(paths: list[Path]) -> tuple[Any, ...]:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def log_tail(rdir: Path) -> str:
    """The last lines of the console log, colour codes removed."""
    text = _ANSI.sub("", query.console_tail(rdir, TAIL_BYTES))
    lines = text.split("\n")
    return "\n".join(lines[-TAIL_LINES:])


def env_info(meta: dict[str, Any] | None) -> dict[str, str]:
    """The environment as the panel's run info shows it: short texts, no local paths
    (the program by its name in the repository), no credentials (already stripped)."""
    meta = meta or {}
    out: dict[str, str] = {}
    git = meta.get("git") or {}
    if git.get("commit"):
        text = str(git["commit"])[:10]
        if git.get("branch"):
            text = f"{git['branch']} @ {text}"
        if git.get("dirty"):
            text += " (uncommitted changes)"
        out["git"] = text
    if git.get("remote"):
        out["remote"] = str(git["remote"])
    prog = meta.get("codePath") or (Path(str(meta["program"])).name if meta.get("program") else "")
    if prog:
        out["notebook" if meta.get("notebook") else "program"] = str(prog)
    for key in ("python", "os", "host"):
        if meta.get(key):
            out[key] = str(meta[key])
    cpus = meta.get("cpu_count_logical") or meta.get("cpu_count")
    if cpus:
        out["cpus"] = str(cpus)
    if meta.get("gpu"):
        n = meta.get("gpu_count") or 1
        out["gpu"] = f"{meta['gpu']}" + (f" x {n}" if n and int(n) > 1 else "")
    total = (meta.get("memory") or {}).get("total")
    if total:
        out["memory"] = f"{float(total) / 2**30:.1f} GB"
    if meta.get("codeSaved"):
        out["code saved"] = str(meta["codeSaved"])
    return {k: v[:200] for k, v in out.items()}


def update(panel: Any, rdir: Path, rec: dict[str, Any], force: bool = False) -> None:
    """Refresh a run panel's ``system``, ``log_tail`` and ``env_info`` traits (called from
    its metadata tick; never raises into it)."""
    try:
        view = getattr(panel, "_capture_view", None)
        if view is None or view.rdir != Path(rdir):
            view = panel._capture_view = CaptureView(rdir)
        got = view.poll(force)
        env = env_info(rec.get("metadata"))
        if env != panel.env_info:
            panel.env_info = env
        if "log_tail" in got and got["log_tail"] != panel.log_tail:
            panel.log_tail = got["log_tail"]
        if "system" in got and got["system"] != panel.system:
            panel.system = got["system"]
    except Exception:  # noqa: BLE001, S110 - the charts and the rest of the panel go on
        pass
