"""TIFF reader of :mod:`tempipe.io` (tifffile): layout, calibration, truncation check and
band-by-band binning of images above the pixel limit (memory: output plus one band).
"""

from __future__ import annotations

import math
import os

import numpy as np
import tifffile

from tempipe import _io_guard as guard
from tempipe._io_formats import combined_pixel_size, luminance, nm_per_unit, note_reduction
from tempipe.errors import InputFileError

DEFAULT_DPI = (72.0, 96.0, 300.0)  # resolutions software writes when it knows nothing


def read_tiff(path, name: str, limit: int):
    """TIFF -> (2-D array, pixel size or None, metadata)."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = series.keyframe
        shape, axes, samples = _tiff_layout(tuple(series.shape), series.axes, page, name)
        _check_complete(series.pages[0], os.path.getsize(path), name)
        plane = tuple(n for n, a in zip(shape, axes) if a != "S") if samples else shape
        factor = guard.reduction_factor(plane, limit, name)
        meta = {"source_format": "tiff", "n_series": len(tif.series),
                "imagej_unit": (tif.imagej_metadata or {}).get("unit")}
        if factor == 1:
            data = series.asarray().reshape(shape)
            if samples:
                data = np.moveaxis(data, axes.index("S"), -1)
                data = luminance(data) if samples == "rgb" else data[..., 0]
        else:
            data = _binned(tif, series.pages[0], plane, factor, samples, name)
            note_reduction(meta, plane, factor)
        if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            data = data.max() - data
        elif page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
            meta["palette"] = True  # colour indices: the colour map's luminance instead
            data = (_palette_lut(page.colormap)[data] if factor == 1 else data)
        resolution, unit = page.resolution, page.resolutionunit
    pixel_size_nm, source, note = _tiff_calibration(resolution, unit, meta["imagej_unit"])
    meta.update(resolution=tuple(resolution), resolution_unit=getattr(unit, "name", str(unit)),
                calibration_source=source, calibration_note=note)
    return data, pixel_size_nm, meta


def _palette_lut(colormap: np.ndarray) -> np.ndarray:
    """Colour map (3, n) of a palette TIFF -> (n,) float32 luminance per index."""
    colormap = np.asarray(colormap)
    return luminance(colormap.T) if colormap.ndim == 2 else colormap.astype(np.float32)


def _check_complete(page, file_size: int, name: str) -> None:
    """Refuse a file whose image data would end past the end of the file (truncated)."""
    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
    if ends and max(ends) > file_size:
        raise InputFileError(
            f"{name}: the file is truncated (its image data needs {max(ends):,} bytes, the "
            f"file has {file_size:,}); copy or export it again.")


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


def _binned(tif, page, plane: tuple[int, int], factor: int, samples: str,
            name: str) -> np.ndarray:
    """Block mean of a large single-page TIFF, decoded one band of rows at a time."""
    if page.samplesperpixel > 1 and page.planarconfig != tifffile.PLANARCONFIG.CONTIG:
        raise InputFileError(
            f"{name}: a {plane[0]} x {plane[1]} px TIFF with its colour planes stored "
            "separately is too large to read plane by plane; save it as a grey-level "
            "TIFF (or bin it) first.")
    lut = (_palette_lut(page.colormap) if page.photometric == tifffile.PHOTOMETRIC.PALETTE
           and page.colormap is not None else None)
    reducer = guard.BlockMean(plane, factor)
    for band in _bands(tif, page, plane, factor):  # (h, cols, samples)
        if samples == "rgb":
            reducer.add(luminance(band))
        else:
            reducer.add(band[..., 0] if lut is None else lut[band[..., 0]])
    return reducer.result(name)


def _bands(tif, page, plane: tuple[int, int], factor: int):
    """Yield (h, cols, samples) bands of whole rows, top to bottom."""
    rows, cols = plane
    n_samples = page.samplesperpixel
    if page.is_contiguous:  # uncompressed: read rows straight from the file
        dtype = np.dtype(page.dtype).newbyteorder(tif.byteorder)
        step = guard.band_rows(cols, n_samples * dtype.itemsize, factor)
        handle = tif.filehandle
        for r0 in range(0, rows, step):
            n = min(step, rows - r0)
            handle.seek(page.dataoffsets[0] + r0 * cols * n_samples * dtype.itemsize)
            yield handle.read_array(dtype, n * cols * n_samples).reshape(n, cols, n_samples)
        return
    band, band_y = None, 0
    for data, index, _ in page.segments(maxworkers=1, buffersize=guard.BAND_BYTES):
        y, x = index[2], index[3]
        if not page.is_tiled:  # a strip: whole rows
            n = min(page.rowsperstrip, rows - y)
            yield (np.zeros((n, cols, n_samples), page.dtype) if data is None
                   else data.reshape(-1, cols, n_samples)[:n])
            continue
        if band is None or y != band_y:  # tiles come row of tiles by row of tiles
            if band is not None:
                yield band[:min(len(band), rows - band_y), :cols]
            band, band_y = np.zeros((page.tilelength, cols + page.tilewidth, n_samples),
                                    page.dtype), y
        if data is not None:
            tile = data.reshape(page.tilelength, page.tilewidth, n_samples)
            band[:, x:x + page.tilewidth] = tile
    if band is not None:
        yield band[:min(len(band), rows - band_y), :cols]


def _tiff_calibration(resolution, unit, imagej_unit):
    """TIFF resolution (pixels per unit, X then Y) -> (pixel size or None, source, note)."""
    cols_per_unit, rows_per_unit = (float(r) for r in resolution)
    if imagej_unit is not None:
        nm_unit, why = nm_per_unit(imagej_unit)
        source = "tiff-imagej"
        if nm_unit is None:
            return None, "none", f"ImageJ calibration ignored: {why}"
    elif unit == tifffile.RESUNIT.NONE:
        return None, "none", ("the TIFF has no calibration (no ImageJ unit, resolution "
                              "unit NONE); give the pixel size or a scale bar")
    elif unit == tifffile.RESUNIT.INCH and cols_per_unit in DEFAULT_DPI:
        return None, "none", (f"{cols_per_unit:g} dpi is a default screen/print "
                              "resolution, not a microscope calibration; ignored")
    else:
        nm_unit = {tifffile.RESUNIT.INCH: 2.54e7, tifffile.RESUNIT.CENTIMETER: 1e7,
                   tifffile.RESUNIT.MILLIMETER: 1e6,
                   tifffile.RESUNIT.MICROMETER: 1e3}.get(unit)
        source = "tiff-resolution"
    if nm_unit is None:
        return None, "none", f"unknown TIFF resolution unit {unit!r}; calibration ignored"
    if cols_per_unit <= 0 or rows_per_unit <= 0:
        return None, "none", "the TIFF resolution tags are 0; calibration ignored"
    pixel_size_nm, note = combined_pixel_size(nm_unit / rows_per_unit, nm_unit / cols_per_unit)
    return pixel_size_nm, source if pixel_size_nm is not None else "none", note
