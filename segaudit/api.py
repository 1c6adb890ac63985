"""The in-memory API, named and called as ``cleanlab.segmentation`` (2.9.0), on the streaming
engine.

``labels`` is (N, H, W) ints, ``pred_probs`` is (N, K, H, W) floats (a numpy memmap works
and is read an image at a time). Every argument the reference accepts is accepted and
validated as the reference validates it; input at fault raises ``ValueError`` (segaudit's
own errors are ``ValueError`` subclasses). Results equal the reference's on inputs both
accept, except where they differ by design; ``docs/guide/cleanlab.md`` lists each
difference and why it is kept. ``segaudit.compat.cleanlab`` has the same functions under the
reference's module names.

Probabilities that do not sum to 1 are audited as given, with a
:class:`~segaudit.errors.ProbabilitySumWarning` (the CLI refuses them instead).
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from segaudit.core.audit import (
    AuditOptions,
    AuditResult,
    Executor,
    ImageSink,
    IssuePair,
    run_audit,
)
from segaudit.core.dataset import LoadedImage, even_blocks
from segaudit.core.image import DEFAULT_TEMPERATURE, check_temperature, softmin_score
from segaudit.core.pixel import (
    SUM_TOLERANCE,
    PixelDigest,
    check_labels,
    digest_image,
    sample_pixels,
    valid_mask,
)
from segaudit.errors import DatasetError, ImageError, ProbabilitySumWarning
from segaudit.io.transforms import downsample_labels, mean_pool

DEFAULT_IGNORE_INDEX = 255
#: The reference's default number of rows / images for ``top=None`` in its summaries.
DEFAULT_TOP = 20
#: The reference's ``get_label_quality_scores`` methods.
METHODS = ("softmin", "num_pixel_issues")

_FLOAT_DTYPES = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64))

IgnoreIndex = int | Sequence[int] | None
#: A pandas DataFrame (pandas is an optional extra, so it is not imported for typing).
DataFrame = Any


# ------------------------------------------------------------------------------ checks


def _array(values: Any) -> Any:
    """Arrays (numpy, memmap, or any array with shape/dtype/slicing, e.g. zarr) as they are,
    so nothing is read yet; anything else (lists) through ``np.asarray``."""
    if all(hasattr(values, name) for name in ("shape", "ndim", "dtype", "__getitem__")):
        return values
    return np.asarray(values)


def check_shapes(labels: Any, pred_probs: Any) -> None:
    """Raise unless labels is (N, H, W) and pred_probs (N, K, H, W) with the same N, H, W."""
    if labels.ndim != 3:
        raise DatasetError(f"labels must have a shape of (N, H, W), got {labels.shape}")
    if pred_probs.ndim != 4:
        raise DatasetError(f"pred_probs must have a shape of (N, K, H, W), got {pred_probs.shape}")
    n, _, h, w = pred_probs.shape
    if tuple(labels.shape) != (n, h, w):
        raise DatasetError(
            f"labels {tuple(labels.shape)} and pred_probs {tuple(pred_probs.shape)} must have "
            "matching dimensions for N, H, and W"
        )


def _check_mask(name: str, mask: Any, labels: Any) -> None:
    if tuple(mask.shape) != tuple(labels.shape):
        raise DatasetError(
            f"{name} {tuple(mask.shape)} must have the shape of labels {tuple(labels.shape)}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_batch_size(batch_size: int | None) -> None:
    """The reference's rule: ``None`` (its default) or an integer of at least 1."""
    if batch_size is None:
        return
    if not _is_int(batch_size):
        raise TypeError(f"batch_size must be an integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"Batch size must be greater than 0, got {batch_size}")


def check_n_jobs(n_jobs: int | None) -> None:
    """``None`` or an integer of at least 1 (accepted, as the reference's is; segaudit's
    parallelism is the ``executor``)."""
    if n_jobs is None:
        return
    if not _is_int(n_jobs):
        raise TypeError(f"n_jobs must be an integer, got {n_jobs!r}")
    if n_jobs < 1:
        raise ValueError(f"Number of processes must be at least 1, got n_jobs={n_jobs}")


def check_downsample(downsample: int, height: int, width: int) -> int:
    """An integer factor of at least 1 that divides H and W (as the reference requires)."""
    if not _is_int(downsample):
        raise TypeError(f"downsample must be an integer, got {downsample!r}")
    if downsample < 1:
        raise ValueError(f"downsample must be at least 1, got {downsample}")
    if height % downsample or width % downsample:
        raise ValueError(
            f"Height {height} and width {width} not divisible by downsample value of "
            f"{downsample}. Set kwarg downsample to 1 to avoid downsampling."
        )
    return int(downsample)


def _ignore(ignore_index: IgnoreIndex) -> frozenset[int]:
    if ignore_index is None:
        return frozenset()
    if isinstance(ignore_index, int | np.integer):
        return frozenset({int(ignore_index)})
    return frozenset(int(v) for v in ignore_index)


def _integer_labels(image_id: str, labels: NDArray[Any]) -> NDArray[np.integer]:
    """One image's labels as integers: integral floats and booleans are accepted (the
    reference's find_label_issues accepts them), fractional values are an error."""
    kind = labels.dtype.kind
    if kind in "iu":
        return labels
    if kind == "b":
        return labels.astype(np.uint8)
    if kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            bad = labels[~whole].flat[0]
            raise ImageError(image_id, f"labels must be integer class ids, found {bad}")
        return labels.astype(np.int64)
    raise ImageError(image_id, f"labels must be integer class ids, got dtype {labels.dtype}")


def _float_probs(image_id: str, probs: NDArray[Any]) -> NDArray[np.floating]:
    """One image's probabilities in a dtype the engine reads (float16/32/64 as they are;
    integer, boolean and longer floats widened or narrowed to float64)."""
    if probs.dtype in _FLOAT_DTYPES:
        return probs
    if probs.dtype.kind in "iubf":
        return probs.astype(np.float64)
    raise ImageError(image_id, f"pred_probs must be numbers, got dtype {probs.dtype}")


def _sum_error(probs: NDArray[np.floating]) -> float:
    """The per-pixel class sum farthest from 1, minus 1, on the audit's pixel sample."""
    sums = np.add.reduce(sample_pixels(probs), axis=0, dtype=np.float64)
    if sums.size == 0:
        return 0.0
    deviation = np.abs(sums - 1.0)
    if not np.isfinite(deviation).all():
        return 0.0  # NaN / inf are refused by the engine with their own message
    at = int(np.argmax(deviation))
    return float(sums.flat[at] - 1.0)


class _SumMonitor:
    """Keeps the worst class sum seen (thread-safe) and turns it into one warning."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._lock = threading.Lock()

    def see(self, probs: NDArray[np.floating]) -> None:
        error = _sum_error(probs)
        if abs(error) > SUM_TOLERANCE:
            with self._lock:
                if abs(error) > abs(self.worst):
                    self.worst = error

    def warn(self, stacklevel: int) -> None:
        if self.worst:
            warnings.warn(
                f"pred_probs do not sum to 1 over the classes (a pixel sums to "
                f"{1.0 + self.worst:.4g}); auditing them as given. If these are logits, "
                "apply a softmax over the class axis first.",
                ProbabilitySumWarning,
                stacklevel=stacklevel + 1,
            )


# ------------------------------------------------------------------------------ dataset


@dataclass
class ArrayDataset:
    """A dataset over arrays already in memory (or memory-mapped).

    ``downsample`` > 1 pools each image as it is read: labels by majority vote (pixels in
    ``ignore`` do not vote), probabilities by mean. With ``convert``, labels may be integral
    floats and other probability dtypes are widened, per image (as the cleanlab-named
    functions accept them); without, the engine names the image it cannot read. ``sums``,
    when set, sees each image's probabilities (for the library's "do not sum to 1" warning).
    """

    labels: NDArray[Any]
    pred_probs: NDArray[Any]
    ids: Sequence[str] | None = None
    block_size: int = 1
    downsample: int = 1
    ignore: frozenset[int] = frozenset()
    sums: _SumMonitor | None = None
    convert: bool = False
    _ids: list[str] = field(init=False)

    def __post_init__(self) -> None:
        check_shapes(self.labels, self.pred_probs)
        n = int(self.pred_probs.shape[0])
        self._ids = list(self.ids) if self.ids is not None else [str(i) for i in range(n)]

    @property
    def num_classes(self) -> int:
        return int(self.pred_probs.shape[1])

    @property
    def image_ids(self) -> Sequence[str]:
        return self._ids

    def blocks(self) -> Sequence[range]:
        return even_blocks(len(self._ids), self.block_size)

    def load(self, block: range) -> Iterator[LoadedImage]:
        probs = np.asarray(self.pred_probs[block.start : block.stop])
        for offset, index in enumerate(block):
            image_id = self._ids[index]
            labels, image = self.labels[index], probs[offset]
            if self.convert:
                labels = _integer_labels(image_id, np.asarray(labels))
                image = _float_probs(image_id, image)
            if self.sums is not None:
                self.sums.see(image)
            if self.downsample > 1:
                labels = downsample_labels(labels, self.downsample, self.ignore)
                image = mean_pool(image, self.downsample)
            yield LoadedImage(index, image_id, labels, image)


# ------------------------------------------------------------------------------ audit


def _audit(
    labels: Any,
    pred_probs: Any,
    *,
    temperature: float,
    ignore_index: IgnoreIndex,
    executor: Executor | None,
    block_size: int,
    downsample: int,
    sinks: list[ImageSink],
    stacklevel: int,
) -> AuditResult:
    ignore = _ignore(ignore_index)
    sums = _SumMonitor()
    dataset = ArrayDataset(
        labels,
        pred_probs,
        block_size=block_size,
        downsample=downsample,
        ignore=ignore,
        sums=sums,
        convert=True,
    )
    options = AuditOptions(temperature=temperature, ignore=ignore, strict=True, check_sums=False)
    result = run_audit(dataset, options, executor=executor, sinks=sinks)
    sums.warn(stacklevel + 1)
    return result


def audit_arrays(
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    ignore_index: IgnoreIndex = DEFAULT_IGNORE_INDEX,
    executor: Executor | None = None,
    block_size: int = 1,
    masks: NDArray[np.bool_] | None = None,
) -> AuditResult:
    """Run the full audit on arrays; if ``masks`` (N, H, W) is given, fill it with the flags.

    Bad values are errors here, as in the reference (the CLI turns them into skipped rows).
    """
    sinks: list[ImageSink] = []
    if masks is not None:
        target = masks

        def keep(
            index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
        ) -> None:
            target[index] = flagged

        sinks.append(keep)
    return _audit(
        _array(labels),
        _array(pred_probs),
        temperature=temperature,
        ignore_index=ignore_index,
        executor=executor,
        block_size=block_size,
        downsample=1,
        sinks=sinks,
        stacklevel=2,
    )


def _upsampled(
    flagged: NDArray[np.bool_], digest: PixelDigest, labels: NDArray[np.integer], factor: int
) -> NDArray[np.bool_]:
    """A pooled flag mask at full resolution: in each flagged block, the pixels that carry
    the block's majority label (pixels of other labels, or ignored ones, were not judged)."""
    block_labels = np.where(digest.valid, digest.given, -1)
    big_flags = np.repeat(np.repeat(flagged, factor, axis=0), factor, axis=1)
    big_labels = np.repeat(np.repeat(block_labels, factor, axis=0), factor, axis=1)
    full: NDArray[np.bool_] = big_flags & (labels == big_labels)
    return full


