"""The two-pass audit: ``run_audit(dataset, options) -> AuditResult``.

Pass 1 reads every image once and fills mergeable accumulators that need no thresholds:
per-class sums (thresholds), the self-confidence histogram, the confidence histogram of
disagreeing pixels, and each image's softmin score. From these come the thresholds, the
confident count T and the selection cutoff. For float16 input that is exact; otherwise a
refine pass looks again at the pixels of the boundary bins. Pass 2 then flags pixels image
by image, counts (given, predicted) pairs, and hands each flagged mask to the sinks
(overlays, in-memory masks, regions).

Each pass is a function of one block of images returning a partial result that merges with
the others, so the same code runs serially, on threads, or on a Dask cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from segaudit.core.compact import digest_probs
from segaudit.core.dataset import Dataset, LoadedImage
from segaudit.core.image import DEFAULT_TEMPERATURE, check_temperature, softmin_score
from segaudit.core.methods import (
    DEFAULT_METHOD,
    NEEDS,
    DatasetContext,
    ImageEvidence,
    get_method,
)
from segaudit.core.pixel import PixelDigest
from segaudit.core.selection import (
    COMPARISON_MARGIN,
    ConfidenceHistogram,
    Cutoff,
    FineCounts,
    ScoreHistogram,
    exact_cutoff,
    refine_window,
    refined_cutoff,
)
from segaudit.core.stats import ClassStats
from segaudit.core.tiles import RunningSoftmin, TiledDigests, TileSink
from segaudit.errors import DatasetError, ImageError, OptionError

ProgressCallback = Callable[[str, int, int], None]
"""on_progress(stage, images_done, images_total)."""


class ImageSink(Protocol):
    """Receives each image's flagged-pixel mask in pass 2 (may be called from worker threads).

    An image read in tiles goes only to sinks that are also a
    :class:`~segaudit.core.tiles.TileSink`, band by band.

    The digest's ``predicted`` is exact wherever a pixel could be flagged (self-confidence at
    most the cutoff) and equals ``given`` elsewhere: pass 2 predicts no more than it needs.
    """

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None: ...


_T = TypeVar("_T")


class Executor(Protocol):
    """Runs a function over blocks, on whatever workers it has; yields the results in the
    blocks' order (merging in a fixed order keeps float sums deterministic).

    ``remote`` is True when blocks run in other processes (Dask): image sinks then cannot
    write into this process's objects and must be shipped (see segaudit.execute.dask)."""

    remote: bool

    def map(self, fn: Callable[[range], _T], items: Sequence[range]) -> Iterator[_T]: ...


@dataclass(frozen=True)
class AuditOptions:
    """What to compute. ``strict`` makes one bad image fatal instead of a skipped row.
    ``method`` names the image score (:mod:`segaudit.core.methods`); the engine computes the
    methods that need pixels and flags, not those that need every image's regions."""

    temperature: float = DEFAULT_TEMPERATURE
    ignore: frozenset[int] = frozenset({255})
    strict: bool = False
    check_sums: bool = True
    method: str = DEFAULT_METHOD

    def __post_init__(self) -> None:
        check_temperature(self.temperature)
        get_method(self.method)  # a clear error for an unknown name
        if NEEDS[self.method] == "regions":
            raise OptionError(
                f"method {self.method!r} needs every image's regions: the engine scores images "
                "from pixels and flags; segaudit score computes it after the audit"
            )


@dataclass(frozen=True)
class ImageRecord:
    """One image's row of the ranking."""

    index: int
    image_id: str
    label_quality: float
    valid_pixels: int
    flagged_pixels: int = 0
    top_given: int | None = None
    top_predicted: int | None = None
    top_pair_pixels: int = 0
    skipped: str | None = None
    #: Share of valid pixels where the model's class (argmax) is the given label: a mask
    #: paired with another image's probabilities agrees far less than its neighbours.
    agreement: float = math.nan

    @property
    def flagged_fraction(self) -> float:
        return self.flagged_pixels / self.valid_pixels if self.valid_pixels else 0.0


