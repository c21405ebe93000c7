"""The dataset store: round trip, versions, resume, deletion, export, CLI, kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tempipe.batch import store_batch
from tempipe.cli import main
from tempipe.errors import StoreError
from tempipe.io import load_micrograph, save_micrograph
from tempipe.pipeline import ImageResult, analyze_batch, analyze_micrograph
from tempipe.segment import SegmentParams
from tempipe.simulate import simulate_micrograph
from tempipe.store import Store, default_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three calibrated fields (simulated truth kept) and one broken file."""
    path = tmp_path_factory.mktemp("fields")
    truth = {}
    for i in range(3):
        sim = simulate_micrograph((288, 288), n_particles=12, pixel_size_nm=0.4, rng=60 + i)
        save_micrograph(path / f"g{i}.tif", sim.image, pixel_size_nm=0.4)
        truth[f"g{i}.tif"] = int((~sim.particles["touches_border"]).sum())
    (path / "junk.png").write_bytes(b"not a png")
    return path, truth


@pytest.fixture(scope="module")
def paths(folder):
    return sorted(str(p) for p in folder[0].iterdir())


@pytest.fixture(scope="module")
def reference(paths):
    return analyze_batch(paths, n_jobs=1)


def _files_on_disk(store: Store) -> set[str]:
    return {p.stem for p in store.files_dir.rglob("*.npz")}


def _referenced(store: Store) -> set[str]:
    digests = set()
    for row in store.list_datasets().itertuples():
        records = store.dataset(row.name, row.version).records
        for column in ("mask_file", "crops_file", "pixels_file"):
            digests |= {d for d in records[column] if isinstance(d, str)}
    return digests


def test_default_path_follows_tempipe_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPIPE_HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / "tempipe.duckdb"
    assert Store().path == default_path()
    assert Store(tmp_path / "x.duckdb").files_dir == tmp_path / "x-files"


