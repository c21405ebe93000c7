"""tempipe.segment on real micrographs: 20 EMPS figures, against the plain baseline.

The images are a fixed random draw from the validation half of the split in
``bench/bench_real_micrographs.py`` (never looked at while tuning). With default
parameters, tempipe's pooled F1 at IoU >= 0.5 was 0.42 against the baseline's 0.22 on
them (2026-11-25); the test asserts a margin of 0.10, the issue's target. Skips when
``../shared/data/emps-train`` is absent.
"""

import importlib.util
from pathlib import Path

import numpy as np

from tempipe.metrics import match_counts
from tempipe.segment import segment

IDS = ("00655d9628", "1cb46bfdd5", "2897b777fe", "2bc87a8698", "3a9246e0ee", "47286679c2",
       "50a4901372", "78c63579ba", "7e85b64066", "83fd5c9288", "8b40ed2a82", "9d358e8c8a",
       "b19f6f3309", "bf57480a38", "c812c93fbd", "ce2f96aae1", "ce39bb3c03", "cef2196885",
       "d29d644539", "dc25ff5266")
MARGIN = 0.10


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_real_micrographs.py"
    spec = importlib.util.spec_from_file_location("bench_real_micrographs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pooled_f1(counts) -> float:
    n_true = sum(c["n_true"] for c in counts)
    n_pred = sum(c["n_pred"] for c in counts)
    return 2 * sum(int(c["tp"][0]) for c in counts) / max(n_true + n_pred, 1)


def test_subset_is_drawn_from_the_validation_half(emps_dir):
    bench = _bench()
    tune, validation = bench.split_ids(bench.emps_ids(emps_dir))
    assert len(validation) == round(0.3 * (len(tune) + len(validation)))
    assert set(IDS) <= set(validation) and not set(IDS) & set(tune)


def test_tempipe_beats_the_baseline_on_real_micrographs(emps_dir):
    bench = _bench()
    ours, theirs = [], []
    for image_id in IDS:
        image, truth = bench.load_pair(image_id, emps_dir)
        ours.append(match_counts(truth, segment(image), [0.5]))
        theirs.append(match_counts(truth, bench.baseline_segment(image), [0.5]))
    f1, baseline_f1 = _pooled_f1(ours), _pooled_f1(theirs)
    assert f1 >= baseline_f1 + MARGIN, (f1, baseline_f1)
    ious = np.concatenate([c["ious"] for c in ours])
    assert ious.mean() > 0.75, ious.mean()
