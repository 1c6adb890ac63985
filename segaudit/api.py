"""The in-memory API, named as in ``cleanlab.segmentation``, on top of the streaming engine.

``labels`` is (N, H, W) ints, ``pred_probs`` is (N, K, H, W) floats (a numpy memmap works
and is read an image at a time). Results equal the reference's on inputs both accept; where
they differ by design (ignored pixels, ties at the cutoff) the docstrings say so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

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
from segaudit.core.pixel import PixelDigest, check_labels, valid_mask

DEFAULT_IGNORE_INDEX = 255


@dataclass
class ArrayDataset:
    """A dataset over arrays already in memory (or memory-mapped)."""

    labels: NDArray[np.integer]
    pred_probs: NDArray[np.floating]
    ids: Sequence[str] | None = None
    block_size: int = 1
    _ids: list[str] = field(init=False)

    def __post_init__(self) -> None:
        if self.labels.ndim != 3:
            raise ValueError(f"labels must have shape (N, H, W), got {self.labels.shape}")
        if self.pred_probs.ndim != 4:
            raise ValueError(
                f"pred_probs must have shape (N, K, H, W), got {self.pred_probs.shape}"
            )
        n, _, h, w = self.pred_probs.shape
        if self.labels.shape != (n, h, w):
            raise ValueError(
                f"labels {self.labels.shape} and pred_probs {self.pred_probs.shape} disagree "
                "on N, H or W"
            )
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
            yield LoadedImage(index, self._ids[index], self.labels[index], probs[offset])


#: The reference's options that only change speed or printing; accepted and ignored.
_NO_OP_OPTIONS = frozenset({"batch_size", "n_jobs", "verbose"})


def _check_reference_options(options: dict[str, object]) -> None:
    """Accept the reference's speed/printing options; refuse anything that would silently
    change the answer (its ``downsample`` averages class ids) and misspelt names."""
    for name, value in options.items():
        if name == "downsample" and value in (None, 1):
            continue
        if name == "downsample":
            raise ValueError(
                "downsample is not supported here (the reference averages class ids); "
                "downsample labels by majority vote first, or use `segaudit score --downsample`"
            )
        if name not in _NO_OP_OPTIONS:
            raise TypeError(f"unexpected keyword argument {name!r}")


def _ignore(ignore_index: int | Sequence[int] | None) -> frozenset[int]:
    if ignore_index is None:
        return frozenset()
    if isinstance(ignore_index, int | np.integer):
        return frozenset({int(ignore_index)})
    return frozenset(int(v) for v in ignore_index)


def audit_arrays(
    labels: NDArray[np.integer],
    pred_probs: NDArray[np.floating],
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    ignore_index: int | Sequence[int] | None = DEFAULT_IGNORE_INDEX,
    executor: Executor | None = None,
    block_size: int = 1,
    masks: NDArray[np.bool_] | None = None,
) -> AuditResult:
    """Run the full audit on arrays; if ``masks`` (N, H, W) is given, fill it with the flags.

    Bad values are errors here, as in the reference (the CLI turns them into skipped rows).
    """
    dataset = ArrayDataset(labels, pred_probs, block_size=block_size)
    options = AuditOptions(temperature=temperature, ignore=_ignore(ignore_index), strict=True)
    sinks: list[ImageSink] = []
    if masks is not None:
        target = masks

        def keep(
            index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
        ) -> None:
            target[index] = flagged

        sinks.append(keep)
    return run_audit(dataset, options, executor=executor, sinks=sinks)


def find_label_issues(
    labels: NDArray[np.integer],
    pred_probs: NDArray[np.floating],
    *,
    ignore_index: int | Sequence[int] | None = DEFAULT_IGNORE_INDEX,
    executor: Executor | None = None,
    **_reference_options: object,
) -> NDArray[np.bool_]:
    """Boolean (N, H, W) mask of pixels that are likely label issues (method.md §3).

    Equal to ``cleanlab.segmentation.filter.find_label_issues`` except: pixels whose label is
    in ``ignore_index`` are never flagged and take part in nothing; when several pixels tie
    at the selection cutoff, all of them are selected. Ties are judged at float32 resolution:
    float64 scores that round to the same float32 as the cutoff count as tied (float16 and
    float32 input: exact ties only). The reference's ``batch_size``,
    ``n_jobs`` and ``verbose`` are accepted and ignored (results never depend on them).
    """
    _check_reference_options(_reference_options)
    masks = np.zeros(labels.shape, dtype=bool)
    audit_arrays(labels, pred_probs, ignore_index=ignore_index, executor=executor, masks=masks)
    return masks


def get_label_quality_scores(
    labels: NDArray[np.integer],
    pred_probs: NDArray[np.floating],
    *,
    method: str = "softmin",
    temperature: float = DEFAULT_TEMPERATURE,
    ignore_index: int | Sequence[int] | None = DEFAULT_IGNORE_INDEX,
    **_reference_options: object,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(image_scores (N,), pixel_scores (N, H, W)); pixel scores are self-confidence.

    ``method="softmin"``: the softmin of an image's pixel scores (method.md §1).
    ``method="num_pixel_issues"``: 1 - (flagged pixels / valid pixels), flags as in
    :func:`find_label_issues`. Lower means more likely mislabeled. Ignored pixels get a NaN
    pixel score and do not count; an image with no valid pixel gets a NaN image score.
    """
    _check_reference_options(_reference_options)
    if method not in ("softmin", "num_pixel_issues"):
        raise ValueError(
            f"unknown method {method!r}; segaudit supports 'softmin' and 'num_pixel_issues'"
        )
    check_temperature(temperature)
    ignore = _ignore(ignore_index)
    n, k, h, w = pred_probs.shape
    image_scores = np.empty(n, np.float64)
    pixel_scores = np.empty((n, h, w), np.float64)
    for i in range(n):
        image_labels = labels[i]
        valid = valid_mask(image_labels, ignore)
        check_labels(str(i), image_labels, valid, k)
        given = np.where(valid, image_labels, 0).astype(np.intp)
        scores = np.take_along_axis(np.asarray(pred_probs[i]), given[None], axis=0)[0]
        pixel_scores[i] = np.where(valid, scores, np.nan)
        image_scores[i] = softmin_score(scores[valid].astype(np.float64), temperature)
    if method == "num_pixel_issues":
        flagged = find_label_issues(labels, pred_probs, ignore_index=ignore_index)
        valid_counts = np.count_nonzero(~np.isnan(pixel_scores), axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            image_scores = 1.0 - flagged.sum(axis=(1, 2)) / valid_counts
    return image_scores, pixel_scores


def common_label_issues(
    issues: NDArray[np.bool_],
    labels: NDArray[np.integer],
    pred_probs: NDArray[np.floating],
    *,
    exclude: Sequence[int] = (),
    top: int | None = 20,
) -> list[IssuePair]:
    """(given, predicted) class pairs among flagged pixels, most pixels first (method.md §4).

    Ties in count keep (given, predicted) order, as the reference's table does.
    """
    n, k = pred_probs.shape[:2]
    counts = np.zeros((k, k), np.int64)
    for i in range(n):
        flagged = issues[i]
        if not flagged.any():
            continue
        predicted = np.asarray(pred_probs[i]).argmax(axis=0)[flagged]
        given = labels[i][flagged].astype(np.intp)
        counts += np.bincount(given * k + predicted, minlength=k * k).reshape(k, k)
    if exclude:
        counts[:, list(exclude)] = 0
    pairs = [
        IssuePair(int(g), int(p), int(counts[g, p]))
        for g, p in zip(*np.nonzero(counts), strict=True)
    ]
    pairs.sort(key=lambda pair: -pair.pixels)
    return pairs if top is None else pairs[:top]


def filter_by_class(
    class_index: int,
    issues: NDArray[np.bool_],
    labels: NDArray[np.integer],
    pred_probs: NDArray[np.floating],
) -> NDArray[np.bool_]:
    """Flagged pixels whose given or predicted class is ``class_index``."""
    subset = np.zeros(issues.shape, dtype=bool)
    for i in range(issues.shape[0]):
        predicted = np.asarray(pred_probs[i]).argmax(axis=0)
        subset[i] = issues[i] & ((labels[i] == class_index) | (predicted == class_index))
    return subset
