"""Inputs that cannot hurt (issue 7): corrupt, truncated, mislabelled, degenerate,
non-finite and hostile-named files through ``load_micrograph``, ``load_micrograph_bytes``,
``analyze_batch`` and the dashboard's upload (large images: test_bad_inputs_large.py).

Every bad file is written in a tmp dir by the test. Each input must give a valid result
or a :class:`TempipeError` whose message names the file and says what to do; a batch keeps
its good files and lists the failures.
"""

import io
import os
import re
import tempfile
import time
import tomllib
import warnings
import zipfile

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from skimage.draw import disk

from tempipe.errors import InputFileError, ParameterError
from tempipe.io import load_micrograph, load_micrograph_bytes, save_micrograph
from tempipe.pipeline import analyze_batch, analyze_image, analyze_micrograph
from tempipe.simulate import simulate_micrograph

from _bad_files import ROOT, bt601, cut, messages_say, png_bytes, png_header_only, uint8
from _dm4 import write_dm


@pytest.fixture(scope="module")
def sim():
    """A calibrated 256² field of 12 well separated particles (10 inside the border)."""
    return simulate_micrograph((256, 256), n_particles=12, pixel_size_nm=0.5,
                               touching_fraction=0.0, rng=3)


@pytest.fixture(scope="module")
def interior_truth(sim):
    lab = sim.labels
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return len(set(np.unique(lab).tolist()) - {0} - set(edge.tolist()))


def analyse(micrograph, **kw):
    return analyze_micrograph(micrograph, shape_model=None, **kw)


# --- truncated, corrupt, mislabelled files ------------------------------------------------

def make_bad(kind, folder, sim):
    grey = uint8(sim.image)
    rng = np.random.default_rng(0)
    if kind == "png cut in half":
        Image.fromarray(grey).save(folder / "half.png")
        return cut(folder / "half.png")
    if kind == "jpeg cut in half":
        Image.fromarray(grey).save(folder / "half.jpg", quality=90)
        return cut(folder / "half.jpg")
    if kind == "tiff cut in half":
        tifffile.imwrite(folder / "half.tif", sim.image)
        return cut(folder / "half.tif")
    if kind == "zlib tiff cut in half":
        tifffile.imwrite(folder / "half.tif", sim.image, compression="zlib", rowsperstrip=16)
        return cut(folder / "half.tif")
    if kind == "tiled tiff cut in half":
        tifffile.imwrite(folder / "half.tif", grey, tile=(64, 64), compression="zlib")
        return cut(folder / "half.tif")
    if kind == "tiff header only":
        tifffile.imwrite(folder / "head.tif", sim.image)
        return cut(folder / "head.tif", 8 / (folder / "head.tif").stat().st_size)
    if kind in ("dm3 cut in half", "dm4 cut in half"):
        version = int(kind[2])
        return cut(write_dm(folder / f"half.dm{version}", sim.image.astype(np.float32),
                             (0.5, 0.5), version=version))
    if kind.startswith("random bytes"):
        path = folder / ("noise" + kind.split()[-1])
        path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return path
    if kind == "text named .png":
        (folder / "readme.png").write_text("sample,diameter_nm\nA,12.3\n" * 40)
        return folder / "readme.png"
    if kind == "text named .dm4":
        (folder / "log.dm4").write_text("acquisition log\n" * 40)
        return folder / "log.dm4"
    if kind == "png with 0 x 0 header":
        (folder / "zero.png").write_bytes(png_header_only(0, 0))
        return folder / "zero.png"
    if kind == "0 x 0 tiff":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tifffile.imwrite(folder / "zero.tif", np.zeros((0, 0), np.uint8))
        return folder / "zero.tif"
    if kind == "0 x 0 dm3":
        return write_dm(folder / "zero.dm3", np.zeros((0, 0), np.float32), version=3)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, says", [
    ("png cut in half", "truncated"),
    ("jpeg cut in half", "truncated"),
    ("tiff cut in half", "truncated"),
    ("zlib tiff cut in half", "truncated"),
    ("tiled tiff cut in half", "truncated"),
    ("tiff header only", "cannot read this file as TIFF"),
    ("dm3 cut in half", "cannot read this file as DM3"),
    ("dm4 cut in half", "cannot read this file as DM4"),
    ("random bytes .png", "cannot read this file as PNG"),
    ("random bytes .tif", "cannot read this file as TIFF"),
    ("random bytes .jpg", "cannot read this file as JPG"),
    ("random bytes .dm3", "cannot read this file as DM3"),
    ("random bytes .mrc", "cannot read this file as MRC"),
    ("text named .png", "holds text, not image data"),
    ("text named .dm4", "holds text, not image data"),
    ("png with 0 x 0 header", "cannot read this file as PNG"),
    ("0 x 0 tiff", "0-size dimension"),
    ("0 x 0 dm3", "0-size dimension"),
])
def test_corrupt_and_truncated_files_are_refused_with_a_message(tmp_path, sim, kind, says):
    path = make_bad(kind, tmp_path, sim)
    with pytest.raises(InputFileError) as info:
        load_micrograph(path)
    assert says in messages_say(info, path.name)
    with pytest.raises(InputFileError) as info:  # the upload path says the same
        load_micrograph_bytes(path.read_bytes(), f"upload{path.suffix}")
    assert says in messages_say(info, f"upload{path.suffix}")
    assert "tempipe-" not in str(info.value)  # never the temporary file's path


