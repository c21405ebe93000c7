"""Read micrographs (with their calibration) and write them back.

`load_micrograph` turns a file into a :class:`Micrograph`: a 2-D float32 image and, when
the file carries a trustworthy calibration, its pixel size in nanometres. Everyday images
go through Pillow, TIFF through tifffile (ImageJ and standard resolution tags), and
Gatan DM3/DM4 and the other electron-microscopy formats through rosettasciio. Every
failure becomes an :class:`~tempipe.errors.InputFileError` naming the file, the problem
and the fix; ``metadata["calibration_note"]`` says where a pixel size came from, or why
none was taken.

Inputs that cannot hurt (the policies, applied to every file and upload):

* **Format by content.** A file whose first bytes say PNG, JPEG, TIFF, GIF (or BMP, for
  an everyday-image suffix) but whose suffix says otherwise is read as what it is, with
  ``metadata["format_note"]``. Text saved under an image suffix, truncated and corrupt
  files are refused with a message (a TIFF whose strips end past the end of the file is
  refused as truncated rather than read with a missing part).
* **Large images.** An image of more than ``max_pixels`` pixels (default
  ``8192 * 8192``; the environment variable ``TEMPIPE_MAX_PIXELS`` or the ``max_pixels``
  argument changes it) is binned by the smallest integer factor ``f`` that brings it
  within the limit: block means of ``f x f`` pixels (up to ``f - 1`` edge rows/columns
  dropped), ``pixel_size_nm`` multiplied by ``f``, and ``metadata`` gains
  ``downsample_factor``, ``original_shape`` and ``size_note``. Binning more than
  :data:`MAX_DOWNSAMPLE` (4) times would shrink the particles too much: such images are
  refused, with the tile size to crop to. TIFF and the rosettasciio formats are binned
  band by band (memory: the binned image plus a few tens of MiB, never the full image;
  measured on a 16k x 16k TIFF in ``tests/test_bad_inputs.py``). PNG/JPEG/BMP/GIF are
  decoded whole by Pillow, so above Pillow's decompression-bomb limit
  (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 Mpx by default) they are refused with the advice
  to save them as TIFF.
* **Non-finite pixels.** NaN and infinite pixels are replaced by the median of the finite
  ones (``metadata["nonfinite_pixels"]`` and ``["nonfinite_note"]``); an image with more
  than half of them non-finite is refused.
* **Names.** Messages print file names with control and bidirectional-override characters
  escaped and very long names shortened. :func:`load_micrograph_bytes` never uses the
  given name as a path: it writes the bytes under a fixed temporary name, so ``../..``,
  newlines or 300-character names cannot reach the file system.

Images too small to segment (under 16 x 16 px) are still read; the analysis refuses them.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin

from tempipe import _io_guard as guard
from tempipe._io_formats import (
    PILLOW_SUFFIXES,
    PNG_PIXEL_SIZE_KEY,
    RSCIIO_PLUGINS,
    TIFF_SUFFIXES,
    format_of_suffix,
    looks_like_text,
    read_pillow,
    read_rsciio,
    sniff,
)
from tempipe._io_guard import DEFAULT_MAX_PIXELS, MAX_DOWNSAMPLE, MAX_PIXELS_ENV
from tempipe._io_tiff import read_tiff
from tempipe.errors import CalibrationError, InputFileError, ParameterError, TempipeError

SUPPORTED_SUFFIXES = tuple(sorted((*PILLOW_SUFFIXES, *TIFF_SUFFIXES, *RSCIIO_PLUGINS)))
__all__ = ["Micrograph", "load_micrograph", "load_micrograph_bytes", "save_micrograph",
           "SUPPORTED_SUFFIXES", "InputFileError", "DEFAULT_MAX_PIXELS", "MAX_DOWNSAMPLE",
           "MAX_PIXELS_ENV"]


@dataclass(frozen=True, eq=False)
class Micrograph:
    """One micrograph as read from a file.

    Attributes
    ----------
    image : (M, N) ndarray of float32
        Grey-level image, rows by columns, in the file's intensity units; finite.
    pixel_size_nm : float or None
        Side of one pixel of ``image`` in nanometres (binning included); None when the
        file holds no trustworthy calibration.
    name : str
        The file's name (no folder).
    metadata : dict
        At least ``source_format``, ``calibration_source`` (``"tiff-imagej"``,
        ``"tiff-resolution"``, ``"dm-calibration"``, ``"<plugin>-calibration"``,
        ``"png-text"`` or ``"none"``), ``calibration_note`` (why a calibration was
        taken or ignored) and ``nonfinite_pixels``; ``downsample_factor``,
        ``original_shape``, ``size_note``, ``format_note`` and ``nonfinite_note`` when
        those policies applied (see the module docstring).
    """

    image: np.ndarray
    pixel_size_nm: float | None
    name: str
    metadata: dict = field(default_factory=dict)


def load_micrograph(path: str | os.PathLike, *, max_pixels: int | None = None) -> Micrograph:
    """Read a micrograph file and its calibration.

    Parameters
    ----------
    path : str or os.PathLike
        Image file with one of :data:`SUPPORTED_SUFFIXES` (case-insensitive).
    max_pixels : int, optional
        Pixel limit above which the image is binned (default ``$TEMPIPE_MAX_PIXELS`` or
        8192²; see the module docstring).

    Returns
    -------
    Micrograph
        ``image`` is an (M, N) float32 array (colour converted to luminance), and
        ``pixel_size_nm`` the calibration in nm per pixel or None.

    Raises
    ------
    InputFileError
        Missing file, directory, empty/corrupt/truncated file, unsupported suffix, stack
        of images, 0-size image, an image mostly NaN/inf, or one too large even to bin.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m.tif"
    >>> _ = save_micrograph(out, np.ones((4, 6)), pixel_size_nm=0.5)
    >>> m = load_micrograph(out)
    >>> m.image.shape, round(m.pixel_size_nm, 6)
    ((4, 6), 0.5)
    """
    limit = guard.max_pixels(max_pixels)
    path = _checked_path(path)
    return _load(path, path.name, limit)


def load_micrograph_bytes(data: bytes, name: str, *,
                          max_pixels: int | None = None) -> Micrograph:
    """Read a micrograph from its bytes (an upload), using ``name``'s suffix for the format.

    The bytes go to a temporary file with a fixed name and ``name``'s suffix, removed
    afterwards; ``name`` (folders stripped, unprintable characters escaped, shortened
    when very long) is only used as the micrograph's name and in messages. The result is
    that of :func:`load_micrograph`.

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
    limit = guard.max_pixels(max_pixels)
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    if base in ("", ".", ".."):
        raise ParameterError(f"name must be a file name with a suffix, got {name!r}.")
    shown = guard.display_name(base)
    suffix = _checked_suffix(Path(base).suffix, shown)
    if len(data) == 0:
        raise InputFileError(f"{shown}: the file is empty (0 bytes); copy or export it "
                             "again.")
    with tempfile.TemporaryDirectory(prefix="tempipe-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        return _load(path, shown, limit)


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


def _rescaled_uint8(image: np.ndarray) -> np.ndarray:
    """(M, N) array -> (M, N) uint8 spanning the finite min..max (NaN -> 0)."""
    image = image.astype(np.float64)
    finite = np.isfinite(image)
    low, high = (image[finite].min(), image[finite].max()) if finite.any() else (0, 1)
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.round(np.where(finite, scaled, 0.0) * 255).astype(np.uint8)


def _checked_suffix(suffix: str, shown: str) -> str:
    if suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InputFileError(f"{shown}: unsupported file type "
                             f"{guard.display_name(suffix) or '(no suffix)'!r}; supported: "
                             f"{', '.join(SUPPORTED_SUFFIXES)}. Export the image as TIFF.")
    return suffix.lower()


def _checked_path(path) -> Path:
    """Return ``path`` as a Path after checking it names a non-empty supported file."""
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"path must be a file path, got {type(path).__name__}; for "
                             "uploaded bytes use load_micrograph_bytes(data, name).")
    path = Path(path)
    shown = guard.display_name(str(path))
    try:
        if not path.exists():
            raise InputFileError(f"{shown}: file not found; check the path and the "
                                 "spelling.")
        if path.is_dir():
            raise InputFileError(f"{shown}: is a directory, not an image file; pass the "
                                 "image files inside it.")
        _checked_suffix(path.suffix, guard.display_name(path.name))
        size = path.stat().st_size
    except TempipeError:
        raise
    except (OSError, ValueError) as exc:  # name too long, NUL byte, no permission...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputFileError(f"{shown}: cannot use this path ({reason}); check the file "
                             "name, or rename the file.") from exc
    if size == 0:
        raise InputFileError(f"{guard.display_name(path.name)}: the file is empty (0 "
                             "bytes); copy or export it again.")
    return path


