"""Score a batch in one pass with thresholds and a cutoff saved from a trusted set.

``run_audit`` reads the data twice because the cutoff (the T-th lowest self-confidence of
the whole dataset) is only known once every image has been seen. ``segaudit calibrate``
saves pass 1's outcome on a trusted set; :func:`run_calibrated_audit` then reads each new
image once and does pass 1's and pass 2's work on it together, with the saved values:

- image scores, per-class pixel counts and skipped rows are the batch's own (as in pass 1);
- a pixel is flagged when its prediction disagrees with its label and its self-confidence
  is at most the saved cutoff (as in pass 2, with the saved cutoff);
- the confident count T of the batch, under the saved thresholds, is counted and reported,
  but selects nothing.

Run on the trusted set itself, this reproduces ``run_audit``'s result exactly: the same
thresholds, the same T, the same cutoff, hence the same masks. On other data it is what
flagging at the trusted set's error rate gives, not a fresh two-pass audit of the batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from segaudit.core.audit import (
    AuditOptions,
    AuditResult,
    Executor,
    FlagPartial,
    ImageSink,
    ProgressCallback,
    SerialExecutor,
    StatsPartial,
    add_flags,
    add_stats,
    count_confident,
    image_digests,
    image_records,
    merge_all,
    method_scorer,
    skipped_indices,
)
from segaudit.core.dataset import Dataset
from segaudit.core.selection import ConfidenceHistogram, Cutoff, ScoreHistogram
from segaudit.core.stats import ClassStats
from segaudit.errors import DatasetError, ImageError


@dataclass
class CalibratedPartial:
    """Pass 1's and pass 2's partial results over some images, from one read."""

    stats: StatsPartial
    flags: FlagPartial
    confident_count: int = 0

    def merge(self, other: CalibratedPartial) -> None:
        self.stats.merge(other.stats)
        self.flags.merge(other.flags)
        self.confident_count += other.confident_count


def calibrated_block(
    dataset: Dataset,
    block: range,
    options: AuditOptions,
    thresholds: NDArray[np.float64],
    cutoff: Cutoff,
    sinks: Sequence[ImageSink] = (),
) -> CalibratedPartial:
    """One read of each image in the block: its statistics, its T share and its flags."""
    k = dataset.num_classes
    partial = CalibratedPartial(
        StatsPartial(ClassStats(k), ScoreHistogram(), ConfidenceHistogram(k)),
        FlagPartial(np.zeros((k, k), np.int64)),
    )
    rescore = method_scorer(options, thresholds)
    for image, digest in image_digests(dataset, block, options, frozenset()):
        add_stats(partial.stats, image, digest, options, histograms=False)
        if isinstance(digest, ImageError):
            continue
        if image.index not in partial.stats.records or partial.stats.records[image.index].skipped:
            continue  # a tiled image whose band failed in add_stats: a skipped row already
        partial.confident_count += count_confident(digest, thresholds, options)
        add_flags(partial.flags, image, digest, cutoff, sinks, options, rescore=rescore)
    return partial


def run_calibrated_audit(
    dataset: Dataset,
    options: AuditOptions,
    thresholds: NDArray[np.float64],
    cutoff: Cutoff,
    *,
    executor: Executor | None = None,
    sinks: Sequence[ImageSink] = (),
    on_progress: ProgressCallback | None = None,
) -> AuditResult:
    """Audit a batch in a single streamed pass with saved thresholds and a saved cutoff.

    The result's ``thresholds`` and ``cutoff`` are the saved ones; ``confident_count`` is
    the batch's own T under those thresholds (informational).
    """
    if thresholds.shape != (dataset.num_classes,):
        raise DatasetError(
            f"the calibration has {thresholds.shape[0]} classes but the probabilities have "
            f"{dataset.num_classes}; calibrate with the same model and classes"
        )
    executor = executor or SerialExecutor()
    blocks = list(dataset.blocks())
    start = time.perf_counter()
    merged: CalibratedPartial = merge_all(
        executor.map(
            lambda b: calibrated_block(dataset, b, options, thresholds, cutoff, sinks), blocks
        ),
        "calibrated",
        blocks,
        on_progress,
    )
    total = len(dataset.image_ids)
    skipped_indices(merged.stats, total)  # raises when no image could be read
    return AuditResult(
        num_classes=dataset.num_classes,
        options=options,
        images=image_records(total, merged.stats, merged.flags),
        thresholds=thresholds.astype(np.float64, copy=True),
        class_pixels=merged.stats.class_stats.counts,
        confident_count=merged.confident_count,
        cutoff=cutoff,
        confusion=merged.flags.confusion,
        timings={"single_pass_seconds": time.perf_counter() - start},
    )