def find_label_issues(
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    batch_size: int | None = None,
    n_jobs: int | None = None,
    verbose: bool = True,
    downsample: int = 1,
    ignore_index: IgnoreIndex = DEFAULT_IGNORE_INDEX,
    executor: Executor | None = None,
) -> NDArray[np.bool_]:
    """Boolean (N, H, W) mask of pixels that are likely label issues (method.md §3).

    Equal to ``cleanlab.segmentation.filter.find_label_issues`` except: pixels whose label is
    in ``ignore_index`` are never flagged and take part in nothing; when several pixels tie
    at the selection cutoff, all of them are selected. Ties are judged at float32 resolution:
    float64 scores that round to the same float32 as the cutoff count as tied (float16 and
    float32 input: exact ties only). ``downsample`` d pools labels by majority vote and
    probabilities by mean over d×d blocks (the reference averages class ids); a flagged block
    flags its pixels that carry the block's label. ``batch_size`` and ``n_jobs`` are
    validated as the reference does and otherwise do not matter (results never depend on
    them; pass an ``executor`` for parallelism); ``verbose`` prints nothing here.
    """
    del verbose  # no progress bars: accepted for the reference's signature
    check_batch_size(batch_size)
    check_n_jobs(n_jobs)
    labels, pred_probs = _array(labels), _array(pred_probs)
    check_shapes(labels, pred_probs)
    factor = check_downsample(downsample, int(labels.shape[1]), int(labels.shape[2]))
    masks = np.zeros(labels.shape, dtype=bool)

    def keep(index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]) -> None:
        if factor == 1:
            masks[index] = flagged
        else:
            image_labels = _integer_labels(image_id, np.asarray(labels[index]))
            masks[index] = _upsampled(flagged, digest, image_labels, factor)

    _audit(
        labels,
        pred_probs,
        temperature=DEFAULT_TEMPERATURE,
        ignore_index=ignore_index,
        executor=executor,
        block_size=1,
        downsample=factor,
        sinks=[keep],
        stacklevel=2,
    )
    return masks


