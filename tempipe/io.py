"""Read micrographs (with their calibration) and write them back.

`load_micrograph` turns a file into a :class:`Micrograph`: a 2-D float32 image and, when
the file carries a trustworthy calibration, its pixel size in nanometres. Everyday images
go through Pillow, TIFF through tifffile (ImageJ and standard resolution tags), and
Gatan DM3/DM4 and the other electron-microscopy formats through rosettasciio. Every
failure becomes an :class:`~tempipe.errors.InputFileError` naming the file, the problem
and the fix; ``metadata["calibration_note"]`` says where a pixel size came from, or why
none was taken.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin

from tempipe.errors import CalibrationError, InputFileError, ParameterError, TempipeError

PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TIFF_SUFFIXES = (".tif", ".tiff")
#: Suffix -> rosettasciio plugin module (``rsciio.<plugin>.file_reader``).
RSCIIO_PLUGINS = {
    ".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph", ".emd": "emd",
    ".ser": "tia", ".emi": "tia", ".mrc": "mrc", ".hspy": "hspy", ".zspy": "zspy",
    ".blo": "blockfile", ".tvips": "tvips", ".prz": "pantarhei", ".unf": "semper",
}
SUPPORTED_SUFFIXES = tuple(sorted((*PILLOW_SUFFIXES, *TIFF_SUFFIXES, *RSCIIO_PLUGINS)))

MAX_PIXEL_SIZE_NM = 10_000.0  # a coarser "calibration" is a print/screen resolution
DEFAULT_DPI = (72.0, 96.0, 300.0)  # resolutions software writes when it knows nothing
SQUARE_PIXEL_TOLERANCE = 0.01  # relative row/column pixel-size difference averaged away
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as Pillow's "L" mode
PNG_PIXEL_SIZE_KEY = "tempipe_pixel_size_nm"  # text chunk written by save_micrograph
_NM_PER_UNIT = {
    **dict.fromkeys(("pm", "picometer", "picometre"), 1e-3),
    **dict.fromkeys(("å", "a", "angstrom", "angstroms", "ang"), 0.1),
    **dict.fromkeys(("nm", "nanometer", "nanometre", "nanometers", "nanometres"), 1.0),
    **dict.fromkeys(("µm", "um", "micron", "microns", "micrometer", "micrometre",
                     "micrometers", "micrometres"), 1e3),
    **dict.fromkeys(("mm", "millimeter", "millimetre"), 1e6),
    **dict.fromkeys(("cm", "centimeter", "centimetre"), 1e7),
    **dict.fromkeys(("m", "meter", "metre"), 1e9),
    **dict.fromkeys(("inch", "in"), 2.54e7),
}


@dataclass(frozen=True, eq=False)
class Micrograph:
    """One micrograph as read from a file.

    Attributes
    ----------
    image : (M, N) ndarray of float32
        Grey-level image, rows by columns, in the file's intensity units.
    pixel_size_nm : float or None
        Side of one pixel in nanometres; None when the file holds no trustworthy calibration.
    name : str
        The file's name (no folder).
    metadata : dict
        At least ``source_format``, ``calibration_source`` (``"tiff-imagej"``,
        ``"tiff-resolution"``, ``"dm-calibration"``, ``"<plugin>-calibration"``,
        ``"png-text"`` or ``"none"``) and ``calibration_note`` (why a calibration was
        taken or ignored).
    """

    image: np.ndarray
    pixel_size_nm: float | None
    name: str
    metadata: dict = field(default_factory=dict)


def load_micrograph(path: str | os.PathLike) -> Micrograph:
    """Read a micrograph file and its calibration.

    Parameters
    ----------
    path : str or os.PathLike
        Image file with one of :data:`SUPPORTED_SUFFIXES` (case-insensitive).

    Returns
    -------
    Micrograph
        ``image`` is an (M, N) float32 array (colour converted to luminance), and
        ``pixel_size_nm`` the calibration in nm per pixel or None.

    Raises
    ------
    InputFileError
        Missing file, directory, empty/corrupt/truncated file, unsupported suffix, stack
        of images, 0-size image, or an image with no finite pixel.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m.tif"
    >>> _ = save_micrograph(out, np.ones((4, 6)), pixel_size_nm=0.5)
    >>> m = load_micrograph(out)
    >>> m.image.shape, round(m.pixel_size_nm, 6)
    ((4, 6), 0.5)
    """
    path = _checked_path(path)
    suffix = path.suffix.lower()
    kind = "TIFF" if suffix in TIFF_SUFFIXES else suffix.lstrip(".").upper()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if suffix in PILLOW_SUFFIXES:
                data, pixel_size_nm, meta = _read_pillow(path)
            elif suffix in TIFF_SUFFIXES:
                data, pixel_size_nm, meta = _read_tiff(path)
            else:
                data, pixel_size_nm, meta = _read_rsciio(path, RSCIIO_PLUGINS[suffix])
        except TempipeError:
            raise
        except MemoryError as exc:
            raise InputFileError(f"{path.name}: too large to load into memory; crop or "
                                 "bin the image before analysing it.") from exc
        except ImportError as exc:
            raise InputFileError(
                f"{path.name}: reading {suffix} files needs the Python package "
                f"'{exc.name}', which is not installed; install it (pip install "
                f"{exc.name}) or export the image as TIFF.") from exc
        except Exception as exc:  # any reader failure becomes a user-facing message
            detail = f"{type(exc).__name__}: {exc}"[:200]
            raise InputFileError(
                f"{path.name}: cannot read this file as {kind} ({detail}). It is corrupt, "
                f"truncated or not a {kind} file; re-export it from the acquisition "
                "software.") from exc
    if caught:
        meta["reader_warnings"] = [str(w.message)[:200] for w in caught]
    image = _finished_image(data, path.name)
    meta["nonfinite_pixels"] = int(image.size - np.count_nonzero(np.isfinite(image)))
    return Micrograph(image=image, pixel_size_nm=pixel_size_nm, name=path.name,
                      metadata=meta)


def load_micrograph_bytes(data: bytes, name: str) -> Micrograph:
    """Read a micrograph from its bytes (an upload), using ``name``'s suffix for the format.

    The bytes go to a temporary file called ``name`` (folders stripped) that is
    removed afterwards; the result is that of :func:`load_micrograph`.

    Raises
    ------
    ParameterError
        ``data`` is not bytes-like or ``name`` is empty.
    InputFileError
        As :func:`load_micrograph`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParameterError(f"data must be bytes, got {type(data).__name__}; pass the "
                             "uploaded file's content (e.g. upload.getvalue()).")
    safe_name = Path(str(name).replace("\\", "/")).name
    if not safe_name:
        raise ParameterError(f"name must be a file name with a suffix, got {name!r}.")
    with tempfile.TemporaryDirectory(prefix="tempipe-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(bytes(data))
        return load_micrograph(path)


def save_micrograph(path: str | os.PathLike, image: np.ndarray,
                    pixel_size_nm: float | None = None) -> Path:
    """Write a micrograph that :func:`load_micrograph` reads back.

    Parameters
    ----------
    path : str or os.PathLike
        ``.tif``/``.tiff``: float32 ImageJ TIFF, calibration as unit ``nm`` and
        resolution 1/pixel_size_nm pixels per nm. ``.png``/``.jpg``/``.jpeg``/``.bmp``:
        8-bit image rescaled from the finite min..max (PNG keeps the pixel size in a
        ``tempipe_pixel_size_nm`` text chunk).
    image : (M, N) array_like
        Grey-level image.
    pixel_size_nm : float, optional
        Positive pixel size in nm to store.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ParameterError
        ``image`` is not a non-empty 2-D array, or the suffix is not writable.
    CalibrationError
        ``pixel_size_nm`` is not a positive finite number.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    image = np.asarray(image)
    if image.ndim != 2 or 0 in image.shape or image.dtype.kind not in "biuf":
        raise ParameterError(f"image must be a non-empty 2-D real array, got shape "
                             f"{image.shape} and dtype {image.dtype}.")
    if pixel_size_nm is not None and not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise CalibrationError(f"pixel_size_nm must be a positive number of nm, got "
                               f"{pixel_size_nm!r}; pass None when unknown.")
    if suffix in TIFF_SUFFIXES:
        calibration = {} if pixel_size_nm is None else {
            "resolution": (1.0 / pixel_size_nm, 1.0 / pixel_size_nm),
            "metadata": {"unit": "nm"}}
        tifffile.imwrite(path, image.astype(np.float32), imagej=True, **calibration)
    elif suffix in (".png", ".jpg", ".jpeg", ".bmp"):
        info = None
        if suffix == ".png" and pixel_size_nm is not None:
            info = PngImagePlugin.PngInfo()
            info.add_text(PNG_PIXEL_SIZE_KEY, repr(float(pixel_size_nm)))
        Image.fromarray(_rescaled_uint8(image)).save(path, pnginfo=info)
    else:
        raise ParameterError(f"cannot write {path.name!r}: use a .tif, .tiff, .png, .jpg "
                             "or .bmp suffix (TIFF keeps full precision).")
    return path


def _checked_path(path) -> Path:
    """Return ``path`` as a Path after checking it names a non-empty supported file."""
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"path must be a file path, got {type(path).__name__}; for "
                             "uploaded bytes use load_micrograph_bytes(data, name).")
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: file not found; check the path and the spelling.")
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, not an image file; pass the image "
                             "files inside it.")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InputFileError(f"{path.name}: unsupported file type "
                             f"{path.suffix or '(no suffix)'!r}; supported: "
                             f"{', '.join(SUPPORTED_SUFFIXES)}. Export the image as TIFF.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path.name}: the file is empty (0 bytes); copy or export "
                             "it again.")
    return path


def _finished_image(data, name: str) -> np.ndarray:
    """Check a 2-D real image and return it as C-contiguous float32."""
    data = np.asarray(data)
    if data.ndim != 2:
        raise InputFileError(f"{name}: expected one 2-D image, found an array of shape "
                             f"{data.shape}; export a single grey-level image.")
    if 0 in data.shape:
        raise InputFileError(f"{name}: the image has a 0-size dimension (shape "
                             f"{data.shape}); the file holds no pixels, export it again.")
    if data.dtype.kind == "c":
        raise InputFileError(f"{name}: complex-valued data (an FFT or exit wave), not a "
                             "micrograph; export the real-space image.")
    image = np.ascontiguousarray(data, dtype=np.float32)
    if not np.isfinite(image).any():
        raise InputFileError(f"{name}: every pixel is NaN or infinite; the image holds no "
                             "data, export it again.")
    return image


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """(M, N, 3+) colour array -> (M, N) float luminance with BT.601 weights."""
    return rgb[..., :3].astype(np.float32) @ LUMA_WEIGHTS.astype(np.float32)


def _rescaled_uint8(image: np.ndarray) -> np.ndarray:
    """(M, N) array -> (M, N) uint8 spanning the finite min..max (NaN -> 0)."""
    image = image.astype(np.float64)
    finite = np.isfinite(image)
    low, high = (image[finite].min(), image[finite].max()) if finite.any() else (0, 1)
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.round(np.where(finite, scaled, 0.0) * 255).astype(np.uint8)


def _nm_per_unit(unit) -> tuple[float | None, str]:
    """Length unit -> (nm per unit or None, reason when None)."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), str(unit))
    text = text.strip().replace("\u03bc", "\u00b5").replace("\u212b", "\u00c5").lower()
    if "1/" in text or "^-1" in text or "\u207b\u00b9" in text or text.endswith("-1"):
        return None, f"unit {unit!r} is reciprocal space (a diffraction pattern or FFT)"
    if text in _NM_PER_UNIT:
        return _NM_PER_UNIT[text], ""
    if text in ("", "<undefined>", "px", "pixel", "pixels"):
        return None, "the axes have no length unit (the image is uncalibrated)"
    return None, f"unit {unit!r} is not a length unit tempipe knows"


def _combined_pixel_size(rows_nm: float, cols_nm: float) -> tuple[float | None, str]:
    """Row and column pixel sizes -> (one pixel size in nm or None, note)."""
    if not (np.isfinite([rows_nm, cols_nm]).all() and rows_nm > 0 and cols_nm > 0):
        return None, f"invalid pixel size (rows {rows_nm:g}, columns {cols_nm:g} nm); ignored"
    if cols_nm > MAX_PIXEL_SIZE_NM:
        return None, (f"the calibration implies {cols_nm:.4g} nm per pixel (> "
                      f"{MAX_PIXEL_SIZE_NM:,.0f} nm/px), a print or screen resolution, not "
                      "a microscope calibration; ignored")
    if abs(rows_nm - cols_nm) <= SQUARE_PIXEL_TOLERANCE * max(rows_nm, cols_nm):
        return 0.5 * (rows_nm + cols_nm), f"{0.5 * (rows_nm + cols_nm):.6g} nm per pixel"
    return cols_nm, (f"non-square pixels (rows {rows_nm:.6g} nm, columns {cols_nm:.6g} "
                     "nm); the column (X) pixel size is used, measurements along rows are "
                     "distorted")


def _read_pillow(path: Path):
    """PNG/JPEG/BMP/GIF -> (2-D array, pixel size or None, metadata)."""
    with Image.open(path) as im:
        n_frames = getattr(im, "n_frames", 1)
        im.seek(0)
        im.load()
        meta = {"source_format": (im.format or path.suffix.lstrip(".")).lower(),
                "mode": im.mode, "n_frames": n_frames}
        text, dpi = dict(getattr(im, "text", None) or {}), im.info.get("dpi")
        if im.mode == "LA":
            im = im.getchannel(0)
        elif im.mode not in ("I;16", "I;16B", "I;16L", "I", "F", "L", "RGB", "RGBA", "RGBX"):
            im = im.convert("RGB")  # palette, bilevel, CMYK, YCbCr...
        data = np.asarray(im)
    if data.ndim == 3:
        data = _luminance(data)
    notes = [f"the file has {n_frames} frames; the first was read"] if n_frames > 1 else []
    pixel_size_nm, source = None, "none"
    if PNG_PIXEL_SIZE_KEY in text:
        try:
            value = float(text[PNG_PIXEL_SIZE_KEY])
        except ValueError:
            value = float("nan")
        pixel_size_nm, note = _combined_pixel_size(value, value)
        source = "png-text" if pixel_size_nm is not None else "none"
        notes.append(f"tempipe text chunk: {note}")
    else:
        dpi_text = f" (its dpi {dpi[0]:g} is not a pixel size)" if dpi else ""
        notes.append(f"{meta['source_format'].upper()} files carry no microscope "
                     f"calibration{dpi_text}; give the pixel size or a scale bar")
    meta.update(calibration_source=source, calibration_note="; ".join(notes))
    return data, pixel_size_nm, meta


def _read_tiff(path: Path):
    """TIFF -> (2-D array, pixel size or None, metadata)."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = series.keyframe
        shape, axes, samples = _tiff_layout(tuple(series.shape), series.axes, page, path.name)
        data = series.asarray().reshape(shape)
        if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            data = data.max() - data
        if samples:
            data = np.moveaxis(data, axes.index("S"), -1)
            data = _luminance(data) if samples == "rgb" else data[..., 0]
        meta = {"source_format": "tiff", "n_series": len(tif.series),
                "imagej_unit": (tif.imagej_metadata or {}).get("unit")}
        resolution, unit = page.resolution, page.resolutionunit
    pixel_size_nm, source, note = _tiff_calibration(resolution, unit, meta["imagej_unit"])
    meta.update(resolution=tuple(resolution), resolution_unit=getattr(unit, "name", str(unit)),
                calibration_source=source, calibration_note=note)
    return data, pixel_size_nm, meta


def _tiff_layout(shape: tuple, axes: str, page, name: str):
    """Drop size-1 axes of a TIFF series; refuse stacks.

    Returns (shape, axes, samples): samples is "rgb" (colour samples to convert),
    "first" (one grey sample plus extra samples such as alpha) or "" (plain 2-D).
    """
    if 0 in shape:
        raise InputFileError(f"{name}: the image has a 0-size dimension (shape {shape}); "
                             "the file holds no pixels, export it again.")
    keep = [i for i, n in enumerate(shape) if n > 1 or axes[i] in "YX"]
    shape, axes = tuple(shape[i] for i in keep), "".join(axes[i] for i in keep)
    samples = ""
    if "S" in axes and len(shape) == 3:
        n_main = page.samplesperpixel - len(page.extrasamples)
        if page.photometric in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR):
            samples = "rgb" if n_main >= 3 else ""
        elif n_main == 1 and page.extrasamples and all(  # grey + alpha
                e != tifffile.EXTRASAMPLE.UNSPECIFIED for e in page.extrasamples):
            samples = "first"
    if len(shape) > 2 and not samples:
        plane = (shape[axes.index("Y")] * shape[axes.index("X")]
                 if {"Y", "X"} <= set(axes) else math.prod(shape[-2:]))
        raise InputFileError(
            f"{name}: this TIFF is a stack of {math.prod(shape) // plane} images (shape "
            f"{shape}, axes {axes}); tempipe analyses one image at a time, export one "
            "frame (e.g. ImageJ/Fiji: Image > Duplicate, or File > Save As > Image "
            "Sequence).")
    return shape, axes, samples


def _tiff_calibration(resolution, unit, imagej_unit):
    """TIFF resolution (pixels per unit, X then Y) -> (pixel size or None, source, note)."""
    cols_per_unit, rows_per_unit = (float(r) for r in resolution)
    if imagej_unit is not None:
        nm_per_unit, why = _nm_per_unit(imagej_unit)
        source = "tiff-imagej"
        if nm_per_unit is None:
            return None, "none", f"ImageJ calibration ignored: {why}"
    elif unit == tifffile.RESUNIT.NONE:
        return None, "none", ("the TIFF has no calibration (no ImageJ unit, resolution "
                              "unit NONE); give the pixel size or a scale bar")
    elif unit == tifffile.RESUNIT.INCH and cols_per_unit in DEFAULT_DPI:
        return None, "none", (f"{cols_per_unit:g} dpi is a default screen/print "
                              "resolution, not a microscope calibration; ignored")
    else:
        nm_per_unit = {tifffile.RESUNIT.INCH: 2.54e7, tifffile.RESUNIT.CENTIMETER: 1e7,
                       tifffile.RESUNIT.MILLIMETER: 1e6,
                       tifffile.RESUNIT.MICROMETER: 1e3}.get(unit)
        source = "tiff-resolution"
    if nm_per_unit is None:
        return None, "none", f"unknown TIFF resolution unit {unit!r}; calibration ignored"
    if cols_per_unit <= 0 or rows_per_unit <= 0:
        return None, "none", "the TIFF resolution tags are 0; calibration ignored"
    pixel_size_nm, note = _combined_pixel_size(nm_per_unit / rows_per_unit,
                                               nm_per_unit / cols_per_unit)
    return pixel_size_nm, source if pixel_size_nm is not None else "none", note


def _read_rsciio(path: Path, plugin: str):
    """EM format via ``rsciio.<plugin>.file_reader`` -> (2-D array, pixel size, metadata)."""
    reader = importlib.import_module(f"rsciio.{plugin}").file_reader
    signals = reader(str(path), lazy=False)
    candidates = []
    for signal in signals:
        data = np.asarray(signal["data"])
        axes = list(signal.get("axes") or [])
        keep = [i for i, n in enumerate(data.shape) if n != 1]
        axes = [axes[i] for i in keep] if len(axes) == data.ndim else []
        candidates.append((data.reshape([data.shape[i] for i in keep]), axes, signal))
    images = [c for c in candidates if c[0].ndim == 2 or 0 in c[0].shape]
    if not images:
        stacks = [c[0].shape for c in candidates if c[0].ndim > 2]
        if stacks:
            n_images = math.prod(stacks[0][:-2])
            raise InputFileError(f"{path.name}: the file holds a stack of {n_images} "
                                 f"images (shape {stacks[0]}); export one frame.")
        raise InputFileError(f"{path.name}: the file holds no 2-D image (data shapes "
                             f"{[c[0].shape for c in candidates]}); export an image.")
    data, axes, signal = max(images, key=lambda c: c[0].size)
    title = ((signal.get("metadata") or {}).get("General") or {}).get("title", "")
    meta = {"source_format": path.suffix.lower().lstrip("."), "title": str(title),
            "n_signals": len(candidates)}
    source = "dm-calibration" if plugin == "digitalmicrograph" else f"{plugin}-calibration"
    pixel_size_nm, note = None, "the file's axes carry no calibration"
    if len(axes) == 2:
        factors = [_nm_per_unit(axis.get("units", "")) for axis in axes]
        if all(f[0] is not None for f in factors):
            pixel_size_nm, note = _combined_pixel_size(
                *(float(axis.get("scale", 1.0)) * f[0] for axis, f in zip(axes, factors)))
        else:
            note = "calibration ignored: " + next(f[1] for f in factors if f[0] is None)
        meta["axes_units"] = [str(axis.get("units", "")) for axis in axes]
        meta["axes_scale"] = [float(axis.get("scale", 1.0)) for axis in axes]
    if data.dtype.names and {"R", "G", "B"} <= set(data.dtype.names):
        data = _luminance(np.stack([data[c] for c in "RGB"], axis=-1))
    meta.update(calibration_source=source if pixel_size_nm is not None else "none",
                calibration_note=note)
    return data, pixel_size_nm, meta
