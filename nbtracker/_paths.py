"""The one place that turns arguments, environment variables and defaults into paths."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

DEFAULT_DIRNAME = "nbruns"
CATALOG_NAME = "nbtracker.duckdb"

_SAFE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def env(name: str, default: str | None = None) -> str | None:
    """Read ``NBTRACKER_<name>``, falling back to ``WANDB_<name>`` for wandb-style scripts."""
    for prefix in ("NBTRACKER_", "WANDB_"):
        value = os.environ.get(prefix + name)
        if value:
            return value
    return default


def env_flag(name: str, default: bool = False) -> bool:
    """``env(name)`` read as a yes/no switch (``1``/``true``/``yes``/``on``, any case)."""
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the storage root: argument, then ``$NBTRACKER_DIR`` / ``$WANDB_DIR``, then
    ``./nbruns``."""
    if root is None:
        root = env("DIR") or DEFAULT_DIRNAME
    return Path(root).expanduser().absolute()


def slug(name: str) -> str:
    """Map any user-given name to one safe, deterministic folder name.

    Safe names (lowercase letters, digits, ``._-``, not starting with a dot) are used as
    they are; anything else becomes a cleaned prefix, ``~`` and a short hash of the
    original. A safe name never contains ``~``, so the two kinds never collide; ``a/b``,
    ``..`` or ``ünï code`` never escape the root; and ``A`` and ``a`` stay apart on
    case-insensitive file systems.
    """
    if _SAFE.match(name):
        return name
    cleaned = _UNSAFE_CHARS.sub("_", name).strip("._-")[:40] or "x"
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:12]
    return f"{cleaned}~{digest}"


def project_dir(root: Path, project: str) -> Path:
    return root / "runs" / slug(project)


def run_counter(root: Path, project: str) -> Path:
    """The file whose size counts the project's runs (names ``swift-river-<n>``). Its name
    starts with a dot, which no run folder's name does (see :func:`slug`)."""
    return project_dir(root, project) / ".counter"


def run_dir(root: Path, project: str, run_id: str) -> Path:
    return project_dir(root, project) / slug(run_id)
