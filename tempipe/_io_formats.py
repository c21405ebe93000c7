"""Readers of :mod:`tempipe.io` for everyday images (Pillow) and EM formats (rosettasciio),
the length units and pixel-size rules they share, and file-type sniffing by content.

Every reader is ``read(path, name, limit) -> (data, pixel_size_nm, metadata)``: ``data``
a 2-D real array already binned to at most ``limit`` pixels (``metadata`` then holds
``downsample_factor`` and ``original_shape``), ``pixel_size_nm`` that of the file's own
pixels (or None), ``name`` the file name to put in messages.
"""

from __future__ import annotations

import importlib
import math
import re

import numpy as np
from PIL import Image

from tempipe import _io_guard as guard
from tempipe.errors import InputFileError

PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TIFF_SUFFIXES = (".tif", ".tiff")
#: Suffix -> rosettasciio plugin module (``rsciio.<plugin>.file_reader``).
RSCIIO_PLUGINS = {
    ".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph", ".emd": "emd",
    ".ser": "tia", ".emi": "tia", ".mrc": "mrc", ".hspy": "hspy", ".zspy": "zspy",
    ".blo": "blockfile", ".tvips": "tvips", ".prz": "pantarhei", ".unf": "semper",
}
#: Leading bytes -> (format, suffix to use). BMP's two-byte mark is only trusted for
#: files named as another everyday image (see :func:`sniff`).
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG", ".png"), (b"\xff\xd8\xff", "JPEG", ".jpg"),
    (b"II*\x00", "TIFF", ".tif"), (b"MM\x00*", "TIFF", ".tif"),
    (b"II+\x00", "TIFF", ".tif"), (b"MM\x00+", "TIFF", ".tif"),
    (b"GIF87a", "GIF", ".gif"), (b"GIF89a", "GIF", ".gif"), (b"BM", "BMP", ".bmp"),
)
MAX_PIXEL_SIZE_NM = 10_000.0  # a coarser "calibration" is a print/screen resolution
SQUARE_PIXEL_TOLERANCE = 0.01  # relative row/column pixel-size difference averaged away
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as Pillow's "L"
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


def format_of_suffix(suffix: str) -> str:
    return "TIFF" if suffix in TIFF_SUFFIXES else suffix.lstrip(".").upper()


def sniff(path, suffix: str) -> tuple[str, str] | None:
    """(format, suffix) of a PNG/JPEG/TIFF/GIF/BMP/DM3/DM4 file recognised by its first
    bytes when its suffix says otherwise, else None.

    None also when the content matches the suffix, or when only BMP's weak two-byte mark
    matches a file not named as an everyday image (an MRC header can start with "BM").
    """
    with open(path, "rb") as handle:
        head = handle.read(16)
    dm = _dm_version(head)
    if dm and suffix not in (".dm3", ".dm4"):
        return f"DM{dm}", f".dm{dm}"
    for magic, kind, kind_suffix in MAGIC:
        if head.startswith(magic):
            if kind == format_of_suffix(suffix) or (
                    kind == "JPEG" and suffix in (".jpg", ".jpeg")):
                return None
            if kind == "BMP" and suffix not in (*PILLOW_SUFFIXES, *TIFF_SUFFIXES):
                return None
            return kind, kind_suffix
    return None


def _dm_version(head: bytes) -> int | None:
    """3 or 4 for a Gatan DigitalMicrograph header (version, length, byte order 0/1)."""
    if len(head) < 16 or head[:3] != b"\0\0\0" or head[3] not in (3, 4):
        return None
    order = head[8:12] if head[3] == 3 else head[12:16]
    return head[3] if order in (b"\0\0\0\0", b"\0\0\0\x01") else None


def looks_like_text(path) -> bool:
    """True when the file starts with printable text (a note or CSV saved as an image)."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and sum(c.isprintable() or c in "\r\n\t" for c in text) > 0.95 * len(text)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(M, N, 3+) colour array -> (M, N) float32 luminance with BT.601 weights."""
    grey = rgb[..., 0] * LUMA_WEIGHTS[0]  # channel by channel: no (M, N, 3) float copy
    grey += rgb[..., 1] * LUMA_WEIGHTS[1]
    grey += rgb[..., 2] * LUMA_WEIGHTS[2]
    return grey


def nm_per_unit(unit) -> tuple[float | None, str]:
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


def combined_pixel_size(rows_nm: float, cols_nm: float) -> tuple[float | None, str]:
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


def note_reduction(meta: dict, shape: tuple[int, int], factor: int) -> None:
    if factor > 1:
        meta.update(downsample_factor=factor, original_shape=tuple(int(n) for n in shape))


# --- Pillow ----------------------------------------------------------------------------