@pytest.mark.parametrize("content, name", [
    ("png", "field.tif"), ("png", "field.dm4"), ("tiff", "field.png"),
    ("jpeg", "field.png"), ("dm4", "field.tif"), ("dm3", "field.png"),
])
def test_wrong_extension_is_read_by_content_with_a_note(tmp_path, sim, content, name):
    grey = uint8(sim.image)
    if content == "png":
        Image.fromarray(grey).save(tmp_path / "x", format="PNG")
    elif content == "jpeg":
        Image.fromarray(grey).save(tmp_path / "x", format="JPEG", quality=95)
    elif content == "tiff":
        save_micrograph(tmp_path / "x.tif", sim.image, pixel_size_nm=0.5)
        (tmp_path / "x.tif").rename(tmp_path / "x")
    else:
        write_dm(tmp_path / "x", grey, (0.5, 0.5), version=int(content[-1]))
    (tmp_path / "x").rename(tmp_path / name)
    m = load_micrograph(tmp_path / name)
    expected = sim.image if content == "tiff" else grey
    if content == "jpeg":
        assert np.abs(m.image - expected).mean() < 2.0
    else:
        assert_allclose(m.image, expected, rtol=1e-6)
    assert content.upper() in m.metadata["format_note"] and name.rsplit(".")[1].upper() in (
        m.metadata["format_note"])
    # the calibration a TIFF or DM file carries survives the wrong name
    expected_nm = 0.5 if content in ("tiff", "dm3", "dm4") else None
    assert m.pixel_size_nm == (pytest.approx(expected_nm) if expected_nm else None)


# --- shapes, dtypes, colour modes ---------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 300), (300, 1), (1, 1), (7, 12)])
def test_tiny_images_load_and_the_batch_lists_them(tmp_path, sim, shape):
    path = tmp_path / f"strip_{shape[0]}x{shape[1]}.png"
    Image.fromarray(np.full(shape, 90, np.uint8)).save(path)
    assert load_micrograph(path).image.shape == shape  # a valid read
    good = save_micrograph(tmp_path / "good.tif", sim.image, pixel_size_nm=0.5)
    batch = analyze_batch([path, good], shape_model=None, n_jobs=1)
    assert batch.failures["image"].tolist() == [path.name]
    assert "16 x 16" in batch.failures["error"].iloc[0]
    assert batch.failures["error"].iloc[0].startswith(path.name + ": ")  # names the file
    assert set(batch.particles["image"]) == {"good.tif"}


