"""Run segaudit on a benchmark through the library and measure what it finds.

The audit is ``segaudit.core.audit.run_audit`` on the noisy masks and out-of-fold
probabilities (``segaudit.api.ArrayDataset``), with one pass-2 sink that keeps, per image,
what the scoring methods and the region queue need: the valid pixels' self-confidence, the
regions (``find_regions``) and their features (``region_features``), and, from the clean
mask, which flagged pixels and which regions are real errors. A region is real when most of
its pixels are labelled differently from the clean mask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from data import Benchmark
from metrics import (
    Interval,
    auroc,
    average_precision,
    bootstrap,
    precision_at_k,
    recall_at_k,
)
from numpy.typing import NDArray
from scenes import ERROR_TYPES
from scipy import ndimage

from segaudit.api import ArrayDataset
from segaudit.core.audit import AuditOptions, AuditResult, run_audit
from segaudit.core.methods import METHODS, DatasetContext, ImageEvidence
from segaudit.core.pixel import PixelDigest
from segaudit.core.region_score import (
    DEFAULT_WEIGHTS,
    RegionFeatures,
    feature_matrix,
    pair_shares,
    region_features,
    region_scores,
)
from segaudit.core.regions import Region, RegionOptions, find_regions


@dataclass
class ImageOutcome:
    """What the audit found in one image, next to the truth."""

    kind: str
    self_confidence: NDArray[np.float64]
    given: NDArray[np.intp]
    regions: list[Region]
    features: list[RegionFeatures]
    real: NDArray[np.bool_]  # per region
    flagged: int = 0
    flagged_real: int = 0  # flagged pixels whose given label differs from the clean mask
    errors: int = 0  # pixels whose given label differs from the clean mask


def _real_regions(
    digest: PixelDigest, flagged: NDArray[np.bool_], regions: list[Region], wrong: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Per region: do most of its pixels differ from the clean mask? Regions are the
    connected components of one pair's flagged pixels, matched by pair, box and area."""
    options = RegionOptions()
    found: dict[tuple[int, ...], bool] = {}
    for g, p in {(r.given, r.predicted) for r in regions}:
        mask = flagged & (digest.given == g) & (digest.predicted == p)
        labelled, _ = ndimage.label(mask, structure=options.structure)
        for index, box in enumerate(ndimage.find_objects(labelled), start=1):
            if box is None:
                continue
            inside = labelled[box] == index
            area = int(inside.sum())
            key = (g, p, box[1].start, box[0].start, box[1].stop - box[1].start,
                   box[0].stop - box[0].start, area)  # fmt: skip
            found[key] = bool(wrong[box][inside].sum() * 2 > area)
    return np.array(
        [found[(r.given, r.predicted, r.x, r.y, r.width, r.height, r.area)] for r in regions],
        bool,
    )


def audit(bench: Benchmark) -> tuple[AuditResult, list[ImageOutcome]]:
    """segaudit on the benchmark, serially, keeping every image's outcome."""
    outcomes: dict[int, ImageOutcome] = {}

    def keep(index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]) -> None:
        wrong = bench.noisy[index] != bench.clean[index]
        regions = find_regions(digest, flagged)
        outcomes[index] = ImageOutcome(
            kind=str(bench.kinds[index]),
            self_confidence=digest.self_confidence[digest.valid],
            given=digest.given[digest.valid],
            regions=regions,
            features=region_features(digest, flagged, regions),
            real=_real_regions(digest, flagged, regions, wrong),
            flagged=int(flagged.sum()),
            flagged_real=int((flagged & wrong).sum()),
            errors=int(wrong.sum()),
        )

    dataset = ArrayDataset(bench.noisy, bench.probs)
    result = run_audit(dataset, AuditOptions(ignore=frozenset(), strict=True), sinks=[keep])
    return result, [outcomes[i] for i in range(len(bench.kinds))]


def shares_of(outcomes: list[ImageOutcome], num_classes: int) -> NDArray[np.float64]:
    return pair_shares(
        ([(r.given, r.predicted) for r in o.regions] for o in outcomes), len(outcomes), num_classes
    )


def scored_regions(
    outcomes: list[ImageOutcome],
    num_classes: int,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> list[NDArray[np.float64]]:
    """Each image's region scores."""
    shares = shares_of(outcomes, num_classes)
    return [region_scores(o.regions, o.features, shares, weights) for o in outcomes]


def region_table(
    outcomes: list[ImageOutcome], num_classes: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.intp]]:
    """All regions' features (R, F), real flags (R,), and image index (R,)."""
    shares = shares_of(outcomes, num_classes)
    blocks = [feature_matrix(o.regions, o.features, shares) for o in outcomes]
    image = np.concatenate([np.full(len(o.regions), i) for i, o in enumerate(outcomes)])
    real = np.concatenate([o.real for o in outcomes])
    return np.concatenate(blocks), real, image.astype(np.intp)


