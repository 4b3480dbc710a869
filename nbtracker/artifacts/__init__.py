"""Artifacts: named, versioned sets of files, as W&B's ``Artifact``, stored locally.

- Contents are stored once by SHA-256 under the store's artifact objects folder, whatever
  the artifact, version or file name; a version is a manifest (``v<N>.json``) naming its
  files by path, digest and size.
- A version's digest is made from its files (paths and contents); logging content that
  a version already has makes no new version and copies nothing.
- Safe against kills: objects are written to a temp file, fsynced and renamed; the
  manifest likewise, and linked into place under the collection's lock (``flock``: a
  killed process's lock dies with it). A version is visible only once its manifest is
  whole, and every object it names is on disk before it is.
- Lineage: a manifest names the run that logged it; ``usage.jsonl`` lists the runs that
  used each version. The Api (``Api().artifact()``, ``artifact_versions``,
  ``run.logged_artifacts()``, ``used_artifacts()``) and the SQL tables ``artifacts``,
  ``artifact_files`` and ``artifact_usage`` read them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .. import _paths
from .._util import clean_text, to_jsonable
from ..errors import NbtrackerError, UsageError
from ..files import copy_atomic, safe_relpath, safe_target
from ._objects import _locked, _read_json, _replace_json, _sha256_file, _store_object, _write_new

if TYPE_CHECKING:
    from ..run import Run
    from ..store import Store

NAME_MAXLEN = 128
TABLE_SUFFIX = ".table.parquet"


class ArtifactNotFound(NbtrackerError, LookupError):
    """No artifact version matches the name, version or alias asked for."""


class ArtifactNotLoggedError(UsageError):
    """The artifact has not been logged yet (``run.log_artifact`` first)."""


# -- names -----------------------------------------------------------------------------------
def _check_name(name: Any, what: str = "Artifact name") -> str:
    if not isinstance(name, str) or not name.strip():
        msg = f"{what} must be a non-empty string, not {name!r}"
        raise ValueError(msg)
    if len(name) > NAME_MAXLEN:
        msg = f"{what} is longer than {NAME_MAXLEN} characters: {name[:NAME_MAXLEN]!r}..."
        raise ValueError(msg)
    bad = sorted({c for c in name if c in "/:" or ord(c) < 32})
    if bad:
        msg = (
            f"{what} {name!r} holds {', '.join(repr(c) for c in bad)}: '/' and ':' separate "
            "project, name and version ('project/name:v1'); use letters, digits, '-', '_', '.'"
        )
        raise ValueError(msg)
    return clean_text(name, what)


def parse_name(spec: str, project: str | None) -> tuple[str | None, str, str]:
    """``"name"``, ``"name:v3"``, ``"name:alias"``, ``"project/name:v1"`` or
    ``"entity/project/name:latest"`` -> ``(project, name, version or alias)``."""
    if not isinstance(spec, str) or not spec.strip():
        msg = f"artifact name {spec!r}: use 'name', 'name:v3', 'name:alias' or 'project/name:v1'"
        raise ValueError(msg)
    head, _, version = spec.strip().rpartition(":") if ":" in spec else ("", "", "")
    path = head if head else spec.strip()
    parts = path.split("/")
    name = parts[-1]
    if len(parts) >= 3:  # entity/project/name (a project name may hold '/')
        project = "/".join(parts[1:-1])
    elif len(parts) == 2:
        project = parts[0]
    return project, _check_name(name), version or "latest"


# -- entries ---------------------------------------------------------------------------------
class ArtifactManifestEntry:
    """One file of an artifact: ``path`` (its name inside the artifact), ``digest``
    (SHA-256, hex), ``size``, ``ref`` (the URI of a reference, or None)."""

    def __init__(self, path: str, digest: str, size: int | None, ref: str | None = None,
                 local_path: str | None = None, artifact: Artifact | None = None) -> None:  # fmt: skip
        self.path = path
        self.digest = digest
        self.size = size
        self.ref = ref
        self.local_path = local_path
        self._artifact = artifact

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "ref": self.ref}

    def download(self, root: str | os.PathLike[str] | None = None, skip_cache: Any = None) -> str:
        """Copy this file to ``root/<path>`` (default: the artifact's download folder)."""
        art = self._artifact
        if art is None or art._logged is None:
            raise ArtifactNotLoggedError("log the artifact before downloading its files")  # noqa: EM101
        root = Path(root) if root is not None else art._default_root()
        return str(art._fetch(self, root, allow_missing=False))

    def __repr__(self) -> str:
        return f"<ArtifactManifestEntry {self.path} {self.size} B>"


class ArtifactManifest:
    """``artifact.manifest.entries``: ``{path: ArtifactManifestEntry}``."""

    def __init__(self, entries: dict[str, ArtifactManifestEntry]) -> None:
        self.entries = entries


def _entries_digest(entries: dict[str, ArtifactManifestEntry]) -> str:
    h = hashlib.sha256()
    for path in sorted(entries):
        e = entries[path]
        h.update(f"{path}\0{e.digest}\0{e.ref or ''}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


# -- the artifact ----------------------------------------------------------------------------
class Artifact:
    """A versioned set of files (``wandb.Artifact``).

    Parameters
    ----------
    name : str
        Letters, digits, ``-``, ``_``, ``.`` (no ``/`` or ``:``), at most 128 characters.
    type : str
        ``"dataset"``, ``"model"``, ...
    description : str, optional
    metadata : dict, optional
        JSON-able values (others are stored as text).
    incremental, use_as
        Accepted for wandb compatibility; ignored.

    Examples
    --------
    >>> art = nbtracker.Artifact("mnist", type="dataset")          # doctest: +SKIP
    >>> art.add_file("train.csv"); art.add_dir("images/", name="images")
    >>> run.log_artifact(art, aliases=["best"])                    # -> version v0
    >>> run.use_artifact("mnist:latest").download()                # './artifacts/mnist:v0'
    """

    def __init__(self, name: str, type: str, description: str | None = None,  # noqa: A002
                 metadata: dict[str, Any] | None = None, incremental: bool = False,
                 use_as: str | None = None) -> None:  # fmt: skip
        self._name = _check_name(name)
        self._type = _check_name(type, "Artifact type")
        self.description = description
        if metadata is not None and not isinstance(metadata, dict):
            msg = f"Artifact metadata must be a dict, not {type(metadata).__name__}"  # type: ignore[operator]
            raise TypeError(msg)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._entries: dict[str, ArtifactManifestEntry] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._logged: dict[str, Any] | None = None  # the manifest once logged
        self._store: Store | None = None
        self._aliases: list[str] = []

    # -- building --------------------------------------------------------------------------
    def _check_draft(self) -> None:
        if self._logged is not None:
            msg = (
                f"artifact {self.name} is logged and cannot change; make a new "
                f"Artifact({self._name!r}, ...) for a new version"
            )
            raise UsageError(msg)

    def _add(self, entry: ArtifactManifestEntry, overwrite: bool) -> ArtifactManifestEntry:
        if entry.path in self._entries and not overwrite:
            msg = f"the artifact has a file named {entry.path!r} already (pass overwrite=True)"
            raise ValueError(msg)
        self._entries[entry.path] = entry
        return entry

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None,
                 is_tmp: bool | None = False, skip_cache: bool | None = False,
                 policy: str | None = "mutable", overwrite: bool = False) -> ArtifactManifestEntry:  # fmt: skip
        """Add a file (stored under ``name``, default its base name). Its content is
        hashed now and copied when the artifact is logged.

        Raises
        ------
        ValueError
            Not a file, a name that leaves the artifact (``..``, absolute) or one taken.
        """
        self._check_draft()
        local = os.fspath(local_path)
        if not os.path.isfile(local):
            msg = f"Path is not a file: {local!r}"
            raise ValueError(msg)
        path = safe_relpath(
            name if name is not None else os.path.basename(local), "artifact file name"
        )
        digest, size = _sha256_file(local)
        if is_tmp:
            stem, dot, ext = os.path.basename(path).partition(".")
            folder = os.path.dirname(path)
            path = "/".join(x for x in (folder, digest[:20] + dot + ext) if x)
        entry = ArtifactManifestEntry(path, digest, size, None, local, self)
        return self._add(entry, overwrite)

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None,
                skip_cache: bool | None = False, policy: str | None = "mutable",
                merge: bool = False) -> None:  # fmt: skip
        """Add every file under a folder (names relative to it, under ``name``)."""
        self._check_draft()
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            msg = f"Path is not a directory: {root!r}"
            raise ValueError(msg)
        prefix = safe_relpath(name, "artifact folder name") + "/" if name else ""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                rel = Path(os.path.relpath(full, root)).as_posix()
                self.add_file(full, prefix + rel, overwrite=merge)

    def add_reference(self, uri: Any, name: str | None = None, checksum: bool = True,
                      max_objects: int | None = None) -> list[ArtifactManifestEntry]:  # fmt: skip
        """Add a file or folder by reference (``file://...`` or a local path): it is not
        copied; its digest (with ``checksum``) is checked when downloaded. Other schemes
        (``s3://``, ``https://``) are recorded by URI only and cannot be downloaded here
        (there is no network)."""
        self._check_draft()
        if isinstance(uri, ArtifactManifestEntry):
            uri = uri.ref or self._object_uri(uri)
        uri = os.fspath(uri)
        if uri.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            local = unquote(urlsplit(uri).path)
        elif "://" in uri:
            path = safe_relpath(name or uri.rstrip("/").rsplit("/", 1)[-1], "artifact file name")
            digest = hashlib.sha256(uri.encode()).hexdigest()
            return [self._add(ArtifactManifestEntry(path, digest, None, uri, None, self), True)]
        else:
            local = os.path.abspath(uri)
        out = []
        if os.path.isdir(local):
            prefix = safe_relpath(name, "artifact folder name") + "/" if name else ""
            for dirpath, dirnames, filenames in os.walk(local):
                dirnames.sort()
                for fn in sorted(filenames):
                    if max_objects is not None and len(out) >= max_objects:
                        return out
                    full = os.path.join(dirpath, fn)
                    rel = Path(os.path.relpath(full, local)).as_posix()
                    out.append(self._ref_entry(full, prefix + rel, checksum))
            return out
        if not os.path.exists(local):
            msg = f"add_reference({uri!r}): no such file or folder"
            raise ValueError(msg)
        return [self._ref_entry(local, name or os.path.basename(local), checksum)]

    def _ref_entry(self, local: str, path: str, checksum: bool) -> ArtifactManifestEntry:
        ref = Path(local).absolute().as_uri()
        if checksum:
            digest, size = _sha256_file(local)
        else:
            digest, size = hashlib.sha256(ref.encode()).hexdigest(), os.path.getsize(local)
        entry = ArtifactManifestEntry(safe_relpath(path, "artifact file name"), digest, size, ref)
        entry._artifact = self
        entry.local_path = None
        setattr(entry, "checksum", checksum)  # noqa: B010
        return self._add(entry, True)

    @contextlib.contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None,
                 policy: str = "mutable") -> Iterator[IO[Any]]:  # fmt: skip
        """Write a new file straight into the artifact: ``with art.new_file("a.txt") as f:``."""
        self._check_draft()
        path = safe_relpath(name, "artifact file name")
        if "x" in mode and path in self._entries:
            msg = f"the artifact has a file named {path!r} already"
            raise ValueError(msg)
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="nbtracker-artifact-")
        local = Path(self._tmp.name) / path
        local.parent.mkdir(parents=True, exist_ok=True)
        with open(local, mode.replace("x", "w"), encoding=encoding) as fh:
            yield fh
        self.add_file(local, path, overwrite=True)

    def add(self, obj: Any, name: str, overwrite: bool = False) -> ArtifactManifestEntry:
        """Add a ``Table`` (stored as ``<name>.table.parquet``, images inside); ``get(name)``
        reads it back.

        Raises
        ------
        TypeError
            Not a Table (add files with ``add_file`` / ``new_file``).
        """
        self._check_draft()
        if not hasattr(obj, "to_parquet") or not hasattr(type(obj), "from_parquet"):
            msg = (
                f"Artifact.add() takes a nbtracker.Table, not {type(obj).__name__}; use add_file()"
            )
            raise TypeError(msg)
        path = safe_relpath(name, "artifact file name")
        if not path.endswith(TABLE_SUFFIX):
            path += TABLE_SUFFIX
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="nbtracker-artifact-")
        local = Path(self._tmp.name) / path
        local.parent.mkdir(parents=True, exist_ok=True)
        obj.to_parquet(local)
        return self.add_file(local, path, overwrite=overwrite)

    def get(self, name: str) -> Any:
        """The ``Table`` added as ``name`` (None when there is none)."""
        path = name if name.endswith(TABLE_SUFFIX) else name + TABLE_SUFFIX
        entry = self._entries.get(path)
        if entry is None:
            return None
        from ..data_types import Table

        if entry.local_path is not None:
            return Table.from_parquet(entry.local_path)
        if self._store is None:
            return None
        return Table.from_parquet(self._store.artifact_object(entry.digest))

    def remove(self, item: Any) -> None:
        """Remove a file (by name or entry) from an artifact not logged yet."""
        self._check_draft()
        path = item.path if isinstance(item, ArtifactManifestEntry) else str(item)
        if self._entries.pop(path, None) is None:
            msg = f"the artifact has no file named {path!r}"
            raise FileNotFoundError(msg)

    # -- properties ------------------------------------------------------------------------
    @property
    def source_name(self) -> str:
        return f"{self._name}:v{self._logged['version']}" if self._logged else self._name

    name = property(lambda self: self.source_name, doc="``name:v<N>`` once logged.")
    type = property(lambda self: self._type)
    state = property(lambda self: "COMMITTED" if self._logged else "PENDING")
    project = property(lambda self: self._logged["project"] if self._logged else None)
    entity = property(lambda self: "local")

    @property
    def version(self) -> str:
        if self._logged is None:
            raise ArtifactNotLoggedError("the artifact has no version before it is logged")  # noqa: EM101
        return f"v{self._logged['version']}"

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def id(self) -> str | None:
        return self._logged["digest"][:16] if self._logged else None

    @property
    def digest(self) -> str:
        return self._logged["digest"] if self._logged else _entries_digest(self._entries)

    @property
    def manifest(self) -> ArtifactManifest:
        return ArtifactManifest(dict(self._entries))

    @property
    def size(self) -> int:
        return sum(e.size or 0 for e in self._entries.values())

    @property
    def file_count(self) -> int:
        return len(self._entries)

    @property
    def created_at(self) -> str | None:
        if not self._logged:
            return None
        import datetime as dt

        return dt.datetime.fromtimestamp(self._logged["created_at"], dt.timezone.utc).isoformat()

    @property
    def aliases(self) -> list[str]:
        """The version's aliases (``latest`` for the newest). Set them and call ``save()``
        to store them on a logged version."""
        return list(self._aliases)

    @aliases.setter
    def aliases(self, aliases: Sequence[str]) -> None:
        self._aliases = [_check_alias(a) for a in aliases]

    def is_draft(self) -> bool:
        return self._logged is None

    def wait(self, timeout: int | None = None) -> Artifact:
        """Logging is synchronous here: returns the artifact."""
        return self

    def save(self, project: str | None = None, settings: Any = None) -> None:
        """Store changed ``aliases``, ``description`` and ``metadata`` of a logged version."""
        if self._logged is None or self._store is None:
            raise ArtifactNotLoggedError("log the artifact with run.log_artifact() first")  # noqa: EM101
        store, cdir = self._store, self._cdir()
        with _locked(store, cdir):
            path = store.artifact_version_file(cdir, self._logged["version"])
            man = _read_json(path)
            man["description"] = self.description
            man["metadata"] = _jsonable(self.metadata)
            _replace_json(path, man)
            _set_aliases(store, cdir, self._logged["version"], self._aliases, exclusive=True)
            self._logged = man
        self._aliases = _aliases_of(store, cdir, self._logged["version"])

    # -- reading ---------------------------------------------------------------------------
    def get_entry(self, name: str) -> ArtifactManifestEntry:
        """The file named ``name`` in the artifact. Raises KeyError."""
        entry = self._entries.get(str(name))
        if entry is None:
            msg = f"artifact {self.name} has no file {name!r}; see .files()"
            raise KeyError(msg)
        return entry

    get_path = get_entry

    def files(
        self, names: list[str] | None = None, per_page: int = 50
    ) -> list[ArtifactManifestEntry]:
        return [e for p, e in sorted(self._entries.items()) if names is None or p in names]

    def download(self, root: str | os.PathLike[str] | None = None,
                 allow_missing_references: bool = False, skip_cache: Any = None,
                 path_prefix: str | None = None, multipart: Any = None) -> str:  # fmt: skip
        """Copy the version's files to ``root`` (default ``./artifacts/<name>:v<N>``, or
        under ``NBTRACKER_ARTIFACT_DIR`` / ``WANDB_ARTIFACT_DIR``); returns the folder.

        Raises
        ------
        ValueError
            A referenced file is missing or changed (unless ``allow_missing_references``).
        """
        if self._logged is None:
            raise ArtifactNotLoggedError("log or use the artifact before download()")  # noqa: EM101
        target = Path(root) if root is not None else self._default_root()
        for path, entry in sorted(self._entries.items()):
            if path_prefix and not path.startswith(path_prefix):
                continue
            self._fetch(entry, target, allow_missing_references)
        return str(target)

    def file(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download the artifact's only file and return its path."""
        if len(self._entries) != 1:
            msg = "This artifact contains more than one file, call `.download()` to get all files"
            raise ValueError(msg)
        return self.get_entry(next(iter(self._entries))).download(root)

    def _default_root(self) -> Path:
        base = _paths.env("ARTIFACT_DIR") or os.path.join(".", "artifacts")
        return Path(os.path.abspath(base)) / self.source_name

    def _object_uri(self, entry: ArtifactManifestEntry) -> str:
        assert self._store is not None
        return self._store.artifact_object(entry.digest).as_uri()

    def _fetch(self, entry: ArtifactManifestEntry, root: Path, allow_missing: bool) -> Path | None:
        dest = safe_target(root, entry.path)
        if entry.ref is None:
            assert self._store is not None
            copy_atomic(self._store.artifact_object(entry.digest), dest)
            return dest
        if not entry.ref.startswith("file://"):
            if allow_missing:
                return None
            msg = (
                f"{entry.path} is a reference to {entry.ref}: nbtracker has no network to fetch it"
            )
            raise ValueError(msg)
        from urllib.parse import unquote, urlsplit

        src = unquote(urlsplit(entry.ref).path)
        try:
            if getattr(entry, "checksum", True) and _sha256_file(src)[0] != entry.digest:
                if allow_missing:
                    return None
                msg = f"Digest mismatch for reference {entry.ref}: the file changed since it was logged"
                raise ValueError(msg)
            copy_atomic(src, dest)
        except FileNotFoundError:
            if allow_missing:
                return None
            msg = f"the referenced file {src} is missing (pass allow_missing_references=True)"
            raise ValueError(msg) from None
        return dest

    def _cdir(self) -> Path:
        assert self._store is not None and self._logged is not None
        return self._store.artifact_collection_dir(self._logged["project"], self._name)

    # -- lineage ---------------------------------------------------------------------------
    def logged_by(self) -> Any:
        """The run that logged this version (an Api run), or None."""
        if not self._logged or not self._logged.get("logged_by"):
            return None
        from ..api import Api

        lb = self._logged["logged_by"]
        assert self._store is not None
        return Api(store=self._store).run(project=lb["project"], run_id=lb["run_id"])

    def used_by(self) -> list[Any]:
        """The runs that used this version (Api runs)."""
        if not self._logged:
            return []
        from ..api import Api
        from ..errors import RunNotFound

        assert self._store is not None
        api = Api(store=self._store)
        out = []
        for u in _usage(self._store, self._cdir(), self._logged["version"]):
            try:
                out.append(api.run(project=u["project"], run_id=u["run_id"]))
            except RunNotFound:
                continue
        return out

    def json_encode(self) -> dict[str, Any]:
        return {"_type": "artifactVersion", "name": self.name, "version": self.version}

    def __repr__(self) -> str:
        return f"<Artifact {self.name} ({self._type}) {self.file_count} files>"


def _check_alias(alias: Any) -> str:
    return _check_name(str(alias), "Artifact alias")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(to_jsonable(obj, "artifact metadata"), default=str))