def _load(path: Path, name: str, limit: int) -> Micrograph:
    """Read the file at ``path``; ``name`` is what the user knows it as."""
    shown = guard.display_name(name)
    suffix = path.suffix.lower()
    kind = format_of_suffix(suffix)
    meta_extra = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            content = sniff(path, suffix)
            if content is not None:
                meta_extra["format_note"] = (f"the file holds a {content[0]} image although "
                                             f"its name says {kind}; read as {content[0]} "
                                             f"(rename it to {content[1]})")
                kind, suffix = content
            if suffix in PILLOW_SUFFIXES:
                data, pixel_size_nm, meta = read_pillow(path, shown, limit)
            elif suffix in TIFF_SUFFIXES:
                data, pixel_size_nm, meta = read_tiff(path, shown, limit)
            else:
                data, pixel_size_nm, meta = read_rsciio(path, shown, limit, suffix)
        except TempipeError:
            raise
        except MemoryError as exc:
            raise InputFileError(f"{shown}: too large to load into memory; crop or bin the "
                                 "image before analysing it.") from exc
        except ImportError as exc:
            raise InputFileError(
                f"{shown}: reading {suffix} files needs the Python package '{exc.name}', "
                f"which is not installed; install it (pip install {exc.name}) or export "
                "the image as TIFF.") from exc
        except PermissionError as exc:
            raise InputFileError(f"{shown}: cannot open the file ({exc.strerror}); check "
                                 "that you may read it.") from exc
        except Exception as exc:  # any reader failure becomes a user-facing message
            raise InputFileError(_unreadable(path, shown, kind, exc)) from exc
    meta.update(meta_extra)
    if caught:
        meta["reader_warnings"] = [str(w.message)[:200] for w in caught]
    image, n_bad, note = guard.finite_image(_float_image(data, shown), shown)
    meta["nonfinite_pixels"] = n_bad
    if note:
        meta["nonfinite_note"] = note
    factor = meta.get("downsample_factor", 1)
    if factor > 1:
        meta["size_note"] = guard.size_note(meta["original_shape"], factor)
        meta["calibration_note"] += f"; {meta['size_note']}"
        if pixel_size_nm is not None:
            pixel_size_nm *= factor
    return Micrograph(image=image, pixel_size_nm=pixel_size_nm, name=name, metadata=meta)


def _unreadable(path: Path, shown: str, kind: str, exc: Exception) -> str:
    text = str(exc).replace(str(path), shown)  # never the temporary path of an upload
    detail = guard.display_name(f"{type(exc).__name__}: {text}")[:200]
    if "imagecodecs" in str(exc):
        return (f"{shown}: this {kind} file is compressed with a codec that needs the "
                f"Python package 'imagecodecs' ({detail}); install it (pip install "
                "imagecodecs) or save the image uncompressed.")
    if looks_like_text(path):
        return (f"{shown}: cannot read this file as {kind}: it holds text, not image data "
                f"({detail}). Check that you picked the image file, or export it again.")
    return (f"{shown}: cannot read this file as {kind} ({detail}). It is corrupt, truncated "
            f"or not a {kind} file; re-export it from the acquisition software.")


def _float_image(data, name: str) -> np.ndarray:
    """Check a 2-D real image and return it as a writable C-contiguous float32 array."""
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
    if data.dtype.kind not in "biuf":
        raise InputFileError(f"{name}: the pixels are not numbers (data type "
                             f"{data.dtype}); export a grey-level image.")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, then repaired
        image = np.ascontiguousarray(data, dtype=np.float32)
    return image if image.flags.writeable else image.copy()
