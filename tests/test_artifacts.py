"""Artifacts: versions by content digest, files stored once, aliases, download, lineage in
the Api and SQL; a process killed mid-log never leaves a half version; concurrent
processes logging one name get distinct versions and lose nothing (real processes)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nbtracker
from nbtracker.artifacts import ArtifactNotFound, ArtifactNotLoggedError
from nbtracker.store import Store


def _objects(root: Path) -> list[Path]:
    d = Store(root).artifact_objects_dir()
    return sorted(p for p in d.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))


def test_log_use_download_and_versions_by_content(init, root: Path, tmp_path: Path) -> None:
    (tmp_path / "d/sub").mkdir(parents=True)
    (tmp_path / "d/a.txt").write_text("A")
    (tmp_path / "d/sub/b.txt").write_text("B")
    run = init()
    art = nbtracker.Artifact("mnist", type="dataset", description="digits", metadata={"n": 2})
    art.add_dir(tmp_path / "d", name="data")
    with art.new_file("notes.txt", mode="w") as fh:
        fh.write("hello")
    with pytest.raises(ArtifactNotLoggedError):
        art.download()
    run.log_artifact(art, aliases=["best"])
    assert (art.name, art.version, art.aliases, art.state) == (
        "mnist:v0",
        "v0",
        ["latest", "best"],
        "COMMITTED",
    )
    assert len(_objects(root)) == 3

    same = nbtracker.Artifact("mnist", type="dataset")  # identical content
    same.add_dir(tmp_path / "d", name="data")
    with same.new_file("notes.txt", mode="w") as fh:
        fh.write("hello")
    run.log_artifact(same)
    assert same.name == "mnist:v0" and len(_objects(root)) == 3  # no new version, no new copy

    (tmp_path / "d/a.txt").write_text("A2")  # one file changed
    new = nbtracker.Artifact("mnist", type="dataset")
    new.add_dir(tmp_path / "d", name="data")
    with new.new_file("notes.txt", mode="w") as fh:
        fh.write("hello")
    nbtracker.log_artifact(new)
    assert new.name == "mnist:v1" and new.aliases == ["latest"]
    assert len(_objects(root)) == 4  # only the changed file is stored again

    used = run.use_artifact("mnist:best")
    assert used.name == "mnist:v0" and used.metadata == {"n": 2}
    out = Path(used.download())
    assert out == tmp_path / "artifacts" / "mnist:v0"
    assert (out / "data/a.txt").read_text() == "A" and (out / "data/sub/b.txt").read_text() == "B"
    assert Path(used.get_path("notes.txt").download(tmp_path / "one")).read_text() == "hello"
    assert run.use_artifact("mnist").name == "mnist:v1"  # latest
    assert run.use_artifact("p/mnist:v1").digest == new.digest
    with pytest.raises(ArtifactNotFound, match="no version or alias 'v7'"):
        run.use_artifact("mnist:v7")
    with pytest.raises(ArtifactNotFound, match="no artifact 'nope'"):
        run.use_artifact("nope:latest")
    with pytest.raises(ValueError, match="has type 'dataset', not 'model'"):
        run.use_artifact("mnist:v0", type="model")
    run.finish()


def test_lineage_in_the_api_and_sql(init, api, tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\x00" * 10)
    producer = init(name="producer")
    art = nbtracker.Artifact("weights", type="model")
    art.add_file(tmp_path / "w.bin")
    producer.log_artifact(art)
    producer.finish()
    consumer = init(name="consumer")
    consumer.use_artifact("weights:latest")
    consumer.use_artifact("weights:v0")  # twice: one usage
    consumer.finish()

    got = api.artifact("p/weights:v0")
    assert got.logged_by().name == "producer"
    assert [r.name for r in got.used_by()] == ["consumer"]
    assert api.artifact("local/p/weights:latest").name == "weights:v0"
    assert [a.name for a in api.artifact_versions("model", "p/weights")] == ["weights:v0"]
    assert api.artifact_exists("p/weights:v0") and not api.artifact_exists("p/weights:v9")
    assert [a.name for a in api.run(f"p/{producer.id}").logged_artifacts()] == ["weights:v0"]
    assert [a.name for a in api.run(f"p/{consumer.id}").used_artifacts()] == ["weights:v0"]
    df = api.sql(
        "SELECT a.name, a.version, a.aliases, r.name AS logged_by, u.run_id AS used_by "
        "FROM artifacts a JOIN runs r ON r.run_id = a.logged_by_run "
        "JOIN artifact_usage u ON u.project = a.project AND u.name = a.name AND u.version = a.version"
    )
    assert df.to_dict("records") == [{"name": "weights", "version": "v0", "aliases": ["latest"],
                                      "logged_by": "producer", "used_by": consumer.id}]  # fmt: skip
    files = api.sql("SELECT path, size, digest FROM artifact_files")
    assert files.to_dict("records") == [
        {"path": "w.bin", "size": 10, "digest": hashlib.sha256(b"\x00" * 10).hexdigest()}
    ]


def test_references_are_checked_when_downloaded(init, tmp_path: Path) -> None:
    ext = tmp_path / "ext.txt"
    ext.write_text("v1")
    run = init()
    art = nbtracker.Artifact("refs", type="dataset")
    art.add_reference(ext.as_uri(), name="ext.txt")
    art.add_reference("s3://bucket/key.bin")
    run.log_artifact(art)
    got = run.use_artifact("refs:v0")
    assert got.get_entry("ext.txt").ref == ext.as_uri()
    out = Path(got.download(tmp_path / "dl", allow_missing_references=True))
    assert (out / "ext.txt").read_text() == "v1" and not (out / "key.bin").exists()
    with pytest.raises(ValueError, match="no network"):
        got.download(tmp_path / "dl2")
    ext.write_text("changed")
    with pytest.raises(ValueError, match="Digest mismatch"):
        got.get_entry("ext.txt").download(tmp_path / "dl3")


@pytest.mark.parametrize("bad", ["a/b", "a:b", "", "x" * 129, "tab\there"])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="Artifact name"):
        nbtracker.Artifact(bad, type="dataset")


def test_file_names_never_leave_the_artifact_or_the_download_root(init, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    art = nbtracker.Artifact("safe", type="t")
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError):
            art.add_file(tmp_path / "f.txt", name=bad)
        with pytest.raises(ValueError):
            art.new_file(bad).__enter__()
    art.add_file(tmp_path / "f.txt")
    with pytest.raises(ValueError, match="already"):
        art.add_file(tmp_path / "f.txt")
    run = init()
    run.log_artifact(art)
    with pytest.raises(Exception, match="logged and cannot change"):
        art.add_file(tmp_path / "f.txt", name="g.txt")


def test_a_file_changed_after_add_file_is_refused(init, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("one")
    art = nbtracker.Artifact("changing", type="t")
    art.add_file(f)
    f.write_text("two!")
    run = init()
    with pytest.raises(ValueError, match="changed after it was added"):
        run.log_artifact(art)
    assert (
        Store(run._store.root).artifact_version_indexes(
            run._store.artifact_collection_dir("p", "changing")
        )
        == []
    )


def test_aliases_move_and_save(init, api, tmp_path: Path) -> None:
    run = init()
    for i in range(3):
        a = nbtracker.Artifact("m", type="model")
        with a.new_file("w.txt", mode="w") as fh:
            fh.write(str(i))
        run.log_artifact(a, aliases=["prod"] if i < 2 else [])
    assert run.use_artifact("m:prod").name == "m:v1"  # an alias names one version
    v0 = run.use_artifact("m:v0")
    v0.aliases = [*v0.aliases, "baseline"]
    v0.save()
    assert api.artifact("p/m:baseline").name == "m:v0"
    assert api.artifact("p/m:v2").aliases == ["latest"]


def test_path_log_artifact_and_models(init, tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"weights")
    run = init(id="r1")
    art = run.log_artifact(str(tmp_path / "model.pt"), type="model")
    assert art.name == "run-r1-model.pt:v0" and art.type == "model"
    nbtracker.log_model(str(tmp_path / "model.pt"), name="net")
    path = nbtracker.use_model("net:latest")
    assert (Path(path) / "model.pt").read_bytes() == b"weights"
    assert Path(run.use_artifact("net:v0").file(tmp_path / "x")).read_bytes() == b"weights"


_LOGGER = textwrap.dedent(
    """
    import os, sys
    import nbtracker
    root, tag, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    run = nbtracker.init(project="p", dir=root, name=tag)
    for i in range(n):
        art = nbtracker.Artifact("shared", type="dataset", metadata={"tag": tag, "i": i})
        for j in range(3):
            with art.new_file(f"part{j}.bin", mode="wb") as fh:
                fh.write(f"{tag}-{i}-{j}".encode() + os.urandom(size))
        run.log_artifact(art)
        print(art.version, flush=True)
    run.finish()
    """
)


def _check_complete(root: Path) -> list[dict]:
    """Every visible version names only objects that exist whole (size and SHA-256)."""
    store = Store(root)
    cdir = store.artifact_collection_dir("p", "shared")
    mans = []
    for n in store.artifact_version_indexes(cdir):
        man = json.loads(store.artifact_version_file(cdir, n).read_text())
        for e in man["entries"].values():
            data = store.artifact_object(e["digest"]).read_bytes()
            assert len(data) == e["size"] and hashlib.sha256(data).hexdigest() == e["digest"]
        mans.append(man)
    return mans


def test_a_killed_process_never_leaves_a_half_version(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "logger.py"
    script.write_text(_LOGGER)
    store = Store(root)
    cdir = store.artifact_collection_dir("p", "shared")
    for attempt in range(3):
        before = len(store.artifact_version_indexes(cdir))
        proc = subprocess.Popen(
            [sys.executable, str(script), str(root), f"k{attempt}", "1000", str(2_000_000)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(2):  # wait for two versions, then kill at a moment in the third
            assert proc.stdout is not None and proc.stdout.readline()
        time.sleep(0.01 + 0.03 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        mans = _check_complete(root)
        assert len(mans) >= before + 2
    # after the kills, the next process logs on normally (the lock died with its holder)
    out = subprocess.run([sys.executable, str(script), str(root), "after", "1", "10"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    mans = _check_complete(root)
    assert [m["version"] for m in mans] == list(range(len(mans)))  # no gaps, no half version
    assert mans[-1]["metadata"]["tag"] == "after"


def test_concurrent_processes_get_distinct_versions(root: Path, tmp_path: Path) -> None:
    script = tmp_path / "logger.py"
    script.write_text(_LOGGER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(root), f"w{k}", "5", "1000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(4)
    ]  # fmt: skip
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    mans = _check_complete(root)
    assert [m["version"] for m in mans] == list(range(20))
    got = sorted((m["metadata"]["tag"], m["metadata"]["i"]) for m in mans)
    assert got == sorted((f"w{k}", i) for k in range(4) for i in range(5))  # none lost
    assert len({m["digest"] for m in mans}) == 20


def test_disabled_run_logs_nothing(tmp_path: Path) -> None:
    run = nbtracker.init(mode="disabled")
    art = nbtracker.Artifact("x", type="t")
    assert run.log_artifact(art) is art and art.state == "PENDING"
    assert not os.path.exists(tmp_path / "nbruns")


def test_tables_in_artifacts(init, api) -> None:
    table = nbtracker.Table(columns=["id", "pred"], data=[[1, "cat"], [2, "dog"]])
    run = init()
    art = nbtracker.Artifact("preds", type="predictions")
    art.add(table, "val")
    with pytest.raises(TypeError, match="takes a nbtracker.Table"):
        art.add({"a": 1}, "x")
    run.log_artifact(art)
    back = api.artifact("p/preds:v0").get("val")
    assert back.get_dataframe().to_dict("records") == [
        {"id": 1, "pred": "cat"},
        {"id": 2, "pred": "dog"},
    ]
    assert api.artifact("p/preds:v0").get("missing") is None
    assert [e.path for e in art.files()] == ["val.table.parquet"]


def test_repair_removes_old_artifact_temp_files_only(root: Path) -> None:
    store = Store(root)
    d = store.artifact_objects_dir() / "ab"
    d.mkdir(parents=True)
    old, new = d / ".abc.x.tmp", d / ".abd.y.tmp"
    old.write_bytes(b"half")
    new.write_bytes(b"being written")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    store.repair()
    assert not old.exists() and new.exists()


def test_storage_trouble_is_a_warning_not_a_crash(init, root: Path, tmp_path: Path) -> None:
    from nbtracker.errors import StorageWarning

    run = init()
    objects = Store(root).artifact_objects_dir()
    objects.parent.mkdir(parents=True)
    objects.write_text("a file where the object folder goes")  # every write there fails
    (tmp_path / "f.txt").write_text("x")
    art = nbtracker.Artifact("blocked", type="t")
    art.add_file(tmp_path / "f.txt")
    with pytest.warns(StorageWarning, match="could not store artifact 'blocked'"):
        assert run.log_artifact(art) is art
    assert art.state == "PENDING"
    run.log({"loss": 1.0})  # training goes on