# -- the store side --------------------------------------------------------------------------
def _manifest_entries(man: dict[str, Any], art: Artifact) -> dict[str, ArtifactManifestEntry]:
    out = {}
    for path, e in man["entries"].items():
        entry = ArtifactManifestEntry(path, e["digest"], e.get("size"), e.get("ref"), None, art)
        if e.get("ref"):
            entry.checksum = bool(e.get("checksum", True))  # type: ignore[attr-defined]
        out[path] = entry
    return out


def _load(store: Store, man: dict[str, Any]) -> Artifact:
    art = Artifact.__new__(Artifact)
    art._name, art._type = man["name"], man["type"]
    art.description = man.get("description")
    art.metadata = dict(man.get("metadata") or {})
    art._tmp = None
    art._logged = man
    art._store = store
    art._entries = _manifest_entries(man, art)
    art._aliases = _aliases_of(store, art._cdir(), man["version"])
    return art


def _aliases_file(store: Store, cdir: Path) -> dict[str, int]:
    try:
        data = _read_json(store.artifact_aliases_file(cdir))
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _aliases_of(store: Store, cdir: Path, version: int) -> list[str]:
    custom = [a for a, v in _aliases_file(store, cdir).items() if v == version]
    latest = store.artifact_version_indexes(cdir)
    return (["latest"] if latest and latest[-1] == version else []) + sorted(custom)


