"""``save()``: copy files into a run (policies ``live``, ``now``, ``end``), and the run's
saved files as the Api reads them (``ApiRun.files()``, ``File.download()``).

Files are copied (a symlink would follow a file the user later deletes), each through a
temp file and a rename. Nothing is ever written outside the run's ``files/`` folder: a name
with ``..``, an absolute name, or a folder in the way that is a symbolic link is refused
with a ``ValueError`` that says what to do.
"""

from __future__ import annotations

import glob as _glob
import os
import shutil
import threading
import warnings
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from .errors import StorageWarning

if TYPE_CHECKING:
    from .run import Run

POLICIES = ("live", "now", "end")
LIVE_POLL_S = 2.0  # how often "live" files are checked for changes (off the training thread)


def safe_relpath(name: str, what: str = "file name") -> str:
    """``name`` as a relative POSIX path that stays inside the folder it is joined to.

    Raises
    ------
    ValueError
        Empty, absolute, ``..``, control characters or backslashes.
    """
    if not isinstance(name, str) or not name:
        msg = f"the {what} {name!r} is empty: name the file inside the run (e.g. 'model.pt')"
        raise ValueError(msg)
    if any(ord(c) < 32 for c in name) or "\\" in name:
        msg = f"the {what} {name!r} holds a control character or a backslash: use '/' only"
        raise ValueError(msg)
    p = PurePath(name)
    if p.is_absolute() or name.startswith("/"):
        msg = (
            f"the {what} {name!r} is absolute: it must be relative (nbtracker never writes "
            "outside the run's folder)"
        )
        raise ValueError(msg)
    parts = [x for x in name.split("/") if x not in ("", ".")]
    if not parts or ".." in parts:
        msg = (
            f"the {what} {name!r} walks out of its folder ('..'): nbtracker never writes "
            "outside the run's folder; pass base_path= a folder that contains the files"
        )
        raise ValueError(msg)
    return "/".join(parts)


def safe_target(root: Path, rel: str) -> Path:
    """``root / rel`` after checking that no folder on the way is a symbolic link (writing
    through one could land anywhere). Creates the folders. Raises ValueError."""
    rel = safe_relpath(rel)
    root.mkdir(parents=True, exist_ok=True)
    if root.is_symlink():
        msg = f"{root} is a symbolic link: nbtracker does not write through links"
        raise ValueError(msg)
    here = root
    for part in rel.split("/")[:-1]:
        here = here / part
        if here.is_symlink():
            msg = (
                f"{here} is a symbolic link: nbtracker does not write through links "
                "(it could point outside the run). Remove the link and save again."
            )
            raise ValueError(msg)
        here.mkdir(exist_ok=True)
    target = root / rel
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(target.parent)]) != real_root:
        msg = f"{target} would be written outside {root}: refused"
        raise ValueError(msg)
    return target


