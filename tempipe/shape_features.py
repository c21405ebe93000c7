"""Feature sets for grouping particles: morphology descriptors, CNN parameters, both.

The variables :mod:`tempipe.population` clusters, :mod:`tempipe.classifier` learns from
and :mod:`tempipe.compare` measures distances in: :func:`feature_table` (unscaled, with the
logarithms where ratios matter) and :func:`standardized_features` (zero mean, unit
variance over the rows that can be grouped); plus the seeding and subsampling helpers
those modules share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tempipe.errors import ParameterError
from tempipe.groupstats import PX_NAME, _check_table

FEATURE_SETS: tuple[str, ...] = ("features", "cnn", "both")
#: CNN columns of the particle table and the transformed columns clustering uses.
CNN_COLUMNS: tuple[str, ...] = ("p", "d", "l_ratio")
CNN_FEATURES: tuple[str, ...] = ("log_p", "d", "log_l_ratio")
#: Morphology descriptors of the "features" set, one per property: size, elongation,
#: outline smoothness, corner sharpness, concavity. The 30 features measure size ten times
#: (area, perimeter, axes, Feret diameters, hull...) and elongation twice; in standardised
#: Euclidean distance that counts size tenfold and the silhouette then prefers the coarse
#: size split (K = 2 on the demo batches, whose groups differ in shape). Bounding-box,
#: angle, position and intensity features say nothing about shape and are left out.
MORPHOLOGY_FEATURES: tuple[str, ...] = ("equivalent_diameter_nm", "aspect_ratio",
                                        "circularity", "roundness", "solidity")
#: Descriptors entering as logarithms (ratios matter; unit-free once standardised).
LOG_FEATURES: frozenset[str] = frozenset({"equivalent_diameter_nm", "equivalent_diameter_px",
                                          "aspect_ratio"})


def seed_of(rng) -> int:
    """An int seed for scikit-learn drawn from ``rng`` (a seed or a Generator)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**31 - 1))
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return int(np.random.default_rng(rng).integers(2**31 - 1))
    raise ParameterError(f"rng={rng!r} is not a seed or a numpy.random.Generator; pass an "
                         "int seed, None or numpy.random.default_rng(...).")


def has_cnn(particles: pd.DataFrame) -> bool:
    """True when the table has the CNN's ``p, d, l_ratio`` columns with some finite values."""
    return all(c in particles and np.isfinite(particles[c].to_numpy(float)).any()
               for c in CNN_COLUMNS)


def morphology_columns(particles: pd.DataFrame) -> list[str]:
    """Columns of :data:`MORPHOLOGY_FEATURES` to use: calibrated, else the ``_px`` twin.

    A calibrated column is used when all its values are finite; otherwise its pixel
    counterpart (``equivalent_diameter_nm`` -> ``equivalent_diameter_px``) when present.
    Features absent from the table are skipped.
    """
    out = []
    for name in MORPHOLOGY_FEATURES:
        if name in particles and np.isfinite(particles[name].to_numpy(float)).all():
            out.append(name)
        elif PX_NAME.get(name) and PX_NAME[name] in particles:
            out.append(PX_NAME[name])
        elif name in particles:
            out.append(name)
    return out


def feature_table(particles: pd.DataFrame, feature_set: str) -> pd.DataFrame:
    """The unscaled variables of a feature set, one row per particle.

    Parameters
    ----------
    particles : DataFrame
        Particle table (the features; ``p, d, l_ratio`` for the CNN sets).
    feature_set : {"features", "cnn", "both"}
        The morphology descriptors of :data:`MORPHOLOGY_FEATURES` (``log_`` prefixed
        where :data:`LOG_FEATURES` applies), the CNN parameters as ``log_p, d,
        log_l_ratio``, or both.

    Returns
    -------
    DataFrame
        (N, F) numeric table with the table's index; may hold non-finite values.

    Raises
    ------
    ParameterError
        Unknown feature set, or a CNN set asked of a table without CNN columns.

    Examples
    --------
    >>> t = pd.DataFrame({"equivalent_diameter_nm": [10.0, 20.0], "aspect_ratio": [1.0, 2.0],
    ...                   "circularity": [0.9, 0.8], "roundness": [0.8, 0.5],
    ...                   "solidity": [1.0, 0.9]})
    >>> list(feature_table(t, "features").columns)[:2]
    ['log_equivalent_diameter_nm', 'log_aspect_ratio']
    """
    particles = _check_table(particles)
    if feature_set not in FEATURE_SETS:
        raise ParameterError(f"feature_set={feature_set!r} is not one of {FEATURE_SETS}.")
    parts = []
    if feature_set in ("features", "both"):
        cols = morphology_columns(particles)
        if not cols:
            raise ParameterError("the particle table has none of the morphology feature "
                                 "columns; pass the table of analyze_batch.")
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append(pd.DataFrame({(f"log_{c}" if c in LOG_FEATURES else c):
                                       (np.log(particles[c].astype(float)) if c in LOG_FEATURES
                                        else particles[c].astype(float)) for c in cols},
                                      index=particles.index))
    if feature_set in ("cnn", "both"):
        if not has_cnn(particles):
            raise ParameterError(f"feature_set={feature_set!r} needs the CNN columns p, d, "
                                 "l_ratio; analyse the images with the shape model "
                                 "(shape_model='shipped') or use feature_set='features'.")
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append(pd.DataFrame({"log_p": np.log(particles["p"].astype(float)),
                                       "d": particles["d"].astype(float),
                                       "log_l_ratio": np.log(particles["l_ratio"].astype(float))},
                                      index=particles.index))
    return pd.concat(parts, axis=1)


def standardized_features(particles: pd.DataFrame, feature_set: str
                          ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Standardised feature matrix of the rows that can be grouped.

    Returns
    -------
    X : (n_valid, F) float ndarray
        Zero mean, unit variance per column over the valid rows (constant columns dropped).
    valid : (N,) bool ndarray
        Rows whose variables are all finite.
    columns : list of str
        Names of the F columns kept.
    """
    table = feature_table(particles, feature_set)
    values = table.to_numpy(float)
    valid = np.isfinite(values).all(axis=1)
    values = values[valid]
    sd = values.std(axis=0) if len(values) else np.zeros(values.shape[1])
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(values).max(axis=0, initial=0.0))
    values = (values[:, keep] - values[:, keep].mean(axis=0)) / sd[keep]
    return values, valid, [c for c, k in zip(table.columns, keep) if k]


def random_subset(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted seeded random subset of ``range(n)`` of at most ``size`` indices."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
