"""The front-end assets: a tiny per-widget loader and the library sent once per page.

anywidget copies ``_esm`` into every widget's comm-open message and saved state, so
``_esm`` is only a ~1 KB loader. The ~0.9 MB library (vega, vega-lite, vega-embed and the
panel UI, all bundled: no CDN) is pushed by the kernel as one custom message the first
time a panel is created, and again to any page that asks for it (a reload, a second tab).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent.parent / "static"
LOADER = STATIC / "run_panel.js"
LIBRARY = STATIC / "nbtracker_lib.js"
LIVE_SPEC = STATIC / "live_spec.json"
_HASH_PLACEHOLDER = "__NBT_LIB_HASH__"

_lock = threading.Lock()
_pushed = False


@functools.cache
def library() -> tuple[str, str]:
    """``(code, hash)`` of the bundled library."""
    try:
        code = LIBRARY.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        msg = (
            f"nbtracker's front-end bundle is missing ({LIBRARY.name}). Reinstall nbtracker, "
            "or build it from a source checkout with `npm install && npm run build`."
        )
        raise RuntimeError(msg) from exc
    return code, hashlib.sha256(code.encode("utf-8")).hexdigest()[:16]


@functools.cache
def loader_esm() -> str:
    """The widget's ``_esm``: the loader, bound to this library version."""
    return LOADER.read_text(encoding="utf-8").replace(_HASH_PLACEHOLDER, library()[1])


@functools.cache
def _live_spec_text() -> str:
    return LIVE_SPEC.read_text(encoding="utf-8")


def live_spec() -> dict[str, Any]:
    """The panel's chart template, as built by ``charts.live_spec()`` (saved copy: no
    ``import altair`` on the way to the first chart)."""
    import json

    return json.loads(_live_spec_text())  # a fresh copy per panel


def push(widget: Any, *, force: bool = False) -> bool:
    """Send the library through ``widget``'s comm, once per kernel unless ``force``.

    Colab renders each cell's outputs in an iframe of its own (no shared ``globalThis``),
    and a page's request waits while a cell runs, so there every panel gets its copy.
    """
    global _pushed
    with _lock:
        if _pushed and not force and not in_colab():
            return False
        _pushed = True
    code, digest = library()
    widget.send({"type": "lib", "hash": digest, "code": code})
    return True


def in_colab() -> bool:
    import sys

    return "google.colab" in sys.modules


def _reset_for_tests() -> None:
    global _pushed
    _pushed = False