@dataclass(frozen=True)
class IssuePair:
    """Flagged pixels labelled ``given`` that the model calls ``predicted``."""

    given: int
    predicted: int
    pixels: int


@dataclass
class AuditResult:
    """Everything the writers and the gate need; no per-pixel data."""

    num_classes: int
    options: AuditOptions
    images: list[ImageRecord]
    thresholds: NDArray[np.float64]
    class_pixels: NDArray[np.int64]
    confident_count: int
    cutoff: Cutoff
    confusion: NDArray[np.int64]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def class_flagged(self) -> NDArray[np.int64]:
        """Flagged pixels per given class."""
        flagged: NDArray[np.int64] = self.confusion.sum(axis=1)
        return flagged

    @property
    def flagged_pixels(self) -> int:
        return int(self.confusion.sum())

    @property
    def valid_pixels(self) -> int:
        return int(self.class_pixels.sum())

    def ranking(self) -> list[ImageRecord]:
        """Most suspect first: lowest score, then most flagged pixels, then dataset order.
        Images without a score (skipped, or nothing valid) come last."""
        return sorted(self.images, key=_rank_key)

    def common_label_issues(self, top: int | None = None) -> list[IssuePair]:
        """(given, predicted) pairs among flagged pixels, most pixels first."""
        pairs = [
            IssuePair(int(g), int(p), int(self.confusion[g, p]))
            for g, p in zip(*np.nonzero(self.confusion), strict=True)
        ]
        pairs.sort(key=lambda pair: -pair.pixels)  # stable: ties keep (given, predicted) order
        return pairs if top is None else pairs[:top]


def _rank_key(record: ImageRecord) -> tuple[bool, float, int, int]:
    unscored = math.isnan(record.label_quality)
    return (
        unscored,
        0.0 if unscored else record.label_quality,
        -record.flagged_pixels,
        record.index,
    )


# ---------------------------------------------------------------- partial results per block


@dataclass
class StatsPartial:
    """Pass 1 over some images."""

    class_stats: ClassStats
    scores: ScoreHistogram
    confidence: ConfidenceHistogram
    records: dict[int, ImageRecord] = field(default_factory=dict)
    exact: bool = True

    def merge(self, other: StatsPartial) -> None:
        self.class_stats.merge(other.class_stats)
        self.scores.merge(other.scores)
        self.confidence.merge(other.confidence)
        self.records.update(other.records)
        self.exact &= other.exact


@dataclass
class RefinePartial:
    """The refine pass over some images: exact T and exact keys in the boundary window."""

    confident_count: int
    fine: FineCounts

    def merge(self, other: RefinePartial) -> None:
        self.confident_count += other.confident_count
        self.fine.merge(other.fine)


@dataclass
class FlagPartial:
    """Pass 2 over some images. ``scores``: each image's score by a method other than
    softmin (computed in pass 2, when thresholds and flags are known)."""

    confusion: NDArray[np.int64]
    flagged: dict[int, tuple[int, int | None, int | None, int]] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)

    def merge(self, other: FlagPartial) -> None:
        self.confusion += other.confusion
        self.flagged.update(other.flagged)
        self.scores.update(other.scores)


#: An image's score by the chosen method, from its digest and its flagged-pixel count.
Rescore = Callable[[PixelDigest, int], float]


def method_scorer(options: AuditOptions, thresholds: NDArray[np.float64]) -> Rescore | None:
    """The pass-2 scorer of ``options.method``; None for softmin (pass 1 scores it)."""
    if options.method == DEFAULT_METHOD:
        return None
    method = get_method(options.method)
    context = DatasetContext(options.temperature, thresholds)

    def rescore(digest: PixelDigest, flagged: int) -> float:
        valid = digest.valid
        evidence = ImageEvidence(digest.self_confidence[valid], digest.given[valid], flagged)
        return method(evidence, context)

    return rescore


