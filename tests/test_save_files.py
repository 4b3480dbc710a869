"""save(): files copied into a run (policies now/end/live), read back through the Api;
names that would leave the run's folder are refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import nbtracker
from nbtracker import files as files_mod
from nbtracker.store import CAPTURE_FILES


def _saved(files: list) -> list:
    """The files save() made (not those the capture keeps there: output.log, ...)."""
    theirs = set(CAPTURE_FILES.values())
    return [f for f in files if f.name.split("/")[0] not in theirs]


def _names(api: nbtracker.Api, run: nbtracker.Run) -> list[str]:
    return [f.name for f in _saved(api.run(f"{run.project}/{run.id}").files())]


def test_save_now_keeps_the_folders_under_the_base_path(init, api, tmp_path: Path) -> None:
    (tmp_path / "these/are/myfiles").mkdir(parents=True)
    (tmp_path / "these/are/myfiles/a.txt").write_text("A")
    (tmp_path / "these/are/myfiles/b.txt").write_text("B")
    run = init()
    out = nbtracker.save("these/are/myfiles/*", policy="now")
    assert len(out) == 2 and all(Path(p).is_file() for p in out)
    run.save("these/are/myfiles/a.txt", base_path="these", policy="now")
    run.finish()
    assert _names(api, run) == [
        "are/myfiles/a.txt", "these/are/myfiles/a.txt", "these/are/myfiles/b.txt",
    ]  # fmt: skip
    f = api.run(f"p/{run.id}").file("these/are/myfiles/b.txt")
    assert f.size == 1 and f.mimetype == "text/plain"
    with f.download(tmp_path / "dl") as fh:
        assert fh.read() == "B"
    with pytest.raises(ValueError, match="replace=True"):
        f.download(tmp_path / "dl")
    assert f.download(tmp_path / "dl", exist_ok=True).read() == "B"
    with pytest.raises(FileNotFoundError, match="no saved file 'nope'"):
        api.run(f"p/{run.id}").file("nope")


def test_absolute_glob_keeps_one_folder_level_as_w_and_b(init, api, tmp_path: Path) -> None:
    d = tmp_path / "outside" / "run123"
    d.mkdir(parents=True)
    (d / "x.txt").write_text("x")
    run = init()
    run.save(str(d / "*.txt"), policy="now")
    run.save(str(d / "x.txt"), base_path=str(tmp_path), policy="now")
    run.finish()
    assert _names(api, run) == ["outside/run123/x.txt", "run123/x.txt"]


def test_policy_now_copies_once_end_at_finish_live_follows_changes(
    init, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_mod, "LIVE_POLL_S", 0.05)
    for n in ("now", "end", "live"):
        (tmp_path / f"{n}.txt").write_text(f"{n} v1")
    run = init()
    run.save("now.txt", policy="now")
    run.save("end.txt", policy="end")
    run.save("live.txt", policy="live")
    run.save("later-*.txt", policy="live")  # a live glob picks up files made later
    fdir = run._store.files_dir(run.dir)
    assert not (fdir / "end.txt").exists()  # not before finish()
    for n in ("now", "end", "live"):
        (tmp_path / f"{n}.txt").write_text(f"{n} v2!")
    (tmp_path / "later-1.txt").write_text("late")
    deadline = time.monotonic() + 10
    while (fdir / "live.txt").read_text() != "live v2!" or not (fdir / "later-1.txt").exists():
        assert time.monotonic() < deadline, "the live file was not copied again"
        time.sleep(0.02)
    (tmp_path / "live.txt").write_text("live v3, at the end")
    run.finish()
    files = {f.name: f for f in _saved(api.run(f"p/{run.id}").files())}
    read = {name: Path(f.url[len("file://") :]).read_text() for name, f in files.items()}
    assert read == {
        "now.txt": "now v1",  # copied once, when save() was called
        "end.txt": "end v2!",  # copied at finish()
        "live.txt": "live v3, at the end",  # followed, and copied at finish() too
        "later-1.txt": "late",
    }


@pytest.mark.parametrize(
    ("glob_str", "base_path", "why"),
    [
        ("../secret.txt", None, "not inside base_path"),
        ("/etc/passwd", "/nonexistent/base", "not inside base_path"),
        ("sub", "sub", "the base path itself"),
    ],
)
def test_names_that_leave_the_run_are_refused(init, glob_str, base_path, why) -> None:
    run = init()
    with pytest.raises(ValueError, match=why):
        run.save(glob_str, base_path=base_path)
    with pytest.raises(ValueError, match="'live', 'now' or 'end'"):
        run.save("x", policy="sometimes")


def test_a_symlink_in_the_files_folder_is_never_written_through(init, api, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "m.pt").write_text("weights")
    run = init()
    fdir = run._store.files_dir(run.dir)
    fdir.mkdir(parents=True, exist_ok=True)  # the capture may have made it
    os.symlink(outside, fdir / "ckpt")  # someone put a link where a folder goes
    with pytest.raises(ValueError, match="symbolic link"):
        run.save("ckpt/m.pt", policy="now")
    assert list(outside.iterdir()) == []  # nothing was written through the link


def test_unsafe_relative_names() -> None:
    for bad in ("", "/abs", "a/../../b", "..", "a\\b", "a\x00b"):
        with pytest.raises(ValueError):
            files_mod.safe_relpath(bad)
    assert files_mod.safe_relpath("./a//b/") == "a/b"


def test_file_download_refuses_a_name_that_leaves_root(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("x")
    bad = files_mod.File(src, "../../escape.txt")
    with pytest.raises(ValueError, match="walks out"):
        bad.download(tmp_path / "root")
    assert not (tmp_path / "escape.txt").exists()


def test_files_written_into_run_dir_keep_their_names_and_restore(init, api, root) -> None:
    run = init(id="r1")
    (run.dir / "checkpoint-1.txt").write_text("c1")  # W&B's os.path.join(run.dir, ...)
    nbtracker.save(os.path.join(run.dir, "checkpoint*"), policy="now")
    run.finish()
    assert _names(api, run) == ["checkpoint-1.txt"]
    again = init(id="r1", resume="allow")
    fh = nbtracker.restore("checkpoint-1.txt")
    assert fh.read() == "c1"
    assert nbtracker.restore("missing.txt") is None
    again.finish()


def test_disabled_run_saves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    nbtracker.init(mode="disabled")
    assert nbtracker.save("a.txt") == []
