"""Statistics comparing two particle populations: group fractions, two-sample size tests,
bootstrap confidence intervals of the mean size and of sigma/d-bar, and the energy distance
between two shape distributions with its permutation p-value. Used by
:mod:`tempipe.compare`, which re-exports these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import cdist

from tempipe.errors import ParameterError
from tempipe.groupstats import _check_table
from tempipe.shape_features import feature_table, has_cnn, random_subset, seed_of

#: Bootstrap resamples drawn per vectorised chunk (bounds memory to chunk x N ints).
_BOOT_CHUNK = 100


def group_fractions(labels_a, labels_b, names=("A", "B")) -> pd.DataFrame:
    """Count and fraction of every group in two labelings (0 = not grouped, left out).

    Returns
    -------
    DataFrame
        Index ``group`` (union of both); columns ``<a> n, <a> fraction, <b> n,
        <b> fraction``.
    """
    out = {}
    for name, labels in zip(names, (labels_a, labels_b)):
        labels = np.asarray(labels)
        counts = pd.Series(labels[labels > 0]).value_counts()
        out[f"{name} n"] = counts
        out[f"{name} fraction"] = counts / max(counts.sum(), 1)
    table = pd.DataFrame(out).fillna(0.0).sort_index()
    table.index.name = "group"
    return table.astype({f"{n} n": int for n in names})


def size_tests(size_a, size_b) -> pd.DataFrame:
    """Two-sample Kolmogorov-Smirnov and Mann-Whitney U tests of two size samples.

    Returns
    -------
    DataFrame
        Rows ``ks``, ``mann_whitney``; columns ``test, statistic, p_value, meaning``.
    """
    a, b = (np.asarray(s, float) for s in (size_a, size_b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        raise ParameterError(f"size tests need >= 2 finite sizes per dataset, got "
                             f"{a.size} and {b.size}.")
    ks = stats.ks_2samp(a, b)
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    return pd.DataFrame([
        {"test": "ks", "statistic": ks.statistic, "p_value": ks.pvalue,
         "meaning": "largest gap between the two cumulative size distributions"},
        {"test": "mann_whitney", "statistic": mw.statistic, "p_value": mw.pvalue,
         "meaning": "U statistic: are sizes of one dataset systematically larger?"}])


def bootstrap_size_ci(size, rng=0, n_boot: int = 1000, level: float = 0.95) -> dict:
    """Percentile-bootstrap confidence intervals of the mean size and of sigma/d-bar.

    Parameters
    ----------
    size : (N,) array-like
        Sizes (finite values used).
    rng : int or Generator
    n_boot : int
    level : float
        Confidence level, in (0, 1).

    Returns
    -------
    dict
        ``mean, mean_lo, mean_hi, rel_sd, rel_sd_lo, rel_sd_hi`` (sd with ddof=1).
    """
    x = np.asarray(size, float)
    x = x[np.isfinite(x)]
    if x.size < 2 or n_boot < 10 or not (0 < level < 1):
        raise ParameterError(f"bootstrap needs >= 2 sizes, n_boot >= 10 and 0 < level < 1; "
                             f"got {x.size} sizes, n_boot={n_boot}, level={level}.")
    gen = np.random.default_rng(seed_of(rng))
    means, rels = [], []
    for start in range(0, n_boot, _BOOT_CHUNK):
        sample = x[gen.integers(0, x.size, size=(min(_BOOT_CHUNK, n_boot - start), x.size))]
        m = sample.mean(axis=1)
        means.append(m)
        rels.append(sample.std(axis=1, ddof=1) / m)
    tail = 100 * (1 - level) / 2
    lo_m, hi_m = np.percentile(np.concatenate(means), [tail, 100 - tail])
    lo_r, hi_r = np.percentile(np.concatenate(rels), [tail, 100 - tail])
    return {"mean": x.mean(), "mean_lo": lo_m, "mean_hi": hi_m,
            "rel_sd": x.std(ddof=1) / x.mean(), "rel_sd_lo": lo_r, "rel_sd_hi": hi_r}


def shape_distance(particles_a: pd.DataFrame, particles_b: pd.DataFrame, rng=0, *,
                   max_n: int = 1000, n_perm: int = 200) -> tuple[float, float]:
    """Energy distance between two shape distributions and its permutation p-value.

    Both tables' (log p, d, log l_ratio) are standardised with the pooled mean and sd;
    at most ``max_n`` particles per dataset (seeded subsample) enter the statistic
    ``sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|)`` (0 for identical distributions, as
    :func:`scipy.stats.energy_distance` in 1-D). The p-value is the share of ``n_perm``
    random relabelings of the pooled sample whose statistic is at least as large.

    Returns
    -------
    (float, float)
        Energy distance (standardised units) and permutation p-value.
    """
    parts = []
    for name, table in (("particles_a", particles_a), ("particles_b", particles_b)):
        if not has_cnn(_check_table(table)):
            raise ParameterError(f"{name} has no CNN columns p, d, l_ratio; analyse it with "
                                 "the shape model to compare shape distributions.")
        values = feature_table(table, "cnn").to_numpy(float)
        parts.append(values[np.isfinite(values).all(axis=1)])
    seed = seed_of(rng)
    a, b = (p[random_subset(len(p), max_n, seed + i)] for i, p in enumerate(parts))
    pooled = np.concatenate([a, b])
    sd = pooled.std(axis=0)
    pooled = (pooled - pooled.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    dist = cdist(pooled, pooled)
    gen = np.random.default_rng(seed)
    masks = np.zeros((n_perm + 1, len(pooled)))
    masks[0, :len(a)] = 1.0
    for i in range(1, n_perm + 1):
        masks[i, gen.permutation(len(pooled))[:len(a)]] = 1.0
    energy = _energy(dist, masks, len(a), len(b))
    return float(energy[0]), float(np.mean(energy[1:] >= energy[0] - 1e-12))


def _energy(dist: np.ndarray, masks: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    """Energy distance for each row of ``masks`` (1 = in sample A), V-statistic form."""
    both = masks @ dist  # (P, n): summed distance of each point to sample A
    to_all = dist.sum(axis=0)
    aa = (both * masks).sum(axis=1) / n_a**2
    ab = (both * (1 - masks)).sum(axis=1) / (n_a * n_b)
    bb = ((to_all - both) * (1 - masks)).sum(axis=1) / n_b**2
    return np.sqrt(np.maximum(2 * ab - aa - bb, 0.0))