def image_digests(
    dataset: Dataset,
    block: range,
    options: AuditOptions,
    skip: frozenset[int],
    *,
    first_read: bool = True,
    predict_below: float | None = None,
) -> Iterator[tuple[LoadedImage, PixelDigest | ImageError | TiledDigests]]:
    """Each image's digest, or the error that makes it a skipped row. Images in ``skip``
    failed an earlier pass; later reads (``first_read`` False) skip the sum check that
    the first read already made. An image too large to hold comes as its band digests,
    made as they are iterated (see :func:`tiled_bands` for their errors)."""
    for image in dataset.load(block):
        if image.index in skip:
            continue
        if image.error is None and image.tiles is not None:
            check = options.check_sums and first_read
            yield (
                image,
                TiledDigests(image.image_id, image.tiles, options.ignore, check, predict_below),
            )
            continue
        if image.error is not None or image.labels is None or image.probs is None:
            error = image.error or ImageError(image.image_id, "could not be read")
            if options.strict:
                raise error
            if not first_read:
                raise _changed(error)
            yield image, error
            continue
        try:
            yield (
                image,
                digest_probs(
                    image.image_id,
                    image.labels,
                    image.probs,
                    options.ignore,
                    check_sums=options.check_sums and first_read,
                    predict_below=predict_below,
                ),
            )
        except ImageError as error:
            if options.strict:
                raise
            if not first_read:
                raise _changed(error) from None
            yield image, error


def _changed(error: ImageError) -> DatasetError:
    """An image that pass 1 read but a later pass cannot: its row would silently be wrong."""
    return DatasetError(
        f"{error.image_id}: was read in pass 1 but not now ({error.reason}); did the data "
        "change during the run, or the storage fail? Run again"
    )


def tiled_bands(
    digests: TiledDigests, options: AuditOptions, first_read: bool
) -> Iterator[tuple[int, PixelDigest]]:
    """A tiled image's band digests; an error part way raises as in :func:`image_digests`:
    in pass 1 the caller makes it a skipped row, later it means the data changed."""
    try:
        yield from digests
    except ImageError as error:
        if options.strict or first_read:
            raise
        raise _changed(error) from None


def add_tiled_stats(
    partial: StatsPartial,
    image: LoadedImage,
    digests: TiledDigests,
    options: AuditOptions,
    histograms: bool = True,
) -> None:
    """Pass 1 on a tiled image, band by band, into accumulators of its own that join the
    block's only when every band was read (a failing band makes the image a skipped row)."""
    k = partial.class_stats.num_classes
    own = StatsPartial(ClassStats(k), ScoreHistogram(), ConfidenceHistogram(k))
    softmin = RunningSoftmin(options.temperature)
    valid_pixels = agreed = 0
    try:
        for _, digest in tiled_bands(digests, options, True):
            self_conf, band_agreed = _add_pixels(own, digest, histograms)
            softmin.add(self_conf)
            valid_pixels += int(self_conf.size)
            agreed += band_agreed
    except ImageError as error:
        if options.strict:
            raise
        add_stats(partial, image, error, options)
        return
    own.records[image.index] = ImageRecord(
        image.index,
        image.image_id,
        softmin.score,
        valid_pixels,
        agreement=agreed / valid_pixels if valid_pixels else math.nan,
    )
    partial.merge(own)


def _add_pixels(
    partial: StatsPartial, digest: PixelDigest, histograms: bool
) -> tuple[NDArray[np.float64], int]:
    """One image's (or band's) valid pixels into pass 1's accumulators; returns their
    self-confidence and how many of them the model predicts as labelled."""
    valid = digest.valid
    given, self_conf = digest.given[valid], digest.self_confidence[valid]
    partial.class_stats.update(given, self_conf)
    if histograms:
        partial.scores.update(self_conf)
        disagree = digest.disagrees
        partial.confidence.update(digest.predicted[disagree], digest.max_prob[disagree])
        partial.exact &= digest.exact_keys
    return self_conf, int(np.count_nonzero(digest.predicted[valid] == given))