def test_round_trip_keeps_tables_masks_and_crops(paths, folder, reference, tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run = store_batch(paths, store, "fields", n_jobs=1)
    assert (run.n_images, run.n_analysed, run.n_skipped, run.n_failed) == (4, 4, 0, 1)
    data = store.dataset("fields")
    assert data.ref.version == 1 and data.ref.status == "complete"
    pd.testing.assert_frame_equal(data.particles, reference.particles, check_exact=True)
    assert list(data.failures["image"]) == ["junk.png"]
    assert "junk.png" in data.failures["error"][0]
    counts = data.images.set_index("image")["n_particles"]
    for name, expected in folder[1].items():       # simulated interior particles
        assert abs(counts[name] - expected) <= 2, (name, counts[name], expected)
    direct = analyze_micrograph(load_micrograph(paths[1]))
    np.testing.assert_array_equal(data.labels("g1.tif"), direct.labels)
    np.testing.assert_array_equal(data.crops("g1.tif"), direct.crops)
    np.testing.assert_array_equal(data.pixels("g1.tif"), load_micrograph(paths[1]).image)
    assert data.ref.parameters["segment"]["min_size"] == SegmentParams().min_size
    assert data.ref.parameters["shape_model"].startswith("tempipe shape CNN")
    assert _files_on_disk(store) == _referenced(store)


def test_resume_skips_stored_images_and_new_parameters_make_a_version(paths, tmp_path):
    store = Store(tmp_path / "v.duckdb")
    first = store_batch(paths[:2], store, "batch", n_jobs=1, shape_model=None)
    again = store_batch(paths, store, "batch", n_jobs=1, shape_model=None)
    assert again.dataset.id == first.dataset.id and again.dataset.resumed
    assert (again.n_skipped, again.n_analysed) == (2, 2)
    table = store.dataset("batch").particles
    assert not table.duplicated(["image", "label"]).any()
    assert sorted(table["image"].unique()) == ["g0.tif", "g1.tif", "g2.tif"]
    other = store_batch(paths, store, "batch", params=SegmentParams(min_size=0.5), n_jobs=1,
                        shape_model=None)
    assert other.dataset.version == 2 and other.n_skipped == 0
    listing = store.list_datasets()
    assert list(zip(listing["name"], listing["version"])) == [("batch", 1), ("batch", 2)]
    assert list(listing["images"]) == [3, 3] and list(listing["failed"]) == [1, 1]
    assert store.dataset("batch").ref.version == 2                  # newest by default
    assert store.dataset("batch", 1).ref.parameters["segment"]["min_size"] == 0.1


def test_same_name_other_content_is_refused_not_overwritten(paths, tmp_path):
    store = Store(tmp_path / "c.duckdb")
    store_batch(paths[:1], store, "d", n_jobs=1, shape_model=None)
    other = tmp_path / "elsewhere"
    other.mkdir()
    sim = simulate_micrograph((200, 200), n_particles=5, pixel_size_nm=0.4, rng=99)
    save_micrograph(other / Path(paths[0]).name, sim.image, pixel_size_nm=0.4)
    run = store_batch([other / Path(paths[0]).name], store, "d", n_jobs=1, shape_model=None)
    assert run.n_analysed == 0 and "another file of this name" in run.failures["error"][0]
    assert store.dataset("d").records["path"][0] == paths[0]


def test_delete_removes_rows_and_orphaned_files_only(paths, tmp_path):
    store = Store(tmp_path / "del.duckdb")
    store_batch(paths, store, "a", n_jobs=1, shape_model=None)
    store_batch(paths, store, "a", params=SegmentParams(min_size=0.6), n_jobs=1,
                shape_model=None)
    store_batch(paths[:1], store, "b", n_jobs=1, shape_model=None)     # shares a's files
    before = _files_on_disk(store)
    store.delete("a", version=2)
    assert [tuple(r) for r in store.list_datasets()[["name", "version"]].values] == [
        ("a", 1), ("b", 1)]
    assert _files_on_disk(store) == _referenced(store) and _files_on_disk(store) < before
    store.delete("a")
    b = store.dataset("b")
    assert b.labels(b.images["image"][0]).shape == (288, 288)       # shared file kept
    assert _files_on_disk(store) == _referenced(store)
    store.delete("b")
    assert _files_on_disk(store) == set() and store.list_datasets().empty
    with pytest.raises(StoreError, match="no dataset 'b'"):
        store.delete("b")


def _tiny_result(table: pd.DataFrame) -> ImageResult:
    labels = np.zeros((8, 8), np.int32)
    return ImageResult(table, labels, np.zeros((len(table), 4, 4), np.float32), 0.5, "explicit",
                       "given", None, len(table), 0, 0)


def test_new_columns_and_wider_types_keep_each_datasets_dtypes(tmp_path):
    store = Store(tmp_path / "t.duckdb")
    one = store.create_dataset("ints", {"k": 1})
    first = pd.DataFrame({"image": "x", "label": np.array([1, 2], np.int32),
                          "value": np.array([3, 4], np.int16)})
    store.add_image_result(one, "x", result=_tiny_result(first))
    two = store.create_dataset("floats", {"k": 2})
    second = pd.DataFrame({"image": "y", "label": np.array([1], np.int32),
                           "value": [2.5], "extra": ["s"], "nan_nm": [np.nan]})
    store.add_image_result(two, "y", result=_tiny_result(second))
    pd.testing.assert_frame_equal(store.dataset("ints").particles, first)
    pd.testing.assert_frame_equal(store.dataset("floats").particles, second)
    assert not store.add_image_result(one, "x", result=_tiny_result(first))   # stored already
    assert len(store.dataset("ints").particles) == 2


def test_busy_and_foreign_files_are_clear_errors(tmp_path):
    store = Store(tmp_path / "busy.duckdb", timeout_s=0.2)
    store.create_dataset("x", {})
    holder = Store(tmp_path / "busy.duckdb")
    with holder._lock:
        with pytest.raises(StoreError, match="busy"):
            store.list_datasets()
    bad = tmp_path / "notes.duckdb"
    bad.write_text("my notes")
    with pytest.raises(StoreError, match="Cannot open the store"):
        Store(bad).list_datasets()
    with pytest.raises(StoreError, match="needs a name"):
        store.create_dataset("  ", {})


def test_cli_stores_exports_and_lists(paths, folder, tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "cli.duckdb")
    plain, stored = tmp_path / "plain", tmp_path / "stored"
    assert main(["analyze", str(folder[0]), "--no-store", "--out", str(plain), "--jobs", "1",
                 "--quiet"]) == 0
    assert main(["analyze", str(folder[0]), "--store", db, "--out", str(stored), "--jobs", "1",
                 "--quiet"]) == 0
    assert "FAILED junk.png" in capsys.readouterr().err
    for name in ("particles.csv", "summary.json"):     # same files with and without the store
        assert (plain / name).read_text() == (stored / name).read_text(), name
    pd.testing.assert_frame_equal(pd.read_parquet(stored / "particles.parquet"),
                                  pd.read_parquet(plain / "particles.parquet"))
    assert main(["datasets", "list", "--store", db]) == 0
    out = capsys.readouterr().out
    assert folder[0].name in out and "complete" in out
    assert main(["datasets", "show", folder[0].name, "--store", db]) == 0
    summary = json.loads((plain / "summary.json").read_text())
    assert f"{summary['overall']['n_particles']} particles in 3 image(s)" in capsys.readouterr().out
    exported = tmp_path / "exported"
    assert main(["datasets", "export", folder[0].name, "--out", str(exported),
                 "--store", db]) == 0
    assert (exported / "particles.csv").read_text() == (plain / "particles.csv").read_text()
    monkeypatch.setattr("tempipe._store_export.CHUNK_ROWS", 7)     # several chunks
    chunked = tmp_path / "chunked"
    assert main(["datasets", "export", folder[0].name, "--out", str(chunked),
                 "--store", db]) == 0
    for name in ("particles.csv", "summary.json"):
        assert (chunked / name).read_text() == (plain / name).read_text(), name
    pd.testing.assert_frame_equal(pd.read_parquet(chunked / "particles.parquet"),
                                  pd.read_parquet(plain / "particles.parquet"))
    assert main(["datasets", "delete", folder[0].name, "--store", db]) == 0
    assert main(["datasets", "show", folder[0].name, "--store", db]) == 2
    assert "no dataset" in capsys.readouterr().err


def _wait_for_images(store: Store, name: str, n: int, process, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            stored = len(store.stored_images(store.resolve(name)))
        except StoreError:
            stored = 0
        if stored >= n:
            return stored
        time.sleep(0.05)
    raise AssertionError(f"the analysis stored fewer than {n} images before it ended")


def test_kill_9_mid_batch_then_resume_loses_and_duplicates_nothing(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(8):
        sim = simulate_micrograph((256, 256), n_particles=10, pixel_size_nm=0.5, rng=200 + i)
        save_micrograph(images / f"k{i:02d}.tif", sim.image, pixel_size_nm=0.5)
    db = tmp_path / "kill.duckdb"
    command = [sys.executable, "-m", "tempipe.cli", "analyze", str(images), "--store", str(db),
               "--dataset", "killed", "--jobs", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    store = Store(db)
    try:
        _wait_for_images(store, "killed", 2, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    partial = store.dataset("killed")                 # the store opens after the kill
    assert partial.ref.status == "incomplete"
    assert 2 <= len(partial.images) < 8
    assert not partial.particles.duplicated(["image", "label"]).any()
    assert main(command[3:]) == 0                    # the same command, run again here
    assert f"{len(partial.images)} already stored" in capsys.readouterr().out
    final = store.dataset("killed")
    assert final.ref.status == "complete" and final.ref.version == 1
    assert not final.particles.duplicated(["image", "label"]).any()
    clean = analyze_batch(sorted(images.iterdir()), n_jobs=1)
    expected = clean.images.set_index("image")["n_particles"]
    got = final.images.set_index("image")["n_particles"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_dtype=False)
    counted = final.particles.groupby("image").size()
    pd.testing.assert_series_equal(counted.sort_index(), expected.sort_index(),
                                   check_dtype=False, check_names=False)
    pd.testing.assert_frame_equal(final.particles, clean.particles)
