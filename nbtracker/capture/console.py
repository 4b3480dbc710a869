"""Console capture: what the program prints to ``sys.stdout`` / ``sys.stderr`` is copied to
the run's ``output.log`` (W&B's "wrap" mode).

The user's stream always gets the text first, unchanged (a notebook's display, tqdm's bars
and colours behave as before); the copy is a list append under a lock, written to the file
by the capture thread about once a second. Carriage returns are kept the way a terminal
shows them: a line that a progress bar rewrites ten times a second is stored once per
write-out (``state\\r``) and finally as it ended, so ``cat output.log`` and the panel show the
last state of each line. The file is bounded: past half of ``max_bytes`` it becomes
``output.log.1`` (an older ``.1`` is dropped) and the new file starts with a note saying so.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections import deque
from pathlib import Path
from typing import Any

INLINE_FLUSH_CHARS = 4 << 20  # the writer of this much unsaved text writes it out itself
MAX_LINE_CHARS = 1 << 20  # an unfinished line this long is stored as a line


class Tee:
    """Stands in for ``sys.stdout`` / ``sys.stderr``: writes go to the real stream, then a
    copy to the console log. Everything else (``fileno``, ``isatty``, ``encoding``,
    ipykernel's ``set_parent``) is the real stream's."""

    def __init__(self, stream: Any, sink: Console) -> None:
        self._nbt_stream = stream
        self._nbt_sink: Console | None = sink

    def write(self, text: Any) -> Any:
        n = self._nbt_stream.write(text)  # the user's output first, whatever happens next
        sink = self._nbt_sink
        if sink is not None:
            try:
                sink.add(text)
            except Exception:  # noqa: BLE001, S110 - a copy that failed is only a copy
                pass
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> Any:
        return self._nbt_stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nbt_stream, name)

    def __repr__(self) -> str:
        return f"<nbtracker console copy of {self._nbt_stream!r}>"


class Console:
    """Copies ``sys.stdout`` and ``sys.stderr`` into ``path`` until :meth:`detach`."""

    def __init__(self, path: Path, old_path: Path, max_bytes: int) -> None:
        self.path = path
        self.old_path = old_path
        self.part_bytes = max(2048, max_bytes // 2)
        self._io_lock = threading.Lock()
        self._pending: deque[str] = deque()
        self._chars = 0
        self._line = ""  # the line being written (not ended by a newline yet)
        self._line_saved = ""  # ... as it was last written out with a trailing \r
        self._fh: Any = None
        self._size = 0
        self._part_used = False  # the current part holds output (not just the note)
        self.dropped_bytes = 0  # older output dropped to keep the log bounded
        self._failed = False
        self.tees: list[tuple[str, Tee]] = []

    def attach(self) -> None:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is None:
                continue
            tee = Tee(stream, self)
            setattr(sys, name, tee)
            self.tees.append((name, tee))
        self._handlers = _retarget_handlers({id(t._nbt_stream): t for _, t in self.tees})

    def add(self, text: Any) -> None:
        if text.__class__ is not str:
            if not isinstance(text, str):
                return
            text = str(text)
        self._pending.append(text)  # deque.append is atomic: no lock on the print path
        self._chars += len(text)  # approximate under threads; only bounds memory
        if self._chars >= INLINE_FLUSH_CHARS:  # the capture thread is behind: write it here
            self.flush()

    def detach(self) -> None:
        """Give the streams back (a stream someone replaced since is left alone, and our copy
        in it stops copying); then write what is pending."""
        for handler, tee in getattr(self, "_handlers", ()):
            if getattr(handler, "stream", None) is tee:
                _set_stream(handler, tee._nbt_stream)
        self._handlers = []
        for name, tee in self.tees:
            tee._nbt_sink = None
            if getattr(sys, name) is tee:
                setattr(sys, name, tee._nbt_stream)
        self.tees = []
        self.flush(final=True)

    def after_fork_child(self) -> None:
        """A forked child prints as before, without copying (its parent owns the log)."""
        for _, tee in self.tees:
            tee._nbt_sink = None
        self.tees = []
        self._fh = None  # the parent's file object: never flushed or closed here

    # -- writing out ------------------------------------------------------------------------
    def flush(self, final: bool = False) -> None:
        """Write the pending text out (the capture thread, about once a second)."""
        with self._io_lock:
            queue = self._pending
            pending = [queue.popleft() for _ in range(len(queue))]
            self._chars = 0
            if not pending and not final:
                return
            data = self._lines("".join(pending), final)
            if data and not self._failed:
                self._write(data)
            if final:
                self._line = self._line_saved = ""
                self.close()

    def _lines(self, text: str, final: bool) -> str:
        """The text as a terminal would leave it: each finished line's last ``\\r`` state;
        the unfinished line (a progress bar) as ``state\\r`` when it changed."""
        parts = text.split("\n")
        out = []
        for piece in parts[:-1]:
            out.append(_visible(self._line + piece) + "\n")
            self._line = ""
            self._line_saved = ""
        self._line = _compress(self._line + parts[-1])
        if len(self._line) > MAX_LINE_CHARS:  # no newline for ages: store it as a line
            out.append(_visible(self._line) + "\n")
            self._line = self._line_saved = ""
        current = _visible(self._line)
        if current and (final or current != self._line_saved):
            out.append(current + ("\n" if final else "\r"))
            self._line_saved = current
        return "".join(out)

    def _write(self, data: str) -> None:
        raw = data.encode("utf-8", "backslashreplace")
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the run
                self._size = self._fh.tell()
                self._part_used = self._size > 0
            while raw:
                room = self.part_bytes - self._size
                if len(raw) <= room:
                    self._fh.write(raw)
                    self._size += len(raw)
                    self._part_used = True
                    break
                cut = raw.rfind(b"\n", 0, max(room, 0)) + 1 if room > 0 else 0
                if cut == 0 and not self._part_used:  # one line longer than a part
                    cut = max(room, 1)
                if cut:
                    self._part_used = True
                    self._fh.write(raw[:cut])
                    self._size += cut
                    raw = raw[cut:]
                self._rotate()
            self._fh.flush()
        except OSError as exc:
            self._failed = True
            warnings.warn(
                f"nbtracker could not write the console log {self.path} ({exc}); your output "
                "is shown as usual, but it is no longer copied into the run.",
                _storage_warning(),
                stacklevel=2,
            )

    def _rotate(self) -> None:
        self._fh.close()
        try:
            self.dropped_bytes += self.old_path.stat().st_size
        except OSError:
            pass
        os.replace(self.path, self.old_path)
        self._fh = open(self.path, "ab")  # noqa: SIM115
        mb = 2 * self.part_bytes / (1 << 20)
        note = f"[nbtracker: earlier output is in {self.old_path.name}"
        if self.dropped_bytes:
            note += f"; {self.dropped_bytes:,} bytes of older output were dropped"
        note += f" to keep the console log under {mb:g} MB]\n"
        raw = note.encode()
        self._fh.write(raw)
        self._size = len(raw)
        self._part_used = False

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass


def _retarget_handlers(tees: dict[int, Tee]) -> list[tuple[Any, Tee]]:
    """Logging handlers made before ``init()`` (``logging.basicConfig()``) hold the old
    ``sys.stderr``: point them at its copying stand-in too (given back at the end)."""
    logging = sys.modules.get("logging")
    if logging is None or not tees:
        return []
    loggers = [logging.getLogger()]
    loggers += [lg for lg in list(logging.Logger.manager.loggerDict.values())
                if isinstance(lg, logging.Logger)]  # fmt: skip
    out = []
    for lg in loggers:
        for handler in list(getattr(lg, "handlers", ())):
            tee = tees.get(id(getattr(handler, "stream", None)))
            if tee is not None and isinstance(handler, logging.StreamHandler):
                _set_stream(handler, tee)
                out.append((handler, tee))
    return out


def _set_stream(handler: Any, stream: Any) -> None:
    try:
        handler.setStream(stream)
    except Exception:  # noqa: BLE001, S110 - a handler that refuses: left as it was
        pass


def _visible(line: str) -> str:
    """What a terminal shows of a line with carriage returns: the last text written after
    one (a bar redrawn with ``\r`` pads itself, so the last write covers the earlier ones)."""
    if "\r" not in line:
        return line
    for seg in reversed(line.split("\r")):
        if seg:
            return seg
    return ""


def _compress(line: str) -> str:
    """The unfinished line, kept short: its visible state, and a trailing ``\r`` (the next
    write starts over) when it has one."""
    if "\r" not in line:
        return line
    return _visible(line) + ("\r" if line.endswith("\r") else "")


def _storage_warning() -> type[Warning]:
    from ..errors import StorageWarning

    return StorageWarning


def tail(path: Path, old_path: Path | None = None, max_bytes: int = 16_384) -> str:
    """The last ``max_bytes`` (about) of a console log, as a terminal would show them
    (each line's last ``\\r`` state; a cut first line dropped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - max_bytes)
            fh.seek(start)
            raw = fh.read()
    except OSError:
        return ""
    text = raw.decode("utf-8", "replace")
    lines = text.split("\n")
    if start > 0 and len(lines) > 1:
        lines = lines[1:]
    return "\n".join(_visible(line) for line in lines)