def test_16_bit_and_float_fields_give_the_same_particles(tmp_path, sim, interior_truth):
    span = sim.image.max() - sim.image.min()
    as16 = np.round((sim.image - sim.image.min()) / span * 60000 + 1000).astype(np.uint16)
    Image.fromarray(as16).save(tmp_path / "f16.png")
    tifffile.imwrite(tmp_path / "f16.tif", as16)
    tifffile.imwrite(tmp_path / "f64.tif", sim.image.astype(np.float64) * 1e6)
    for name in ("f16.png", "f16.tif", "f64.tif"):
        m = load_micrograph(tmp_path / name)
        assert m.image.dtype == np.float32 and m.metadata["nonfinite_pixels"] == 0
        assert len(analyse(m).particles) == interior_truth, name
    assert_array_equal(load_micrograph(tmp_path / "f16.png").image, as16)


def test_nan_and_inf_pixels_are_replaced_by_the_median(tmp_path, sim, interior_truth):
    image = sim.image.astype(np.float64)
    rng = np.random.default_rng(5)
    bad = rng.random(image.shape) < 0.01
    image[bad] = rng.choice([np.nan, np.inf, -np.inf, 1e300], size=bad.sum())  # 1e300 -> inf
    tifffile.imwrite(tmp_path / "holes.tif", image)
    m = load_micrograph(tmp_path / "holes.tif")
    assert np.isfinite(m.image).all()
    assert m.metadata["nonfinite_pixels"] == bad.sum()
    median = np.median(image[~bad]).astype(np.float32)
    assert_allclose(m.image[bad], median, rtol=1e-6)
    assert_array_equal(m.image[~bad], image[~bad].astype(np.float32))
    assert "replaced by the median" in m.metadata["nonfinite_note"]
    assert len(analyse(m).particles) == interior_truth


def test_arrays_with_nan_pixels_are_repaired_like_files(sim, interior_truth):
    image = sim.image.astype(np.float64)
    image[np.random.default_rng(6).random(image.shape) < 0.01] = np.nan
    table = analyze_image(image, shape_model=None)
    assert len(table) == interior_truth
    assert np.isnan(sim.image).sum() == 0  # the caller's array is not modified
    with pytest.raises(InputFileError, match="every pixel is NaN"):
        analyze_image(np.full((30, 40), np.nan), shape_model=None)


@pytest.mark.parametrize("fraction, ok", [(0.4, True), (0.6, False), (1.0, False)])
def test_mostly_nonfinite_images_are_refused(tmp_path, fraction, ok):
    image = np.random.default_rng(1).normal(100, 5, (40, 50)).astype(np.float32)
    image.ravel()[: int(fraction * image.size)] = np.nan
    tifffile.imwrite(tmp_path / "masked.tif", image)
    if ok:
        assert np.isfinite(load_micrograph(tmp_path / "masked.tif").image).all()
        return
    with pytest.raises(InputFileError) as info:
        load_micrograph(tmp_path / "masked.tif")
    text = messages_say(info, "masked.tif")
    assert ("every pixel" in text) if fraction == 1.0 else ("60% of the pixels" in text)


