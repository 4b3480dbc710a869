"""Html: a snippet of HTML to log, stored as a file and only ever shown sandboxed."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

from . import _media


class Html:
    """HTML to log (``run.log({"report": Html("<b>hi</b>")})``) or put in a table cell.

    Parameters
    ----------
    data : str, path or file object
        HTML source, or a path / text file object holding it.
    inject : bool
        Accepted for W&B compatibility; ignored.
    data_is_not_path : bool
        Treat a string as HTML even if it names an existing file.

    The HTML is never injected into a page: alone it renders in a sandboxed ``<iframe>``
    (``sandbox=""``: no scripts, no forms, no same-origin access); in table views it is
    shown as escaped text.
    """

    _nbt_media = "html"

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False) -> None:
        if hasattr(data, "read"):
            data = data.read()
        elif isinstance(data, os.PathLike) or (
            isinstance(data, str) and not data_is_not_path and "<" not in data
            and len(data) < 4096 and os.path.isfile(data)
        ):  # fmt: skip
            data = Path(data).read_text(encoding="utf-8")
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        if not isinstance(data, str):
            msg = f"Html() needs a string, a path or a file object, not {type(data).__name__}"
            raise TypeError(msg)
        self.data = data

    def _to_history(self, run: Any, key: str, step: int) -> tuple[str, str]:
        raw = self.data.encode("utf-8")
        sha = _media.content_hash(raw)
        rel = f"{_media.HTML}/{sha}.html"
        ref: dict[str, Any] = {"_type": "html-file", "path": rel, "sha256": sha}
        try:
            _media.write_once(Path(run.dir), rel, raw)
        except OSError as exc:  # disk full, permissions: warn, never stop training
            ref.update(_media.storage_failed("html", key, step, exc))
        return "html", json.dumps(ref)

    def _repr_html_(self) -> str:
        return (
            f'<iframe sandbox="" srcdoc="{escape(self.data, quote=True)}" '
            'style="width:100%;height:240px;border:1px solid #ddd"></iframe>'
        )

    def __repr__(self) -> str:
        text = self.data if len(self.data) <= 40 else self.data[:37] + "..."
        return f"Html({text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Html) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)