def copy_atomic(src: str | Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through ``.<name>.<pid>.tmp`` and a rename (a reader never
    sees half a file; a symlink at ``dst`` is replaced, never followed)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _split(glob_str: Any, base_path: Any) -> tuple[Path, str]:
    """``(absolute base folder, glob relative to it)`` as W&B computes them."""
    if isinstance(glob_str, bytes):
        glob_str = glob_str.decode("utf-8")
    glob_str = os.fspath(glob_str)
    path = PurePath(glob_str)
    absolute = Path(os.path.abspath(glob_str))
    if base_path is not None:
        base = Path(os.path.abspath(os.fspath(base_path)))
    elif not path.is_absolute():
        base = Path(os.path.abspath("."))
    else:  # W&B: an absolute glob keeps one folder level
        base = absolute.parent.parent
    try:
        rel = absolute.relative_to(base)
    except ValueError:
        msg = (
            f"save({glob_str!r}): the path is not inside base_path {str(base)!r}. Pass a "
            "base_path that contains it (nbtracker never writes outside the run's folder)."
        )
        raise ValueError(msg) from None
    if str(rel) in ("", "."):
        msg = f"save({glob_str!r}): the glob is the base path itself; name files inside it"
        raise ValueError(msg)
    return base, safe_relpath(rel.as_posix(), "saved path")


class Saver:
    """The saved-file state of one run: patterns to copy at the end and to watch live."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.files_dir = run._store.files_dir(run.dir)  # type: ignore[union-attr]
        self.live: dict[tuple[str, str], None] = {}
        self.end: dict[tuple[str, str], None] = {}
        self.seen: dict[str, tuple[int, int]] = {}  # dest name -> (size, mtime_ns) copied
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False
        run._at_finish.append(self._at_finish)

    def _matches(self, base: str, rel: str, literal: bool) -> list[tuple[Path, str]]:
        pattern = os.path.join(base, rel)
        srcs = [pattern] if literal else sorted(_glob.glob(pattern))
        out = []
        run_dir = os.path.realpath(self.run.dir)
        files_dir = os.path.realpath(self.files_dir)
        for src in srcs:
            if not os.path.isfile(src):
                continue
            real = os.path.realpath(src)
            if os.path.commonpath([files_dir, real]) == files_dir:
                continue  # already in the run's files
            if os.path.commonpath([run_dir, os.path.abspath(src)]) == run_dir:
                # written into the run's folder (W&B's run.dir idiom): keep its name there
                name = Path(os.path.abspath(src)).relative_to(run_dir).as_posix()
            else:
                name = Path(os.path.abspath(src)).relative_to(base).as_posix()
            out.append((Path(src), safe_relpath(name, "saved path")))
        return out

    def copy(self, base: str, rel: str, literal: bool = False, *, only_changed: bool) -> list[str]:
        done = []
        for src, name in self._matches(base, rel, literal):
            try:
                st = os.stat(src)
                ident = (st.st_size, st.st_mtime_ns)
                dst = safe_target(self.files_dir, name)
                if only_changed and self.seen.get(name) == ident and dst.exists():
                    done.append(str(dst))
                    continue
                copy_atomic(src, dst)
                self.seen[name] = ident
                done.append(str(dst))
            except ValueError:
                raise
            except OSError as exc:
                self._warn(f"nbtracker could not save {src} into the run ({exc})")
        return done

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(text + "; training goes on.", StorageWarning, stacklevel=4)

    def add(self, base: str, rel: str, policy: str, literal: bool) -> list[str]:
        key = (base, rel + ("\0" if literal else ""))
        if policy == "end":
            with self._lock:
                self.end[key] = None
            return [str(self.files_dir / name) for _, name in self._matches(base, rel, literal)]
        out = self.copy(base, rel, literal, only_changed=True)
        if policy == "live":
            with self._lock:
                self.live[key] = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._poll, name="nbtracker-save", daemon=True
                )
                self._thread.start()
        return out

    def _poll(self) -> None:
        while not self._stop.wait(LIVE_POLL_S):
            self._sync(self.live)

    def _sync(self, patterns: dict[tuple[str, str], None]) -> None:
        with self._lock:
            keys = list(patterns)
        for base, rel in keys:
            literal = rel.endswith("\0")
            try:
                self.copy(base, rel.rstrip("\0"), literal, only_changed=True)
            except Exception as exc:  # noqa: BLE001 - never break training from this thread
                self._warn(f"nbtracker could not save {rel!r} ({exc})")

    def _at_finish(self) -> None:
        self._stop.set()
        self._sync({**self.live, **self.end})


def save(
    run: Run,
    glob_str: Any = None,
    base_path: Any = None,
    policy: str = "live",
    glob: bool = True,
) -> list[str]:
    """Copy files matching ``glob_str`` into the run's files (see :meth:`Run.save`)."""
    if policy not in POLICIES:
        msg = f"save(policy={policy!r}): use 'live', 'now' or 'end'"
        raise ValueError(msg)
    if glob_str is None:
        msg = "save() needs a file name or glob, e.g. save('model.pt') or save('ckpt/*.pt')"
        raise ValueError(msg)
    if isinstance(glob_str, str) and glob_str.startswith(("gs://", "s3://", "http://", "https://")):
        msg = f"save({glob_str!r}): that is a URL; save() copies local files only"
        raise ValueError(msg)
    if run.disabled:
        return []
    base, rel = _split(glob_str, base_path)
    saver = getattr(run, "_saver", None)
    if saver is None:
        saver = run._saver = Saver(run)  # type: ignore[attr-defined]
    return saver.add(str(base), rel, policy, literal=not glob)


# -- reading (the Api) -----------------------------------------------------------------------
class File:
    """A file saved to a run (``Api().run(path).files()``), as W&B's public ``File``.

    Attributes
    ----------
    name : str
        Its path inside the run's files (``"ckpt/model.pt"``).
    size : int
        Bytes.
    updated_at : float
        Modification time (seconds since the epoch).
    url, direct_url, path_uri : str
        ``file://`` URL of the stored copy.
    """

    def __init__(self, path: Path, name: str) -> None:
        self._path = path
        self.name = name
        try:
            st = path.stat()
            self.size, self.updated_at = st.st_size, st.st_mtime
        except OSError:
            self.size, self.updated_at = 0, None
        self.url = self.direct_url = self.path_uri = path.as_uri()

    @property
    def mimetype(self) -> str:
        import mimetypes

        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    @property
    def md5(self) -> str:
        """Base64 MD5 of the content, as W&B reports it."""
        import base64
        import hashlib

        h = hashlib.md5(usedforsecurity=False)
        with open(self._path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return base64.b64encode(h.digest()).decode()

    def download(self, root: str | os.PathLike[str] = ".", replace: bool = False,
                 exist_ok: bool = False, api: Any = None) -> Any:  # fmt: skip
        """Copy the file to ``root/<name>`` and return it opened for reading (as W&B).

        Raises
        ------
        ValueError
            The file exists there already (pass ``replace=True`` to overwrite it or
            ``exist_ok=True`` to keep it).
        """
        dest = safe_target(Path(root), self.name)
        if dest.exists() and not replace:
            if exist_ok:
                return open(dest)  # noqa: SIM115 - W&B returns the open file
            msg = (
                f"{dest} exists already: pass replace=True to overwrite it or exist_ok=True "
                "to keep it"
            )
            raise ValueError(msg)
        copy_atomic(self._path, dest)
        return open(dest)  # noqa: SIM115

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.mimetype}) {self.size} B>"


def list_files(store: Any, rdir: Path, names: list[str] | None = None) -> list[File]:
    """The run's saved files (sorted by name), or only those in ``names``."""
    root = store.files_dir(rdir)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.startswith(".") and fn.endswith(".tmp"):
                continue
            p = Path(dirpath) / fn
            name = p.relative_to(root).as_posix()
            if names is None or name in names:
                out.append(File(p, name))
    return out
