"""The dashboard's pages and helpers, run headless by streamlit.testing.v1.AppTest.

Demo batches are one image each (``TEMPIPE_DEMO_IMAGES=1``); the heavy steps are cached
in-process by content, so every test after the first reuses them.
"""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from streamlit.testing.v1 import AppTest

from tempipe.crops import crop_masks
from tempipe.io import Micrograph, load_micrograph_bytes, save_micrograph
from tempipe.pipeline import analyze_micrograph
from tempipe.resim import resim_jaccard
from tempipe.scalebar import find_scale_bar
from tempipe.simulate import demo_batch, simulate_micrograph
from tempipe_app import overlay, shapes, state
from tempipe_app.analysis import images_table, particle_table
from tempipe_app.datasets import expand_uploads

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = ["datasets", "segmentation", "shapes", "clusters", "compare", "report"]
TIMEOUT = 300
HAS_MODEL = (ROOT / "models" / "shape_cnn.pt").is_file()


@pytest.fixture(autouse=True)
def small_demo(monkeypatch, tmp_path):
    monkeypatch.setenv("TEMPIPE_DEMO_IMAGES", "1")
    monkeypatch.delenv("TEMPIPE_AUTOLOAD_DEMO", raising=False)
    monkeypatch.setenv("TEMPIPE_HOME", str(tmp_path / "home"))   # an empty store per test


def fresh() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def demo() -> AppTest:
    at = fresh()
    at.button(key="load_demo").click().run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py")
    return at.run()