@pytest.mark.parametrize("mode", ["RGBA", "P", "PA", "LA", "1", "I;16", "RGB-transparent-P"])
def test_colour_and_alpha_modes_read_as_grey_and_analyse(tmp_path, sim, interior_truth, mode):
    grey = uint8(sim.image)
    rgb = np.dstack([grey, grey, grey])
    path = tmp_path / "mode.png"
    if mode == "RGBA":
        Image.fromarray(np.dstack([rgb, np.full_like(grey, 128)])).save(path)
        expected = bt601(rgb.astype(float))
    elif mode in ("P", "PA", "RGB-transparent-P"):
        im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
        if mode == "PA":  # Pillow writes PA to TIFF (palette + alpha), not to PNG
            im = im.convert("PA")
            path = tmp_path / "mode.tif"
        save = {"transparency": 0} if mode == "RGB-transparent-P" else {}
        im.save(path, **save)
        expected = bt601(np.asarray(im.convert("RGB")).astype(float))
        if mode == "PA":  # a TIFF colour map is 16-bit: the same greys, scaled
            expected = expected * (load_micrograph(path).image.max() / expected.max())
    elif mode == "LA":
        Image.fromarray(np.dstack([grey, np.full_like(grey, 200)]), "LA").save(path)
        expected = grey
    elif mode == "1":
        Image.fromarray(grey > 150).save(path)
        expected = np.where(grey > 150, 255, 0)
    else:
        Image.fromarray(grey.astype(np.uint16) * 257).save(path)
        expected = grey.astype(np.uint16) * 257
    m = load_micrograph(path)
    assert m.image.shape == grey.shape
    assert_allclose(m.image, expected, atol=0.02)
    if mode != "1":  # a bilevel image keeps the shapes but not the grey levels
        assert len(analyse(m).particles) == interior_truth


# --- fields without particles, and with thousands ------------------------------------------

@pytest.mark.parametrize("field", ["black", "white", "white 16-bit", "noise only"])
def test_fields_without_particles_give_an_empty_valid_result(tmp_path, field):
    rng = np.random.default_rng(2)
    image = {"black": np.zeros((300, 300), np.uint8),
             "white": np.full((300, 300), 255, np.uint8),
             "white 16-bit": np.full((300, 300), 65535, np.uint16),
             "noise only": rng.normal(120, 6, (300, 300)).clip(0, 255).astype(np.uint8)}[field]
    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, image)
    batch = analyze_batch([path], pixel_size_nm=0.5, shape_model=None, n_jobs=1)
    assert batch.failures.empty, batch.failures.to_dict("records")
    assert len(batch.particles) == 0
    assert batch.images["n_particles"].tolist() == [0]


def tiny_dots_field(pitch=20, rng=0):
    """1024² field of disks 3-5 px across on a 20 px grid (jittered), and their number."""
    rng = np.random.default_rng(rng)
    image = np.full((1024, 1024), 200.0)
    centres = [(r, c) for r in range(pitch, 1024 - pitch + 1, pitch)
               for c in range(pitch, 1024 - pitch + 1, pitch)]
    for r, c in centres:
        image[disk((r + rng.uniform(-2, 2), c + rng.uniform(-2, 2)), rng.uniform(1.5, 2.5),
                   shape=image.shape)] = 60.0
    return image + rng.normal(0, 5, image.shape), len(centres)


def test_thousands_of_tiny_particles_are_all_found_in_reasonable_time(tmp_path):
    image, truth = tiny_dots_field()
    assert truth == 2500
    path = tmp_path / "dots.tif"
    tifffile.imwrite(path, image.astype(np.float32))
    model = "shipped" if (ROOT / "models" / "shape_cnn.pt").is_file() else None
    start = time.perf_counter()
    batch = analyze_batch([path], pixel_size_nm=1.0, shape_model=model, n_jobs=1)
    seconds = time.perf_counter() - start
    assert batch.failures.empty
    found = batch.particles
    assert abs(len(found) - truth) <= 0.01 * truth, len(found)
    d_px = found["equivalent_diameter_nm"]  # 1 nm per px
    assert d_px.between(2.5, 6.0).mean() > 0.98, d_px.describe()
    if model:
        assert found[["p", "d", "l_ratio"]].notna().all().all()
    print(f"{len(found)} of {truth} tiny particles in {seconds:.1f} s (CNN: {bool(model)})")
    assert seconds < 60


# --- a DM3 without calibration ----------------------------------------------------------

def test_dm3_without_calibration_gives_nan_nm_and_says_why(tmp_path, sim, interior_truth):
    path = write_dm(tmp_path / "nocal.dm3", sim.image.astype(np.float32), (1.0, 1.0),
                    ("", ""), version=3)
    m = load_micrograph(path)
    assert m.pixel_size_nm is None and "uncalibrated" in m.metadata["calibration_note"]
    batch = analyze_batch([path], shape_model=None, n_jobs=1)
    assert batch.failures.empty
    assert len(batch.particles) == interior_truth
    assert batch.particles["equivalent_diameter_nm"].isna().all()
    assert batch.particles["area_px"].gt(0).all()
    assert batch.images["scale_source"].tolist() == ["none"]


