"""Large images (issue 7): binned by an integer factor with the pixel size scaled, or
refused, with memory bounded by the binned image (measured in a subprocess on a sparse
16k x 16k TIFF), and Pillow's decompression bombs refused before decoding.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_allclose
from PIL import Image

from tempipe.errors import InputFileError, ParameterError
from tempipe.io import load_micrograph, load_micrograph_bytes, save_micrograph

from _bad_files import ROOT, bt601, cut, messages_say, png_header_only
from _dm4 import write_dm


# Peak resident memory of the probe process itself. On Linux, getrusage's ru_maxrss keeps
# the high-water mark of the process image replaced by exec (here the pytest process,
# which can be larger than the probe), so /proc's VmHWM (this image only) is preferred.
RSS_PROBE = textwrap.dedent("""
    import json, resource, sys
    from tempipe.io import load_micrograph

    def peak_kib():
        try:
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status
                            if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    base = peak_kib()
    m = load_micrograph(sys.argv[1])
    peak = peak_kib()
    print(json.dumps({"shape": m.image.shape, "px": m.pixel_size_nm,
                      "factor": m.metadata.get("downsample_factor"),
                      "original": m.metadata.get("original_shape"),
                      "mean": float(m.image.mean()), "base_kib": base, "peak_kib": peak}))
