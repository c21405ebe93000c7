"""Find the scale bar drawn on a micrograph.

A scale bar is a solid, saturated (very dark or very bright), long and thin horizontal
rectangle, usually in a corner, often with a text label beside it and sometimes inside an
opaque label box. :func:`find_scale_bar` finds the bar and returns its pixel length and
bounding box; :func:`scale_bar_exclusion` gives the region (bar plus room for its label)
whose particles the pipeline drops. Reading the label's text is not done here yet, so
``value_nm`` is None and the user supplies the bar's length in nm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage import measure

from tempipe.errors import ParameterError

#: Fraction of the intensity range counted as "saturated" at either end.
SATURATION_FRACTION = 0.03
#: A bar is at least this many times longer than tall.
MIN_ASPECT = 4.0
#: A bar fills at least this fraction of its bounding box (a solid rectangle).
MIN_RECTANGULARITY = 0.93
#: A bar spans at least this fraction of the image width (smaller is text or noise).
MIN_LENGTH_FRACTION = 0.03
#: A bar lies within this fraction of the image height/width from an edge.
EDGE_BAND_FRACTION = 0.3


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar found on an image.

    Attributes
    ----------
    length_px : float
        Length of the bar in pixels (its bounding-box width).
    bbox : tuple of int
        ``(min_row, min_col, max_row, max_col)`` of the bar, max exclusive.
    value_nm : float or None
        The bar's length in nm read from its label, None when not read.
    """

    length_px: float
    bbox: tuple[int, int, int, int]
    value_nm: float | None = None


def _candidates(image: np.ndarray) -> list[tuple[np.ndarray, measure._regionprops.RegionProperties]]:
    lo, hi = float(np.min(image)), float(np.max(image))
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return []
    masks = (image >= hi - SATURATION_FRACTION * span, image <= lo + SATURATION_FRACTION * span)
    found = []
    for mask in masks:
        for region in measure.regionprops(measure.label(mask, connectivity=1)):
            found.append(region)
    return found


def _is_bar(region, shape: tuple[int, int]) -> bool:
    min_row, min_col, max_row, max_col = region.bbox
    height, width = max_row - min_row, max_col - min_col
    if height < 1 or width < max(8, MIN_LENGTH_FRACTION * shape[1]):
        return False
    if width < MIN_ASPECT * height or region.area < MIN_RECTANGULARITY * height * width:
        return False
    band_rows = EDGE_BAND_FRACTION * shape[0]
    near_edge_row = min_row < band_rows or max_row > shape[0] - band_rows
    return bool(near_edge_row)


def find_scale_bar(image: np.ndarray) -> ScaleBar | None:
    """Find a solid horizontal scale bar.

    Parameters
    ----------
    image : (M, N) ndarray
        Grey micrograph, any real dtype.

    Returns
    -------
    ScaleBar or None
        The longest bar-like saturated rectangle near the top or bottom edge, or None
        when the image carries none.

    Raises
    ------
    ParameterError
        If ``image`` is not a 2-D real array.

    Examples
    --------
    >>> img = np.full((200, 300), 0.5); img[180:184, 200:260] = 1.0
    >>> find_scale_bar(img).length_px
    60.0
    """
    image = np.asarray(image)
    if image.ndim != 2 or not np.issubdtype(image.dtype, np.number):
        raise ParameterError(f"find_scale_bar needs a 2-D numeric image, got shape {image.shape} "
                             f"and dtype {image.dtype}.")
    bars = [r for r in _candidates(image.astype(np.float32)) if _is_bar(r, image.shape)]
    if not bars:
        return None
    best = max(bars, key=lambda r: r.bbox[3] - r.bbox[1])
    bbox = tuple(int(v) for v in best.bbox)
    return ScaleBar(length_px=float(bbox[3] - bbox[1]), bbox=bbox)


def scale_bar_exclusion(bar: ScaleBar, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Region holding the bar and room for its text label (above, below or beside it).

    Parameters
    ----------
    bar : ScaleBar
    shape : (int, int)
        Image shape.

    Returns
    -------
    tuple of int
        ``(min_row, min_col, max_row, max_col)``, max exclusive, clipped to the image.
    """
    min_row, min_col, max_row, max_col = bar.bbox
    pad_rows = int(round(max(4 * (max_row - min_row), 0.25 * bar.length_px)))
    pad_cols = int(round(0.35 * bar.length_px))
    return (max(0, min_row - pad_rows), max(0, min_col - pad_cols),
            min(shape[0], max_row + pad_rows), min(shape[1], max_col + pad_cols))
