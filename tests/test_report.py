"""tempipe.report: self-contained HTML, particle tables, the ZIP bundle."""

import io
import json
import shutil
import zipfile
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
import pytest
from PIL import Image

from tempipe import __version__
from tempipe.errors import ParameterError
from tempipe.report import (ReportSection, build_html_report, build_report_zip, model_version,
                            particles_csv, particles_parquet, sha256_bytes, slug)

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2


@pytest.fixture(scope="module")
def particles():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"image": ["a.tif"] * 5 + ["b.tif"] * 3,
                         "label": np.arange(1, 9),
                         "major_axis_length_nm": rng.uniform(5, 20, 8),
                         "p": rng.uniform(1, 8, 8), "uncertain": [False] * 7 + [True]})


@pytest.fixture(scope="module")
def sections(particles):
    hist = go.Figure(go.Histogram(x=particles["major_axis_length_nm"]))
    scatter = go.Figure(go.Scatter(x=[1, 2, 3], y=[4.5, 5.5, 6.5], name="marker-trace-xyz"))
    stats = pd.DataFrame({"mean": [12.3456789], "n": [8]}, index=["size"])
    return [ReportSection("Overview & sizes", "First paragraph.\n\nSecond <b>para</b>.",
                          {"Size histogram": hist}, {"Size statistics": stats}),
            ReportSection("Second part", "", {"Scatter": scatter}, {})]


@pytest.fixture(scope="module")
def inputs():
    return pd.DataFrame({"image": ["a.tif", "b.tif"], "sha256": [SHA_ABC, "0" * 64]})


@pytest.fixture(scope="module")
def report_html(sections, inputs):
    return build_html_report("Batch 7 report", sections, inputs=inputs,
                             parameters={"Segmentation": {"split_h": 0.2, "polarity": "auto"}},
                             model_card={"name": "tempipe shape CNN", "created": "2026-01-01",
                                         "test": {"rmse_d": 0.28}}, created=CREATED)


def test_sha256_and_slug_known_values():
    assert sha256_bytes(b"abc") == SHA_ABC
    assert slug("Size (nm) by group #2") == "size-nm-by-group-2"
    assert slug("***") == "item"


def test_html_embeds_plotlyjs_once_and_no_network(report_html):
    assert report_html.count("* plotly.js v") == 1
    rest = report_html.replace(get_plotlyjs(), "")   # plotly.js itself names its geo CDN
    assert "<script src=" not in rest and "https://" not in rest
    assert report_html.startswith("<!DOCTYPE html>") and report_html.endswith("</html>")


def test_html_holds_figures_tables_parameters_inputs_date(report_html):
    assert "fig-0-0" in report_html and "fig-1-0" in report_html
    assert "marker-trace-xyz" in report_html           # the figure's data, interactive
    assert "12.35" in report_html                        # table value, 4 significant digits
    assert "split_h" in report_html and "0.2" in report_html
    assert SHA_ABC in report_html and "a.tif" in report_html
    assert "2026-01-02T03:04:05+00:00" in report_html
    assert f"<td>{__version__}</td>" in report_html
    assert "tempipe shape CNN, 2026-01-01" in report_html
    assert "Second &lt;b&gt;para&lt;/b&gt;." in report_html  # text is escaped
    assert "href='#overview-sizes'" in report_html and "id='overview-sizes'" in report_html


def test_model_version_without_card():
    assert model_version(None).startswith("none")
    assert model_version({"version": "3", "architecture": {}}) == "3"


@pytest.mark.parametrize("inputs, sections, match", [
    (pd.DataFrame({"image": ["a"]}), [], "sha256"),
    ([("a", SHA_ABC)], [], "DataFrame"),
    (pd.DataFrame({"image": ["a"], "sha256": [SHA_ABC]}), ["not a section"], "ReportSection"),
])
def test_bad_report_inputs(inputs, sections, match):
    with pytest.raises(ParameterError, match=match):
        build_html_report("t", sections, parameters={}, inputs=inputs)


def test_particle_tables_round_trip(particles):
    back = pd.read_csv(io.BytesIO(particles_csv(particles)))
    pd.testing.assert_frame_equal(back, particles, check_dtype=False)
    back = pd.read_parquet(io.BytesIO(particles_parquet(particles)))
    pd.testing.assert_frame_equal(back, particles)


def _zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_zip_without_images_falls_back_to_json(report_html, particles, sections):
    members = _zip_members(build_report_zip(report_html, particles, {"n": np.int64(8)},
                                            sections, images=False))
    assert members["report.html"].decode() == report_html
    assert json.loads(members["summary.json"]) == {"n": 8}
    assert len(pd.read_csv(io.BytesIO(members["particles.csv"]))) == len(particles)
    assert len(pd.read_parquet(io.BytesIO(members["particles.parquet"]))) == len(particles)
    table = pd.read_csv(io.BytesIO(members["tables/overview-sizes/size-statistics.csv"]),
                        index_col=0)
    assert table.loc["size", "mean"] == pytest.approx(12.3456789)
    fig = pio.from_json(members["figures/second-part/scatter.json"].decode())
    assert list(fig.data[0].y) == [4.5, 5.5, 6.5]
    assert "Plotly JSON" in members["README.txt"].decode()


def test_zip_keeps_going_when_one_figure_fails(report_html, particles, sections, monkeypatch):
    import tempipe.report as report

    def fake_images(figures, **_):
        names = list(figures)
        return {names[0]: b"\x89PNG fake"}, [f"{names[1]}: not rendered as PNG (boom)"]
    monkeypatch.setattr(report, "figure_images", fake_images)
    members = _zip_members(build_report_zip(report_html, particles, {}, sections))
    assert members["figures/overview-sizes/size-histogram.png"] == b"\x89PNG fake"
    assert "figures/second-part/scatter.json" in members
    assert "boom" in members["README.txt"].decode()


@pytest.mark.skipif(shutil.which("chromium") is None and not
                    __import__("os").path.exists("/usr/bin/chromium"),
                    reason="kaleido needs Chromium")
def test_zip_renders_png_with_kaleido(report_html, particles, sections):
    small = [ReportSection("One", "", {"Scatter": sections[1].figures["Scatter"]}, {})]
    members = _zip_members(build_report_zip(report_html, particles, {}, small))
    png = members.get("figures/one/scatter.png")
    assert png is not None, members["README.txt"].decode()
    image = Image.open(io.BytesIO(png))
    assert image.size == (1000, 600)
    assert len(np.unique(np.asarray(image.convert("L")))) > 2   # not a blank page