# --- hostile file names -------------------------------------------------------------------

HOSTILE_UPLOAD_NAMES = [
    ("../../etc/x.png", "x.png"),
    ("..\\..\\windows\\x.png", "x.png"),
    ("/abs/dir/x.png", "x.png"),
    ("name with spaces.png", "name with spaces.png"),
    ("Probe μ-颗粒 🧪.png", "Probe μ-颗粒 🧪.png"),
    ("two\nlines.png", "two\\nlines.png"),
    ("tab\tand\rcr.png", "tab\\tand\\rcr.png"),
    ("evil\u202egnp.png", "evil\\u202egnp.png"),  # right-to-left override
    ("bad\udcffbyte.png", "bad\\udcffbyte.png"),  # undecodable byte (surrogate escape)
]


@pytest.mark.parametrize("given, shown", HOSTILE_UPLOAD_NAMES)
def test_upload_names_never_reach_the_file_system(tmp_path, monkeypatch, given, shown):
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))  # temporary files land here
    data = png_bytes(np.full((20, 30), 77, np.uint8))
    m = load_micrograph_bytes(data, given)
    assert m.name == shown and m.image.shape == (20, 30)
    with pytest.raises(InputFileError) as info:
        load_micrograph_bytes(b"junk" * 10, given)
    messages_say(info, shown)
    everything = [p for p in tmp_path.rglob("*")]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in everything) == [
        "a", "a/b", "a/b/c"]  # nothing written outside, nothing left behind


def test_very_long_and_empty_upload_names():
    data = png_bytes(np.full((20, 30), 77, np.uint8))
    m = load_micrograph_bytes(data, "x" * 5000 + ".png")
    assert len(m.name) <= 120 and m.name.endswith("xx.png") and "\u2026" in m.name
    for bad in ("", ".", "..", "dir/"):
        with pytest.raises(ParameterError, match="name must be a file name"):
            load_micrograph_bytes(data, bad)
    for name, suffix in (("x.png\x00.exe", ".exe"), ("noext", "(no suffix)"),
                         (".png", "(no suffix)")):
        with pytest.raises(InputFileError, match="unsupported file type") as info:
            load_micrograph_bytes(data, name)
        assert suffix in str(info.value) and "\x00" not in str(info.value)


def test_hostile_paths_in_load_micrograph_and_analyze_batch(tmp_path, sim, interior_truth):
    good = {name: save_micrograph(tmp_path / name, sim.image, pixel_size_nm=0.5)
            for name in ("good.tif", "two\nlines.tif", "μ 颗粒 🧪 spaces.tif",
                         "L" * 240 + ".tif")}
    for path in good.values():
        assert load_micrograph(path).pixel_size_nm == pytest.approx(0.5)
    too_long = tmp_path / ("L" * 300 + ".tif")
    halved = cut(save_micrograph(tmp_path / "cut\u202efit.tif", sim.image))
    bad = {
        "../../etc/x.png": r"^\.\./\.\./etc/x\.png: file not found",
        str(too_long): r"cannot use this path \(File name too long\)",
        str(tmp_path / "nul\x00byte.tif"): r"nul\\x00byte\.tif: file not found",
        str(halved): r"cut\\u202efit\.tif: the file is truncated",
        str(tmp_path): r"^\S+: is a directory",
    }
    for path, message in bad.items():
        with pytest.raises(InputFileError, match=message):
            load_micrograph(path)
    batch = analyze_batch([*good.values(), *bad], shape_model=None, n_jobs=1)
    assert sorted(set(batch.particles["image"])) == sorted(good)
    assert batch.particles.groupby("image").size().eq(interior_truth).all()
    assert len(batch.failures) == len(bad)
    assert not batch.failures["error"].str.contains("unexpected").any(), batch.failures
    for message, error in zip(bad.values(), batch.failures["error"]):
        assert re.search(message, error), error