def stats_block(dataset: Dataset, block: range, options: AuditOptions) -> StatsPartial:
    """Pass 1 over one block."""
    k = dataset.num_classes
    partial = StatsPartial(ClassStats(k), ScoreHistogram(), ConfidenceHistogram(k))
    for image, digest in image_digests(dataset, block, options, frozenset()):
        add_stats(partial, image, digest, options)
    return partial


def add_stats(
    partial: StatsPartial,
    image: LoadedImage,
    digest: PixelDigest | ImageError | TiledDigests,
    options: AuditOptions,
    histograms: bool = True,
) -> None:
    """Pass 1's work on one image (or its skipped row). ``histograms`` False skips what
    only the cutoff needs (a calibrated run has its cutoff already)."""
    if isinstance(digest, TiledDigests):
        add_tiled_stats(partial, image, digest, options, histograms)
        return
    if isinstance(digest, ImageError):
        partial.records[image.index] = ImageRecord(
            image.index, image.image_id, math.nan, 0, skipped=digest.reason
        )
        return
    self_conf, agreed = _add_pixels(partial, digest, histograms)
    partial.records[image.index] = ImageRecord(
        image.index,
        image.image_id,
        softmin_score(self_conf, options.temperature),
        int(self_conf.size),
        agreement=agreed / self_conf.size if self_conf.size else math.nan,
    )


def count_confident(
    digest: PixelDigest | TiledDigests,
    thresholds: NDArray[np.float64],
    options: AuditOptions | None = None,
    first_read: bool = False,
) -> int:
    """This image's share of T: disagreeing pixels whose predicted class's probability
    reaches that class's threshold (less the reference's 1e-6 margin)."""
    if isinstance(digest, TiledDigests):
        return sum(
            count_confident(band, thresholds)
            for _, band in tiled_bands(digest, options or AuditOptions(), first_read)
        )
    disagree = digest.disagrees
    predicted = digest.predicted[disagree]
    limit = thresholds[predicted] - COMPARISON_MARGIN
    return int(np.count_nonzero(digest.max_prob[disagree] >= limit))


def refine_block(
    dataset: Dataset,
    block: range,
    options: AuditOptions,
    thresholds: NDArray[np.float64],
    window: tuple[int, int],
    skip: frozenset[int],
) -> RefinePartial:
    """The refine pass over one block (float32/float64 input only)."""
    partial = RefinePartial(0, FineCounts(*window))
    for _, digest in image_digests(dataset, block, options, skip, first_read=False):
        if isinstance(digest, ImageError):
            continue
        if isinstance(digest, PixelDigest):
            bands: Iterable[tuple[int, PixelDigest]] = [(0, digest)]
        else:
            bands = tiled_bands(digest, options, False)
        for _, band in bands:
            partial.confident_count += count_confident(band, thresholds)
            partial.fine.update(band.self_confidence[band.valid])
    return partial


def flagged_mask(digest: PixelDigest, cutoff: Cutoff) -> NDArray[np.bool_]:
    """Pixels that are label issues: selected by the cutoff and predicted as another class."""
    return digest.disagrees & cutoff.select(digest.self_confidence)


def flag_block(
    dataset: Dataset,
    block: range,
    options: AuditOptions,
    cutoff: Cutoff,
    skip: frozenset[int],
    sinks: Sequence[ImageSink] = (),
    rescore: Rescore | None = None,
) -> FlagPartial:
    """Pass 2 over one block. Predictions are made only where the cutoff can flag a pixel,
    so the sinks' digests are exact there (see :class:`PixelDigest`)."""
    k = dataset.num_classes
    partial = FlagPartial(np.zeros((k, k), np.int64))
    below = -math.inf if cutoff.value is None else cutoff.value
    for image, digest in image_digests(
        dataset, block, options, skip, first_read=False, predict_below=below
    ):
        if isinstance(digest, ImageError):
            continue
        add_flags(partial, image, digest, cutoff, sinks, options, rescore=rescore)
    return partial