def image_scores(
    result: AuditResult, outcomes: list[ImageOutcome], num_classes: int
) -> dict[str, NDArray[np.float64]]:
    """Every method's image scores, as suspicion (higher = more suspect, i.e. -score);
    ties are broken as segaudit ranks: more flagged pixels first, then dataset order."""
    context = DatasetContext(result.options.temperature, result.thresholds)
    per_region = scored_regions(outcomes, num_classes)
    flagged = np.array([o.flagged for o in outcomes], np.float64)
    out = {}
    for name, method in METHODS.items():
        scores = np.array(
            [
                method(ImageEvidence(o.self_confidence, o.given, o.flagged, per_region[i]), context)
                for i, o in enumerate(outcomes)
            ]
        )
        # rank as segaudit does: lowest score, then most flagged pixels
        order = np.lexsort((np.arange(scores.size), -flagged, scores))
        suspicion = np.empty(scores.size)
        suspicion[order] = -np.arange(scores.size, dtype=np.float64)
        out[name] = suspicion
    return out


@dataclass(frozen=True)
class ImageMetrics:
    auprc: Interval
    auroc: Interval
    precision_at_k: Interval
    recall_at_k: Interval
    positives: int


def image_metrics(
    suspicion: NDArray[np.float64], kinds: NDArray[np.str_], kind: str | None, reps: int
) -> ImageMetrics:
    """Metrics for finding images of ``kind`` (None: any error) among clean images. k is
    the number of such images (precision@k = recall@k = R-precision on the subset) for the
    subset's metrics; recall@k is on the whole ranking with k = all images with an error,
    the budget of a reviewer who checks as many images as there are errors."""
    noisy_count = int((kinds != "").sum())
    keep = (kinds == "") | (kinds == kind) if kind else np.ones(kinds.size, bool)
    sub_s, sub_pos = suspicion[keep], (kinds[keep] != "")
    k = int(sub_pos.sum())
    target = (kinds == kind) if kind else (kinds != "")

    Stat = Callable[[NDArray[np.float64], NDArray[np.bool_]], float]

    def on(fn: Stat) -> Callable[[NDArray[np.intp]], float]:
        return lambda idx: fn(sub_s[idx], sub_pos[idx])

    def top_k(s: NDArray[np.float64], pos: NDArray[np.bool_]) -> float:
        return precision_at_k(s, pos, k)

    def found(idx: NDArray[np.intp]) -> float:
        return recall_at_k(suspicion[idx], target[idx], noisy_count)

    n = int(keep.sum())
    return ImageMetrics(
        auprc=bootstrap(on(average_precision), n, reps=reps),
        auroc=bootstrap(on(auroc), n, reps=reps),
        precision_at_k=bootstrap(on(top_k), n, reps=reps),
        recall_at_k=bootstrap(found, kinds.size, reps=reps),
        positives=k,
    )


def auprc_gain(
    suspicion: NDArray[np.float64],
    baseline: NDArray[np.float64],
    kinds: NDArray[np.str_],
    kind: str | None,
    reps: int,
) -> Interval:
    """AUPRC of ``suspicion`` minus that of ``baseline`` on the same resamples (paired): an
    interval above 0 means the method beats the baseline on this benchmark."""
    keep = (kinds == "") | (kinds == kind) if kind else np.ones(kinds.size, bool)
    a, b, pos = suspicion[keep], baseline[keep], kinds[keep] != ""

    def gain(idx: NDArray[np.intp]) -> float:
        return average_precision(a[idx], pos[idx]) - average_precision(b[idx], pos[idx])

    return bootstrap(gain, int(keep.sum()), reps=reps)


def region_precision(
    scores: NDArray[np.float64],
    real: NDArray[np.bool_],
    image: NDArray[np.intp],
    n_images: int,
    k: int,
    reps: int,
    baseline: NDArray[np.float64] | None = None,
) -> Interval:
    """precision@k of the region queue ordered by ``scores``, resampling images; with a
    ``baseline`` order, the difference of the two on the same resamples (paired)."""
    members = [np.flatnonzero(image == i) for i in range(n_images)]

    def stat(idx: NDArray[np.intp]) -> float:
        rows = np.concatenate([members[i] for i in idx])
        value = precision_at_k(scores[rows], real[rows], k)
        if baseline is not None:
            value -= precision_at_k(baseline[rows], real[rows], k)
        return value

    return bootstrap(stat, n_images, reps=reps)


def pixel_metrics(outcomes: list[ImageOutcome], reps: int) -> tuple[Interval, Interval]:
    """Pixel precision and recall of the flagged mask (flagged vs given != clean)."""
    flagged = np.array([o.flagged for o in outcomes], np.float64)
    hit = np.array([o.flagged_real for o in outcomes], np.float64)
    errors = np.array([o.errors for o in outcomes], np.float64)

    def ratio(
        a: NDArray[np.float64], b: NDArray[np.float64]
    ) -> Callable[[NDArray[np.intp]], float]:
        return lambda idx: float(a[idx].sum() / b[idx].sum()) if b[idx].sum() else float("nan")

    n = len(outcomes)
    return bootstrap(ratio(hit, flagged), n, reps=reps), bootstrap(ratio(hit, errors), n, reps=reps)


KINDS = (None, *ERROR_TYPES)
