"""Multi-rank runs (W&B's shared mode): several processes (DDP ranks) write one run.

The primary (``x_primary=True``, by default the process with ``RANK`` 0) owns the run's
record (``run.json``: config, summary, state) and its writer lock, as any run. A worker
(``x_primary=False``) takes no lock and never writes ``run.json``: it writes its own
history segments (named by its own writer id, so nothing is overwritten), its own system
metric segments, its own console log (``files/output_<label>.log``) and a small record of
its own, ``ranks/<label>.json`` (label, process, state, heartbeat, key types, summary).
Rows a worker logs are stored under ``<label>/<key>`` so they never clobber the primary's
rows of the same step; system metrics of every rank carry ``<label>/`` too. The primary
folds the workers' key types and summaries into the run record, and at its finish waits
(``WORKER_WAIT_S`` at most, in the finishing thread) for live workers to finish first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _paths
from ._util import HOSTNAME, atomic_write_json, clean_text, read_json
from .errors import UsageError

RANKS_DIR = "ranks"
WORKER_WAIT_S = 10.0  # the primary's finish waits this long at most for live workers


class Role:
    """One process's part in a shared run (a plain class: ``dataclasses`` would cost
    ``import nbtracker`` ~7 ms through ``inspect``)."""

    __slots__ = ("label", "prefix_metrics", "primary")

    def __init__(self, label: str, primary: bool, prefix_metrics: bool = True) -> None:
        self.label = label
        self.primary = primary
        self.prefix_metrics = prefix_metrics  # a worker's keys become "<label>/<key>"

    def __repr__(self) -> str:
        return f"Role({self.label!r}, primary={self.primary})"

    @property
    def prefix(self) -> str:
        return f"{self.label}/"

    @property
    def console_name(self) -> str:
        """The console log's file name (under the run's ``files/``)."""
        return "output.log" if self.primary else f"output_{_paths.slug(self.label)}.log"


def _setting(settings: Any, name: str) -> Any:
    from .capture._settings import _pick

    return _pick(settings, name)[0]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def rank_from_env() -> int | None:
    """The process's rank as torchrun / DDP launchers set it (``RANK``, else
    ``LOCAL_RANK``), or None."""
    for name in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(name)
        if value is not None and value.strip().lstrip("-").isdigit():
            return int(value)
    return None


def role(mode: str | None, settings: Any) -> Role | None:
    """The role ``init()`` gives this process, or None when the run is not shared.

    Shared when ``init(mode="shared")`` or ``Settings(mode="shared")``. ``x_label`` names
    the process (default ``rank_<RANK>``, else ``rank_<LOCAL_RANK>``, else ``rank_0``);
    ``x_primary`` says whether it owns the run (default: rank 0, or no rank known)."""
    smode = _setting(settings, "mode")
    if (mode or "").lower() != "shared" and str(smode or "").lower() != "shared":
        return None
    rank = rank_from_env()
    label = _setting(settings, "x_label")
    label = clean_text(str(label), "x_label") if label not in (None, "") else f"rank_{rank or 0}"
    if "/" in label or not label.strip():
        msg = f"x_label={label!r}: a label may not contain '/' or be blank"
        raise UsageError(msg)
    primary = _setting(settings, "x_primary")
    primary = _flag(primary) if primary is not None else rank in (None, 0)
    prefix = _setting(settings, "x_label_metrics")
    return Role(label, primary, _flag(prefix) if prefix is not None else True)


def default_id(role: Role) -> str | None:
    """The run id of a shared run started without ``id=``: torchrun's job id
    (``TORCHELASTIC_RUN_ID``, one per job, the same on every rank) when it names one;
    otherwise None, with a warning, as each rank would make a run of its own."""
    job = os.environ.get("TORCHELASTIC_RUN_ID", "").strip()
    if job and job.lower() != "none" and "/" not in job and "\\" not in job:
        return f"ddp-{job}"[:128]
    import warnings

    warnings.warn(
        f"nbtracker: init(mode='shared') on {role.label} without id=: each rank starts a run "
        "of its own. Pass the same id= on every rank (e.g. made on rank 0 and broadcast), "
        "or launch with torchrun --rdzv-id / --standalone, whose job id is used.",
        UserWarning,
        stacklevel=3,
    )
    return None


# -- a worker's own record ------------------------------------------------------------------
def rank_file(rdir: Path, label: str) -> Path:
    return rdir / RANKS_DIR / f"{_paths.slug(label)}.json"


def worker_record(run: Any, role: Role) -> dict[str, Any]:
    """What a worker keeps in ``ranks/<label>.json`` (called from its writer thread too)."""
    rec = run._rec
    now = time.time()
    summary = run.summary.as_dict()
    return {
        "label": role.label, "primary": False, "state": rec.get("state"),
        "host": HOSTNAME, "pid": rec.get("pid"), "pid_start": rec.get("pid_start"),
        "created_at": rec.get("created_at"), "heartbeat_at": now, "updated_at": now,
        "finished_at": rec.get("finished_at"), "exit_code": rec.get("exit_code"),
        "error": rec.get("error"), "last_step": run._step - 1, "console": role.console_name,
        "history_keys": dict(run._key_types), "summary": summary,
        "metadata": rec.get("metadata"), "resumed": rec.get("resumed") or 0,
    }  # fmt: skip


def earlier_record(rdir: Path, role: Role) -> dict[str, Any] | None:
    """The record this worker's label left in the run before (a relaunched job), or None."""
    try:
        rec = read_json(rank_file(rdir, role.label))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("label") == role.label else None


