"""Table, Image, Histogram, Html: every input form, the bad ones, storage and HTML safety."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import nbtracker
from nbtracker import media
from nbtracker.data_types import Histogram, Html, Image, Table, _media
from nbtracker.data_types import image as image_module
from nbtracker.data_types._png import decode_png, encode_png
from nbtracker.errors import ValueConversionWarning

PIL = pytest.importorskip("PIL.Image")
XSS = "<img src=x onerror=alert(1)>"


class FakeTensor:
    """Stands in for a torch tensor: .detach().cpu().numpy(), .numpy(), indexing, arithmetic."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = np.asarray(arr)

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.arr

    def __getitem__(self, i: int) -> FakeTensor:
        return FakeTensor(self.arr[i])

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (FakeTensor(a) for a in self.arr)


def _png_pixels(path: Path) -> np.ndarray:
    return np.asarray(PIL.open(path))


# -- Image: input forms -------------------------------------------------------------------
def test_image_uint8_hw_hwc_chw() -> None:
    hw = np.random.randint(0, 256, (5, 7), dtype=np.uint8)
    assert Image(hw).to_numpy().tolist() == hw.tolist()
    assert Image(hw).mode == "L" and (Image(hw).width, Image(hw).height) == (7, 5)
    hwc = np.random.randint(0, 256, (5, 7, 3), dtype=np.uint8)
    assert Image(hwc).mode == "RGB" and (Image(hwc).to_numpy() == hwc).all()
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    assert (Image(chw).to_numpy() == hwc).all()
    rgba = np.random.randint(0, 256, (4, 6, 4), dtype=np.uint8)
    assert Image(rgba).mode == "RGBA"
    assert Image(hw[None, None]).to_numpy().shape == (5, 7)  # leading 1-axes dropped
    assert Image(hw[:, :, None]).mode == "L"


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    image_module._warned.clear()


def test_image_float_ranges_follow_wandb_with_rounding() -> None:
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert (Image(u8 / 255.0).to_numpy() == u8).all()  # 0..1, exact after rounding
    assert (Image(u8.astype(np.float32)).to_numpy() == u8).all()  # 0..255 as is
    minus = Image(np.array([[-1.0, 0.0, 1.0]])).to_numpy()
    assert minus.tolist() == [[0, 128, 255]]
    with pytest.warns(ValueConversionWarning, match="clipped"):
        clipped = Image(np.array([[-300.0, 100.0, 700.0]])).to_numpy()
    assert clipped.tolist() == [[0, 100, 255]]
    assert Image(np.array([[True, False]])).to_numpy().tolist() == [[255, 0]]
    assert Image(np.array([[0, 200]], dtype=np.int64)).to_numpy().tolist() == [[0, 200]]
    assert Image(np.array([[0.5, 0.5]]), normalize=False).to_numpy().tolist() == [[0, 0]]
    with pytest.warns(ValueConversionWarning, match="NaN"):
        Image(np.array([[np.nan, 1.0]]))


def test_image_torch_like_pil_and_path(tmp_path: Path) -> None:
    chw = np.random.rand(3, 4, 5).astype(np.float32)
    img = Image(FakeTensor(chw))
    assert img.mode == "RGB" and img.to_numpy().shape == (4, 5, 3)
    ambiguous = np.random.rand(3, 3, 3)  # torch reads (C,H,W); numpy reads (H,W,C)
    assert (
        Image(FakeTensor(ambiguous)).to_numpy() == Image(ambiguous.transpose(1, 2, 0)).to_numpy()
    ).all()

    pil = PIL.fromarray(np.random.randint(0, 256, (6, 8, 3), dtype=np.uint8))
    assert (Image(pil).to_numpy() == np.asarray(pil)).all()
    assert Image(pil.convert("P")).mode == "RGB"
    assert Image(pil.convert("1")).mode == "L"
    path = tmp_path / "x.jpg"
    pil.save(path)
    from_file = Image(path, caption="jpeg")
    assert from_file.to_numpy().shape == (6, 8, 3) and from_file.caption == "jpeg"
    png = tmp_path / "y.png"
    pil.save(png)
    assert (Image(str(png)).to_numpy() == np.asarray(pil)).all()
    assert (Image(io.BytesIO(png.read_bytes())).to_numpy() == np.asarray(pil)).all()
    assert Image(Image(pil), caption="copy").caption == "copy"