""")


@pytest.fixture(scope="module")
def huge_tiff(tmp_path_factory):
    """16384² uint8 TIFF, 0.25 nm/px: declared at full size but sparse on disk."""
    path = tmp_path_factory.mktemp("huge") / "huge 16k.tif"
    m = tifffile.memmap(path, shape=(16384, 16384), dtype=np.uint8, imagej=True,
                        resolution=(4.0, 4.0), metadata={"unit": "nm"})
    m[:1024] = 40  # the rest stays 0 (and sparse): the binned mean must be 40 / 16
    m.flush()
    del m
    return path


@pytest.mark.parametrize("max_pixels, factor", [(None, 2), (4096 * 4096, 4)])
def test_16k_tiff_is_binned_with_bounded_memory(huge_tiff, max_pixels, factor):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TEMPIPE_MAX_PIXELS", None)
    if max_pixels:
        env["TEMPIPE_MAX_PIXELS"] = str(max_pixels)
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, str(huge_tiff)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout)
    side = 16384 // factor
    assert got["shape"] == [side, side] and got["factor"] == factor
    assert got["original"] == [16384, 16384]
    assert got["px"] == pytest.approx(0.25 * factor, rel=1e-6)
    assert got["mean"] == pytest.approx(40 / 16)
    grown_mib = (got["peak_kib"] - got["base_kib"]) / 1024
    output_mib = side * side * 4 / 2**20
    print(f"16k TIFF binned {factor}x: peak RSS grew {grown_mib:.0f} MiB "
          f"(output {output_mib:.0f} MiB; the file holds 256 MiB, 1 GiB as float32)")
    assert grown_mib < output_mib + 128


def test_too_large_to_bin_is_refused_before_reading(tmp_path):
    path = tmp_path / "declared.tif"
    tifffile.imwrite(path, shape=(16384, 16384), dtype=np.uint16)  # sparse
    start = time.perf_counter()
    with pytest.raises(InputFileError) as info:
        load_micrograph(path, max_pixels=2048 * 2048)  # would need 8x
    text = messages_say(info, "declared.tif")
    assert "at most 4x" in text and "2048 x 2048" in text
    assert time.perf_counter() - start < 1.0  # nothing decoded
    cut(path, 4096 / path.stat().st_size)  # header only: truncated, whatever the size
    with pytest.raises(InputFileError, match=r"declared\.tif: the file is truncated"):
        load_micrograph(path)


def block_means(image, f):
    rows, cols = image.shape[0] // f * f, image.shape[1] // f * f
    return image[:rows, :cols].reshape(rows // f, f, cols // f, f).mean(axis=(1, 3))


@pytest.mark.parametrize("layout", ["tiff", "tiff zlib strips", "tiff tiles", "tiff rgb",
                                    "tiff palette", "png", "dm4", "dm3 float"])
def test_binning_is_the_block_mean_and_scales_the_pixel_size(tmp_path, layout):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 60000, (301, 413)).astype(np.uint16)
    path = tmp_path / "b.tif"
    if layout == "tiff":
        tifffile.imwrite(path, image, resolution=(1e7 / 0.4, 1e7 / 0.4),
                         resolutionunit="CENTIMETER")
    elif layout == "tiff zlib strips":
        tifffile.imwrite(path, image, compression="zlib", rowsperstrip=7,
                         resolution=(2.5, 2.5), imagej=True, metadata={"unit": "nm"})
    elif layout == "tiff tiles":
        tifffile.imwrite(path, image, tile=(64, 48), resolution=(2.5, 2.5), imagej=True,
                         metadata={"unit": "nm"})
    elif layout == "tiff rgb":
        rgb = np.dstack([image, image // 2, image // 3])
        tifffile.imwrite(path, rgb, photometric="rgb", resolution=(1e7 / 0.4, 1e7 / 0.4),
                         resolutionunit="CENTIMETER")
        image = bt601(rgb.astype(float))
    elif layout == "tiff palette":
        colormap = rng.integers(0, 65536, (3, 256)).astype(np.uint16)
        index = (image % 256).astype(np.uint8)
        tifffile.imwrite(path, index, photometric="palette", colormap=colormap,
                         resolution=(1e7 / 0.4, 1e7 / 0.4), resolutionunit="CENTIMETER")
        image = bt601(colormap.T.astype(float))[index]
    elif layout == "png":
        path = tmp_path / "b.png"
        Image.fromarray(image).save(path)
    else:
        version = 4 if layout == "dm4" else 3
        image = image.astype(np.float32) if version == 3 else image
        path = write_dm(tmp_path / f"b.dm{version}", image, (0.4, 0.4), version=version)
    m = load_micrograph(path, max_pixels=120 * 120)  # 301 x 413 -> 3x -> 100 x 137
    assert m.metadata["downsample_factor"] == 3 and m.image.shape == (100, 137)
    assert m.metadata["original_shape"] == (301, 413)
    assert_allclose(m.image, block_means(image.astype(float), 3), rtol=1e-5)
    if layout != "png":
        assert m.pixel_size_nm == pytest.approx(1.2, rel=1e-5)
    assert "binned 3 x 3" in m.metadata["size_note"]


def test_pillow_decompression_bombs_are_refused(tmp_path, monkeypatch):
    for cols, rows in ((100_000, 100_000), (10_000, 10_000)):  # 10 Gpx, 100 Mpx headers
        name = f"bomb{cols}.png"
        with pytest.raises(InputFileError) as info:
            load_micrograph_bytes(png_header_only(cols, rows), name)
        assert "decompression-bomb" in messages_say(info, name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the limit is read at each call
    Image.fromarray(np.zeros((40, 30), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(InputFileError, match=r"small\.png: the image is too large"):
        load_micrograph(tmp_path / "small.png")


def test_max_pixels_setting_is_checked(tmp_path, monkeypatch):
    path = save_micrograph(tmp_path / "a.tif", np.ones((40, 40)))
    monkeypatch.setenv("TEMPIPE_MAX_PIXELS", "400")  # 40 x 40 -> 2x
    assert load_micrograph(path).image.shape == (20, 20)
    assert load_micrograph(path, max_pixels=10_000).image.shape == (40, 40)
    monkeypatch.setenv("TEMPIPE_MAX_PIXELS", "lots")
    with pytest.raises(ParameterError, match="TEMPIPE_MAX_PIXELS must be a positive"):
        load_micrograph(path)
    with pytest.raises(ParameterError, match="max_pixels must be a positive"):
        load_micrograph(path, max_pixels=0)