def _pairs(digest: PixelDigest, flagged: NDArray[np.bool_], k: int) -> NDArray[np.int64]:
    """Counts of (given, predicted) among the flagged pixels, K×K."""
    pairs: NDArray[np.int64] = np.bincount(
        digest.given[flagged] * k + digest.predicted[flagged], minlength=k * k
    ).reshape(k, k)
    return pairs


def add_flags(
    partial: FlagPartial,
    image: LoadedImage,
    digest: PixelDigest | TiledDigests,
    cutoff: Cutoff,
    sinks: Sequence[ImageSink],
    options: AuditOptions | None = None,
    first_read: bool = False,
    rescore: Rescore | None = None,
) -> None:
    """Pass 2's work on one image: flag, count pairs, score it by another method than
    softmin if asked, hand the mask to the sinks. A tiled image is flagged band by band;
    its bands go to the sinks that take tiles."""
    k = partial.confusion.shape[0]
    if isinstance(digest, TiledDigests):
        tile_sinks = [sink for sink in sinks if isinstance(sink, TileSink)]
        pairs = np.zeros((k, k), np.int64)
        for top, band in tiled_bands(digest, options or AuditOptions(), first_read):
            band_flagged = flagged_mask(band, cutoff)
            pairs += _pairs(band, band_flagged, k)
            for tile_sink in tile_sinks:
                tile_sink.add_tile(image.index, image.image_id, top, band, band_flagged)
        for tile_sink in tile_sinks:
            tile_sink.finish_tiles(image.index, image.image_id)
    else:
        flagged = flagged_mask(digest, cutoff)
        pairs = _pairs(digest, flagged, k)
    partial.confusion += pairs
    count = int(pairs.sum())
    if count:
        top = int(np.argmax(pairs))  # ties: lowest (given, predicted)
        partial.flagged[image.index] = (count, top // k, top % k, int(pairs.flat[top]))
    else:
        partial.flagged[image.index] = (0, None, None, 0)
    if rescore is not None:
        if not isinstance(digest, PixelDigest):
            raise OptionError(
                f"{image.image_id}: is read in bands (its probabilities exceed the working-set "
                "budget) and --method other than softmin needs it whole; use softmin"
            )
        partial.scores[image.index] = rescore(digest, count)
    if isinstance(digest, PixelDigest):
        for sink in sinks:
            sink(image.index, image.image_id, digest, flagged)


# ---------------------------------------------------------------------------- orchestration


class SerialExecutor:
    """Runs blocks one after another in this thread."""

    remote = False

    def map(self, fn: Callable[[range], _T], items: Sequence[range]) -> Iterator[_T]:
        return (fn(item) for item in items)


class _Mergeable(Protocol):
    def merge(self, other: Any) -> None: ...


_Partial = TypeVar("_Partial", bound=_Mergeable)


def merge_all(
    results: Iterable[_Partial],
    stage: str,
    blocks: Sequence[range],
    on_progress: ProgressCallback | None,
) -> _Partial:
    """Merge the blocks' partial results as they arrive, reporting progress."""
    merged: _Partial | None = None
    total = sum(len(block) for block in blocks)
    done = 0
    for block, result in zip(blocks, results, strict=True):
        if merged is None:
            merged = result
        else:
            merged.merge(result)
        done += len(block)  # blocks may finish out of order; the count is what matters
        if on_progress is not None:
            on_progress(stage, done, total)
    if merged is None:
        raise DatasetError("the dataset has no images")
    return merged


@dataclass
class PassOne:
    """What pass 1 (and the refine pass) learn: enough to flag pixels in one more pass.

    ``segaudit calibrate`` saves ``thresholds``, ``confident_count`` and ``cutoff`` so that
    later batches can be scored in a single pass (:mod:`segaudit.core.incremental`).
    """

    stats: StatsPartial
    thresholds: NDArray[np.float64]
    confident_count: int
    cutoff: Cutoff
    skip: frozenset[int]


def run_pass_one(
    dataset: Dataset,
    options: AuditOptions,
    executor: Executor,
    on_progress: ProgressCallback | None,
    timings: dict[str, float],
) -> PassOne:
    """Pass 1 (plus the refine pass for float32/64 input): thresholds, T and the cutoff."""
    blocks = list(dataset.blocks())
    if not blocks:
        raise DatasetError("the dataset has no images")
    start = time.perf_counter()
    stats: StatsPartial = merge_all(
        executor.map(lambda b: stats_block(dataset, b, options), blocks),
        "statistics",
        blocks,
        on_progress,
    )
    timings["pass1_seconds"] = time.perf_counter() - start
    thresholds = stats.class_stats.thresholds()
    skip = skipped_indices(stats, len(dataset.image_ids))

    low, high = stats.confidence.count_bounds(thresholds)
    if stats.exact or low == high == 0:
        confident = low
        cutoff = exact_cutoff(stats.scores, confident)
    else:
        start = time.perf_counter()
        window = refine_window(stats.scores, low, high)
        refined: RefinePartial = merge_all(
            executor.map(
                lambda b: refine_block(dataset, b, options, thresholds, window, skip), blocks
            ),
            "refine",
            blocks,
            on_progress,
        )
        confident = refined.confident_count
        cutoff = refined_cutoff(stats.scores, refined.fine, confident)
        timings["refine_seconds"] = time.perf_counter() - start
    return PassOne(stats, thresholds, confident, cutoff, skip)


def skipped_indices(stats: StatsPartial, total: int) -> frozenset[int]:
    """Images pass 1 could not read; raise when that is every image."""
    skip = frozenset(i for i, r in stats.records.items() if r.skipped is not None)
    if len(skip) == total:
        first = stats.records[0]
        raise DatasetError(
            f"no image could be audited; the first, {first.image_id}: {first.skipped}"
        )
    return skip


def image_records(total: int, stats: StatsPartial, flags: FlagPartial) -> list[ImageRecord]:
    """Each image's pass-1 record completed with its pass-2 counts, in dataset order."""
    images = []
    for index in range(total):
        record = stats.records[index]
        if index in flags.flagged:
            count, given, predicted, pair = flags.flagged[index]
            record = ImageRecord(
                record.index,
                record.image_id,
                flags.scores.get(index, record.label_quality),
                record.valid_pixels,
                count,
                given,
                predicted,
                pair,
                agreement=record.agreement,
            )
        images.append(record)
    return images


def run_audit(
    dataset: Dataset,
    options: AuditOptions | None = None,
    *,
    executor: Executor | None = None,
    sinks: Sequence[ImageSink] = (),
    on_progress: ProgressCallback | None = None,
) -> AuditResult:
    """Audit a dataset in two streamed passes (three for float32/64 input)."""
    options = options or AuditOptions()
    executor = executor or SerialExecutor()
    blocks = list(dataset.blocks())
    timings: dict[str, float] = {}
    one = run_pass_one(dataset, options, executor, on_progress, timings)
    rescore = method_scorer(options, one.thresholds)

    start = time.perf_counter()
    flags: FlagPartial = merge_all(
        executor.map(
            lambda b: flag_block(dataset, b, options, one.cutoff, one.skip, sinks, rescore),
            blocks,
        ),
        "issues",
        blocks,
        on_progress,
    )
    timings["pass2_seconds"] = time.perf_counter() - start
    return AuditResult(
        num_classes=dataset.num_classes,
        options=options,
        images=image_records(len(dataset.image_ids), one.stats, flags),
        thresholds=one.thresholds,
        class_pixels=one.stats.class_stats.counts,
        confident_count=one.confident_count,
        cutoff=one.cutoff,
        confusion=flags.confusion,
        timings=timings,
    )
