"""One dataset's report from its tables (tempipe.dataset_report) and `tempipe report`."""

import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from tempipe.cli import main
from tempipe.classifier import train_classifier
from tempipe.dataset_report import dataset_report, groups_section, write_dataset_report
from tempipe.errors import ParameterError
from tempipe.features import measure_particles
from tempipe.io import save_micrograph
from tempipe.simulate import ShapeFamily, simulate_micrograph

DISC = ShapeFamily("disc", p=(2.0, 2.3), l_ratio=(1.0, 1.05), size_mean_px=22, size_rel_sd=0.1)
ROD = ShapeFamily("rod", p=(3.0, 5.0), l_ratio=(1.8, 2.2), size_mean_px=44, size_rel_sd=0.1)


@pytest.fixture(scope="module")
def population():
    """Features on exact labels of two fields (60 % discs), with the true family."""
    tables = []
    for seed in (1, 2):
        sim = simulate_micrograph((640, 640), n_particles=150,
                                  families=(replace(DISC, fraction=0.6),
                                            replace(ROD, fraction=0.4)),
                                  pixel_size_nm=0.5, touching_fraction=0.0, rng=seed)
        table = measure_particles(sim.labels, sim.image, pixel_size_nm=0.5)
        table["family"] = sim.particles.set_index("label").loc[table["label"], "family"].to_numpy()
        table.insert(0, "image", f"field-{seed}.tif")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def test_report_recovers_the_two_families(population):
    report = dataset_report(population.drop(columns="family"), name="two-families", rng=0)
    truth = (population["family"] == "rod").astype(int)
    assert report.groups.k == 2
    assert adjusted_rand_score(truth, report.groups.labels) > 0.95
    assert report.classifier.test_accuracy > 0.95
    assert (report.particles["group"].to_numpy() == report.groups.labels).all()
    overall = report.summary["overall"]
    assert overall["n_particles"] == len(population) and overall["n_images"] == 2
    assert overall["major_axis"]["mean_nm"] == pytest.approx(
        population["major_axis_length_nm"].mean())
    titles = [s.title for s in report.sections]
    assert titles == ["two-families: overview", "two-families: shape groups"]
    assert "2 shape groups found without labels" in report.html
    assert report.notes == []


def test_groups_left_out_of_the_classifier_are_said(population):
    report = dataset_report(population.drop(columns="family"), name="two-families", rng=0)
    labels = report.groups.labels.copy()
    labels[np.flatnonzero(labels == 2)[:3]] = 3  # three particles set apart
    classifier = train_classifier(report.particles, labels, rng=0)
    section = groups_section("two-families", report.particles, report.groups, classifier)
    assert "Left out of it, too small to learn: group 3 (3 particles)." in section.text
    assert "Left out" not in report.html  # nothing left out of the real grouping


@pytest.mark.parametrize("n, missing", [(2, "No shape groups"), (4, "No classifier")])
def test_too_few_particles_is_a_note_not_an_error(population, n, missing):
    report = dataset_report(population.head(n), name="tiny")
    assert report.classifier is None
    assert (report.groups is None) == (missing == "No shape groups")
    assert len(report.notes) == 1 and report.notes[0].startswith(missing)
    assert missing in report.html
    assert report.summary["overall"]["n_particles"] == n


def test_bad_table_is_refused():
    with pytest.raises(ParameterError, match="'image' column"):
        dataset_report(pd.DataFrame({"x": [1.0]}))


def test_written_bundle_holds_the_grouped_table(population, tmp_path):
    report = dataset_report(population.drop(columns="family"), name="ds", rng=0)
    written = write_dataset_report(report, tmp_path, images=False)
    assert [p.name for p in written] == ["report.html", "report.zip"]
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        table = pd.read_csv(io.BytesIO(archive.read("particles.csv")))
        summary = json.loads(archive.read("summary.json"))
    assert len(table) == len(population)
    assert np.array_equal(table["group"].to_numpy(), report.groups.labels)
    assert summary["overall"]["n_particles"] == len(population)


def write_fields(folder, seeds):
    """Calibrated 512² TIFFs of discs and rods, ``f<seed>.tif``."""
    folder.mkdir()
    for seed in seeds:
        sim = simulate_micrograph((512, 512), n_particles=70, families=(DISC, ROD),
                                  pixel_size_nm=0.5, touching_fraction=0.0, rng=seed)
        save_micrograph(folder / f"f{seed}.tif", sim.image, 0.5)
    return folder


def test_cli_report_from_an_analyze_folder(tmp_path, capsys):
    folder = write_fields(tmp_path / "images", (3, 4))
    bad = folder / "broken.tif"
    bad.write_bytes(b"not a tiff")
    assert main(["analyze", str(folder), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "r"),
                 "--no-images"]) == 0
    out = capsys.readouterr().out
    assert "a: " in out and "shape groups" in out
    html = (tmp_path / "r" / "report.html").read_text()
    assert "broken.tif" in html          # the failure listed in the overview
    with zipfile.ZipFile(tmp_path / "r" / "report.zip") as archive:
        images = pd.read_csv(io.BytesIO(archive.read("tables/a-overview/images.csv")))
    assert sorted(images["image"]) == ["f3.tif", "f4.tif"]
    assert (images["pixel_size_nm"] == 0.5).all()


def test_cli_report_without_a_source_explains(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "Give the output folder" in capsys.readouterr().err


def test_cli_report_on_a_stored_dataset(tmp_path, capsys):
    folder = write_fields(tmp_path / "syn7", (5, 6))
    store = tmp_path / "store"
    assert main(["analyze", str(folder), "--store", str(store), "--jobs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", "syn7", "--store", str(store), "--out", str(tmp_path / "r"),
                 "--no-zip"]) == 0
    out = capsys.readouterr().out
    html = (tmp_path / "r" / "report.html").read_text()
    n = int(out.split("syn7: ")[1].split(" particles")[0])
    assert n > 100 and f"{n} particles kept" in html
    assert "not recorded" not in html      # the stored files' sha256 are listed
