"""The detection benchmark (benchmarks/detection) end to end on its smoke preset, and its
metrics on cases whose answer is known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the benchmark's model; the test extra brings it (cleanlab)

DETECTION = Path(__file__).resolve().parents[2] / "benchmarks" / "detection"
sys.path.insert(0, str(DETECTION))

import data  # noqa: E402
import evaluate  # noqa: E402
import metrics  # noqa: E402
import run  # noqa: E402
from scenes import ERROR_TYPES  # noqa: E402


def test_metrics_on_known_rankings() -> None:
    positive = np.array([True, False, True, False, False])
    perfect = np.array([5.0, 1, 4, 2, 0])
    assert metrics.average_precision(perfect, positive) == 1.0
    assert metrics.auroc(perfect, positive) == 1.0
    assert metrics.auroc(-perfect, positive) == 0.0
    # positives at ranks 1 and 3: precision 1/1 and 2/3
    ranks_1_and_3 = np.array([5.0, 4, 3, 2, 1])
    assert metrics.average_precision(ranks_1_and_3, np.array([1, 0, 1, 0, 0], bool)) == (
        pytest.approx((1 + 2 / 3) / 2)
    )
    assert metrics.precision_at_k(ranks_1_and_3, np.array([1, 0, 1, 0, 0], bool), 2) == 0.5
    assert metrics.recall_at_k(ranks_1_and_3, np.array([1, 0, 1, 0, 0], bool), 3) == 1.0
    # a constant statistic has a zero-width interval
    interval = metrics.bootstrap(lambda idx: 0.25, 10, reps=20)
    assert (interval.value, interval.low, interval.high) == (0.25, 0.25, 0.25)


def test_metrics_match_scikit_learn_on_random_scores() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    for _ in range(20):
        scores = rng.normal(size=50).round(1)  # rounded: ties happen
        positive = rng.random(50) < 0.3
        assert metrics.auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores))
        unique = rng.permutation(50).astype(float)  # AP without ties is defined one way
        assert metrics.average_precision(unique, positive) == pytest.approx(
            average_precision_score(positive, unique)
        )


def test_a_perfect_model_finds_every_error(tmp_path: Path) -> None:
    """Probabilities that follow the clean masks: every flagged pixel and every region is a
    real error, and every error image ranks above every clean one."""
    images, clean, noisy, kinds = data.make_data(data.PRESETS["smoke"], seed=0)
    assert set(kinds) - {""} == set(ERROR_TYPES)  # every kind is injected
    k = len(data.CLASSES)
    probs = np.full((len(clean), k, *clean.shape[1:]), 0.02 / (k - 1), np.float32)
    np.put_along_axis(probs, clean[:, None].astype(np.intp), 0.98, axis=1)
    bench = data.Benchmark(images, clean, noisy, probs, kinds, {})
    result, outcomes = evaluate.audit(bench)
    assert all(o.real.all() for o in outcomes)
    precision, recall = evaluate.pixel_metrics(outcomes, reps=10)
    assert precision.value == 1.0
    assert recall.value == 1.0
    suspicion = evaluate.image_scores(result, outcomes, k)
    for name in ("softmin", "num_pixel_issues", "worst_pixel", "region_evidence"):
        found = evaluate.image_metrics(suspicion[name], kinds, None, reps=10)
        assert found.auprc.value == 1.0, name
        assert found.recall_at_k.value == 1.0, name


def test_smoke_preset_end_to_end(tmp_path: Path) -> None:
    text = run.report("smoke", seed=0, reps=20, cache=tmp_path)
    assert "### Image-level AUPRC" in text
    assert "### Region queue" in text
    for method in ("softmin", "num_pixel_issues", "worst_pixel", "region_evidence"):
        assert f"| `{method}` |" in text
    assert list(tmp_path.glob("smoke-seed0/data-*.npz"))  # cached
    bench = data.load(data.PRESETS["smoke"], 0, tmp_path)  # from the cache, same data
    assert bench.probs.shape[1] == len(data.CLASSES)
    np.testing.assert_allclose(bench.probs.sum(axis=1), 1.0, atol=1e-4)
    # the model really learned: far better than the majority class against the clean masks
    majority = np.bincount(bench.clean.ravel()).max() / bench.clean.size
    assert (bench.probs.argmax(axis=1) == bench.clean).mean() > majority + 0.2
