"""Figures carry the data they are given: counts, fits, variances, pixels, units."""

import base64
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image
from plotly.colors import hex_to_rgb

from tempipe import figures, figures_montage
from tempipe.errors import ParameterError

SIZES = {1: 10.0, 2: 20.0, 3: 30.0}


@pytest.fixture(scope="module")
def population():
    """Three groups of known size, shape and CNN parameters (a calibrated table)."""
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 2, 3], 900, p=[0.5, 0.3, 0.2])
    size = np.array([SIZES[g] for g in labels]) * rng.normal(1, 0.1, labels.size)
    aspect = np.where(labels == 3, 2.0, 1.05) + rng.normal(0, 0.03, labels.size)
    table = pd.DataFrame({
        "major_axis_length_nm": size, "minor_axis_length_nm": size / aspect,
        "aspect_ratio": aspect, "area_nm2": np.pi / 4 * size**2 / aspect,
        "circularity": np.where(labels == 2, 0.8, 0.95) + rng.normal(0, 0.01, labels.size),
        "solidity": 1 - np.abs(rng.normal(0, 0.01, labels.size)),
        "p": np.where(labels == 2, 6.0, 2.0) * rng.lognormal(0, 0.1, labels.size),
        "d": np.full(labels.size, 2.0), "l_ratio": np.where(labels == 3, 2.0, 1.05)})
    return table, labels


def png_of(fig, trace=0):
    data = fig.data[trace].source.split(",", 1)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_histogram_fits_integrate_to_group_counts(population):
    table, labels = population
    fig = figures.histogram_with_fits(table, labels, "major_axis_length_nm", bins=30)
    assert fig.layout.xaxis.title.text == "major axis length (nm)"
    hists = [t for t in fig.data if isinstance(t, go.Histogram)]
    fits = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert [len(h.x) for h in hists] == [int((labels == g).sum()) for g in (1, 2, 3)]
    width = hists[0].xbins.size
    for g, fit in zip((1, 2, 3), fits):
        area = np.trapezoid(fit.y, fit.x) / width  # particles under the curve
        assert area == pytest.approx((labels == g).sum(), rel=0.02)
        assert fit.x[np.argmax(fit.y)] == pytest.approx(SIZES[g], rel=0.03)


def test_scatter_3d_has_one_trace_per_group_with_units(population):
    table, labels = population
    fig = figures.scatter_3d(table, labels)
    assert [len(t.x) for t in fig.data] == [int((labels == g).sum()) for g in (1, 2, 3)]
    assert fig.layout.scene.xaxis.title.text == "p (curvature) (1)"
    assert fig.data[2].marker.color == figures.group_color(3)


def test_pca_pareto_percentages(population):
    table, _ = population
    fig = figures.pca_pareto(table, "both")
    bars, line = fig.data
    assert np.sum(bars.y) == pytest.approx(100.0)
    assert line.y[-1] == pytest.approx(100.0)
    assert np.all(np.diff(bars.y) <= 1e-9)
    assert "(%)" in fig.layout.yaxis.title.text
    # the 3 morphology descriptors the table has (log aspect ratio, circularity, solidity)
    # + log p, log l_ratio (d is constant)
    assert len(bars.y) == 5
    no_cnn = figures.pca_pareto(table.drop(columns=["p", "d", "l_ratio"]))
    assert len(no_cnn.data[0].y) == 3


def test_dendrogram_leaves_hold_the_subsample(population):
    table, labels = population
    fig = figures.dendrogram(table, labels, feature_set="both", max_leaves=12, subsample=500)
    leaves = fig.data[-1]
    assert sum(int(t) for t in fig.layout.xaxis.ticktext) == 500
    assert len(leaves.x) == 12
    assert set(leaves.marker.color) <= {figures.group_color(g) for g in (1, 2, 3)}


def test_parallel_coordinates_and_silhouettes(population):
    table, labels = population
    fig = figures.parallel_coordinates(table, labels, max_lines=400)
    assert len(fig.data[0].line.color) == 400
    assert fig.data[0].dimensions[0].label == "major axis length (nm)"
    curves = pd.DataFrame({"algorithm": ["kmeans"] * 3, "feature_set": ["both"] * 3,
                           "k": [2, 3, 4], "silhouette": [0.5, 0.7, 0.6]})
    fig = figures.silhouette_curves(curves)
    assert list(fig.data[0].y) == [0.5, 0.7, 0.6]


def test_confusion_matrix_figure():
    confusion = pd.DataFrame([[50, 2], [1, 47]], index=[1, 2], columns=[1, 2])
    fig = figures.confusion_matrix(confusion)
    np.testing.assert_array_equal(fig.data[0].z, confusion.to_numpy())
    assert "97.0%" in fig.layout.title.text