def ok(at: AppTest) -> None:
    """No exception reached the page and no error box was shown."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def store(at: AppTest) -> dict:
    return at.session_state["tempipe_datasets"]


class FakeUpload:
    def __init__(self, name, data):
        self.name, self._data = name, data

    def getvalue(self):
        return self._data


# --- pages -----------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_on_an_empty_session(page):
    at = goto(fresh(), page)
    ok(at)
    if page != "datasets":
        hints = " ".join(i.value for i in at.info)
        assert "No dataset yet" in hints or "two datasets" in hints


def test_demo_loads_both_batches_like_the_pipeline():
    at = demo()
    ok(at)
    datasets = store(at)
    assert list(datasets) == ["hot-injection (demo)", "LARP (demo)"]
    for ds, name in zip(datasets.values(), ("hot-injection", "larp")):
        assert ds.segmented and ds.shaped == HAS_MODEL, (ds.failures, ds.shape_error)
        sim = demo_batch(name, 1, rng=0)[0]
        direct = analyze_micrograph(Micrograph(sim.image, sim.pixel_size_nm, "x"),
                                    shape_model=None)
        kept = sum(len(r.particles) for r in ds.results.values())
        assert kept == len(direct.particles), (name, kept, len(direct.particles))
        inside = int((~sim.particles["touches_border"]).sum())   # simulated truth
        assert abs(kept - inside) / inside < 0.15, (name, kept, inside)
    assert "hot-injection (demo)" in at.success[0].value
    again = goto(at, "datasets")
    assert len(again.dataframe[0].value) == 2


def test_demo_autoloads_once_when_asked(monkeypatch):
    monkeypatch.setenv("TEMPIPE_AUTOLOAD_DEMO", "1")
    at = fresh()
    ok(at)
    assert list(store(at)) == ["hot-injection (demo)", "LARP (demo)"]
    at.button(key=f"delete_{store(at)['LARP (demo)'].uid}").click().run()
    assert list(store(at)) == ["hot-injection (demo)"]     # not loaded again


def test_segmentation_slider_changes_overlay_and_applies():
    at = goto(demo(), "segmentation")
    ok(at)
    spec = at.get("plotly_chart")[0].proto.spec
    caption = at.caption[-1].value
    n_before = int(caption.split("**")[1].split()[0])
    ds = store(at)["hot-injection (demo)"]
    at.slider(key=f"seg_{ds.uid}_min_size").set_value(0.9).run()
    ok(at)
    n_after = int(at.caption[-1].value.split("**")[1].split()[0])
    assert n_after < n_before                    # debris threshold at 90 % of typical area
    assert at.get("plotly_chart")[0].proto.spec != spec
    assert "min_size" in " ".join(i.value for i in at.info)   # "not yet applied"
    at.button(key="apply_batch").click().run()
    ok(at)
    assert store(at)["hot-injection (demo)"].params.min_size == 0.9
    table = at.dataframe[-1].value
    assert table["particles"].iloc[0] == len(ds.results["hot-injection-01.tif"].particles)
    assert "particles kept in 1 image(s)" in at.success[0].value


@pytest.mark.skipif(not HAS_MODEL, reason="the shape model is not in models/ yet")
def test_shapes_page_filters_uncertain_particles():
    at = goto(demo(), "shapes")
    ok(at)
    ds = store(at)["hot-injection (demo)"]
    table = pd.concat(ds.shape.values())
    assert (table["p"] > 0).all() and table["d"].between(1, 6).all()
    assert table["resim_jaccard"].between(0, 1).all()
    assert len(at.get("plotly_chart")) >= 2    # histograms + montage
    at.slider(key=f"flt_j_{ds.uid}").set_value(0.95).run()
    strict = ds.shape_filter.uncertain(table).sum()
    assert strict == int(((table["resim_jaccard"] < 0.95)
                          | (table["p_std"] / table["p"] > ds.shape_filter.max_p_rel_sd)
                          | (table["d_std"] > ds.shape_filter.max_d_sd)).sum())
    assert f"**{strict} uncertain**" in " ".join(m.value for m in at.markdown)


def test_shapes_page_explains_a_missing_model(monkeypatch, tmp_path):
    monkeypatch.setenv("TEMPIPE_SHAPE_MODEL", str(tmp_path / "missing.pt"))
    at = demo()
    assert "Shape CNN not run" in at.warning[0].value
    at = goto(at, "shapes")
    at.button(key="run_cnn").click().run()
    assert not at.exception
    assert "missing.pt" in at.error[0].value and "cannot run" in at.error[0].value
    at = goto(at, "clusters")
    ok(at)
    assert "morphology features only" in at.warning[0].value


def test_clusters_page_override_and_classifier():
    at = goto(demo(), "clusters")
    ok(at)
    assert "shape groups" in at.success[0].value
    ds = store(at)["hot-injection (demo)"]
    at.checkbox(key=f"cl_auto_{ds.uid}").uncheck().run()
    at.slider(key=f"cl_k_{ds.uid}").set_value(3).run()
    at.selectbox(key=f"cl_alg_{ds.uid}").set_value("kmeans").run()
    ok(at)
    assert "**3 shape groups**: k-means" in at.success[0].value
    assert ds.clustering == {"algorithm": "kmeans", "feature_set": None, "k": 3}
    table1 = next(d.value for d in at.dataframe if "Particles" in d.value.index)
    assert list(table1.columns) == ["1", "2", "3", "total"]
    assert table1.loc["Fraction", ["1", "2", "3"]].sum() == pytest.approx(1.0)
    at.button(key="cl_train").click().run()
    ok(at)
    accuracy = float(at.metric[0].value.rstrip("%")) / 100
    assert 0.6 <= accuracy <= 1.0


def test_compare_page_tests_and_fractions():
    at = goto(demo(), "compare")
    ok(at)
    tests = next(d.value for d in at.dataframe if "test" in d.value.columns)
    assert {"ks", "mann_whitney"} <= set(tests["test"])
    assert tests["p_value"].between(0, 1).all()
    stats = next(d.value for d in at.dataframe if "Particles" in d.value.index)
    assert list(stats.columns) == ["hot-injection (demo)", "LARP (demo)"]
    low, mean, high = (stats.loc[f"Average size{s} (nm)", "LARP (demo)"]
                       for s in (" 95% CI low", "", " 95% CI high"))
    assert low < mean < high


def test_report_page_builds_html_tables_and_zip(monkeypatch):
    import tempipe.report as report
    monkeypatch.setattr(report, "figure_images",
                        lambda figures, **_: ({n: b"\x89PNG" for n in figures}, []))
    at = goto(demo(), "report")
    ok(at)
    built = at.session_state["report_built"]
    html = built["html"]
    assert html.count("* plotly.js v") == 1
    for ds in store(at).values():       # both datasets: report + comparison
        for entry in ds.images:
            assert entry.sha256 in html and entry.name in html
    assert len(built["particles"]) == sum(len(r.particles) for r in
                                          store(at)["hot-injection (demo)"].results.values())
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Report (HTML)", "Particles (CSV)", "Particles (Parquet)"]
    at.button(key="build_zip").click().run()
    ok(at)
    with zipfile.ZipFile(io.BytesIO(at.session_state["report_built"]["zip"])) as archive:
        names = archive.namelist()
        summary = json.loads(archive.read("summary.json"))
    assert {"report.html", "particles.csv", "particles.parquet", "summary.json"} <= set(names)
    assert any(n.startswith("figures/") and n.endswith(".png") for n in names)
    assert summary["overall"]["n_particles"] == len(built["particles"])


# --- uploads and the store -------------------------------------------------------------

def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def upload_files(tmp_path_factory):
    sim = simulate_micrograph((384, 384), n_particles=25, pixel_size_nm=0.5, rng=4)
    tif = save_micrograph(tmp_path_factory.mktemp("up") / "cal.tif", sim.image, 0.5)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("batch/field.png", _png_bytes(sim.image))
        archive.writestr("__MACOSX/batch/._field.png", b"junk")
        archive.writestr("batch/notes.txt", b"not an image")
    return {"cal.tif": tif.read_bytes(), "batch.zip": zipped.getvalue(),
            "broken.png": b"\x89PNG but not really"}


def test_upload_tiff_zip_and_a_broken_file(upload_files):
    at = fresh()
    uploads = [(name, data, "application/octet-stream") for name, data in upload_files.items()]
    at.file_uploader(key="upload_0").set_value(uploads).run()
    assert not at.exception
    files = at.dataframe[-1].value
    assert list(files["image"]) == ["cal.tif", "field.png"]
    assert files.loc[0, "file calibration"] == "0.5 nm/px"
    assert "broken.png" in " ".join(at.dataframe[0].value["image"])
    at.radio(key="scale_0").set_value("typed").run()
    at.number_input(key="typed_nm").set_value(0.7).run()
    at.text_input(key="name_0").set_value("my upload").run()
    at.button(key="create_dataset").click().run()
    assert not at.exception
    ds = store(at)["my upload"]
    assert [e.pixel_size_nm for e in ds.images] == [0.7, 0.7]
    assert [p["image"] for p in ds.unreadable] == ["broken.png"]
    at = goto(at, "segmentation")
    ok(at)
    at.button(key="apply_batch").click().run()
    ok(at)
    assert ds.segmented and len(ds.results) == 2
    assert all(r.pixel_size_nm == 0.7 for r in ds.results.values())


def test_scale_bar_without_label_asks_for_its_value():
    rng = np.random.default_rng(1)
    image = 0.5 + 0.02 * rng.standard_normal((300, 400))
    image[270:275, 250:370] = 1.0                      # a bar with no text
    data = _png_bytes(image)
    bar = find_scale_bar(load_micrograph_bytes(data, "bar.png").image)
    assert bar is not None and bar.value_nm is None
    at = fresh()
    at.file_uploader(key="upload_0").set_value([("bar.png", data, "image/png")]).run()
    at.radio(key="scale_0").set_value("scale-bar").run()
    sha = __import__("hashlib").sha256(data).hexdigest()
    field = at.number_input(key=f"bar_nm_{sha}")
    assert field.value is None
    assert any("not read" in c.value for c in at.caption)
    field.set_value(50.0).run()
    at.button(key="create_dataset").click().run()
    entry = store(at)["bar"].images[0]
    assert entry.pixel_size_nm == pytest.approx(50.0 / bar.length_px)


def test_rename_delete_and_sessions_are_isolated():
    at = demo()
    other = fresh()                                    # a second browser session
    assert store(other) == {}
    assert "None yet." in [m.value for m in other.markdown]
    uid = store(at)["LARP (demo)"].uid
    at.text_input(key=f"rename_{uid}").set_value("LARP batch 2").run()
    assert list(store(at)) == ["hot-injection (demo)", "LARP batch 2"]
    at.button(key=f"delete_{store(at)['hot-injection (demo)'].uid}").click().run()
    assert list(store(at)) == ["LARP batch 2"]
    assert store(other) == {}


def test_saved_dataset_reopens_in_a_new_session_and_can_be_deleted(tmp_path):
    at = demo()
    ds = store(at)["hot-injection (demo)"]
    table = particle_table(ds)
    at.button(key=f"save_{ds.uid}").click().run()
    ok(at)
    assert "saved as **hot-injection (demo) v1**" in at.success[0].value
    assert len(list((tmp_path / "home").rglob("*.npz"))) == 3   # mask, crops, pixels
    other = fresh()                                    # a new browser session
    assert store(other) == {} and "None yet." in [m.value for m in other.markdown]
    assert list(other.dataframe[0].value["name"]) == ["hot-injection (demo)"]
    other.button(key="reopen_hot-injection (demo)|v1").click().run()
    ok(other)
    again = store(other)["hot-injection (demo)"]
    assert again.segmented and again.shaped == HAS_MODEL and again.params == ds.params
    pd.testing.assert_frame_equal(particle_table(again), table)
    for name, result in ds.results.items():            # masks and crops as computed
        np.testing.assert_array_equal(again.results[name].labels, result.labels)
        np.testing.assert_array_equal(again.results[name].crops, result.crops)
        assert again.entry(name).key == ds.entry(name).key
    inside = int((~demo_batch("hot-injection", 1, rng=0)[0].particles["touches_border"]).sum())
    assert abs(len(table) - inside) / inside < 0.15    # the simulated particles, kept
    ok(goto(other, "clusters"))
    assert "shape groups" in other.success[0].value
    other = goto(other, "datasets")
    other.button(key="delete_saved_hot-injection (demo)|v1").click().run()
    other.button(key="confirm_delete_saved_hot-injection (demo)|v1").click().run()
    ok(other)
    assert "No saved datasets yet." in [m.value for m in other.markdown]
    assert not list((tmp_path / "home").rglob("*.npz"))     # its files are gone


def test_page_guard_turns_errors_into_words():
    def page():
        import streamlit as st
        from tempipe.errors import InputFileError
        from tempipe_app.common import page_guard
        with page_guard():
            st.write("before")
            raise InputFileError("x.tif is truncated; export it again.")
        with page_guard():
            raise RuntimeError("boom")
    at = AppTest.from_function(page).run()
    assert not at.exception
    assert at.error[0].value == "x.tif is truncated; export it again."
    assert "Unexpected problem (RuntimeError: boom)" in at.error[1].value
    assert "Traceback" not in at.error[1].value


# --- helpers -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def field():
    return simulate_micrograph((512, 512), n_particles=40, pixel_size_nm=0.5, scale_bar=True,
                               rng=11)


def test_resim_outline_matches_resim_jaccard(field):
    table = field.particles.head(12)
    masks = crop_masks(field.labels, 32, label_ids=table["label"].to_numpy())
    expected = resim_jaccard(masks, table["p"], table["d"], table["l_ratio"])
    got = [shapes.resim_outline(m, p, d, l)[2]
           for m, p, d, l in zip(masks, table["p"], table["d"], table["l_ratio"])]
    np.testing.assert_allclose(got, expected, atol=0.01)
    assert shapes.resim_outline(np.zeros((8, 8)), 2, 2, 1) is None


def test_overlay_excludes_what_the_pipeline_drops(field):
    micrograph = Micrograph(field.image, field.pixel_size_nm, "f")
    result = analyze_micrograph(micrograph, shape_model=None)
    bar = find_scale_bar(field.image)
    excluded = overlay.excluded_ids(result.labels, bar)
    assert excluded.size == result.n_dropped_border + result.n_dropped_scale_bar
    assert not set(excluded) & set(result.particles["label"])
    rgb = overlay.render_overlay(overlay.grey_uint8(field.image), result.labels, excluded,
                                 boxes=False, alpha=1.0)
    grey_px = np.isin(result.labels, excluded)
    assert (rgb[grey_px] == overlay.EXCLUDED_RGB.astype(np.uint8)).all()
    kept_px = np.isin(result.labels, result.particles["label"])
    assert not (rgb[kept_px] == overlay.EXCLUDED_RGB.astype(np.uint8)).all(axis=1).any()


def test_preview_of_2048_image_is_half_resolution():
    assert overlay.display_factor((2048, 2048)) == 2
    assert overlay.display_factor((1024, 1280)) == 1
    blocks = overlay.block_mean(np.arange(36, dtype=float).reshape(6, 6), 2)
    np.testing.assert_allclose(blocks[0], [3.5, 5.5, 7.5])


def test_shape_filter_flags_each_criterion():
    table = pd.DataFrame({"p": [2.0, 2.0, 2.0, 2.0], "p_std": [0.2, 3.0, 0.2, 0.2],
                          "d_std": [0.1, 0.1, 1.5, 0.1], "resim_jaccard": [0.9, 0.9, 0.9, np.nan]})
    np.testing.assert_array_equal(state.ShapeFilter().uncertain(table),
                                  [False, True, True, True])
    assert not state.ShapeFilter().uncertain(table.drop(columns="p_std")).any()


def test_expand_uploads_reads_zip_members_and_reports_bad_archives(upload_files):
    pairs, problems = expand_uploads([FakeUpload("batch.zip", upload_files["batch.zip"]),
                                      FakeUpload("bad.zip", b"PK not a zip"),
                                      FakeUpload("a.tif", b"raw")])
    assert [name for name, _ in pairs] == ["field.png", "a.tif"]
    assert problems[0]["image"] == "bad.zip" and "not a readable ZIP" in problems[0]["error"]


def test_images_table_shows_what_loading_mended(tmp_path):
    sim = simulate_micrograph((128, 128), n_particles=6, pixel_size_nm=0.5, rng=2)
    image = sim.image.astype(np.float32)
    image[:3, :5] = np.nan
    tifffile.imwrite(tmp_path / "holes.tif", image)
    micrograph = load_micrograph_bytes((tmp_path / "holes.tif").read_bytes(), "holes.tif")
    ds = state.Dataset(name="d", images=[state.ImageEntry(micrograph, "sha")])
    table = images_table(ds)
    assert table.loc[0, "scale"] == "not analysed yet"
    assert "15 NaN or infinite pixel(s)" in table.loc[0, "input notes"]
    ds.results["holes.tif"] = analyze_micrograph(micrograph, shape_model=None)
    table = images_table(ds)
    assert table.loc[0, "particles"] == len(ds.results["holes.tif"].particles) > 0
    assert "replaced by the median" in table.loc[0, "input notes"]


def test_model_diagnostics_figures_of_the_shipped_model_are_all_shown():
    from tempipe.shape_model import DEFAULT_WEIGHTS

    figures = shapes.diagnostics(DEFAULT_WEIGHTS)
    assert list(figures) == list(shapes.DIAGNOSTICS.values())
    assert all(len(fig.data) >= 1 for fig in figures.values())
    assert figures["RMSE of L_ratio per d"].data[0].type == "bar"
