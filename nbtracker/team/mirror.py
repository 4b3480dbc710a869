"""Readers of a team store: bring what changed into a local cache folder laid out like
any nbtracker root, then read it with the one read layer (query.py) as a local folder."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from .. import _paths
from .._util import atomic_write_bytes
from .remote import Remote
from .url import StoreURL

STATE_FILE = ".team-state.json"  # a dot name: never a project folder (see _paths.slug)
_locks: dict[str, threading.Lock] = {}
_running: dict[str, set[tuple[str, str]]] = {}  # cache root -> runs last seen running
_refreshers: dict[str, threading.Thread] = {}


def cache_root(url: StoreURL) -> Path:
    base = _paths.env("CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nbtracker", "team"
    )
    return Path(base).expanduser().absolute() / url.key


def _safe_rel(path: str) -> PurePosixPath | None:
    """A file path inside a run folder as the store names it, or None when it could leave
    the folder (a store is shared: never trust a path from it)."""
    p = PurePosixPath(path)
    if p.is_absolute() or not p.parts or any(x in ("", ".", "..") for x in p.parts):
        return None
    if any(x.startswith(".") or "\\" in x or "\x00" in x for x in p.parts):
        return None
    if p.parts == ("run.json",):
        return None
    return p


def pull(url: StoreURL, root: Path | None = None) -> dict[str, int]:
    """Fetch the store's new and changed runs and files into ``root`` (default: this
    store's cache folder). Returns counts of what was fetched. Raises StoreUnavailable."""
    root = root or cache_root(url)
    lock = _locks.setdefault(str(root), threading.Lock())
    with lock:
        return _pull(url, root)


def _pull(url: StoreURL, root: Path) -> dict[str, int]:
    from ..store import Store

    root.mkdir(parents=True, exist_ok=True)
    state_path = root / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
        seen_runs = {tuple(k.split("\x00", 1)): v for k, v in state["runs"].items()}
        seen_files = {tuple(k.split("\x00", 2)): v for k, v in state["files"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        seen_runs, seen_files = {}, {}
    remote = Remote(url)
    try:
        run_vers, file_vers = remote.versions()
        want_files = [(k, v) for k, v in file_vers.items() if seen_files.get(k) != v[0]]
        want_runs = [k for k, v in run_vers.items() if seen_runs.get(k) != v]
        # files first, records last: a reader never sees a record newer than its rows
        fetched = 0
        batch: list[tuple[tuple[str, str, str], Any]] = []
        size = 0
        for k, v in want_files:
            batch.append((k, v))
            size += v[2]
            if size > (32 << 20) or len(batch) >= 256:
                fetched += _fetch(remote, root, batch, seen_files)
                batch, size = [], 0
        fetched += _fetch(remote, root, batch, seen_files)
        records = remote.records(want_runs)
    finally:
        remote.close()
    store = Store(root)
    cat_rows = []
    # shared runs whose workers' records came in: folded into the run's record below
    ranks = {(p, r) for (p, r, path), _ in want_files if path.startswith("ranks/")}
    fetched_records = {(p, r) for p, r, _, _ in records}
    for project, run_id in sorted(ranks - fetched_records):
        rdir = _paths.run_dir(root, project, run_id)
        try:
            text = (rdir / "run.json").read_text(encoding="utf-8")
        except OSError:
            continue  # no record yet: folded when it comes
        records.append((project, run_id, text, seen_runs.get((project, run_id), 0)))
    for project, run_id, text, ver in records:
        rdir = _paths.run_dir(root, project, run_id)
        try:
            rec = json.loads(text)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("project") != project or rec.get("id") != run_id:
            continue  # a record that does not name its own key: not ours to trust
        rdir.mkdir(parents=True, exist_ok=True)
        if rec.get("shared") is not None and (rdir / "ranks").is_dir():
            # workers on other machines: their key types and summaries, as the primary
            # folds in those of workers beside it
            from .._shared import merge_workers

            merge_workers(rdir, rec)
            text = json.dumps(rec)
        atomic_write_bytes(rdir / "run.json", text.encode("utf-8"))
        seen_runs[(project, run_id)] = ver
        live = _running.setdefault(str(root), set())
        if rec.get("state") == "running":
            live.add((project, run_id))
        else:
            live.discard((project, run_id))
        rec["dir"] = str(rdir.relative_to(root))
        rec["json_mtime"] = os.stat(rdir / "run.json").st_mtime
        cat_rows.append(rec)
    if cat_rows:
        store.catalog_upsert(cat_rows, timeout=10.0)
    if not cat_rows and not fetched and state_path.exists():
        return {"runs": 0, "files": 0}  # nothing changed: the state file stays as it is
    atomic_write_bytes(
        state_path,
        json.dumps(
            {
                "runs": {"\x00".join(k): v for k, v in seen_runs.items()},
                "files": {"\x00".join(k): v for k, v in seen_files.items()},
            }
        ).encode(),
    )
    return {"runs": len(cat_rows), "files": fetched}


def _fetch(
    remote: Remote,
    root: Path,
    batch: list[tuple[tuple[str, str, str], Any]],
    seen: dict[tuple[str, ...], int],
) -> int:
    if not batch:
        return 0
    got = remote.get_objects([v[1] for _, v in batch])
    n = 0
    for (project, run_id, path), (ver, obj, _) in batch:
        rel = _safe_rel(path)
        data = got.get(obj)
        if rel is None or data is None:
            continue
        dest = _paths.run_dir(root, project, run_id).joinpath(*rel.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, data)
        seen[(project, run_id, path)] = ver
        n += 1
    return n


def keep_fresh(url: StoreURL, root: Path, interval: float) -> None:
    """Pull in the background every ``interval`` seconds while the store has runs that
    were running at the last pull (live panels of runs on other machines follow the cache
    folder as it grows); the thread ends when none is left. Idempotent per cache folder."""
    key = str(root)
    t = _refreshers.get(key)
    if t is not None and t.is_alive():
        return

    def loop() -> None:
        from .remote import StoreUnavailable

        idle = 0
        while idle < 2:
            time.sleep(interval)
            try:
                pull(url, root)
            except (StoreUnavailable, OSError):
                continue  # the reader was told once when it opened; keep trying
            idle = 0 if _running.get(key) else idle + 1

    t = threading.Thread(target=loop, name="nbtracker-team-refresh", daemon=True)
    _refreshers[key] = t
    t.start()