def test_image_mode_conversion() -> None:
    rgb = np.random.randint(0, 256, (4, 4, 3), dtype=np.uint8)
    gray = Image(rgb, mode="L").to_numpy()
    assert gray.shape == (4, 4)
    assert (gray == np.asarray(PIL.fromarray(rgb).convert("L"))).mean() > 0.9  # same luma
    assert Image(rgb, mode="RGBA").to_numpy()[..., 3].min() == 255
    assert Image(rgb[..., 0], mode="RGB").mode == "RGB"
    with pytest.raises(ValueError, match="mode must be one of"):
        Image(rgb, mode="CMYK")


@pytest.mark.parametrize(
    ("data", "err", "match"),
    [
        (np.zeros(10), ValueError, r"shape \(10,\)"),
        (np.zeros((2, 3, 4, 5)), ValueError, "shape"),
        (np.zeros((7, 7, 7)), ValueError, "C in 1-4"),
        (np.zeros((0, 5)), ValueError, "shape"),
        (np.array([["a", "b"]]), TypeError, "dtype"),
        (np.zeros((2, 2), dtype=complex), TypeError, "dtype"),
        (object(), TypeError, "cannot read"),
        ("/no/such/file.png", FileNotFoundError, "no image file"),
    ],
)
def test_image_bad_inputs(data: object, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        Image(data)


def test_image_huge_is_downscaled_with_one_warning() -> None:
    big = np.zeros((5000, 300), dtype=np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = Image(big)
    assert len([w for w in caught if "down-scaled" in str(w.message)]) == 1
    assert img.height <= 4096 and img.width == 150


def test_png_codec_is_deterministic_and_readable() -> None:
    for shape in [(1, 1), (3, 5), (3, 5, 2), (6, 4, 3), (2, 9, 4)]:
        a = np.random.randint(0, 256, shape, dtype=np.uint8)
        data = encode_png(a)
        assert data == encode_png(a.copy())
        assert (np.asarray(PIL.open(io.BytesIO(data))) == a).all()
        assert (decode_png(data) == a).all()


# -- Image: logging -----------------------------------------------------------------------
def test_image_logged_alone_and_in_lists_is_stored_once(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    a = np.random.randint(0, 256, (8, 8, 3), dtype=np.uint8)
    run.log({"one": Image(a, caption="first")})
    run.log({"again": Image(a.copy())})
    run.log({"samples": [Image(a), Image(a[:, :, 0], caption=XSS)]})
    files = sorted(os.listdir(run.dir / "media" / "images"))
    assert len(files) == 2  # same pixels -> one file
    ref = json.loads(run.summary["samples"])
    assert ref["_type"] == "images/separated" and ref["count"] == 2
    back = media.load_images(run.dir, ref, images="array")
    assert (back[0] == a).all() and (back[1] == a[:, :, 0]).all()
    one = media.load_image(run.dir, run.summary["one"])
    assert one.info["caption"] == "first" and (np.asarray(one) == a).all()
    assert (_png_pixels(run.dir / json.loads(run.summary["again"])["path"]) == a).all()
    run.finish()


def test_long_numeric_lists_become_histograms(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    run.log({"w": [i / 10 for i in range(33)], "short": [0.1, 0.2, 0.3]})
    assert json.loads(run.summary["w"])["_type"] == "histogram"
    assert run.summary["short"] == [0.1, 0.2, 0.3]
    run.finish()


# -- Histogram ----------------------------------------------------------------------------
def test_histogram_forms() -> None:
    h = Histogram([1, 2, 2, 3, float("nan"), float("inf")], num_bins=3)
    assert sum(h.histogram) == 4 and len(h.bins) == 4
    t = Histogram(FakeTensor(np.arange(100.0).reshape(10, 10)), num_bins=10)
    assert t.histogram == [10] * 10
    counts, edges = np.histogram(np.arange(10), bins=5)
    assert Histogram(np_histogram=(counts, edges)).histogram == counts.tolist()
    assert Histogram(np_histogram=(counts, edges)) == Histogram(np_histogram=(counts, edges))
    assert Histogram([]).histogram == [0] * 64


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({}, ValueError, "needs a sequence"),
        ({"sequence": [1], "num_bins": 0}, ValueError, "between 1 and 512"),
        ({"sequence": [1], "num_bins": 513}, ValueError, "between 1 and 512"),
        ({"sequence": [1], "num_bins": 2.5}, TypeError, "num_bins must be an int"),
        ({"sequence": ["a", "b"]}, TypeError, "needs numbers"),
        ({"np_histogram": ([1, 2], [0, 1])}, ValueError, r"len\(edges\)"),
        ({"np_histogram": ([1, -2], [0, 1, 2])}, ValueError, ">= 0"),
        ({"np_histogram": ([1, 2], [0, 2, 1])}, ValueError, "increasing"),
        ({"np_histogram": 5}, ValueError, "counts, edges"),
        ({"sequence": [1], "np_histogram": ([1], [0, 1])}, ValueError, "not both"),
    ],
)
def test_histogram_bad_inputs(kwargs: dict, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        Histogram(**kwargs)


def test_histogram_logged_per_step(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    for step in range(3):
        run.log({"weights": Histogram(np.random.randn(100) + step)})
    run.finish()
    assert run._key_types["weights"] == "media:histogram"


# -- Table: construction and checks -------------------------------------------------------
def test_table_basic_api() -> None:
    t = Table(columns=["a", "b", "c"], data=[[1, "x", True], [2.5, None, False]])
    t.add_data(np.int64(3), "z", np.bool_(True))
    assert t.columns == ["a", "b", "c"] and len(t) == 3
    assert t.column_types == {"a": "number", "b": "str", "c": "bool"}
    assert t.data[2] == [3, "z", True] and type(t.data[2][0]) is int
    assert t.get_column("a") == [1, 2.5, 3]
    assert t.get_column("a", convert_to="numpy").dtype == np.float64
    assert [i for i, _ in t.iterrows()] == [0, 1, 2] == t.get_index()
    assert list(t) == t.data
    t.add_column("d", [[1, 2], (3,), np.array([4.0])])
    assert t.get_column("d") == [[1, 2], [3], [4.0]]
    t.add_computed_columns(lambda i, row: {"twice": row["a"] * 2})
    assert t.get_column("twice") == [2, 5.0, 6]
    assert Table().columns == ["Input", "Output", "Expected"]
    assert Table(data=np.zeros((2, 4))).columns == [f"Column {i}" for i in range(1, 5)]
    assert Table(columns=["x"], dtype=[int]).column_types == {"x": "number"}
    with pytest.raises(KeyError, match="no column 'nope'"):
        t.get_column("nope")


def test_table_rejects_bad_rows_and_adds_nothing() -> None:
    t = Table(columns=["img", "pred", "name"])
    t.add_data(Image(np.zeros((2, 2), np.uint8)), 1, "cat")
    with pytest.raises(ValueError, match=r"add_data got 2 values for 3 columns"):
        t.add_data(1, 2)
    with pytest.raises(TypeError, match=r"column 'pred' holds number values .* row 1 has a str"):
        t.add_data(None, "seven", "dog")
    with pytest.raises(TypeError, match=r"column 'img' holds image values"):
        t.add_data(np.zeros((2, 2)), 2, "dog")
    with pytest.raises(TypeError, match="column 'name'.*cannot hold a builtins.object"):
        t.add_data(None, 2, object())
    with pytest.raises(TypeError, match="own column"):
        t.add_data(None, 2, [Image(np.zeros((2, 2)))])
    assert len(t) == 1 and t.columns == ["img", "pred", "name"]  # nothing half-added
    assert t.column_types["name"] == "str"
    t.add_data(None, 2, None)
    with pytest.raises(ValueError, match="unique"):
        Table(columns=["a", "a"])
    with pytest.raises(ValueError, match="got 1 values for 2 rows"):
        t.add_column("extra", [1])
    with pytest.raises(ValueError, match="already has a column"):
        t.add_column("pred", [1, 2])
    with pytest.raises(TypeError, match="bool"):  # bools are not numbers
        Table(columns=["n"], data=[[1], [True]])
    mixed = Table(columns=["n"], data=[[1], ["one"]], allow_mixed_types=True)
    assert mixed.column_types == {"n": "mixed"}


def test_table_logged_versions_and_storage(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    t = Table(columns=["image", "pred", "label/with <b>"])
    for i in range(3):
        t.add_data(Image(np.full((4, 4), i * 50, np.uint8)), i, "c" * i)
    run.log({"predictions_table": t})
    t.add_data(Image(np.zeros((4, 4), np.uint8)), 9, "later")
    run.log({"predictions_table": t, "loss": 0.5})
    run.log({"../evil/key": t})
    run.finish()
    assert media.list_tables(run.dir) == {"../evil/key": [2], "predictions_table": [0, 1]}
    assert all(
        p.is_relative_to(run.dir / "media") for _, p in media.table_versions(run.dir, "../evil/key")
    )
    ref = json.loads(run.summary["predictions_table"])
    assert ref["_type"] == "table-file" and ref["nrows"] == 4 and ref["ncols"] == 3
    assert ref["path"] == "media/tables/predictions_table/00000001.parquet"
    assert (run.dir / ref["path"]).exists()
    assert len(media.load_table(run.dir, "predictions_table", step=0)) == 3
    assert len(media.load_table(run.dir, "predictions_table")) == 4
    assert len(media.load_table(run.dir, ref)) == 4
    # 4 image cells in 3 versions, 3 distinct images (the zeros image is in 2 rows): the
    # first log() wrote one pack of 3 PNGs; the later ones found every image stored
    (pack,) = os.listdir(run.dir / "media" / "images")
    assert pack.startswith("pack-") and pack.endswith(".pngs")
    assert len(_media.pack_contents(run.dir / "media" / "images" / pack)) == 3
    df = media.load_table(run.dir, "predictions_table", images="image")
    assert df["image"][0].sha256 == df["image"][3].sha256
    assert (df["image"][0].to_numpy() == 0).all() and (df["image"][1].to_numpy() == 50).all()
    with pytest.raises(media.TableNotFound, match=r"logged at steps \[0, 1\]"):
        media.load_table(run.dir, "predictions_table", step=5)
    with pytest.raises(media.TableNotFound, match="tables logged"):
        media.load_table(run.dir, "nope")
    import duckdb

    path = media.table_path(run.dir, "predictions_table")
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT pred, \"image\".path FROM read_parquet('{path}') ORDER BY pred DESC LIMIT 1"
        ).fetchall()
    assert rows[0][0] == 9 and rows[0][1].startswith("media/images/")


def test_table_ref_outside_run_is_refused(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    with pytest.raises(ValueError, match="outside the run"):
        media.load_table(run.dir, {"_type": "table-file", "path": "../../x.parquet"})
    run.finish()


# -- HTML ---------------------------------------------------------------------------------
def test_static_html_escapes_everything() -> None:
    t = Table(columns=[XSS, "img", "html", "list"])
    t.add_data(XSS, Image(np.zeros((3, 3), np.uint8), caption=XSS), Html(XSS), [XSS])
    out = t._repr_html_()
    assert "<img src=x" not in out and "onerror=alert(1)>" not in out
    assert out.count("&lt;img src=x onerror=alert(1)&gt;") >= 4
    assert 'src="data:image/png;base64,' in out
    assert "<img src=x" not in Image(np.zeros((3, 3), np.uint8), caption=XSS)._repr_html_()
    frame = Html(XSS)._repr_html_()
    assert 'sandbox=""' in frame and "<img src=x" not in frame


def test_static_html_shows_first_rows_with_thumbnails() -> None:
    t = Table(columns=["img", "n"])
    for i in range(30):
        t.add_data(Image(np.full((300, 200, 3), i, np.uint8)), i)
    out = t._repr_html_()
    assert out.count("<tr>") == 21  # header + 20 rows
    assert "20 of 30 rows" in out
    import base64

    first = out.split('src="data:image/png;base64,')[1].split('"')[0]
    thumb = PIL.open(io.BytesIO(base64.b64decode(first)))
    assert max(thumb.size) <= 64


def test_html_logged(init, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = init()
    page = tmp_path / "p.html"
    page.write_text("<p>hello</p>", encoding="utf-8")
    run.log({"page": Html(str(page)), "snippet": Html("<b>x</b>")})
    assert Html(str(page)).data == "<p>hello</p>"
    with pytest.raises(TypeError):
        Html(42)
    ref = json.loads(run.summary["snippet"])
    assert (run.dir / ref["path"]).read_text(encoding="utf-8") == "<b>x</b>"
    run.finish()


def test_public_names() -> None:
    assert nbtracker.Table is Table and nbtracker.Image is Image
    assert nbtracker.Histogram is Histogram and nbtracker.Html is Html


def test_stored_large_image_keeps_only_png(init) -> None:  # type: ignore[no-untyped-def]
    run = init()
    a = np.random.randint(0, 256, (200, 300, 3), dtype=np.uint8)
    img = Image(a, caption="big")
    run.log({"big": img})
    assert img._pixels is None and img._png is not None
    assert (img.width, img.height, img.mode) == (300, 200, "RGB")
    assert (img.to_numpy() == a).all()
    run.finish()


def test_torn_image_file_is_rewritten_and_removed_folder_recreated(init) -> None:  # type: ignore[no-untyped-def]
    import shutil

    run = init()
    img = Image(np.random.randint(0, 256, (16, 16, 3), dtype=np.uint8))
    path = run.dir / "media" / "images" / f"{img.sha256}.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(img.png_bytes()[:10])  # as a crash mid-write would leave it
    run.log({"a": img})
    assert path.read_bytes() == img.png_bytes()
    shutil.rmtree(run.dir / "media")
    run.log({"b": img})
    assert path.read_bytes() == img.png_bytes()
    run.finish()


def test_storage_failure_warns_and_training_goes_on(init) -> None:  # type: ignore[no-untyped-def]
    from nbtracker.errors import StorageWarning

    run = init()
    run.log({"x": 1})
    (run.dir / "media").write_text("not a folder")  # every media write fails
    t = Table(columns=["img"], data=[[Image(np.zeros((2, 2), np.uint8))]])
    with pytest.warns(StorageWarning):
        run.log({"one": Image(np.ones((2, 2), np.uint8))})
    with pytest.warns(StorageWarning):
        run.log({"many": [Image(np.ones((3, 3), np.uint8))], "t": t, "h": Html("<b>")})
    run.log({"loss": 0.5})  # and logging goes on
    assert "error" in json.loads(run.summary["one"])
    assert run.summary["loss"] == 0.5
    run.finish()


def test_bfloat16_like_tensors_go_through_float() -> None:
    class BF16(FakeTensor):
        def numpy(self) -> np.ndarray:
            msg = "Got unsupported ScalarType BFloat16"
            raise TypeError(msg)

        def float(self) -> FakeTensor:
            return FakeTensor(self.arr.astype(np.float32))

    data = np.random.rand(4, 5).astype(np.float32)
    assert Image(BF16(data)).to_numpy().shape == (4, 5)
    assert sum(Histogram(BF16(data), num_bins=4).histogram) == 20
    assert Table(columns=["v"], data=[[BF16(np.float32(0.5))]]).data == [[0.5]]


def test_table_cast_fixes_a_column_type() -> None:
    t = Table(columns=["score", "img", "name"])
    assert (t.cast("score", float), t.cast("img", Image), t.cast("name", "str")) == (
        "number", "image", "str")  # fmt: skip
    t.add_data(1, Image(np.zeros((2, 2), np.uint8)), "a")
    with pytest.raises(TypeError, match="column 'score' holds number"):
        t.add_data("high", None, None)  # checked against the cast type
    with pytest.raises(TypeError, match=r"cannot cast column 'name' to number: row 0 holds a str"):
        t.cast("name", int)
    assert t.column_types == {"score": "number", "img": "image", "name": "str"}  # unchanged
    with pytest.raises(ValueError, match="is not one of"):
        t.cast("score", "nmuber")  # a typo is an error, not a silent text column
    with pytest.raises(ValueError, match="is not one of"):
        t.cast("score", object)
    with pytest.raises(KeyError, match="no column 'nope'"):
        t.cast("nope", int)
    assert Table(columns=["x"]).cast("x", 0.5) == "number"  # an example value, as in W&B
    assert len(t) == 1
