"""Guards of :mod:`tempipe.io`: image size, non-finite pixels and printable file names.

The policies themselves are described in :mod:`tempipe.io`'s docstring; this module holds
their limits and the code that applies them, independent of any file format.
"""

from __future__ import annotations

import math
import os
import unicodedata

import numpy as np

from tempipe.errors import InputFileError, ParameterError

#: Largest image (pixels) handed to the analysis; larger ones are binned (block mean).
#: 8192² float32 is 256 MiB, and segmentation needs a few such arrays.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Environment variable overriding :data:`DEFAULT_MAX_PIXELS` (a positive integer).
MAX_PIXELS_ENV = "TEMPIPE_MAX_PIXELS"
#: Largest binning factor: more would shrink 20 px particles to a few pixels.
MAX_DOWNSAMPLE = 4
#: Images with more non-finite pixels than this fraction are refused, not repaired.
MAX_NONFINITE_FRACTION = 0.5
#: Raw bytes decoded at once while binning a large image band by band.
BAND_BYTES = 16 * 2**20
#: File names longer than this are shortened (middle elided) in messages and tables.
MAX_NAME_CHARS = 120


def max_pixels(value: int | None = None) -> int:
    """The pixel limit in force: ``value``, else ``$TEMPIPE_MAX_PIXELS``, else the default."""
    source = "max_pixels"
    if value is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        source, value = f"${MAX_PIXELS_ENV}", text
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit <= 0 or isinstance(value, bool):
        raise ParameterError(f"{source} must be a positive whole number of pixels (e.g. "
                             f"{DEFAULT_MAX_PIXELS} for 8192 x 8192), got {value!r}.")
    return limit


def reduction_factor(shape: tuple[int, int], limit: int, name: str) -> int:
    """Smallest integer binning that brings a (rows, cols) image within ``limit`` pixels.

    Raises
    ------
    InputFileError
        When the factor would exceed :data:`MAX_DOWNSAMPLE`.
    """
    rows, cols = (int(n) for n in shape)
    if rows * cols <= limit:
        return 1
    factor = max(2, math.ceil(math.sqrt(rows * cols / limit)))
    while (rows // factor) * (cols // factor) > limit:
        factor += 1
    if factor > MAX_DOWNSAMPLE:
        side = math.isqrt(limit)
        raise InputFileError(
            f"{name}: {rows} x {cols} px ({rows * cols / 1e6:,.0f} Mpx) is too large. "
            f"tempipe bins images above {limit / 1e6:,.0f} Mpx by at most {MAX_DOWNSAMPLE}x "
            f"(this one would need {factor}x, shrinking the particles as much). Crop it "
            f"into tiles of at most {side} x {side} px (or bin it yourself) and analyse "
            "the tiles.")
    return factor


def size_note(shape: tuple[int, int], factor: int) -> str:
    rows, cols = shape
    return (f"the image ({rows} x {cols} px) is larger than the analysis limit; it was "
            f"binned {factor} x {factor} (block mean) to {rows // factor} x "
            f"{cols // factor} px and its pixel size multiplied by {factor}")


class BlockMean:
    """Block mean (``factor`` x ``factor``) of an image fed as bands of whole rows.

    Rows and columns that do not fill a whole block (fewer than ``factor``) at the bottom
    and right edges are dropped. Memory: the output plus one band.
    """

    def __init__(self, shape: tuple[int, int], factor: int):
        self.factor = int(factor)
        self.out = np.empty((shape[0] // self.factor, shape[1] // self.factor), np.float32)
        self._done = 0
        self._carry: np.ndarray | None = None

    def add(self, band: np.ndarray) -> None:
        """Append the next ``(h, cols)`` rows of the image."""
        f, (n_out, cols_out) = self.factor, self.out.shape
        band = band[:, :cols_out * f]
        if self._carry is not None and len(self._carry):
            band = np.concatenate([self._carry, band.astype(self._carry.dtype, copy=False)])
        n = min(band.shape[0] // f, n_out - self._done)
        if n > 0:  # strided sums: several times faster than reshape(...).mean(axis=(1, 3))
            rows = band[0:n * f:f].astype(np.float32)
            for i in range(1, f):
                rows += band[i:n * f:f]
            out = self.out[self._done:self._done + n]
            out[:] = rows[:, 0::f]
            for j in range(1, f):
                out += rows[:, j::f]
            out *= np.float32(1.0 / (f * f))
            self._done += n
        self._carry = band[n * f:].copy() if self._done < n_out else None

    def result(self, name: str) -> np.ndarray:
        if self._done < self.out.shape[0]:
            raise InputFileError(f"{name}: the image data ends before the size its header "
                                 "declares; the file is truncated, copy or export it again.")
        return self.out


def band_rows(cols: int, bytes_per_pixel: int, factor: int) -> int:
    """Rows per band (a multiple of ``factor``) holding about :data:`BAND_BYTES` of data."""
    return max(1, BAND_BYTES // max(1, cols * bytes_per_pixel * factor)) * factor


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Block mean of an in-memory (rows, cols) array, computed band by band."""
    reducer = BlockMean(image.shape, factor)
    step = band_rows(image.shape[1], image.dtype.itemsize, factor)
    for r0 in range(0, image.shape[0], step):
        reducer.add(image[r0:r0 + step])
    return reducer.result("image")


def finite_image(image: np.ndarray, name: str) -> tuple[np.ndarray, int, str]:
    """Replace NaN/inf pixels by the median of the finite ones, in place.

    Returns the image, the number of replaced pixels and a note ("" when none).

    Raises
    ------
    InputFileError
        Every pixel, or more than :data:`MAX_NONFINITE_FRACTION` of them, is non-finite.
    """
    if np.isfinite(image.min()) and np.isfinite(image.max()):  # no mask: no extra memory
        return image, 0, ""
    finite = np.isfinite(image)
    n_bad = int(image.size - np.count_nonzero(finite))
    if n_bad == image.size:
        raise InputFileError(f"{name}: every pixel is NaN or infinite; the image holds no "
                             "data, export it again.")
    if n_bad > MAX_NONFINITE_FRACTION * image.size:
        raise InputFileError(
            f"{name}: {n_bad / image.size:.0%} of the pixels are NaN or infinite (masked or "
            "missing data); crop the image to its valid region, or fill the gaps, and load "
            "it again.")
    fill = float(np.median(image[finite]))
    image[~finite] = fill
    return image, n_bad, (f"{n_bad} NaN or infinite pixel(s) ({n_bad / image.size:.2%}) "
                          f"replaced by the median of the others ({fill:.6g})")


def display_name(name: str) -> str:
    """A file name safe to print: control and format characters escaped, length capped.

    Newlines, tabs, bidirectional overrides (which can disguise a suffix) and lone
    surrogates (undecodable bytes) become ``\\n``/``\\uXXXX`` escapes; names longer than
    :data:`MAX_NAME_CHARS` keep their start and their end (with the suffix).
    """
    out = []
    for char in str(name):
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    text = "".join(out)
    if len(text) > MAX_NAME_CHARS:
        keep = (MAX_NAME_CHARS - 1) // 2
        text = text[:keep] + "\u2026" + text[-keep:]
    return text