def test_size_comparison(population):
    table, _ = population
    a, b = table.iloc[:400], table.iloc[400:]
    tests = pd.DataFrame({"test": ["ks", "mann_whitney"], "p_value": [0.5, 0.25]})
    fig = figures.size_comparison(a, b, ("x", "y"), tests=tests)
    assert "KS p = 0.5" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "major axis length (nm)"
    assert fig.layout.yaxis.title.text == "probability density (1/nm)"


def test_group_montage_tiles(population):
    _, labels = population
    crops = np.zeros((labels.size, 16, 16))
    crops[:, 4:12, 4:12] = 1.0
    fig = figures_montage.group_montage(crops, labels, max_per_group=30, columns=10)
    assert len(fig.data) == 3
    image = png_of(fig)
    assert image.shape == (3 * 18, 10 * 18, 3)  # 30 crops: 3 rows of 10, 16 px + 2 gap
    dark = round(255 * (1 - 0.85 / 1.5), 0)  # crop value 1 of a full scale 1.5
    assert np.abs(image[10, 10] - dark).max() <= 1 and (image[2 + 16 + 1, 30] == 255).all()


def test_population_montage_colour_shares(population):
    _, labels = population
    crops = np.ones((labels.size, 8, 8))  # every tile fully "particle"
    fig = figures_montage.population_montage(crops, labels, tile_px=8, max_particles=2000)
    image = png_of(fig).reshape(-1, 3).astype(int)
    shares = []
    for g in (1, 2, 3):
        tint = 255 + (1 / 1.5) * (np.array(hex_to_rgb(figures.group_color(g))) - 255)
        shares.append(np.all(np.abs(image - tint) <= 1, axis=1).sum())
    np.testing.assert_allclose(np.array(shares) / sum(shares),
                               np.bincount(labels)[1:] / labels.size, atol=1e-9)


def test_group_overlay_paints_each_particle():
    label_image = np.zeros((20, 30), int)
    label_image[2:6, 2:6], label_image[10:14, 10:20], label_image[15:18, 2:5] = 4, 7, 9
    image = np.where(np.arange(30) < 15, 0.0, 200.0) * np.ones((20, 1))  # grey range 0..200
    image[label_image > 0] = 100.0
    particles = pd.DataFrame({"label": [4, 7]})  # label 9 was dropped (not in the table)
    fig = figures_montage.group_overlay(image, label_image, particles, np.array([2, 1]),
                                        alpha=0.5)
    rgb = png_of(fig).astype(float)
    grey = np.clip((100 - 0) / 200, 0, 1) * 255
    for (r, c), g in (((3, 3), 2), ((12, 15), 1)):
        expected = 0.5 * grey + 0.5 * np.array(hex_to_rgb(figures.group_color(g)))
        np.testing.assert_allclose(rgb[r, c], np.floor(expected), atol=1)
    np.testing.assert_allclose(rgb[16, 3], np.floor(grey), atol=1)
    assert fig.layout.xaxis.title.text == "column (px)"


@pytest.mark.parametrize("call, match", [
    (lambda t, l: figures.histogram_with_fits(t, l, "nope"), "not in the particle table"),
    (lambda t, l: figures.scatter_3d(t.drop(columns="p"), l), "CNN columns"),
    (lambda t, l: figures.scatter_3d(t, l[:-1]), "one group per row"),
    (lambda t, l: figures_montage.group_montage(np.zeros((5, 4)), l[:5]), r"\(N, S, S\)"),
    (lambda t, l: figures_montage.group_montage(np.zeros((5, 4, 4)), l[:4]), "one per crop"),
    (lambda t, l: figures_montage.group_montage(np.zeros((5, 4, 4)), np.zeros(5, int)),
     "no grouped"),
    (lambda t, l: figures.confusion_matrix(np.eye(2)), "square DataFrame"),
])
def test_bad_inputs(population, call, match):
    table, labels = population
    with pytest.raises(ParameterError, match=match):
        call(table, labels)


def test_group_fractions_bars():
    from tempipe.compare import group_fractions
    fractions = group_fractions([1, 1, 2, 0], [2, 2, 3], names=("hot", "larp"))
    fig = figures.group_fractions(fractions)
    assert [t.name for t in fig.data] == ["hot", "larp"]
    np.testing.assert_allclose(fig.data[0].y, [2 / 3, 1 / 3, 0])
    np.testing.assert_array_equal(fig.data[1].text, [0, 2, 1])
    assert list(fig.data[1].x) == ["group 1", "group 2", "group 3"]
    with pytest.raises(ParameterError, match="fraction"):
        figures.group_fractions(pd.DataFrame({"x": [1]}))
