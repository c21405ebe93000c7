"""Batch execution: Dask cluster = process pool = this process; default cores; streaming."""

import pandas as pd
import pytest

import tempipe.batch as batch
from tempipe.batch import Job, iter_batch, run_jobs, store_batch
from tempipe.io import save_micrograph
from tempipe.pipeline import analyze_batch
from tempipe.simulate import simulate_micrograph
from tempipe.store import Store

CNN_COLUMNS = ("p", "d", "l_ratio", "p_std", "d_std", "l_ratio_std", "resim_jaccard")


@pytest.fixture(scope="module")
def micrographs(tmp_path_factory):
    """Four calibrated fields with their simulated truth, and one broken file (third)."""
    folder = tmp_path_factory.mktemp("batch")
    paths, truth = [], {}
    for i in range(4):
        sim = simulate_micrograph((320, 320), n_particles=14, pixel_size_nm=0.5, rng=40 + i)
        path = save_micrograph(folder / f"f{i}.tif", sim.image, pixel_size_nm=0.5)
        paths.append(str(path))
        truth[path.name] = int((~sim.particles["touches_border"]).sum())
    broken = folder / "broken.tif"
    broken.write_bytes(b"II*\x00 truncated")
    paths.insert(2, str(broken))
    return paths, truth


@pytest.fixture(scope="module")
def reference(micrographs):
    """The single-process run everything else must equal."""
    return analyze_batch(micrographs[0], n_jobs=1)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as local:
        yield local


def _assert_same_tables(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows, columns and values: bit for bit, except the CNN's float32 outputs, whose
    last bits depend on torch's thread count (1 per worker, all cores in this process)."""
    exact = [c for c in expected if c not in CNN_COLUMNS]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_exact=True)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-5)


def _computed_on(cluster) -> int:
    """Images the cluster's workers have analysed so far."""
    prefix = cluster.scheduler.task_prefixes.get("tempipe-image")
    return 0 if prefix is None else prefix.state_counts["memory"]


def test_reference_run_finds_the_simulated_particles(micrographs, reference):
    _, truth = micrographs
    counts = reference.particles.groupby("image").size()
    for name, expected in truth.items():          # interior particles of the simulation
        assert abs(counts[name] - expected) <= 2, (name, counts[name], expected)
    assert list(reference.failures["image"]) == ["broken.tif"]


def test_dask_cluster_gives_the_single_process_tables(micrographs, reference, cluster):
    paths, _ = micrographs
    done = []
    result = analyze_batch(paths, scheduler=cluster.scheduler_address,
                           progress=lambda d, n, name: done.append((d, n)))
    _assert_same_tables(result.particles, reference.particles)
    pd.testing.assert_frame_equal(result.images, reference.images)
    pd.testing.assert_frame_equal(result.failures, reference.failures)
    assert sorted(done) == [(i, 5) for i in range(1, 6)]
    assert _computed_on(cluster) == len(paths)


def test_scheduler_from_the_environment(micrographs, reference, cluster, monkeypatch):
    monkeypatch.setenv("TEMPIPE_SCHEDULER", cluster.scheduler_address)
    before = _computed_on(cluster)
    result = analyze_batch(micrographs[0][:2])
    assert _computed_on(cluster) - before == 2       # both images went to the cluster
    expected = reference.particles[reference.particles["image"].isin(["f0.tif", "f1.tif"])]
    _assert_same_tables(result.particles, expected.reset_index(drop=True))


def test_store_batch_on_dask_stores_what_the_single_process_finds(micrographs, reference,
                                                                  cluster, tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run = store_batch(micrographs[0], store, "dask", scheduler=cluster.scheduler_address)
    assert (run.n_analysed, run.n_failed, run.n_skipped) == (5, 1, 0)
    _assert_same_tables(store.dataset("dask").particles, reference.particles)


def test_default_uses_every_core_in_a_process_pool(micrographs, reference, monkeypatch):
    seen = []
    real = batch.get_reusable_executor

    def spy(max_workers, **kwargs):
        seen.append(max_workers)
        return real(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(batch, "get_reusable_executor", spy)
    monkeypatch.delenv("TEMPIPE_SCHEDULER", raising=False)
    result = analyze_batch(micrographs[0])
    expected = min(batch.default_jobs(), len(micrographs[0]))
    if expected > 1:
        assert seen == [expected]
    else:
        assert seen == []                          # one core: this process
    _assert_same_tables(result.particles, reference.particles)
    assert batch.default_jobs() == batch.cpu_count() >= 1


def test_jobs_are_pulled_lazily_and_results_streamed(micrographs, monkeypatch):
    monkeypatch.delenv("TEMPIPE_SCHEDULER", raising=False)
    paths = [p for p in micrographs[0] if "broken" not in p] * 3    # 12 jobs
    state = {"pulled": 0, "ahead": []}

    def jobs():
        for i, path in enumerate(paths):
            state["pulled"] += 1
            yield Job(i, path, None, None, None, None)

    n_workers = 2
    outcomes = []
    for outcome in run_jobs(jobs(), n_jobs=n_workers):
        state["ahead"].append(state["pulled"] - len(outcomes))
        outcomes.append(outcome)
    assert sorted(o.index for o in outcomes) == list(range(len(paths)))
    assert max(state["ahead"]) <= 2 * n_workers    # never more than the window in flight
    assert state["ahead"][0] < len(paths)          # the first result came before the last job


def test_iter_batch_yields_arrays_only_when_asked(micrographs):
    paths = micrographs[0][:2]
    plain = list(iter_batch(paths, n_jobs=1, shape_model=None))
    full = list(iter_batch(paths, n_jobs=1, shape_model=None, arrays=True))
    assert all(o.result is None for o in plain)
    for outcome in full:
        labels = outcome.result.labels
        assert labels.shape == (320, 320)
        assert set(outcome.particles["label"]) <= set(labels.ravel().tolist())
        assert len(outcome.result.crops) == len(outcome.particles)


def test_store_batch_writes_each_image_before_the_next_result(micrographs, tmp_path,
                                                             monkeypatch):
    monkeypatch.delenv("TEMPIPE_SCHEDULER", raising=False)
    store = Store(tmp_path / "stream.duckdb")
    stored_counts = []

    def progress(done, total, name):
        ref = store.resolve("stream")
        stored_counts.append((done, len(store.stored_images(ref))))

    store_batch(micrographs[0], store, "stream", progress=progress, n_jobs=2,
                shape_model=None)
    assert [d for d, _ in stored_counts] == [1, 2, 3, 4, 5]
    assert all(done == n for done, n in stored_counts)   # stored as each image completed
