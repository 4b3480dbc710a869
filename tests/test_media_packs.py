"""How logged images reach the disk: one pack per log() call, each image stored once, no
pandas on the logging path, nothing torn by a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import nbtracker
from nbtracker import media
from nbtracker.data_types import Image, Table, _media


def _images_dir(run) -> Path:  # type: ignore[no-untyped-def]
    return run.dir / "media" / "images"


def _stored_pngs(run) -> int:  # type: ignore[no-untyped-def]
    """How many PNGs the run's media folder holds, inside packs and in files of their own."""
    n = 0
    for p in _images_dir(run).iterdir():
        if p.name.endswith(_media.PACK_SUFFIX):
            n += len(_media.pack_contents(p))
        elif p.suffix == ".png":
            n += 1
    return n


def _digits(n: int, seed: int) -> list[Image]:
    rng = np.random.default_rng(seed)
    return [Image(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(n)]


def test_a_table_is_one_pack_and_each_image_is_stored_once(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    imgs = _digits(200, 0)
    t = Table(columns=["image", "i"], data=[[img, i] for i, img in enumerate(imgs)])
    run.log({"t": t})
    (pack,) = os.listdir(_images_dir(run))
    assert pack.startswith("pack-") and _stored_pngs(run) == 200
    run.log({"t": t})  # the same images again: nothing new on disk
    assert os.listdir(_images_dir(run)) == [pack]
    # the same pixels in new Image objects, plus 10 new images: one new pack of 10
    again = [Image(img.to_numpy()) for img in imgs[:50]] + _digits(10, 1)
    run.log({"t2": Table(columns=["image"], data=[[img] for img in again])})
    assert len(os.listdir(_images_dir(run))) == 2 and _stored_pngs(run) == 210
    run.finish()
    back = media.load_table(run.dir, "t2", images="array")["image"]
    assert all((a == img.to_numpy()).all() for a, img in zip(back, again, strict=True))
    assert Table(dataframe=media.load_table(run.dir, "t")) == t


def test_a_resumed_run_finds_the_images_it_stored(init, root) -> None:  # type: ignore[no-untyped-def]
    run = init()
    imgs = _digits(30, 2)
    run.log({"t": Table(columns=["image"], data=[[img] for img in imgs])})
    run.log({"one": imgs[0]})
    run.finish()  # drops this process's index: the resumed run rebuilds it from the files
    before = sorted(os.listdir(_images_dir(run)))
    again = nbtracker.init(project=run.project, id=run.id, resume="must", dir=str(root))
    again.log({"t": Table(columns=["image"], data=[[Image(i.to_numpy())] for i in imgs])})
    again.finish()
    assert sorted(os.listdir(_images_dir(run))) == before and _stored_pngs(run) == 30


def test_images_path_extracts_png_files_and_exports_stand_alone(init, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = init()
    imgs = _digits(5, 3)
    t = Table(columns=["image", "name"], data=[[img, f"n{i}"] for i, img in enumerate(imgs)])
    run.log({"t": t})
    run.finish()
    paths = media.load_table(run.dir, "t", images="path")["image"].tolist()
    for p, img in zip(paths, imgs, strict=True):
        assert Path(p).name == f"{img.sha256}.png" and Path(p).read_bytes() == img.png_bytes()
    dest = tmp_path / "out" / "t.parquet"
    media.export_table(run.dir, "t", dest, images="path")
    exported = sorted(p.name for p in (tmp_path / "out" / "t_images").iterdir())
    assert exported == sorted(f"{img.sha256}.png" for img in imgs)
    assert Table.from_parquet(dest) == t


def test_hostile_column_names_and_keys_round_trip(init) -> None:  # type: ignore[no-untyped-def]
    names = ["it's", 'say "hi"', "a; DROP TABLE t; --", "é/..\\x", "{nbtracker: 1}"]
    t = Table(columns=names)
    t.add_data(1, "x'y", True, None, [1, "two"])
    t.add_data(None, None, None, float("nan"), None)
    run = init()
    key = "k'ey\"; DROP TABLE runs; --"
    run.log({key: t})
    run.finish()
    df = media.load_table(run.dir, key)
    assert list(df.columns) == names and Table(dataframe=df) == t
    assert df[names[3]].isna().all() and df[names[1]][0] == "x'y"


def test_logging_a_table_imports_neither_pandas_nor_pyarrow(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = textwrap.dedent(
        """
        import sys, numpy as np, nbtracker as nbt
        run = nbt.init(project="p", dir=sys.argv[1])
        rng = np.random.default_rng(0)
        t = nbt.Table(columns=["image", "pred", "target"] + [f"score_{i}" for i in range(10)])
        for img, p in zip(rng.random((300, 1, 28, 28), dtype=np.float32), rng.random((300, 10))):
            t.add_data(nbt.Image(img[0] * 255), int(p.argmax()), 3, *p)
        run.log({"predictions_table": t, "loss": 0.5})
        run.finish()
        from nbtracker.store import wait_for_background
        wait_for_background()
        print(sorted(m for m in ("pandas", "pyarrow") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "root")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    (run_dir,) = [p for p in (tmp_path / "root" / "runs").glob("*/*") if p.is_dir()]
    df = media.load_table(run_dir, "predictions_table", images="array")
    assert len(df) == 300 and df["image"][0].shape == (28, 28)


def test_a_kill_while_logging_tables_leaves_every_version_readable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = textwrap.dedent(
        """
        import sys, numpy as np, nbtracker as nbt
        run = nbt.init(project="p", dir=sys.argv[1])
        print("ready", flush=True)
        rng = np.random.default_rng(0)
        step = 0
        while True:
            t = nbt.Table(columns=["image", "score"])
            for _ in range(100):
                t.add_data(nbt.Image(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), 0.5)
            run.log({"t": t, "step_done": step})
            step += 1
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "root")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        (run_dir,) = [p for p in (tmp_path / "root" / "runs").glob("*/*") if p.is_dir()]
        deadline = time.monotonic() + 60
        while len(media.table_versions(run_dir, "t")) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # kill it in the middle of writing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    versions = media.table_versions(run_dir, "t")
    assert len(versions) >= 5
    for step, _ in versions:
        df = media.load_table(run_dir, "t", step=step, images="array")
        assert len(df) == 100 and all(a.shape == (32, 32, 3) for a in df["image"])
    packs = [p for p in (run_dir / "media" / "images").iterdir() if p.suffix == ".pngs"]
    assert len(packs) >= len(versions)  # the last pack may be one whose table was not yet written
    # `nbtracker repair` removes what the kill left half-written (temp files: never read)
    planted = run_dir / "media" / "images" / ".pack-0123.pngs.99999.tmp"  # as a kill leaves it
    planted.write_bytes(b"\x89PNG half")
    left = list(run_dir.rglob(".*.tmp"))
    out = subprocess.run(
        [sys.executable, "-m", "nbtracker", "repair", "--root", str(tmp_path / "root")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "indexed 1 runs" in out.stdout
    assert f"removed {len(left)} temp files" in out.stdout, out.stdout
    assert not list(run_dir.rglob(".*.tmp"))
    assert len(media.table_versions(run_dir, "t")) == len(versions)  # nothing real removed


def test_a_table_that_cannot_be_stored_warns_and_the_row_is_kept(init) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from nbtracker.errors import LogValueWarning

    run = init()
    bad = Table(columns=["text"], data=[["lone surrogate \ud800"]])  # not encodable as UTF-8
    with pytest.warns(LogValueWarning, match=r"could not log 'preds'.*UTF-8.*your code goes on"):
        run.log({"preds": bad, "loss": 0.5, "img": _digits(1, 4)[0]})
    run.log({"loss": 0.25})
    run.finish()
    from nbtracker.store import wait_for_background

    wait_for_background()
    assert media.list_tables(run.dir) == {}
    assert list((run.dir / "media" / "tables").rglob("*")) == [run.dir / "media/tables/preds"]
    assert run.summary["loss"] == 0.25 and "img" in run.summary and "preds" not in run.summary