def _set_aliases(store: Store, cdir: Path, version: int, aliases: Sequence[str],
                 exclusive: bool = False) -> None:  # fmt: skip
    """Point ``aliases`` at ``version`` (an alias names one version of a collection);
    ``exclusive``: the version keeps only these. Call under the collection's lock."""
    current = _aliases_file(store, cdir)
    new = dict(current)
    if exclusive:
        new = {a: v for a, v in new.items() if v != version}
    for a in aliases:
        if a != "latest":
            new[a] = version
    if new != current:
        _replace_json(store.artifact_aliases_file(cdir), new)


def _manifests(store: Store, cdir: Path) -> Iterator[dict[str, Any]]:
    for n in store.artifact_version_indexes(cdir):
        try:
            yield _read_json(store.artifact_version_file(cdir, n))
        except (OSError, ValueError):
            continue


def _usage(store: Store, cdir: Path, version: int | None = None) -> list[dict[str, Any]]:
    try:
        with open(store.artifact_usage_file(cdir), encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return []
    out, seen = [], set()
    for line in lines:
        try:
            u = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        key = (u.get("version"), u.get("project"), u.get("run_id"))
        if (version is None or u.get("version") == version) and key not in seen:
            seen.add(key)
            out.append(u)
    return out


def commit(store: Store, project: str, art: Artifact, logged_by: dict[str, str] | None,
           aliases: Sequence[str] = ()) -> Artifact:  # fmt: skip
    """Store ``art`` as a version of ``project/<its name>`` (or find the version that
    has its content) and return it as that logged version."""
    aliases = [_check_alias(a) for a in [*(aliases or []), *art._aliases]]
    for entry in art._entries.values():  # objects first: a manifest never names a missing one
        if entry.ref is None and entry.local_path is not None:
            _store_object(store, entry.local_path, entry.digest)
    digest = _entries_digest(art._entries)
    cdir = store.artifact_collection_dir(project, art._name)
    with _locked(store, cdir):
        found = None
        for man in _manifests(store, cdir):
            if man.get("digest") == digest:
                found = man
                break
        if found is None:
            versions = store.artifact_version_indexes(cdir)
            n = versions[-1] + 1 if versions else 0
            found = {
                "schema": 1, "project": project, "name": art._name, "type": art._type,
                "description": art.description, "metadata": _jsonable(art.metadata),
                "version": n, "digest": digest, "created_at": time.time(),
                "size": art.size, "logged_by": logged_by,
                "entries": {
                    p: {**e.as_json(), **({"checksum": getattr(e, "checksum", True)} if e.ref else {})}
                    for p, e in sorted(art._entries.items())
                },
            }  # fmt: skip
            while True:
                try:
                    _write_new(store.artifact_version_file(cdir, n), json.dumps(found).encode())
                    break
                except FileExistsError:  # only a hand-made file could take it: next one
                    n += 1
                    found["version"] = n
        _set_aliases(store, cdir, found["version"], aliases)
    loaded = _load(store, found)
    art.__dict__.update(loaded.__dict__)
    if art._tmp is not None:
        art._tmp.cleanup()
        art._tmp = None
    return art


def resolve(store: Store, project: str, name: str, version: str = "latest") -> Artifact:
    """The version of ``project/name`` that ``version`` names (``latest``, ``v3``, an
    alias or a digest). Raises ArtifactNotFound."""
    cdir = store.artifact_collection_dir(project, name)
    versions = store.artifact_version_indexes(cdir)
    n: int | None = None
    if not versions:
        msg = f"no artifact {name!r} in project {project!r} under {store.root}"
        raise ArtifactNotFound(msg)
    if version == "latest":
        n = versions[-1]
    elif version[:1] == "v" and version[1:].isdigit():
        n = int(version[1:])
    else:
        n = _aliases_file(store, cdir).get(version)
        if n is None:
            for man in _manifests(store, cdir):
                if man.get("digest") == version:
                    n = man["version"]
    if n is None or n not in versions:
        have = ", ".join(f"v{v}" for v in versions[-5:])
        msg = f"artifact {project}/{name} has no version or alias {version!r} (versions: {have})"
        raise ArtifactNotFound(msg)
    man = _read_json(store.artifact_version_file(cdir, n))
    return _load(store, man)


def record_use(store: Store, art: Artifact, project: str, run_id: str) -> None:
    """Append ``(version, run)`` to the collection's usage log (one O_APPEND write)."""
    assert art._logged is not None
    line = json.dumps({"version": art._logged["version"], "project": project, "run_id": run_id,
                       "at": time.time()}) + "\n"  # fmt: skip
    cdir = art._cdir()
    fd = os.open(store.artifact_usage_file(cdir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", "replace"))
    finally:
        os.close(fd)


def all_versions(store: Store, project: str | None = None) -> list[Artifact]:
    """Every stored version (of one project), by project, name and version."""
    out = []
    for cdir in store.artifact_collection_dirs(project):
        out.extend(_load(store, man) for man in _manifests(store, cdir))
    return out


# -- run side --------------------------------------------------------------------------------
def log_artifact(run: Run, artifact_or_path: Any, name: str | None, type_: str | None,
                 aliases: Sequence[str] | None, tags: Sequence[str] | None) -> Artifact:  # fmt: skip
    """See :meth:`nbtracker.Run.log_artifact`."""
    if isinstance(artifact_or_path, Artifact):
        art = artifact_or_path
        if art._logged is not None and aliases:
            art.aliases = [*art.aliases, *aliases]
            art.save()
            return art
    else:
        path = os.fspath(artifact_or_path)
        base = os.path.basename(os.path.normpath(path))
        art = Artifact(name or f"run-{run.id}-{base}", type_ or "unspecified")
        if os.path.isdir(path):
            art.add_dir(path)
        elif os.path.isfile(path):
            art.add_file(path)
        else:
            art.add_reference(path)
    if run.disabled or run._store is None:
        return art
    try:
        return commit(run._store, run.project, art, {"project": run.project, "run_id": run.id},
                      list(aliases or []))  # fmt: skip
    except OSError as exc:  # storage trouble never stops training: one warning, not logged
        import warnings

        from ..errors import StorageWarning

        warnings.warn(
            f"nbtracker could not store artifact {art._name!r} under {run._store.root} ({exc}); "
            "it was not logged (training goes on). Free space and log it again.",
            StorageWarning,
            stacklevel=3,
        )
        return art


def use_artifact(run: Run, artifact_or_name: Any, type_: str | None,
                 aliases: Sequence[str] | None) -> Artifact:  # fmt: skip
    """See :meth:`nbtracker.Run.use_artifact`."""
    store = run._store
    if isinstance(artifact_or_name, Artifact):
        art = artifact_or_name
        if run.disabled or store is None:
            return art
        if art._logged is None:
            art = commit(store, run.project, art, None, list(aliases or []))
    else:
        if run.disabled or store is None:
            msg = "use_artifact() needs a run that stores (this run is disabled)"
            raise UsageError(msg)
        project, name, version = parse_name(str(artifact_or_name), run.project)
        art = resolve(store, project or run.project, name, version)
    if type_ is not None and art.type != type_:
        msg = f"artifact {art.name} has type {art.type!r}, not {type_!r}"
        raise ValueError(msg)
    record_use(store, art, run.project, run.id)
    return art


# -- Api and SQL -----------------------------------------------------------------------------
def api_artifact(
    store: Store, spec: str, type_: str | None, default_project: str | None
) -> Artifact:
    """``Api().artifact("project/name:v1")``."""
    project, name, version = parse_name(spec, default_project)
    if project is None:
        msg = f"Api().artifact({spec!r}): name the project too: 'project/{spec}'"
        raise ValueError(msg)
    art = resolve(store, project, name, version)
    if type_ is not None and art.type != type_:
        msg = f"artifact {art.qualified_name} has type {art.type!r}, not {type_!r}"
        raise ValueError(msg)
    return art


def api_versions(
    store: Store, type_: str | None, spec: str, default_project: str | None
) -> list[Artifact]:
    """Every version of ``project/name``, oldest first (``Api().artifact_versions``)."""
    project, name, _ = parse_name(spec.split(":")[0], default_project)
    if project is None:
        msg = f"artifact_versions({spec!r}): name the project too: 'project/{spec}'"
        raise ValueError(msg)
    cdir = store.artifact_collection_dir(project, name)
    out = [_load(store, m) for m in _manifests(store, cdir)]
    return [a for a in out if type_ is None or a.type == type_]


def run_artifacts(store: Store, project: str, run_id: str, used: bool) -> list[Artifact]:
    """The versions a run logged (``used=False``) or used, in the order stored."""
    out = []
    for cdir in store.artifact_collection_dirs(project):
        if used:
            wanted = {u["version"] for u in _usage(store, cdir)
                      if u.get("project") == project and u.get("run_id") == run_id}  # fmt: skip
            out.extend(_load(store, m) for m in _manifests(store, cdir) if m["version"] in wanted)
        else:
            lb = {"project": project, "run_id": run_id}
            out.extend(_load(store, m) for m in _manifests(store, cdir) if m.get("logged_by") == lb)
    return out


def sql_tables(con: Any, store: Store, project: str | None = None,
               records: Sequence[dict[str, Any]] = ()) -> None:  # fmt: skip
    """Tables ``artifacts`` (one row per version, with ``aliases`` and the logging run),
    ``artifact_files``, ``artifact_usage`` (which run used which version) and ``alerts``
    (of the runs in ``records``)."""
    import pyarrow as pa

    from ..alerts import read_alerts

    alerts = [
        {"project": r["project"], "run_id": r["id"], "title": a.get("title"),
         "text": a.get("text"), "level": a.get("level"), "step": a.get("step"),
         "at": a.get("at")}
        for r in records if r.get("dir") for a in read_alerts(store, store.root / r["dir"])
    ]  # fmt: skip
    con.register("_al", pa.Table.from_pylist(alerts, schema=pa.schema([
        ("project", pa.string()), ("run_id", pa.string()), ("title", pa.string()),
        ("text", pa.string()), ("level", pa.string()), ("step", pa.int64()),
        ("at", pa.float64())])))  # fmt: skip
    con.execute(
        'CREATE OR REPLACE TABLE alerts AS SELECT * EXCLUDE ("at"), to_timestamp("at") AS created_at FROM _al'
    )
    con.unregister("_al")

    versions, files, usage = [], [], []
    for cdir in store.artifact_collection_dirs(project):
        aliases = _aliases_file(store, cdir)
        idx = store.artifact_version_indexes(cdir)
        for m in _manifests(store, cdir):
            lb = m.get("logged_by") or {}
            names = [a for a, v in aliases.items() if v == m["version"]]
            if idx and idx[-1] == m["version"]:
                names.insert(0, "latest")
            versions.append({
                "project": m["project"], "name": m["name"], "version": f"v{m['version']}",
                "version_index": m["version"], "type": m["type"], "digest": m["digest"],
                "size": m.get("size"), "file_count": len(m["entries"]), "aliases": names,
                "created_at": m["created_at"], "logged_by_project": lb.get("project"),
                "logged_by_run": lb.get("run_id"), "description": m.get("description"),
                "metadata": json.dumps(m.get("metadata") or {}),
            })  # fmt: skip
            for path, e in m["entries"].items():
                files.append({"project": m["project"], "name": m["name"],
                              "version": f"v{m['version']}", "path": path,
                              "digest": e["digest"], "size": e.get("size"), "ref": e.get("ref")})  # fmt: skip
            if m["version"] == 0:
                name, proj = m["name"], m["project"]
        if idx:
            for u in _usage(store, cdir):
                usage.append({"project": proj, "name": name, "version": f"v{u['version']}",
                              "run_project": u.get("project"), "run_id": u.get("run_id"),
                              "used_at": u.get("at")})  # fmt: skip
    schemas = {
        "artifacts": pa.schema([("project", pa.string()), ("name", pa.string()),
            ("version", pa.string()), ("version_index", pa.int64()), ("type", pa.string()),
            ("digest", pa.string()), ("size", pa.int64()), ("file_count", pa.int64()),
            ("aliases", pa.list_(pa.string())), ("created_at", pa.float64()),
            ("logged_by_project", pa.string()), ("logged_by_run", pa.string()),
            ("description", pa.string()), ("metadata", pa.string())]),
        "artifact_files": pa.schema([("project", pa.string()), ("name", pa.string()),
            ("version", pa.string()), ("path", pa.string()), ("digest", pa.string()),
            ("size", pa.int64()), ("ref", pa.string())]),
        "artifact_usage": pa.schema([("project", pa.string()), ("name", pa.string()),
            ("version", pa.string()), ("run_project", pa.string()), ("run_id", pa.string()),
            ("used_at", pa.float64())]),
    }  # fmt: skip
    for table, rows in (
        ("artifacts", versions),
        ("artifact_files", files),
        ("artifact_usage", usage),
    ):
        con.register("_art", pa.Table.from_pylist(rows, schema=schemas[table]))
        if table == "artifacts":
            con.execute("CREATE OR REPLACE TABLE artifacts AS SELECT * EXCLUDE (created_at, metadata), "
                        "to_timestamp(created_at) AS created_at, CAST(metadata AS JSON) AS metadata FROM _art")  # fmt: skip
        elif table == "artifact_usage":
            con.execute("CREATE OR REPLACE TABLE artifact_usage AS SELECT * EXCLUDE (used_at), "
                        "to_timestamp(used_at) AS used_at FROM _art")  # fmt: skip
        else:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS FROM _art")
        con.unregister("_art")