def test_unreadable_permissions_are_explained(tmp_path, sim, monkeypatch):
    path = save_micrograph(tmp_path / "locked.tif", sim.image)
    if os.geteuid() == 0:  # root reads every file: make opening it fail as for a user

        def refuse(*args):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("tempipe.io.sniff", refuse)
    else:
        path.chmod(0)
    with pytest.raises(InputFileError) as info:
        load_micrograph(path)
    assert "cannot open the file (Permission denied)" in messages_say(info, "locked.tif")


# --- the dashboard ------------------------------------------------------------------------

def test_dashboard_upload_keeps_good_files_and_explains_bad_ones(tmp_path, sim, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TEMPIPE_DEMO_IMAGES", "1")
    monkeypatch.delenv("TEMPIPE_AUTOLOAD_DEMO", raising=False)
    good = save_micrograph(tmp_path / "good.tif", sim.image, pixel_size_nm=0.5).read_bytes()
    png = png_bytes(uint8(sim.image))
    half_tif = cut(save_micrograph(tmp_path / "half.tif", sim.image)).read_bytes()
    uploads = {
        "good.tif": good,
        "../../etc/passwd.png": png,               # hostile name, good data
        "png named.tif": png,                       # wrong extension, good data
        "half.tif": half_tif,
        "notes.png": b"my notes, not an image\n" * 10,
        "bomb.png": png_header_only(100_000, 100_000),
        "strip.png": png_bytes(np.full((1, 400), 9, np.uint8)),
    }
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("../../evil.png", png)  # traversal inside an archive
        archive.writestr("sub/cut.tif", half_tif)
    uploads["batch.zip"] = zipped.getvalue()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.file_uploader(key="upload_0").set_value(
        [(n, d, "application/octet-stream") for n, d in uploads.items()]).run()
    assert not at.exception, [e.value for e in at.exception]
    problems = at.dataframe[0].value
    assert sorted(problems["image"]) == ["bomb.png", "cut.tif", "half.tif", "notes.png"]
    reasons = dict(zip(problems["image"], problems["error"]))
    assert "truncated" in reasons["half.tif"] and "truncated" in reasons["cut.tif"]
    assert "holds text" in reasons["notes.png"]
    assert "too large to decode safely" in reasons["bomb.png"]
    kept = ["evil.png", "good.tif", "passwd.png", "png named.tif", "strip.png"]
    assert sorted(at.dataframe[-1].value["image"]) == kept
    assert any("could not be used; the others go on" in w.value for w in at.warning)
    at.radio(key="scale_0").set_value("typed").run()
    at.number_input(key="typed_nm").set_value(0.5).run()
    at.text_input(key="name_0").set_value("mixed").run()
    at.button(key="create_dataset").click().run()
    assert not at.exception, [e.value for e in at.exception]
    dataset = at.session_state["tempipe_datasets"]["mixed"]
    assert sorted(e.name for e in dataset.images) == kept
    assert sorted(p["image"] for p in dataset.unreadable) == sorted(problems["image"])
    at.switch_page("pages/segmentation.py")
    at.run()
    at.button(key="apply_batch").click().run()  # the 1 x 400 strip fails, the others go on
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(dataset.results) == sorted(set(kept) - {"strip.png"})
    assert "at least 16 x 16" in dataset.failures["strip.png"]


def test_streamlit_upload_limits_are_set_and_fit_a_16k_tiff():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    largest_tiff_mib = 16384 * 16384 * 2 / 2**20  # 16k x 16k, 16-bit: binned on load
    assert largest_tiff_mib <= config["maxUploadSize"] <= 1024  # a few sessions fit in RAM
    assert 50 <= config["maxMessageSize"] <= 500  # server -> browser (WebSocket) messages
