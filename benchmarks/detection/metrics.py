"""Ranking metrics and bootstrap intervals, numpy only (so the smoke test can check them
against cases whose answer is known)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def _order(scores: NDArray[np.float64]) -> NDArray[np.intp]:
    """Highest score first; ties in input order (deterministic)."""
    return np.argsort(-np.asarray(scores, np.float64), kind="stable")


def average_precision(scores: NDArray[np.float64], positive: NDArray[np.bool_]) -> float:
    """AUPRC as average precision: the mean, over positives, of the precision at each
    positive's rank (higher score = ranked first). NaN with no positive."""
    hits = np.asarray(positive, bool)[_order(scores)]
    if not hits.any():
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision[hits].mean())


def auroc(scores: NDArray[np.float64], positive: NDArray[np.bool_]) -> float:
    """Probability a random positive scores above a random negative (ties count half)."""
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    npos, nneg = int(positive.sum()), int((~positive).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[positive].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def precision_at_k(scores: NDArray[np.float64], positive: NDArray[np.bool_], k: int) -> float:
    """Share of positives among the k highest scores (all items if fewer than k)."""
    top = np.asarray(positive, bool)[_order(scores)][:k]
    return float(top.mean()) if top.size else float("nan")


def recall_at_k(scores: NDArray[np.float64], positive: NDArray[np.bool_], k: int) -> float:
    """Share of all positives that are among the k highest scores."""
    positive = np.asarray(positive, bool)
    if not positive.any():
        return float("nan")
    return float(positive[_order(scores)][:k].sum() / positive.sum())


@dataclass(frozen=True)
class Interval:
    """An estimate on the full sample and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        if np.isnan(self.value):
            return "–"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def bootstrap(
    statistic: Callable[[NDArray[np.intp]], float],
    n: int,
    *,
    reps: int = 400,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """``statistic(indices)`` on all n units and on ``reps`` resamples of them (with
    replacement); the interval is the resamples' percentile interval."""
    rng = np.random.default_rng(seed)
    value = statistic(np.arange(n))
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(reps)])
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return Interval(value, float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(value, float(low), float(high))
