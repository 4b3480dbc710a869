"""The environment of a run: host, OS, Python, CPUs, GPUs, the program, git, packages.

Collected once, off the training thread, with W&B's metadata names (``os``, ``python``,
``host``, ``program``, ``codePath``, ``git`` {``remote``, ``commit``}, ``cpu_count``,
``cpu_count_logical``, ``gpu``, ``gpu_count``, ...) plus git's ``branch`` and ``dirty``.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._util import HOSTNAME
from ..team.url import mask_arg

GIT_TIMEOUT_S = 5.0
MAX_DIFF_BYTES = 16 << 20  # a bigger dirty diff is not stored (metadata says so)
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


def strip_credentials(url: str) -> str:
    """A remote URL without the user name, password or token in it, nor a query
    (``https://user:tok@host/x.git`` -> ``https://host/x.git``); ``git@host:x.git`` (ssh,
    no secret) stays as it is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a remote URL that could not be read>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _git(cwd: str, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", "replace").strip()


def git_info(cwd: str) -> tuple[dict[str, Any], bytes | None]:
    """``({"root", "commit", "branch", "remote", "dirty"}, diff)`` of the repository that
    holds ``cwd`` (``({}, None)`` outside one, or without git). ``diff`` is
    ``git diff HEAD`` (staged and unstaged changes of tracked files) when dirty."""
    key = ("git", cwd)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < GIT_CACHE_S:
        info, diff = hit[1]
        return dict(info), diff
    got = _git_info(cwd)
    _cache[key] = (time.monotonic(), got)
    return dict(got[0]), got[1]


def _git_info(cwd: str) -> tuple[dict[str, Any], bytes | None]:
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if not top:
        return {}, None
    info: dict[str, Any] = {"root": top}
    commit = _git(top, "rev-parse", "HEAD")
    if commit:
        info["commit"] = commit
    branch = _git(top, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        info["branch"] = branch
    remote_name = "origin"
    if branch:
        upstream = _git(top, "config", f"branch.{branch}.remote")
        remote_name = upstream or remote_name
    remote = _git(top, "remote", "get-url", remote_name)
    if remote is None and remote_name != "origin":
        remote = _git(top, "remote", "get-url", "origin")
    if remote:
        info["remote"] = strip_credentials(remote)
    diff = None
    status = _git(top, "status", "--porcelain", "--untracked-files=no")
    info["dirty"] = bool(status)
    if status and commit:
        try:
            out = subprocess.run(
                ["git", "diff", "--no-color", "--no-ext-diff", "HEAD"], cwd=top,
                capture_output=True, timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            if out.returncode == 0:
                diff = out.stdout
        except (OSError, subprocess.SubprocessError):
            diff = None
    return info, diff


_cache: dict[Any, tuple[float, Any]] = {}
GIT_CACHE_S = 5.0  # many short runs in a loop (a sweep) ask git once every few seconds


def requirements() -> str:
    """``name==version`` of every installed distribution, sorted (``requirements.txt``);
    listed once per process (and again when ``sys.path`` changes)."""
    key = ("requirements", tuple(sys.path))
    hit = _cache.get(key)
    if hit is not None:
        return str(hit[1])
    text = _requirements()
    _cache[key] = (time.monotonic(), text)
    return text


def _requirements() -> str:
    """Read only the ``Name:`` and ``Version:`` header lines of each distribution's metadata
    file (a few ms for ~200 packages; parsing every METADATA with ``importlib.metadata``
    took ~180 ms, and held the GIL against the training loop)."""
    seen: dict[str, str] = {}
    for entry in sys.path:
        try:
            items = sorted(os.scandir(entry or "."), key=lambda e: e.name)
        except OSError:
            continue
        for item in items:
            if item.name.endswith(".dist-info"):
                meta_file = os.path.join(item.path, "METADATA")
            elif item.name.endswith(".egg-info"):
                meta_file = item.path if item.is_file() else os.path.join(item.path, "PKG-INFO")
            else:
                continue
            got = _name_version(meta_file)
            if got is not None and got[0].lower() not in seen:
                seen[got[0].lower()] = f"{got[0]}=={got[1]}"
    return "".join(line + "\n" for _, line in sorted(seen.items()))


def _name_version(meta_file: str) -> tuple[str, str] | None:
    """``(Name, Version)`` from a metadata file's headers (None when unreadable)."""
    name = version = None
    try:
        with open(meta_file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break  # the headers end at the first blank line
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if name and version:
                    return name, version
    except OSError:
        return None
    return None


def program() -> tuple[str | None, str | None]:
    """``(path of the script or notebook, kind)``: kind is ``"script"`` or ``"notebook"``;
    ``(None, None)`` for an interactive session we cannot name."""
    main = sys.modules.get("__main__")
    nb = _notebook_path(main)
    if nb:
        return nb, "notebook"
    path = getattr(main, "__file__", None)
    if path and os.path.isfile(path):
        return os.path.abspath(path), "script"
    if sys.argv and sys.argv[0] and os.path.isfile(sys.argv[0]):
        return os.path.abspath(sys.argv[0]), "script"
    return None, None


def _notebook_path(main: Any) -> str | None:
    """The notebook's path, where the front end tells it without a request: VS Code sets
    ``__vsc_ipynb_file__``; Jupyter Server sets ``JPY_SESSION_NAME`` for its kernels;
    ``WANDB_NOTEBOOK_NAME`` / ``NBTRACKER_NOTEBOOK_NAME`` name it by hand."""
    if "IPython" not in sys.modules:
        return None
    from .. import _paths, _state

    if not _state.in_notebook():
        return None
    given = getattr(main, "__vsc_ipynb_file__", None) or os.environ.get("JPY_SESSION_NAME")
    given = given or _paths.env("NOTEBOOK_NAME")
    if not given:
        return None
    path = Path(given)
    if not path.is_absolute():
        path = Path.cwd() / path
    return str(path) if path.is_file() else None


_GPUS: list[list[dict[str, Any]]] = []  # looked for once per process


def _gpus() -> list[dict[str, Any]]:
    """Name and memory of each NVIDIA GPU (NVML through ``nvidia-ml-py``); [] without.
    Once per process: a failed ``import pynvml`` searches all of ``sys.path`` each time."""
    if not _GPUS:
        _GPUS.append(_find_gpus())
    return [dict(g) for g in _GPUS[0]]


def _find_gpus() -> list[dict[str, Any]]:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no GPU: nothing to say
        return []
    out = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
            out.append({"name": name, "memoryTotal": total})
    except Exception:  # noqa: BLE001
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001, S110
            pass
    return out


def code_name(path: str, root: str | None) -> str:
    """Where a program's copy goes under ``code/``: its path in the repository (or its
    file name), each part checked, so a name never climbs out of the run folder."""
    rel = Path(path).name
    if root:
        try:
            rel = str(Path(path).resolve().relative_to(Path(root).resolve()))
        except ValueError:
            pass
    parts = [p for p in Path(rel).parts if _SAFE_PART.match(p) and p not in (".", "..")]
    if not parts:
        from .. import _paths

        return _paths.slug(Path(path).name)
    return "/".join(parts)


_MACHINE: list[dict[str, Any]] = []  # physical cores and memory: looked up once per process


def _machine() -> dict[str, Any]:
    if not _MACHINE:
        out: dict[str, Any] = {}
        try:
            import psutil

            out["cpu_count"] = psutil.cpu_count(logical=False)
            out["memory"] = {"total": int(psutil.virtual_memory().total)}
        except Exception:  # noqa: BLE001 - psutil missing or refused: the rest stands
            out["cpu_count"] = os.cpu_count()
        _MACHINE.append(out)
    return {k: dict(v) if isinstance(v, dict) else v for k, v in _MACHINE[0].items()}


def collect(*, git: bool = True, cwd: str | None = None) -> tuple[dict[str, Any], bytes | None]:
    """The run's metadata (W&B's names) and the dirty diff (or None)."""
    cwd = cwd or os.getcwd()
    prog, kind = program()
    meta: dict[str, Any] = {
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "host": HOSTNAME,
        "executable": sys.executable,
        # a team store URL (or any URL) given on the command line keeps its password out
        "args": [mask_arg(str(a)) for a in sys.argv[1:]] if kind == "script" else [],
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "root": cwd,
        "cpu_count_logical": os.cpu_count(),
    }
    meta.update(_machine())
    gpus = _gpus()
    if gpus:
        meta["gpu"] = gpus[0]["name"]
        meta["gpu_count"] = len(gpus)
        meta["gpu_nvidia"] = gpus
    if prog:
        meta["program"] = prog
        meta["codePathLocal"] = os.path.relpath(prog, cwd) if prog.startswith(cwd) else prog
        if kind == "notebook":
            meta["notebook"] = True
    diff = None
    if git:
        info, diff = git_info(os.path.dirname(prog) if kind == "script" and prog else cwd)
        if info:
            root = info.pop("root")
            meta["git"] = info
            if prog:
                meta["codePath"] = code_name(prog, root)
    if diff is not None and len(diff) > MAX_DIFF_BYTES:
        meta.setdefault("git", {})["diff_skipped"] = (
            f"{len(diff):,} bytes (over {MAX_DIFF_BYTES:,})"
        )
        diff = None
    return meta, diff