def read_pillow(path, name: str, limit: int):
    """PNG/JPEG/BMP/GIF -> (2-D array, pixel size or None, metadata).

    Pillow decodes a frame whole, so files above Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``) are refused before decoding.
    """
    try:
        opened = Image.open(path)
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        detail = f"{int(pixels.group(1)) / 1e6:,.0f} Mpx" if pixels else "too many pixels"
        raise InputFileError(_pillow_too_large(
            name, f"{detail}, more than twice the limit")) from exc
    with opened as im:
        cols, rows = im.size
        bomb_limit = Image.MAX_IMAGE_PIXELS
        if bomb_limit and rows * cols > bomb_limit:
            raise InputFileError(_pillow_too_large(
                name, f"{rows} x {cols} px, {rows * cols / 1e6:,.0f} Mpx, more than the limit"))
        factor = guard.reduction_factor((rows, cols), limit, name)
        n_frames = getattr(im, "n_frames", 1)
        im.seek(0)
        im.load()
        meta = {"source_format": (im.format or "image").lower(), "mode": im.mode,
                "n_frames": n_frames}
        text, dpi = dict(getattr(im, "text", None) or {}), im.info.get("dpi")
        if im.mode in ("LA", "La"):
            im = im.getchannel(0)
        elif im.mode not in ("I;16", "I;16B", "I;16L", "I", "F", "L", "RGB", "RGBA", "RGBX"):
            im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
        data = np.asarray(im)
    if data.ndim == 3:
        data = luminance(data)
    if factor > 1:
        data = guard.block_mean(data, factor)
        note_reduction(meta, (rows, cols), factor)
    notes = [f"the file has {n_frames} frames; the first was read"] if n_frames > 1 else []
    pixel_size_nm, source = None, "none"
    if PNG_PIXEL_SIZE_KEY in text:
        try:
            value = float(text[PNG_PIXEL_SIZE_KEY])
        except ValueError:
            value = float("nan")
        pixel_size_nm, note = combined_pixel_size(value, value)
        source = "png-text" if pixel_size_nm is not None else "none"
        notes.append(f"tempipe text chunk: {note}")
    else:
        dpi_text = f" (its dpi {dpi[0]:g} is not a pixel size)" if dpi else ""
        notes.append(f"{meta['source_format'].upper()} files carry no microscope "
                     f"calibration{dpi_text}; give the pixel size or a scale bar")
    meta.update(calibration_source=source, calibration_note="; ".join(notes))
    return data, pixel_size_nm, meta


def _pillow_too_large(name: str, detail: str) -> str:
    limit = (Image.MAX_IMAGE_PIXELS or 0) / 1e6
    return (f"{name}: the image is too large to decode safely ({detail} of {limit:,.0f} Mpx, "
            "Pillow's decompression-bomb limit: this format is decoded whole in memory). "
            "Save it as TIFF, which tempipe reads strip by strip and bins, or bin or crop "
            "it first.")


# --- EM formats through rosettasciio -----------------------------------------------------

def read_rsciio(path, name: str, limit: int, suffix: str):
    """EM format via ``rsciio.<plugin>.file_reader`` -> (2-D array, pixel size, metadata).

    Read lazily (dask): only the chosen image is loaded, band by band when it is binned.
    """
    plugin = RSCIIO_PLUGINS[suffix]
    reader = importlib.import_module(f"rsciio.{plugin}").file_reader
    signals = reader(str(path), lazy=True)
    candidates = []
    for signal in signals:
        data = signal["data"]
        axes = list(signal.get("axes") or [])
        keep = [i for i, n in enumerate(data.shape) if n != 1]
        axes = [axes[i] for i in keep] if len(axes) == len(data.shape) else []
        candidates.append((data.reshape(tuple(data.shape[i] for i in keep)), axes, signal))
    images = [c for c in candidates if c[0].ndim == 2 or 0 in c[0].shape]
    if not images:
        stacks = [c[0].shape for c in candidates if c[0].ndim > 2]
        if stacks:
            raise InputFileError(f"{name}: the file holds a stack of "
                                 f"{math.prod(stacks[0][:-2])} images (shape {stacks[0]}); "
                                 "export one frame.")
        raise InputFileError(f"{name}: the file holds no 2-D image (data shapes "
                             f"{[c[0].shape for c in candidates]}); export an image.")
    lazy, axes, signal = max(images, key=lambda c: math.prod(c[0].shape))
    title = ((signal.get("metadata") or {}).get("General") or {}).get("title", "")
    meta = {"source_format": suffix.lstrip("."), "title": str(title),
            "n_signals": len(candidates)}
    data = _load_lazy(lazy, name, limit, meta)
    source = "dm-calibration" if plugin == "digitalmicrograph" else f"{plugin}-calibration"
    pixel_size_nm, note = None, "the file's axes carry no calibration"
    if len(axes) == 2:
        factors = [nm_per_unit(axis.get("units", "")) for axis in axes]
        if all(f[0] is not None for f in factors):
            pixel_size_nm, note = combined_pixel_size(
                *(float(axis.get("scale", 1.0)) * f[0] for axis, f in zip(axes, factors)))
        else:
            note = "calibration ignored: " + next(f[1] for f in factors if f[0] is None)
        meta["axes_units"] = [str(axis.get("units", "")) for axis in axes]
        meta["axes_scale"] = [float(axis.get("scale", 1.0)) for axis in axes]
    meta.update(calibration_source=source if pixel_size_nm is not None else "none",
                calibration_note=note)
    return data, pixel_size_nm, meta


def _load_lazy(lazy, name: str, limit: int, meta: dict) -> np.ndarray:
    """Compute a lazy (dask or numpy) 2-D image, binned band by band when too large."""
    shape = tuple(lazy.shape)
    if 0 in shape:
        return np.zeros(shape, np.float32)
    names = lazy.dtype.names or ()
    rgb = {"R", "G", "B"} <= set(names)
    factor = guard.reduction_factor(shape, limit, name)

    def band(rows: slice) -> np.ndarray:
        part = lazy[rows]
        if rgb:
            return luminance(np.stack([np.asarray(part[c]) for c in "RGB"], axis=-1))
        return np.asarray(part)

    if factor == 1:
        return band(slice(None))
    reducer = guard.BlockMean(shape, factor)
    step = guard.band_rows(shape[1], lazy.dtype.itemsize, factor)
    for r0 in range(0, shape[0], step):
        reducer.add(band(slice(r0, r0 + step)))
    note_reduction(meta, shape, factor)
    return reducer.result(name)
