"""Batches: many micrographs through :func:`tempipe.pipeline.analyze_micrograph`, in parallel.

Executors
---------
- this process: ``n_jobs=1``, or a batch of one image;
- a process pool (default; ``n_jobs=None`` = every core loky counts): loky's reusable
  executor, whose workers are started fresh (never forked: a fork of a process whose torch
  or BLAS threads run can deadlock), do not re-run the caller's main script, run one thread
  each (:func:`_worker_init`) and stay alive for the next batch;
- a Dask distributed cluster: ``scheduler="tcp://host:8786"`` (or a
  ``distributed.Client``), or the environment variable ``TEMPIPE_SCHEDULER``. Its workers
  need tempipe installed and read the paths themselves (shared file system).

Every executor runs the same function on the same inputs, so results are identical.

Streaming and memory
--------------------
Workers get paths, never pixels: each loads its image. The parent keeps at most
``2 × workers`` images in flight and handles each result as it completes:
:func:`iter_batch` yields them one by one (the caller decides what to keep);
:func:`store_batch` writes each image into a :class:`tempipe.store.Store` and drops it, so
its memory does not grow with the batch (it holds the list of paths, the names stored so
far and the failure messages). :func:`tempipe.pipeline.analyze_batch` gathers every
particle table (that is what it returns).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, replace
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator
from uuid import uuid4

import pandas as pd
from joblib.externals.loky import cpu_count, get_reusable_executor

from tempipe.errors import TempipeError
from tempipe._store_dataset import DatasetRef
from tempipe.io import load_micrograph
from tempipe.pipeline import (SHIPPED, ImageResult, Progress, _check_positive, _image_row,
                              analyze_micrograph)
from tempipe.segment import SegmentParams
from tempipe.shape_model import DEFAULT_WEIGHTS, ShapeModel

#: Environment variable with the address of a Dask scheduler to run batches on.
SCHEDULER_ENV = "TEMPIPE_SCHEDULER"
_THREADS_LIMITED = False


@dataclass(frozen=True)
class Job:
    """One image to analyse (what is sent to a worker: a path and the options)."""

    index: int
    path: str
    pixel_size_nm: float | None
    scale_bar_nm: float | None
    params: SegmentParams | None
    shape_model: ShapeModel | str | None
    arrays: bool = False          # return labels and crops too (for the store)
    limit_threads: bool = False   # one thread in this worker (Dask workers)


@dataclass
class ImageOutcome:
    """What a worker returns for one image.

    ``particles`` and ``row`` (the image's row of ``BatchResult.images``) on success,
    ``error`` (the user-facing message) on failure; ``result`` is the whole
    :class:`~tempipe.pipeline.ImageResult` when the job asked for arrays.
    """

    index: int
    path: str
    particles: pd.DataFrame | None = None
    row: dict | None = None
    error: str | None = None
    result: ImageResult | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name


def default_jobs() -> int:
    """Worker processes used when ``n_jobs`` is None: the cores available to this process."""
    return max(1, cpu_count())


def resolve_scheduler(scheduler=None):
    """``scheduler``, else ``$TEMPIPE_SCHEDULER``, else None (no Dask)."""
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    return scheduler


def _worker_init() -> None:
    """One thread per worker process: the processes already share the cores."""
    global _THREADS_LIMITED
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    _THREADS_LIMITED = True


def _analyze_path(job: Job) -> ImageOutcome:
    """Run one job; never raises (a failure becomes ``error``)."""
    if job.limit_threads and not _THREADS_LIMITED:
        _worker_init()
    try:
        result = analyze_micrograph(load_micrograph(job.path), job.pixel_size_nm,
                                    job.scale_bar_nm, job.params, shape_model=job.shape_model)
    except TempipeError as exc:
        name, message = Path(job.path).name, str(exc)
        return ImageOutcome(job.index, job.path,
                            error=message if name in message else f"{name}: {message}")
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
        return ImageOutcome(job.index, job.path, error=(
            f"{Path(job.path).name}: unexpected {type(exc).__name__}: {exc}"))
    return ImageOutcome(job.index, job.path, result.particles, _image_row(job.path, result),
                        result=result if job.arrays else None)


def _lost(job: Job, exc: BaseException) -> ImageOutcome:
    return ImageOutcome(job.index, job.path, error=(
        f"{Path(job.path).name}: the worker analysing it stopped ({type(exc).__name__}: "
        f"{exc}); it may have run out of memory. Analyse this image again on its own."))


def _pool_outcomes(jobs: Iterator[Job], n_workers: int) -> Iterator[ImageOutcome]:
    pool = get_reusable_executor(max_workers=n_workers, initializer=_worker_init)
    pending: dict = {}

    def submit() -> None:
        for job in islice(jobs, 2 * n_workers - len(pending)):
            pending[pool.submit(_analyze_path, job)] = job

    submit()
    try:
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker fails one image
                    outcome = _lost(job, exc)
                yield outcome
            submit()
    finally:
        for future in pending:
            future.cancel()


def _dask_outcomes(jobs: Iterator[Job], scheduler) -> Iterator[ImageOutcome]:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="20s") if own else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise TempipeError(f"Cannot reach the Dask scheduler at {scheduler!r} ({exc}); check "
                           f"the address (--scheduler or {SCHEDULER_ENV}).") from exc
    try:
        window = 2 * max(1, sum(client.nthreads().values()))
        pending, running = as_completed(), {}

        def submit(n: int) -> None:
            for job in islice(jobs, n):
                job = replace(job, limit_threads=True)
                future = client.submit(_analyze_path, job, pure=False,
                                       key=f"tempipe-image-{job.index}-{uuid4().hex}")
                running[future.key] = job
                pending.add(future)

        submit(window)
        for future in pending:
            job = running.pop(future.key)
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails one image
                outcome = _lost(job, exc)
            future.release()
            yield outcome
            submit(1)
    finally:
        if own:
            client.close()


def run_jobs(jobs: Iterable[Job], n_jobs: int | None = None, scheduler=None,
             max_workers: int | None = None) -> Iterator[ImageOutcome]:
    """Outcomes of ``jobs`` in the order they complete (see the module docstring).

    ``jobs`` is consumed lazily, at most ``2 × workers`` ahead of the results.
    ``max_workers`` caps the pool (e.g. at the number of images).
    """
    jobs = iter(jobs)
    scheduler = resolve_scheduler(scheduler)
    if scheduler is not None:
        yield from _dask_outcomes(jobs, scheduler)
        return
    n = default_jobs() if n_jobs is None else int(n_jobs)
    if max_workers is not None:
        n = min(n, max_workers)
    first = list(islice(jobs, 2))
    jobs = chain(first, jobs)
    if n <= 1 or len(first) < 2:
        yield from map(_analyze_path, jobs)
    else:
        yield from _pool_outcomes(jobs, n)


def iter_batch(paths: Iterable[str | Path], pixel_size_nm: float | None = None,
               scale_bar_nm: float | None = None, params: SegmentParams | None = None, *,
               n_jobs: int | None = None, scheduler=None,
               shape_model: ShapeModel | str | None = SHIPPED,
               arrays: bool = False) -> Iterator[ImageOutcome]:
    """Analyse files, yielding one :class:`ImageOutcome` per file as each completes.

    Outcomes come in completion order (``outcome.index`` is the file's position);
    ``arrays=True`` adds each image's full result (labels, crops). Nothing is kept
    after it is yielded.
    """
    paths = [str(p) for p in paths]
    _check_positive("pixel_size_nm", pixel_size_nm)
    _check_positive("scale_bar_nm", scale_bar_nm)
    jobs = (Job(i, p, pixel_size_nm, scale_bar_nm, params, shape_model, arrays)
            for i, p in enumerate(paths))
    return run_jobs(jobs, n_jobs, scheduler, max_workers=len(paths))


# --- into the store ---------------------------------------------------------------------

@dataclass
class StoredBatch:
    """What :func:`store_batch` did.

    ``n_analysed`` images were analysed and stored now (``n_failed`` of them failed and
    were stored as failures), ``n_skipped`` were stored already; ``failures``
    (``image``, ``error``) lists this run's failures, including files refused because a
    different file of that name is in the dataset.
    """

    dataset: DatasetRef
    n_images: int
    n_analysed: int
    n_skipped: int
    n_failed: int
    failures: pd.DataFrame


def model_version(shape_model: ShapeModel | str | None) -> str | None:
    """The shape model's identity for a dataset's parameters (None: no CNN)."""
    if shape_model is None:
        return None
    if isinstance(shape_model, str) and shape_model == SHIPPED:
        card_path = DEFAULT_WEIGHTS.with_suffix(".json")
        try:
            card = json.loads(card_path.read_text())
            digest = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()[:12]
        except (OSError, ValueError):
            return "shipped model (missing)"
        return f"{card.get('name', 'shape model')} {card.get('created', '')} sha256:{digest}"
    card = getattr(shape_model, "card", {}) or {}
    return f"{card.get('name', 'shape model')} {card.get('created', 'unsaved')}"


def batch_parameters(params: SegmentParams | None, pixel_size_nm: float | None,
                     scale_bar_nm: float | None, shape_model) -> dict:
    """A dataset's parameters: segmentation, scale options and the model's version."""
    from dataclasses import asdict

    return {"segment": asdict(params or SegmentParams()), "pixel_size_nm": pixel_size_nm,
            "scale_bar_nm": scale_bar_nm, "shape_model": model_version(shape_model)}


def file_sha256(path: str) -> str | None:
    """sha256 of a file's bytes (read in blocks), None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def store_batch(paths: Iterable[str | Path], store, dataset: str,
                pixel_size_nm: float | None = None, scale_bar_nm: float | None = None,
                params: SegmentParams | None = None, progress: Progress | None = None, *,
                n_jobs: int | None = None, scheduler=None,
                shape_model: ShapeModel | str | None = SHIPPED) -> StoredBatch:
    """Analyse files into the store's dataset ``dataset``, one transaction per image.

    The dataset with these parameters is resumed if it exists (files stored already, same
    name and content, are skipped; failed ones are tried again), else created (a new
    version when the name exists with other parameters). It is marked complete at the end.
    ``store`` is a :class:`tempipe.store.Store` or a path. Memory: see the module docstring.
    """
    from tempipe.store import Store

    store = store if isinstance(store, Store) else Store(store)
    paths = [str(p) for p in paths]
    _check_positive("pixel_size_nm", pixel_size_nm)
    _check_positive("scale_bar_nm", scale_bar_nm)
    ref = store.create_dataset(dataset, batch_parameters(params, pixel_size_nm, scale_bar_nm,
                                                         shape_model), source="tempipe analyze")
    stored = store.stored_images(ref)
    options = {"pixel_size_nm": pixel_size_nm, "scale_bar_nm": scale_bar_nm}
    state = {"done": 0, "skipped": 0, "analysed": 0, "failed": 0}
    failures, shas, seen = [], {}, set()

    def tick(name: str) -> None:
        state["done"] += 1
        if progress is not None:
            progress(state["done"], len(paths), name)

    def jobs() -> Iterator[Job]:
        for index, path in enumerate(paths):
            name, sha = Path(path).name, file_sha256(path)
            known = stored.get(name)
            done_before = known is not None and known[1] == "ok"
            if name in seen or (done_before and sha is not None and known[0] != sha):
                failures.append({"image": name, "error": (
                    f"{name}: another file of this name is already in dataset {ref.name} "
                    f"v{ref.version} ({path} differs); rename it or store it in another "
                    "dataset (--dataset).")})
                tick(name)
                continue
            seen.add(name)
            if done_before:     # same content (or the file is gone): keep what is stored
                state["skipped"] += 1
                tick(name)
                continue
            shas[index] = sha
            yield Job(index, path, pixel_size_nm, scale_bar_nm, params, shape_model, True)

    for outcome in run_jobs(jobs(), n_jobs, scheduler, max_workers=len(paths)):
        sha = shas.pop(outcome.index)
        if outcome.error is not None:
            failures.append({"image": outcome.name, "error": outcome.error})
            state["failed"] += 1
            store.add_image_result(ref, outcome.name, sha256=sha, path=outcome.path,
                                   error=outcome.error, seq=outcome.index, options=options)
        else:
            store.add_image_result(ref, outcome.name, sha256=sha, path=outcome.path,
                                   result=outcome.result, seq=outcome.index, options=options)
        state["analysed"] += 1
        tick(outcome.name)
    store.mark_complete(ref)
    return StoredBatch(replace(ref, status="complete"), len(paths), state["analysed"],
                       state["skipped"], state["failed"],
                       pd.DataFrame(failures, columns=["image", "error"]))
