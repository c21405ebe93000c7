"""Batch summaries: counts, mean ± sd size and σ/d̄, per image and overall.

"Size" follows the paper (Tables 1 and 2): the mean major-axis length in nm; the
equivalent-circle diameter is reported beside it. Images without a scale contribute
their counts but no sizes, and the summary says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tempipe import __version__

SIZE_COLUMNS = {"major_axis": "major_axis_length_nm", "equivalent_diameter": "equivalent_diameter_nm"}


def size_statistics(values: pd.Series | np.ndarray) -> dict:
    """Mean, sample sd and σ/d̄ of finite values, in the values' unit (nm).

    Returns NaN statistics (as None, for JSON) when there are no finite values.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean_nm": None, "sd_nm": None, "sigma_over_mean": None}
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    mean = float(v.mean())
    return {"n": int(v.size), "mean_nm": mean, "sd_nm": sd,
            "sigma_over_mean": sd / mean if mean > 0 else None}


def _block(table: pd.DataFrame) -> dict:
    block = {"n_particles": int(len(table))}
    for key, column in SIZE_COLUMNS.items():
        block[key] = size_statistics(table[column] if column in table else [])
    return block


def summarize(particles: pd.DataFrame, images: pd.DataFrame, failures: pd.DataFrame) -> dict:
    """JSON-ready summary of a batch (see module docstring)."""
    per_image = []
    for row in images.to_dict("records"):
        table = particles[particles["image"] == row["image"]] if len(particles) else particles
        entry = {k: _json_value(row.get(k)) for k in
                 ("image", "n_segmented", "n_dropped_border", "n_dropped_scale_bar",
                  "pixel_size_nm", "scale_source", "scale_note")}
        entry.update(_block(table))
        per_image.append(entry)
    uncalibrated = [r["image"] for r in per_image if r["pixel_size_nm"] is None]
    overall = _block(particles)
    overall["n_images"] = len(per_image)
    overall["n_failed"] = int(len(failures))
    if uncalibrated:
        overall["note"] = (f"{len(uncalibrated)} image(s) had no scale, so their particles are "
                           f"counted but not sized: {', '.join(uncalibrated)}")
    return {"tempipe_version": __version__, "size_definition":
            "size = major-axis length (nm), as in the paper's tables; equivalent-circle "
            "diameter alongside; sigma_over_mean = sd / mean",
            "overall": overall, "images": per_image,
            "failures": failures.to_dict("records")}


def size_line(overall: dict) -> str:
    """One line for people: particle and image counts, mean ± sd major axis and σ/d̄."""
    size = overall["major_axis"]
    line = f"{overall['n_particles']} particles in {overall['n_images']} image(s)"
    if size["mean_nm"] is not None:
        line += (f"; size (major axis) {size['mean_nm']:.2f} ± {size['sd_nm']:.2f} nm, "
                 f"σ/d̄ = {size['sigma_over_mean']:.3f}")
    return line


def _json_value(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value