def get_label_quality_scores(
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    method: str = "softmin",
    batch_size: int | None = None,
    n_jobs: int | None = None,
    verbose: bool = True,
    downsample: int | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    ignore_index: IgnoreIndex = DEFAULT_IGNORE_INDEX,
    executor: Executor | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(image_scores (N,), pixel_scores (N, H, W)); pixel scores are self-confidence.

    ``method="softmin"``: the softmin of an image's pixel scores (method.md §1).
    ``method="num_pixel_issues"``: 1 - (flagged pixels / valid pixels), flags as in
    :func:`find_label_issues` (with its ``downsample``, default 1). Lower means more likely
    mislabeled. Ignored pixels get a NaN pixel score and do not count; an image with no
    valid pixel gets a NaN image score. ``downsample`` with softmin is ignored with a
    warning, as in the reference. ``temperature`` must be positive (the reference clamps a
    negative one to 1e-6).
    """
    del verbose
    if method not in METHODS:
        raise ValueError(
            "Invalid Method: Specify correct method. Currently only supports 'softmin' and "
            f"'num_pixel_issues', got {method!r}"
        )
    check_batch_size(batch_size)
    check_n_jobs(n_jobs)
    if temperature is None:
        raise ValueError("temperature must be a positive number, got None")
    check_temperature(temperature)
    if downsample is not None and method == "softmin":
        warnings.warn(
            "downsample is ignored for method 'softmin' (it is only used by 'num_pixel_issues')",
            UserWarning,
            stacklevel=2,
        )
    labels, pred_probs = _array(labels), _array(pred_probs)
    check_shapes(labels, pred_probs)
    ignore = _ignore(ignore_index)
    n, _, h, w = (int(v) for v in pred_probs.shape)
    image_scores = np.empty(n, np.float64)
    pixel_scores = np.empty((n, h, w), np.float64)
    sums = _SumMonitor()
    for i in range(n):
        image_id = str(i)
        image_labels = _integer_labels(image_id, np.asarray(labels[i]))
        probs = _float_probs(image_id, np.asarray(pred_probs[i]))
        sums.see(probs)
        # predict_below=-1: no pixel needs its argmax for a score.
        digest = digest_image(
            image_id, image_labels, probs, ignore, check_sums=False, predict_below=-1.0
        )
        scores = digest.self_confidence
        pixel_scores[i] = np.where(digest.valid, scores, np.nan)
        image_scores[i] = softmin_score(scores[digest.valid], temperature)
    if method == "num_pixel_issues":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProbabilitySumWarning)  # warned once, below
            flagged = find_label_issues(
                labels,
                pred_probs,
                downsample=1 if downsample is None else downsample,
                ignore_index=ignore_index,
                executor=executor,
            )
        valid_counts = np.count_nonzero(~np.isnan(pixel_scores), axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            image_scores = 1.0 - flagged.sum(axis=(1, 2)) / valid_counts
    sums.warn(2)
    return image_scores, pixel_scores


def issues_from_scores(
    image_scores: NDArray[np.floating],
    pixel_scores: NDArray[np.floating] | None = None,
    threshold: float = 0.1,
) -> NDArray[Any]:
    """Issues by thresholding the scores of :func:`get_label_quality_scores`.

    With ``pixel_scores``: the boolean (N, H, W) mask ``pixel_scores < threshold`` (a NaN
    score, an ignored pixel, is never an issue). Without: the indices of the images whose
    score is below ``threshold``, lowest score first (ties in image order). The reference
    also returns the first image at or above the threshold; segaudit returns only those
    below, as both documentations say.
    """
    if image_scores is None:
        raise ValueError("image_scores must be provided")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise TypeError(f"threshold must be a number, got {threshold!r}")
    if not 0 <= threshold <= 1:  # NaN fails too
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    scores = np.asarray(image_scores)
    if scores.ndim != 1:
        raise ValueError(f"image_scores must have shape (N,), got {scores.shape}")
    if pixel_scores is not None:
        pixels = _array(pixel_scores)
        if pixels.ndim != 3 or pixels.shape[0] != scores.shape[0]:
            raise ValueError(
                f"pixel_scores must have shape (N, H, W) with N = {scores.shape[0]} images, "
                f"got {tuple(pixels.shape)}"
            )
        mask: NDArray[np.bool_] = np.empty(pixels.shape, dtype=bool)
        for i in range(pixels.shape[0]):
            with np.errstate(invalid="ignore"):
                np.less(np.asarray(pixels[i]), threshold, out=mask[i])
        return mask
    order = np.argsort(scores, kind="stable")
    below = order[scores[order] < threshold]
    return below.astype(np.int64)


def _pairs(
    issues: Any,
    labels: Any,
    pred_probs: Any,
    exclude: Sequence[int] | None,
    ignore: frozenset[int],
) -> list[IssuePair]:
    """(given, predicted) pairs among flagged pixels, most pixels first, ties in (given,
    predicted) order. Flagged pixels whose label is ignored are not counted."""
    n, k = (int(v) for v in pred_probs.shape[:2])
    counts = np.zeros((k, k), np.int64)
    for i in range(n):
        flagged = np.asarray(issues[i]).astype(bool, copy=False)
        if not flagged.any():
            continue
        given = _integer_labels(str(i), np.asarray(labels[i]))[flagged]
        valid = valid_mask(given, ignore)
        check_labels(str(i), given, valid, k)
        predicted = np.asarray(pred_probs[i]).argmax(axis=0)[flagged][valid]
        given = given[valid].astype(np.intp)
        counts += np.bincount(given * k + predicted, minlength=k * k).reshape(k, k)
    dropped = [int(c) for c in (exclude or ()) if 0 <= int(c) < k]
    counts[:, dropped] = 0
    pairs = [
        IssuePair(int(g), int(p), int(counts[g, p]))
        for g, p in zip(*np.nonzero(counts), strict=True)
    ]
    pairs.sort(key=lambda pair: -pair.pixels)  # stable: ties keep (given, predicted) order
    return pairs


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str] | None:
    if class_names is None:
        return None
    names = [str(name) for name in class_names]
    if len(names) < num_classes:
        raise ValueError(
            f"class_names has {len(names)} names but pred_probs has {num_classes} classes"
        )
    return names


def optional_module(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise ImportError(
            f"{feature} needs {package}, which is not installed: pip install 'segaudit[{extra}]'"
        ) from error


@overload
def common_label_issues(
    issues: NDArray[Any],
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    class_names: Sequence[str] | None = ...,
    exclude: Sequence[int] | None = ...,
    top: int | None = ...,
    verbose: bool = ...,
    as_frame: Literal[False] = ...,
    ignore_index: IgnoreIndex = ...,
) -> list[IssuePair]: ...


@overload
def common_label_issues(
    issues: NDArray[Any],
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    class_names: Sequence[str] | None = ...,
    exclude: Sequence[int] | None = ...,
    top: int | None = ...,
    verbose: bool = ...,
    as_frame: Literal[True],
    ignore_index: IgnoreIndex = ...,
) -> DataFrame: ...


def common_label_issues(
    issues: NDArray[Any],
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
    top: int | None = None,
    verbose: bool = False,
    as_frame: bool = False,
    ignore_index: IgnoreIndex = DEFAULT_IGNORE_INDEX,
) -> list[IssuePair] | DataFrame:
    """(given, predicted) class pairs among flagged pixels, most pixels first (method.md §4).

    Ties in count keep (given, predicted) order, as the reference's table does. ``exclude``
    drops pairs whose predicted class is listed; ``top`` keeps the first rows (``None``: 20,
    the reference's default). ``as_frame=True`` returns the reference's DataFrame (columns
    ``given_label``, ``predicted_label`` as text, ``num_pixel_issues``; needs the ``pandas``
    extra). ``verbose`` prints one line per row, with ``class_names`` if given.
    """
    issues, labels, pred_probs = _array(issues), _array(labels), _array(pred_probs)
    check_shapes(labels, pred_probs)
    _check_mask("issues", issues, labels)
    pandas = optional_module("pandas", "pandas", "as_frame=True") if as_frame else None
    names = _class_names(class_names, int(pred_probs.shape[1]))
    pairs = _pairs(issues, labels, pred_probs, exclude, _ignore(ignore_index))
    pairs = pairs[: DEFAULT_TOP if top is None else top]

    def name(k: int) -> str:
        return str(k) if names is None else names[k]

    if verbose:
        for pair in pairs:
            print(
                f"Class {name(pair.given)!r} is potentially mislabeled as class "
                f"{name(pair.predicted)!r} on {pair.pixels} pixels in the dataset"
            )
    if pandas is None:
        return pairs
    rows = [(name(p.given), name(p.predicted), p.pixels) for p in pairs]
    return pandas.DataFrame(rows, columns=["given_label", "predicted_label", "num_pixel_issues"])


def filter_by_class(
    class_index: int | Sequence[int],
    issues: NDArray[Any],
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
) -> NDArray[np.bool_]:
    """Flagged pixels whose given or predicted class is ``class_index`` (or one of a list)."""
    issues, labels, pred_probs = _array(issues), _array(labels), _array(pred_probs)
    check_shapes(labels, pred_probs)
    _check_mask("issues", issues, labels)
    wanted = np.atleast_1d(np.asarray(class_index)).ravel()
    subset = np.zeros(issues.shape, dtype=bool)
    for i in range(issues.shape[0]):
        flagged = np.asarray(issues[i]).astype(bool, copy=False)
        if not flagged.any():
            continue
        predicted = np.asarray(pred_probs[i]).argmax(axis=0)
        ours = np.isin(np.asarray(labels[i]), wanted) | np.isin(predicted, wanted)
        subset[i] = flagged & ours
    return subset


def display_issues(
    issues: NDArray[Any],
    *,
    labels: NDArray[Any] | None = None,
    pred_probs: NDArray[Any] | None = None,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
    top: int | None = None,
    ignore_index: IgnoreIndex = DEFAULT_IGNORE_INDEX,
    **kwargs: Any,
) -> None:
    """Show the images with the most flagged pixels, one figure each: given labels and
    predicted labels (when given), and the flagged pixels.

    The pictures are segaudit's overlays (the same as ``segaudit score --overlays``);
    matplotlib (the ``plot`` extra) only shows them. ``exclude`` hides flagged pixels whose
    given label is listed (it needs ``labels``); ``top`` images are shown (``None``: 20);
    ``kwargs`` go to ``matplotlib.pyplot.show``.
    """
    plt = optional_module("matplotlib.pyplot", "plot", "display_issues")
    issues = _array(issues)
    if issues.ndim != 3:
        raise DatasetError(f"issues must have a shape of (N, H, W), got {tuple(issues.shape)}")
    if labels is not None:
        labels = _array(labels)
        _check_mask("labels", labels, issues)
    if pred_probs is not None:
        pred_probs = _array(pred_probs)
        shape = tuple(pred_probs.shape)
        if len(shape) != 4 or (shape[0], *shape[2:]) != tuple(issues.shape):
            raise DatasetError(
                f"pred_probs {tuple(pred_probs.shape)} must have a shape of (N, K, H, W) "
                f"matching issues {tuple(issues.shape)}"
            )
    if exclude and labels is None:
        raise ValueError("Provide labels to allow class exclusion")
    ignore = _ignore(ignore_index)
    figures = _IssueFigures(labels, pred_probs, class_names, exclude, ignore)
    counts = np.array([figures.flagged(i, issues[i]).sum() for i in range(issues.shape[0])])
    order = np.argsort(-counts, kind="stable")[: DEFAULT_TOP if top is None else top]
    for index in order.tolist():
        panels = figures.panels(index, figures.flagged(index, issues[index]))
        width = sum(p.shape[1] for _, p in panels)
        height = max(p.shape[0] for _, p in panels)
        scale = 5.0 / max(height, width / len(panels))
        figure = plt.figure(figsize=(max(4.0, width * scale), max(3.0, height * scale + 0.6)))
        for column, (title, pixels) in enumerate(panels):
            axes = figure.add_subplot(1, len(panels), column + 1)
            axes.imshow(pixels, interpolation="nearest")
            axes.set_title(title)
            axes.axis("off")
        plt.show(**kwargs)


class _IssueFigures:
    """The pictures display_issues shows for one image, drawn by segaudit's overlay code."""

    def __init__(
        self,
        labels: Any | None,
        pred_probs: Any | None,
        class_names: Sequence[str] | None,
        exclude: Sequence[int] | None,
        ignore: frozenset[int],
    ) -> None:
        from segaudit.config.classes import ClassesConfig, generated_palette
        from segaudit.output.overlay import OverlayWriter

        self.labels, self.pred_probs = labels, pred_probs
        self.exclude = None if not exclude else np.asarray(list(exclude), dtype=np.int64)
        self.ignore = ignore
        if pred_probs is not None:
            k = int(pred_probs.shape[1])
        elif class_names is not None:
            k = len(class_names)
        elif labels is not None:
            k = 1 + max((self._largest_label(i) for i in range(labels.shape[0])), default=0)
        else:
            k = 1
        names = _class_names(class_names, k) or [str(c) for c in range(k)]
        self.classes = ClassesConfig(tuple(names[:k]), generated_palette(k), ignore)
        self.writer = OverlayWriter(_render_only, self.classes, ())

    def _largest_label(self, index: int) -> int:
        assert self.labels is not None
        image = _integer_labels(str(index), np.asarray(self.labels[index]))
        valid = valid_mask(image, self.ignore)
        return int(image[valid].max()) if valid.any() else 0

    def flagged(self, index: int, issues: Any) -> NDArray[np.bool_]:
        mask: NDArray[np.bool_] = np.asarray(issues).astype(bool, copy=False)
        if self.exclude is not None and self.labels is not None:
            mask = mask & ~np.isin(np.asarray(self.labels[index]), self.exclude)
        return mask

    def panels(self, index: int, flagged: NDArray[np.bool_]) -> list[tuple[str, NDArray[np.uint8]]]:
        from segaudit.output.overlay import colorize

        title = f"Image {index}: {int(flagged.sum())} flagged pixels"
        image_id = str(index)
        labels = probs = None
        if self.labels is not None:
            labels = _integer_labels(image_id, np.asarray(self.labels[index]))
        if self.pred_probs is not None:
            probs = _float_probs(image_id, np.asarray(self.pred_probs[index]))
        if labels is not None and probs is not None:
            digest = digest_image(image_id, labels, probs, self.ignore, check_sums=False)
            sheet = self.writer.render(image_id, digest, flagged)
            return [(title, np.asarray(sheet))]
        k = self.classes.num_classes
        panels: list[tuple[str, NDArray[np.uint8]]] = []
        if labels is not None:
            valid = valid_mask(labels, self.ignore)
            check_labels(image_id, labels, valid, k)
            given = np.where(valid, labels, 0).astype(np.intp)
            panels.append(("given labels", colorize(given, valid, self.classes)))
        if probs is not None:
            predicted = probs.argmax(axis=0).astype(np.intp)
            panels.append(
                ("predicted by the model", colorize(predicted, np.ones_like(flagged), self.classes))
            )
        color = np.array(self.writer.issue_color, np.uint8)
        picture = np.where(flagged[..., None], color, np.uint8(64)).astype(np.uint8)
        panels.append((title, picture))
        return panels


def _render_only(index: int, image_id: str) -> Path:
    """The path of an overlay file: never asked for, display_issues only renders."""
    raise AssertionError("display_issues writes no overlay files")
