"""Tests of tempipe.io: every file is written in tmp_path by the test, then read back."""

import dataclasses
import struct
import sys
import warnings

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image

from tempipe.errors import CalibrationError, InputFileError, ParameterError
from tempipe.io import (
    SUPPORTED_SUFFIXES,
    Micrograph,
    load_micrograph,
    load_micrograph_bytes,
    save_micrograph,
)

from _dm4 import write_dm

RTOL_CAL = 1e-6  # calibration must survive the file's rational/float32 storage


def ramp(shape=(6, 9), dtype=np.uint16, step=3):
    """A (rows, cols) ramp that differs along both axes, to catch transposes."""
    rows, cols = np.indices(shape)
    return (rows * shape[1] * step + cols * step).astype(dtype)


def luminance_by_hand(rgb):
    """BT.601 luma written out channel by channel (independent of the module's tensordot)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


# --- Pillow formats -----------------------------------------------------------------

def test_png_8bit_grey_values_and_no_calibration(tmp_path):
    data = ramp(dtype=np.uint8)
    Image.fromarray(data).save(tmp_path / "g.png", dpi=(72, 72))
    m = load_micrograph(tmp_path / "g.png")
    assert m.image.dtype == np.float32 and m.image.shape == (6, 9)
    assert_array_equal(m.image, data)
    assert m.pixel_size_nm is None and m.name == "g.png"
    assert m.metadata["source_format"] == "png" and m.metadata["calibration_source"] == "none"
    assert "dpi 72" in m.metadata["calibration_note"]


def test_rgb_and_rgba_png_become_luminance(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    rgba = np.dstack([rgb, np.full((7, 5), 9, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "ca.png")
    for name in ("c.png", "ca.png"):
        assert_allclose(load_micrograph(tmp_path / name).image, luminance_by_hand(rgb),
                        atol=1e-4)


def test_palette_png_uses_palette_colours(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (200, 10, 30)
    rgb[2:] = (0, 250, 120)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    assert_allclose(load_micrograph(tmp_path / "p.png").image, luminance_by_hand(rgb),
                    atol=1e-4)


def test_16bit_png_keeps_full_precision(tmp_path):
    data = ramp(dtype=np.uint16, step=1000)  # up to 53,000: needs 16 bits
    Image.fromarray(data).save(tmp_path / "w.png")
    m = load_micrograph(tmp_path / "w.png")
    assert m.image.max() > 255
    assert_array_equal(m.image, data)


def test_jpeg_grey_close_and_dpi_ignored(tmp_path):
    data = np.tile(np.linspace(20, 220, 32), (24, 1)).astype(np.uint8)
    Image.fromarray(data).save(tmp_path / "j.JPG", quality=95, dpi=(96, 96))
    m = load_micrograph(tmp_path / "j.JPG")
    assert m.metadata["source_format"] == "jpeg" and m.pixel_size_nm is None
    assert np.abs(m.image - data).mean() < 1.5  # lossy codec on a smooth ramp
    assert "dpi 96" in m.metadata["calibration_note"]


def test_gif_reads_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((5, 6), v, np.uint8)).convert("P") for v in (40, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    m = load_micrograph(tmp_path / "a.gif")
    assert_allclose(m.image, 40, atol=1)
    assert m.metadata["n_frames"] == 2 and "first was read" in m.metadata["calibration_note"]


# --- TIFF ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.float32])
def test_tiff_dtypes_read_exactly(tmp_path, dtype):
    data = ramp(dtype=dtype, step=2)
    if dtype == np.uint32:
        data = data + np.uint32(70_000)  # beyond 16 bits, still exact in float32
    tifffile.imwrite(tmp_path / "t.tif", data)
    m = load_micrograph(tmp_path / "t.tif")
    assert_array_equal(m.image, data.astype(np.float32))
    assert m.pixel_size_nm is None and "no calibration" in m.metadata["calibration_note"]


@pytest.mark.parametrize("unit, px_in_unit, expected_nm", [
    ("nm", 0.37, 0.37),
    ("\\u00B5m", 0.00081, 0.81),  # ImageJ escapes non-ASCII units this way
    ("micron", 0.002, 2.0),
    ("um", 0.0005, 0.5),
    ("\\u00C5", 3.3, 0.33),
    ("A", 1.7, 0.17),
    ("pm", 250.0, 0.25),
])
def test_tiff_imagej_calibration(tmp_path, unit, px_in_unit, expected_nm):
    data = ramp(dtype=np.uint16)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True,
                     resolution=(1 / px_in_unit, 1 / px_in_unit), metadata={"unit": unit})
    m = load_micrograph(tmp_path / "ij.tif")
    assert_array_equal(m.image, data)
    assert_allclose(m.pixel_size_nm, expected_nm, rtol=RTOL_CAL)
    assert m.metadata["calibration_source"] == "tiff-imagej"


@pytest.mark.parametrize("unit, per_unit, expected_nm", [
    ("CENTIMETER", 1.25e7, 0.8),  # pixels per cm
    ("CENTIMETER", 4e6, 2.5),
    ("INCH", 2.54e7 / 1.5, 1.5),  # pixels per inch
])
def test_tiff_standard_resolution_tags(tmp_path, unit, per_unit, expected_nm):
    tifffile.imwrite(tmp_path / "r.tif", ramp(), resolution=(per_unit, per_unit),
                     resolutionunit=unit)
    m = load_micrograph(tmp_path / "r.tif")
    assert_allclose(m.pixel_size_nm, expected_nm, rtol=RTOL_CAL)
    assert m.metadata["calibration_source"] == "tiff-resolution"


@pytest.mark.parametrize("resolution, unit, note", [
    (72, "INCH", "72 dpi is a default"),
    (300, "INCH", "300 dpi is a default"),
    (100, "CENTIMETER", "> 10,000 nm/px"),  # 100,000 nm per pixel
    (600, "INCH", "> 10,000 nm/px"),
])
def test_tiff_print_resolutions_are_not_calibrations(tmp_path, resolution, unit, note):
    tifffile.imwrite(tmp_path / "d.tif", ramp(), resolution=(resolution, resolution),
                     resolutionunit=unit)
    m = load_micrograph(tmp_path / "d.tif")
    assert m.pixel_size_nm is None and m.metadata["calibration_source"] == "none"
    assert note in m.metadata["calibration_note"]


@pytest.mark.parametrize("cols_nm, rows_nm, expected_nm, note", [
    (0.500, 0.502, 0.501, "nm per pixel"),  # 0.4 % apart: averaged
    (0.500, 0.600, 0.500, "non-square"),  # 17 % apart: column (X) value, with a warning
])
def test_tiff_non_square_pixels(tmp_path, cols_nm, rows_nm, expected_nm, note):
    tifffile.imwrite(tmp_path / "n.tif", ramp(), imagej=True,
                     resolution=(1 / cols_nm, 1 / rows_nm), metadata={"unit": "nm"})
    m = load_micrograph(tmp_path / "n.tif")
    assert_allclose(m.pixel_size_nm, expected_nm, rtol=RTOL_CAL)
    assert note in m.metadata["calibration_note"]


def test_tiff_unknown_imagej_unit_gives_none(tmp_path):
    tifffile.imwrite(tmp_path / "u.tif", ramp(), imagej=True, resolution=(2, 2),
                     metadata={"unit": "furlong"})
    m = load_micrograph(tmp_path / "u.tif")
    assert m.pixel_size_nm is None and "furlong" in m.metadata["calibration_note"]


@pytest.mark.parametrize("planar", [False, True])
def test_rgb_tiff_becomes_luminance(tmp_path, planar):
    rgb = np.random.default_rng(2).integers(0, 256, (5, 8, 3), dtype=np.uint8)
    stored = np.moveaxis(rgb, -1, 0) if planar else rgb
    tifffile.imwrite(tmp_path / "c.tif", stored, photometric="rgb",
                     planarconfig="separate" if planar else "contig")
    assert_allclose(load_micrograph(tmp_path / "c.tif").image, luminance_by_hand(rgb),
                    atol=1e-4)


def test_grey_plus_alpha_tiff_keeps_grey(tmp_path):
    grey = ramp(dtype=np.uint8)
    tifffile.imwrite(tmp_path / "ga.tif", np.dstack([grey, np.full_like(grey, 255)]),
                     photometric="minisblack", extrasamples=["unassalpha"])
    assert_array_equal(load_micrograph(tmp_path / "ga.tif").image, grey)


# --- EM formats through rosettasciio -------------------------------------------------

@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_dm_file_image_and_calibration(tmp_path, version, dtype):
    data = ramp(shape=(6, 11), dtype=dtype)
    path = write_dm(tmp_path / f"a.dm{version}", data, (0.125, 0.125), ("nm", "nm"),
                    version=version)
    m = load_micrograph(path)
    assert_array_equal(m.image, data)  # the thumbnail (image 0) is skipped
    assert_allclose(m.pixel_size_nm, 0.125, rtol=RTOL_CAL)
    assert m.metadata["source_format"] == f"dm{version}"
    assert m.metadata["calibration_source"] == "dm-calibration"


@pytest.mark.parametrize("scale, units, expected_nm, note", [
    (0.0025, "µm", 2.5, "nm per pixel"),
    (3.0, "Å", 0.3, "nm per pixel"),
    (1.0, "", None, "uncalibrated"),
    (0.05, "1/nm", None, "reciprocal"),
])
def test_dm4_units(tmp_path, scale, units, expected_nm, note):
    path = write_dm(tmp_path / "u.dm4", ramp(dtype=np.float32), (scale, scale), (units, units))
    m = load_micrograph(path)
    if expected_nm is None:
        assert m.pixel_size_nm is None and m.metadata["calibration_source"] == "none"
    else:  # DM stores scales as float32
        assert_allclose(m.pixel_size_nm, expected_nm, rtol=RTOL_CAL)
    assert note in m.metadata["calibration_note"]


def write_mrc(path, image, pixel_size_angstrom):
    """Minimal MRC2014 file (1024-byte header by the published word layout, mode 2)."""
    rows, cols = image.shape
    header = bytearray(1024)
    struct.pack_into("<4i", header, 0, cols, rows, 1, 2)  # NX, NY, NZ, MODE=float32
    struct.pack_into("<3i", header, 28, cols, rows, 1)  # MX, MY, MZ: sampling
    struct.pack_into("<3f", header, 40, cols * pixel_size_angstrom,
                     rows * pixel_size_angstrom, pixel_size_angstrom)  # cell, in Å
    struct.pack_into("<3i", header, 64, 1, 2, 3)  # MAPC, MAPR, MAPS
    header[208:216] = b"MAP DA\0\0"  # MAP stamp, little-endian machine stamp
    path.write_bytes(bytes(header) + image.astype("<f4").tobytes())
    return path


def test_mrc_image_and_calibration(tmp_path):
    data = ramp(shape=(6, 11), dtype=np.float32)
    m = load_micrograph(write_mrc(tmp_path / "a.mrc", data, pixel_size_angstrom=4.2))
    assert_array_equal(m.image, data)
    assert_allclose(m.pixel_size_nm, 0.42, rtol=RTOL_CAL)
    assert m.metadata["calibration_source"] == "mrc-calibration"


def _signal_dict(data, scale, units):
    axes = [{"name": n, "size": s, "scale": scale, "offset": 0.0, "units": units,
             "navigate": False} for n, s in zip(("y", "x"), data.shape)]
    return {"data": data, "axes": axes, "original_metadata": {},
            "metadata": {"General": {"title": "t"}, "Signal": {"signal_type": ""},
                         "_HyperSpy": {}},
            "tmp_parameters": {}, "attributes": {"_lazy": False}, "learning_results": {},
            "models": {}, "package_info": {"package": "hyperspy", "package_version": "2.0"}}


@pytest.mark.parametrize("suffix, scale, units, expected_nm", [
    (".emd", 0.21, "nm", 0.21),
    (".emd", 0.0015, "µm", 1.5),
    (".hspy", 0.33, "nm", 0.33),
    (".hspy", 0.004, "µm", 4.0),
])
def test_hdf5_em_formats_written_by_rosettasciio(tmp_path, suffix, scale, units,
                                                  expected_nm):
    pytest.importorskip("h5py", reason="rosettasciio needs h5py for .emd/.hspy")
    from rsciio.emd import file_writer as write_emd
    from rsciio.hspy import file_writer as write_hspy

    data = ramp(shape=(7, 10), dtype=np.float32)
    path = tmp_path / f"s{suffix}"
    (write_emd if suffix == ".emd" else write_hspy)(str(path), _signal_dict(data, scale, units))
    m = load_micrograph(path)
    assert_array_equal(m.image, data)
    assert_allclose(m.pixel_size_nm, expected_nm, rtol=RTOL_CAL)
    assert m.metadata["calibration_source"] == f"{suffix[1:]}-calibration"


def test_missing_reader_dependency_is_explained(tmp_path, monkeypatch):
    """Without h5py (not a tempipe requirement today) an .emd says what to install."""
    (tmp_path / "v.emd").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    for module in [m for m in sys.modules if m.startswith("rsciio.emd")]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(InputFileError, match=r"v\.emd: reading \.emd files needs .*'h5py'"):
        load_micrograph(tmp_path / "v.emd")


# --- bad inputs ---------------------------------------------------------------------

def _make_bad(kind, folder):
    """Write the bad input ``kind`` in ``folder`` and return its path."""
    if kind == "missing":
        return folder / "nothing_here.png"
    if kind == "directory":
        (folder / "batch.tif").mkdir()
        return folder / "batch.tif"
    if kind == "empty":
        (folder / "empty.dm4").write_bytes(b"")
        return folder / "empty.dm4"
    if kind == "truncated png":
        Image.fromarray(ramp((64, 64), np.uint8)).save(folder / "cut.png")
        raw = (folder / "cut.png").read_bytes()
        (folder / "cut.png").write_bytes(raw[: len(raw) // 2])
        return folder / "cut.png"
    if kind == "truncated dm4":
        raw = write_dm(folder / "cut.dm4", ramp(dtype=np.float32)).read_bytes()
        (folder / "cut.dm4").write_bytes(raw[:300])
        return folder / "cut.dm4"
    if kind in ("text png", "text tif", "text dm3"):
        path = folder / ("notes." + kind.split()[1])
        path.write_text("these are my notes, not an image\n" * 20)
        return path
    if kind == "xyz":
        (folder / "image.xyz").write_bytes(b"\x00" * 64)
        return folder / "image.xyz"
    if kind == "tiff stack":
        tifffile.imwrite(folder / "stack.tif", np.zeros((4, 5, 6), np.uint16), imagej=True)
        return folder / "stack.tif"
    if kind == "tiff samples stack":  # 3 grey samples per pixel, not RGB
        tifffile.imwrite(folder / "stack.tif", np.zeros((3, 5, 6), np.uint16),
                         photometric="minisblack", planarconfig="separate")
        return folder / "stack.tif"
    if kind == "zero tiff":
        with warnings.catch_warnings():  # tifffile warns that 0-size TIFFs are odd
            warnings.simplefilter("ignore")
            tifffile.imwrite(folder / "zero.tif", np.zeros((0, 6), np.uint8))
        return folder / "zero.tif"
    if kind == "zero dm4":
        return write_dm(folder / "zero.dm4", np.zeros((0, 6), np.float32))
    if kind == "nan tiff":
        tifffile.imwrite(folder / "nan.tif", np.full((5, 6), np.nan, np.float32))
        return folder / "nan.tif"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("missing", r"nothing_here\.png: file not found"),
    ("directory", r"batch\.tif: is a directory"),
    ("empty", r"empty\.dm4: the file is empty"),
    ("truncated png", r"cut\.png: cannot read this file as PNG.*truncated"),
    ("truncated dm4", r"cut\.dm4: cannot read this file as DM4"),
    ("text png", r"notes\.png: cannot read this file as PNG"),
    ("text tif", r"notes\.tif: cannot read this file as TIFF"),
    ("text dm3", r"notes\.dm3: cannot read this file as DM3"),
    ("xyz", r"image\.xyz: unsupported file type '\.xyz'; supported: .*\.dm4.*\.tif"),
    ("tiff stack", r"stack\.tif: this TIFF is a stack of 4 images.*export one frame"),
    ("tiff samples stack", r"stack of 3 images"),
    ("zero tiff", r"zero\.tif: the image has a 0-size dimension"),
    ("zero dm4", r"zero\.dm4: the image has a 0-size dimension"),
    ("nan tiff", r"nan\.tif: every pixel is NaN or infinite"),
])
def test_bad_inputs_raise_input_file_error(tmp_path, kind, message):
    path = _make_bad(kind, tmp_path)
    with pytest.raises(InputFileError, match=message):
        load_micrograph(path)


def test_wrong_path_type():
    with pytest.raises(ParameterError, match="load_micrograph_bytes"):
        load_micrograph(b"\x89PNG")


# --- saving, bytes, dataclass ----------------------------------------------------------

def test_save_tiff_round_trip_exact(tmp_path):
    data = np.random.default_rng(3).normal(100, 20, (9, 13))
    out = save_micrograph(tmp_path / "s.tiff", data, pixel_size_nm=0.413)
    m = load_micrograph(out)
    assert_array_equal(m.image, data.astype(np.float32))
    assert_allclose(m.pixel_size_nm, 0.413, rtol=RTOL_CAL)
    assert load_micrograph(save_micrograph(tmp_path / "n.tif", data)).pixel_size_nm is None


def test_save_png_round_trip_rescaled(tmp_path):
    data = np.linspace(-3.0, 5.0, 40).reshape(5, 8)
    m = load_micrograph(save_micrograph(tmp_path / "s.png", data, pixel_size_nm=1.75))
    assert_array_equal(m.image, np.round((data + 3.0) / 8.0 * 255))
    assert m.pixel_size_nm == 1.75 and m.metadata["calibration_source"] == "png-text"


@pytest.mark.parametrize("name, image, px, error, message", [
    ("a.tif", np.zeros((3, 4, 2)), None, ParameterError, "2-D"),
    ("a.tif", np.zeros((0, 4)), None, ParameterError, "non-empty"),
    ("a.xyz", np.zeros((3, 4)), None, ParameterError, r"\.tif"),
    ("a.tif", np.zeros((3, 4)), -1.0, CalibrationError, "positive"),
    ("a.tif", np.zeros((3, 4)), float("nan"), CalibrationError, "positive"),
])
def test_save_bad_arguments(tmp_path, name, image, px, error, message):
    with pytest.raises(error, match=message):
        save_micrograph(tmp_path / name, image, pixel_size_nm=px)


def test_load_bytes_matches_path(tmp_path):
    data = ramp(dtype=np.uint16)
    path = write_dm(tmp_path / "up.dm4", data, (0.5, 0.5))
    m = load_micrograph_bytes(path.read_bytes(), "C:\\users\\me\\upload.dm4")
    assert m.name == "upload.dm4" and m.pixel_size_nm == 0.5
    assert_array_equal(m.image, data)
    with pytest.raises(InputFileError, match=r"upload\.png: cannot read"):
        load_micrograph_bytes(b"not an image", "upload.png")
    with pytest.raises(ParameterError, match="bytes"):
        load_micrograph_bytes("text", "a.png")


def test_micrograph_is_frozen_and_suffixes_listed(tmp_path):
    m = load_micrograph(save_micrograph(tmp_path / "f.tif", np.ones((2, 3))))
    assert isinstance(m, Micrograph)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.pixel_size_nm = 1.0
    assert {".png", ".jpg", ".tif", ".dm3", ".dm4", ".emd", ".ser", ".mrc"} <= set(
        SUPPORTED_SUFFIXES)