def write_worker_record(rdir: Path, role: Role, rec: dict[str, Any]) -> None:
    path = rank_file(rdir, role.label)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, rec)


def worker_records(rdir: Path) -> list[dict[str, Any]]:
    """The workers' records of a run folder (unreadable ones skipped), by label."""
    out = []
    try:
        names = sorted(e.name for e in os.scandir(rdir / RANKS_DIR) if e.name.endswith(".json"))
    except OSError:
        return []
    for name in names:
        try:
            rec = read_json(rdir / RANKS_DIR / name)
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("label"), str):
            out.append(rec)
    return out


def with_liveness(rec: dict[str, Any]) -> dict[str, Any]:
    """A worker's record as readers see it: 'running' with its process gone is 'crashed'."""
    from .store import process_gone

    if rec.get("state") == "running" and process_gone(rec):
        rec = dict(rec, state="crashed")
    return rec


# -- the primary folds the workers in ------------------------------------------------------
def merge_workers(rdir: Path, rec: dict[str, Any]) -> None:
    """Add the workers' key types and summary values to the primary's record ``rec``: a
    worker's own keys (``<label>/...``) take its latest values; any other key a worker has
    (it opted out of the prefix, or set ``summary`` itself) only fills a gap."""
    workers = worker_records(rdir)
    if not workers:
        return
    keys = rec.setdefault("history_keys", {})
    summary = rec.setdefault("summary", {})
    for w in workers:
        own = f"{w['label']}/"
        for k, kind in (w.get("history_keys") or {}).items():
            keys.setdefault(k, kind)
        for k, v in (w.get("summary") or {}).items():
            k = str(k)
            if k.startswith(own):
                summary[k] = v
            elif not k.startswith("_"):
                summary.setdefault(k, v)


def fold_into_record(store: Any, rdir: Path, timeout: float = 2.0) -> bool:
    """At a worker's finish: when the primary has ended (finished, or died) and its writer
    lock is free (or becomes free within ``timeout``, as its finishing thread ends), put
    the workers' key types and summaries into ``run.json`` itself; a live primary does so
    at its heartbeats and at its finish. True when the record was updated here."""
    import fcntl

    from .store import RUN_FILE, WRITER_LOCK, process_gone

    try:
        on_disk = read_json(rdir / RUN_FILE)
    except (OSError, ValueError):
        return False  # no primary yet: it merges the workers itself
    if not isinstance(on_disk, dict):
        return False
    if on_disk.get("state") == "running" and not process_gone(on_disk):
        return False  # a live primary: it merges our final record at its finish
    try:
        fd = os.open(rdir / WRITER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    return False
                time.sleep(0.05)
        rec = store.read_record(rdir)
        if rec is None:  # the primary has not started: it merges the workers itself
            return False
        rec.pop("dir", None)
        merge_workers(rdir, rec)
        store.write_record(rdir, rec)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # the lock goes with it


def wait_for_workers(rdir: Path, timeout: float = WORKER_WAIT_S) -> None:
    """At the primary's finish (in its finishing thread): wait until every worker that is
    still alive has finished, ``timeout`` seconds at most."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        live = [w for w in worker_records(rdir) if with_liveness(w).get("state") == "running"]
        if not live:
            return
        time.sleep(0.1)


def prefixed(data: Any, prefix: str) -> Any:
    """A worker's ``log()`` data with its label in front of every key."""
    if isinstance(data, Mapping):
        return {f"{prefix}{k}": v for k, v in data.items()}
    return data  # log() raises its own TypeError


def ranks(rdir: Path, rec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every rank of a stored shared run: the primary (from ``rec``) and the workers."""
    from .store import RUN_FILE

    shared = rec.get("shared")
    if shared is None:  # a catalog row: the record in the run folder says
        try:
            shared = read_json(rdir / RUN_FILE).get("shared")
        except (OSError, ValueError, AttributeError):
            shared = None
    out = []
    if isinstance(shared, Mapping):
        out.append({
            "label": shared.get("label"), "primary": True, "state": rec.get("state"),
            "host": rec.get("host"), "pid": rec.get("pid"), "created_at": rec.get("created_at"),
            "finished_at": rec.get("finished_at"), "exit_code": rec.get("exit_code"),
            "console": "output.log",
        })  # fmt: skip
    for w in worker_records(rdir):
        out.append(with_liveness(w))
    return out


def console_files(rdir: Path) -> list[tuple[str, Path]]:
    """``(label, path)`` of each rank's console log of a shared run (the primary first);
    empty for a run that is not shared."""
    from .store import FILES_DIR, RUN_FILE

    workers = worker_records(rdir)
    if not workers:
        return []
    try:
        shared = read_json(rdir / RUN_FILE).get("shared") or {}
    except (OSError, ValueError, AttributeError):
        shared = {}
    out = [(str(shared.get("label") or "primary"), rdir / FILES_DIR / "output.log")]
    for w in workers:
        name = w.get("console")
        if isinstance(name, str) and name == Path(name).name and name.startswith("output_"):
            out.append((w["label"], rdir / FILES_DIR / name))
    return out
