"""Parity with the reference implementation, cleanlab 2.9.0 (a test-only dependency).

Two differences are by design and are checked precisely, not by loosening tolerances:

(a) Ties: segaudit selects every pixel tied with the T-th lowest self-confidence (as
    float32), the reference an arbitrary subset of them. With the same T, ours is a superset
    of the reference's flags, and every extra pixel sits exactly at the cutoff.
(b) Thresholds: the reference averages each batch in the input dtype (float16 means are
    rounded to float16), keeps a running weighted mean, and floors it at 2e-6 after every
    batch; segaudit sums in float64 once. When a disagreeing pixel's max probability lies
    between the two ``t - 1e-6`` limits, T differs: we then check that every such pixel is
    counted exactly as each side's own thresholds say, and skip the mask comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from cleanlab.experimental.label_issues_batched import LabelInspector
from cleanlab.segmentation import filter as ref_filter
from cleanlab.segmentation import rank as ref_rank
from cleanlab.segmentation import summary as ref_summary
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from numpy.typing import NDArray

import segaudit
from segaudit import AuditOptions, audit_arrays

DTYPES = (np.float16, np.float32, np.float64)
REFERENCE_BATCH = 10000  # cleanlab.segmentation's default batch_size (pixels x classes)
MARGIN = 1e-6  # the reference's FLOATING_POINT_COMPARISON


@dataclass(frozen=True)
class Case:
    """One drawn input: labels (N, H, W) and pred_probs (N, K, H, W)."""

    labels: NDArray[np.int64]
    probs: NDArray[np.floating]
    description: str


@dataclass(frozen=True)
class Params:
    """What the strategy draws; the arrays come from the ``synthetic`` fixture."""

    seed: int
    n: int
    k: int
    h: int
    w: int
    dtype: Any
    quantum: int | None
    absent: int
    error_rate: float
    sharpness: float

    def build(self, synthetic: Callable[..., Any]) -> Case:
        arrays = synthetic(
            self.seed,
            self.n,
            self.k,
            self.h,
            self.w,
            self.dtype,
            error_rate=self.error_rate,
            absent=self.absent,
            quantum=self.quantum,
            sharpness=self.sharpness,
        )
        return Case(arrays.labels.astype(np.int64), arrays.probs, repr(self))


@st.composite
def cases(draw: st.DrawFn, dtypes: tuple[Any, ...] = DTYPES, ties: bool = True) -> Params:
    """K 2..30, N 1..5, H, W 1..24, absent classes, label flips, optionally heavy ties
    (every probability a multiple of 1/q; q = 1 is one-hot)."""
    k = draw(st.integers(2, 30))
    params = Params(
        seed=draw(st.integers(0, 2**32 - 1)),
        n=draw(st.integers(1, 5)),
        k=k,
        h=draw(st.integers(1, 24)),
        w=draw(st.integers(1, 24)),
        dtype=draw(st.sampled_from(dtypes)),
        quantum=draw(st.sampled_from((None, None, 1, 2, 4))) if ties else None,
        absent=draw(st.integers(0, k - 1)),
        error_rate=draw(st.sampled_from((0.0, 0.05, 0.3))),
        sharpness=draw(st.sampled_from((0.5, 2.0, 8.0))),
    )
    event(f"dtype={np.dtype(params.dtype).name} quantum={params.quantum}")
    return params


# ------------------------------------------------------------------------ the reference side


def reference_thresholds_and_count(
    labels: NDArray[np.integer], probs: NDArray[np.floating]
) -> tuple[NDArray[np.float64], int]:
    """The reference's thresholds and T, fed exactly as its segmentation find_label_issues
    feeds its LabelInspector: batches of max(10000 // (K*H*W), 1) images, (pixels, K)."""
    n, k, h, w = probs.shape
    inspector = LabelInspector(num_class=k, verbose=False, n_jobs=1)
    per_batch = max(REFERENCE_BATCH // (k * h * w), 1)

    def batch(start: int) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
        stop = min(start + per_batch, n)
        flat_labels = labels[start:stop].flatten().astype(int)
        flat_probs = np.moveaxis(probs[start:stop], 0, 1).reshape(k, -1).T
        return flat_labels, flat_probs

    for start in range(0, n, per_batch):
        inspector.update_confident_thresholds(*batch(start))
    for start in range(0, n, per_batch):
        inspector.score_label_quality(*batch(start))
    thresholds = np.array(inspector.get_confident_thresholds(silent=True), np.float64)
    return thresholds, int(inspector.get_num_issues(silent=True))


def confident_pixels(
    labels: NDArray[np.integer], probs: NDArray[np.floating], thresholds: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Disagreeing pixels whose max probability reaches t[argmax] - 1e-6 (method.md §3.1)."""
    predicted = probs.argmax(axis=1)
    max_prob = probs.max(axis=1).astype(np.float64)
    return (predicted != labels) & (max_prob >= thresholds[predicted] - MARGIN)


def _event(text: str) -> None:
    """Count a branch in hypothesis' statistics (when running under hypothesis)."""
    if currently_in_test_context():
        event(text)


def self_confidence(labels: NDArray[np.integer], probs: NDArray[np.floating]) -> NDArray[Any]:
    return np.take_along_axis(probs, labels[:, None].astype(np.intp), axis=1)[:, 0]


# ------------------------------------------------------------------------------- the checks


def threshold_tolerance(dtype: Any, thresholds: NDArray[np.float64]) -> NDArray[np.float64]:
    """How far the reference's thresholds may be from exact float64 means: rounding of each
    batch mean to the input dtype (a few ulps), plus the 2e-6 floor applied to every
    batch's running mean."""
    eps = float(np.finfo(dtype).eps)
    return 8 * eps * thresholds + 2.5e-6


def check_masks_same_count(
    case: Case, ours: NDArray[np.bool_], ref: NDArray[np.bool_], cutoff: float | None, count: int
) -> None:
    """(a): with the same T, ours ⊇ reference and the extras are exactly at the cutoff."""
    labels, probs = case.labels, case.probs
    s32 = self_confidence(labels, probs).astype(np.float32)
    if count == 0:
        assert cutoff is None
        assert not ours.any() and not ref.any()
        return
    ranked = np.sort(s32, axis=None)
    assert cutoff is not None
    assert np.float32(cutoff) == ranked[count - 1], "cutoff is not the T-th lowest score"
    missing = ref & ~ours
    assert not missing.any(), f"reference flags {int(missing.sum())} pixels we do not"
    extra = ours & ~ref
    assert np.all(s32[extra] == np.float32(cutoff)), "an extra flag is not tied at the cutoff"
    tied_after = count < ranked.size and ranked[count] == ranked[count - 1]
    if not tied_after:
        np.testing.assert_array_equal(ours, ref)  # no tie at the cutoff: identical
        _event("masks: no tie, identical")
    else:
        _event("masks: tie at the cutoff, extra pixels selected")


def check_case(case: Case) -> None:
    labels, probs = case.labels, case.probs
    dtype = probs.dtype

    # Image and pixel scores.
    ours_image, ours_pixel = segaudit.get_label_quality_scores(labels, probs)
    ref_image, ref_pixel = ref_rank.get_label_quality_scores(labels, probs, verbose=False)
    np.testing.assert_allclose(ours_image, ref_image, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(ours_pixel, ref_pixel)

    # Thresholds and T.
    result = audit_arrays(labels, probs)
    ref_thresholds, ref_count = reference_thresholds_and_count(labels, probs)
    exact = [
        float(np.mean(self_confidence(labels, probs)[labels == c], dtype=np.float64))
        if np.any(labels == c)
        else 0.0
        for c in range(probs.shape[1])
    ]
    np.testing.assert_allclose(
        result.thresholds, np.maximum(exact, 2e-6), rtol=1e-12, atol=0, err_msg="float64 means"
    )
    tolerance = threshold_tolerance(dtype, result.thresholds)
    assert np.all(np.abs(result.thresholds - ref_thresholds) <= tolerance), (
        case.description,
        result.thresholds,
        ref_thresholds,
    )
    ours_confident = confident_pixels(labels, probs, result.thresholds)
    ref_confident = confident_pixels(labels, probs, ref_thresholds)
    assert result.confident_count == int(ours_confident.sum()), "T is not our own count"
    assert ref_count == int(ref_confident.sum()), "the reference's T is not its own count"

    ours_mask = segaudit.find_label_issues(labels, probs)
    ref_mask = ref_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1)
    if result.confident_count == ref_count:
        check_masks_same_count(case, ours_mask, ref_mask, result.cutoff.value, ref_count)
        return
    # (b): T differs. Every pixel counted by one side only lies between the two limits.
    boundary = ours_confident != ref_confident
    predicted = probs.argmax(axis=1)[boundary]
    max_prob = probs.max(axis=1)[boundary].astype(np.float64)
    low = np.minimum(result.thresholds, ref_thresholds)[predicted] - MARGIN
    high = np.maximum(result.thresholds, ref_thresholds)[predicted] - MARGIN
    assert np.all((low <= max_prob) & (max_prob < high)), case.description
    assert result.confident_count - ref_count == int(
        (ours_confident & ~ref_confident).sum() - (ref_confident & ~ours_confident).sum()
    )
    _event(f"T differs ({np.dtype(dtype).name}), boundary pixels explain it")


@settings(max_examples=220)
@given(params=cases())
def test_matches_reference(params: Params, synthetic: Callable[..., Any]) -> None:
    check_case(params.build(synthetic))


@settings(max_examples=60)
@given(params=cases(dtypes=(np.float64,), ties=False))
def test_float64_masks_identical(params: Params, synthetic: Callable[..., Any]) -> None:
    """Continuous float64 input: no ties, same thresholds to 1e-12, so identical masks."""
    case = params.build(synthetic)
    labels, probs = case.labels, case.probs
    result = audit_arrays(labels, probs)
    ref_thresholds, ref_count = reference_thresholds_and_count(labels, probs)
    np.testing.assert_allclose(result.thresholds, ref_thresholds, rtol=1e-12, atol=2.5e-6)
    assert result.confident_count == ref_count
    s = np.sort(self_confidence(labels, probs).astype(np.float32), axis=None)
    if 0 < ref_count < s.size:
        assert s[ref_count] > s[ref_count - 1], "drawn data has a tie; the strategy is wrong"
    ours = segaudit.find_label_issues(labels, probs)
    ref = ref_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1)
    np.testing.assert_array_equal(ours, ref)
    # The reference's second image score, 1 - flagged fraction, built on these flags.
    ours_scores = segaudit.get_label_quality_scores(labels, probs, method="num_pixel_issues")
    ref_scores = ref_rank.get_label_quality_scores(
        labels, probs, method="num_pixel_issues", verbose=False, n_jobs=1
    )
    np.testing.assert_allclose(ours_scores[0], ref_scores[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours_scores[1], ref_scores[1])


def test_k2_matches_reference(synthetic: Callable[..., Any]) -> None:
    """K = 2, several dtypes: the smallest number of classes."""
    for dtype in DTYPES:
        arrays = synthetic(7, n=3, k=2, h=9, w=11, dtype=dtype, error_rate=0.2)
        case = Case(arrays.labels.astype(np.int64), arrays.probs, f"K=2 {dtype}")
        check_case(case)
        assert audit_arrays(case.labels, case.probs).confident_count > 0


def test_k2_by_hand() -> None:
    """Four pixels, K=2, worked by hand: t = (0.9, 0.35); only pixel 3 is flagged."""
    # pixel:        0     1     2     3
    p1 = np.array([0.1, 0.2, 0.6, 0.95])  # P[class 1]
    labels = np.array([[[0, 0, 1, 0]]])
    probs = np.stack([1 - p1, p1])[None, :, None, :].astype(np.float64)
    # t0 = mean(0.9, 0.8, 0.05) = 0.5833; t1 = 0.6. Disagreeing: pixel 3 (pred 1, P=0.95
    # >= t1) -> T = 1. Lowest self-confidence: pixel 3 (0.05). Flags: pixel 3.
    result = audit_arrays(labels, probs)
    np.testing.assert_allclose(result.thresholds, [(0.9 + 0.8 + 0.05) / 3, 0.6], rtol=1e-15)
    assert result.confident_count == 1
    expected = np.array([[[False, False, False, True]]])
    np.testing.assert_array_equal(segaudit.find_label_issues(labels, probs), expected)
    np.testing.assert_array_equal(
        ref_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1), expected
    )


def test_float16_batch_mean_rounding_changes_t() -> None:
    """(b) on purpose: class 0's mean, 0.500244, is not a float16; the reference rounds it
    to 0.5, so a disagreeing pixel with P = 0.5 counts for it and not for us."""
    step = float(np.float16(0.5) + np.finfo(np.float16).eps / 2) - 0.5  # one float16 ulp
    p0 = np.array([0.5, 0.5 + step, 0.5, 0.05])  # P[class 0]
    labels = np.array([[[0, 0, 1, 1]]])
    probs = np.stack([p0, 1 - p0])[None, :, None, :].astype(np.float16)
    result = audit_arrays(labels, probs)
    ref_thresholds, ref_count = reference_thresholds_and_count(labels, probs)
    assert result.thresholds[0] == 0.5 + step / 2 and ref_thresholds[0] == 0.5
    # Pixel 2 (label 1, P = [0.5, 0.5], argmax 0) is the only disagreeing pixel.
    assert (result.confident_count, ref_count) == (0, 1)
    check_case(Case(labels, probs, "float16 rounding"))


def test_float64_value_just_below_threshold_is_not_counted() -> None:
    """Regression: a float64 max probability just under t - 1e-6 that rounds (to nearest
    float32) onto a histogram bin's low edge used to count as 'surely confident', so the
    lower bound on T exceeded T and the cutoff came out too high."""
    t = 0.75 + 1e-6 - 1e-13  # class 0's only labelled pixel: its threshold is exactly t
    m = 0.75 - 5e-11  # below t - 1e-6, but float32(m) == 0.75, a bin edge
    assert m < t - MARGIN and np.float32(m) == np.float32(0.75)
    probs = np.array([[[[t, m, 0.9]], [[1 - t, 1 - m, 0.1]]]], dtype=np.float64)
    labels = np.array([[[0, 1, 1]]])
    result = audit_arrays(labels, probs)
    ref = ref_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1)
    assert result.confident_count == 1
    assert result.cutoff.value == pytest.approx(0.1, abs=1e-7)
    np.testing.assert_array_equal(segaudit.find_label_issues(labels, probs), ref)


# ----------------------------------------------------------------------------- summaries


def reference_table(
    issues: NDArray[np.bool_], labels: NDArray[Any], probs: NDArray[Any], **options: Any
) -> list[tuple[int, int, int]]:
    frame = ref_summary.common_label_issues(issues, labels, probs, verbose=False, **options)
    return [
        (int(g), int(p), int(c))
        for g, p, c in zip(
            frame["given_label"], frame["predicted_label"], frame["num_pixel_issues"], strict=True
        )
    ]


@settings(max_examples=40)
@given(params=cases(), pick=st.integers(0, 2**16))
def test_summaries_match_reference(
    params: Params, pick: int, synthetic: Callable[..., Any]
) -> None:
    case = params.build(synthetic)
    labels, probs = case.labels, case.probs
    k = probs.shape[1]
    # Random issue masks stress ordering and ties in the table far more than real flags.
    issues = np.random.default_rng(pick).random(labels.shape) < 0.3
    for options in ({}, {"top": 3}, {"exclude": [pick % k]}):
        ours = segaudit.common_label_issues(issues, labels, probs, **options)
        assert [(p.given, p.predicted, p.pixels) for p in ours] == reference_table(
            issues, labels, probs, **options
        ), options
    for c in {0, pick % k, k - 1}:
        np.testing.assert_array_equal(
            segaudit.filter_by_class(c, issues, labels, probs),
            ref_summary.filter_by_class(c, issues, labels, probs),
        )


def test_common_label_issues_on_flags_matches_reference(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(3, n=4, k=6, h=20, w=20, dtype=np.float32, error_rate=0.3)
    labels = arrays.labels.astype(np.int64)
    flags = segaudit.find_label_issues(labels, arrays.probs)
    assert flags.sum() > 5
    ours = segaudit.common_label_issues(flags, labels, arrays.probs)
    assert [(p.given, p.predicted, p.pixels) for p in ours] == reference_table(
        flags, labels, arrays.probs
    )
    result = audit_arrays(labels, arrays.probs)
    assert result.common_label_issues(top=20) == ours


# --------------------------------------------------------------------------- ignore_index


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_all_ignored_image_has_nan_score(synthetic: Callable[..., Any], method: str) -> None:
    arrays = synthetic(1, n=3, k=4, h=6, w=7, dtype=np.float32)
    labels = arrays.labels.copy()
    labels[1] = 255
    image_scores, pixel_scores = segaudit.get_label_quality_scores(
        labels, arrays.probs, method=method
    )
    assert math.isnan(image_scores[1])
    assert np.isnan(pixel_scores[1]).all()
    assert np.isfinite(image_scores[[0, 2]]).all()
    result = audit_arrays(labels, arrays.probs)
    record = result.images[1]
    assert math.isnan(record.label_quality) and record.valid_pixels == 0
    assert record.skipped is None and record.flagged_pixels == 0
    assert result.ranking()[-1].index == 1  # unscored images rank last


def test_ignored_pixels_take_part_in_nothing(
    synthetic: Callable[..., Any], brute_force: Callable[..., Any]
) -> None:
    arrays = synthetic(5, n=4, k=5, h=16, w=16, dtype=np.float32, error_rate=0.2, ignore_rate=0.3)
    labels, probs = arrays.labels, arrays.probs
    ignored = labels == 255
    assert ignored.any()
    masks = np.zeros(labels.shape, bool)
    result = audit_arrays(labels, probs, masks=masks)
    assert not (masks & ignored).any()
    # Thresholds by hand over the labelled pixels only.
    s = np.take_along_axis(probs, np.where(ignored, 0, labels)[:, None].astype(np.intp), 1)[:, 0]
    by_hand = [s[labels == c].astype(np.float64).mean() for c in range(5)]
    np.testing.assert_allclose(result.thresholds, by_hand, rtol=1e-12)
    assert result.valid_pixels == int((~ignored).sum())
    expected = brute_force(labels, probs, ignore=255)
    assert result.confident_count == expected.confident_count
    np.testing.assert_array_equal(masks, expected.flagged)
    # Image scores: the softmin over the labelled pixels of each image.
    scores, _ = segaudit.get_label_quality_scores(labels, probs)
    for i in range(labels.shape[0]):
        keep = ~ignored[i]
        ref = ref_rank._get_label_quality_per_image(s[i][keep], method="softmin", temperature=0.1)
        assert scores[i] == pytest.approx(ref, abs=1e-10)
        assert result.images[i].label_quality == pytest.approx(ref, abs=1e-10)


def test_ignored_image_changes_nothing_else(synthetic: Callable[..., Any]) -> None:
    """Adding an all-ignored image (any probabilities) leaves every other result alone."""
    arrays = synthetic(9, n=3, k=4, h=10, w=12, dtype=np.float16, error_rate=0.2)
    labels, probs = arrays.labels, arrays.probs
    noise = synthetic(10, n=1, k=4, h=10, w=12, dtype=np.float16, error_rate=0.5)
    more_labels = np.concatenate([labels, np.full_like(noise.labels, 255)])
    more_probs = np.concatenate([probs, noise.probs])
    base_masks = np.zeros(labels.shape, bool)
    more_masks = np.zeros(more_labels.shape, bool)
    base = audit_arrays(labels, probs, masks=base_masks)
    more = audit_arrays(more_labels, more_probs, masks=more_masks)
    np.testing.assert_array_equal(base.thresholds, more.thresholds)
    assert (base.confident_count, base.cutoff) == (more.confident_count, more.cutoff)
    np.testing.assert_array_equal(base_masks, more_masks[:3])
    assert not more_masks[3].any()
    assert [r.label_quality for r in base.images] == [r.label_quality for r in more.images[:3]]


def test_ignore_index_none_treats_255_as_a_label(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(2, n=2, k=4, h=5, w=5, dtype=np.float32)
    labels = arrays.labels.copy()
    labels[0, 0, 0] = 255
    with pytest.raises(segaudit.SegauditError, match="255"):
        segaudit.find_label_issues(labels, arrays.probs, ignore_index=None)


# ---------------------------------------------------------------------------- temperature


@pytest.mark.parametrize("temperature", [0.0, -0.5, math.nan, math.inf])
def test_bad_temperature_raises(temperature: float, synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(0, n=1, k=3, h=4, w=4)
    with pytest.raises(ValueError, match="temperature"):
        segaudit.get_label_quality_scores(arrays.labels, arrays.probs, temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        audit_arrays(arrays.labels, arrays.probs, temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        AuditOptions(temperature=temperature)


@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0, 25.0])
def test_temperature_matches_reference(temperature: float, synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(4, n=3, k=7, h=13, w=9, dtype=np.float32, error_rate=0.2)
    labels = arrays.labels.astype(np.int64)
    ours, _ = segaudit.get_label_quality_scores(labels, arrays.probs, temperature=temperature)
    ref, _ = ref_rank.get_label_quality_scores(
        labels, arrays.probs, verbose=False, temperature=temperature
    )
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
    result = audit_arrays(labels, arrays.probs, temperature=temperature)
    np.testing.assert_allclose([r.label_quality for r in result.images], ref, rtol=0, atol=1e-10)


# ------------------------------------------------------------------- reference options


def test_reference_speed_options_are_accepted(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(6, n=2, k=3, h=6, w=6, dtype=np.float32, error_rate=0.3)
    plain = segaudit.find_label_issues(arrays.labels, arrays.probs)
    same = segaudit.find_label_issues(
        arrays.labels, arrays.probs, batch_size=7, n_jobs=4, verbose=True, downsample=1
    )
    np.testing.assert_array_equal(plain, same)
    segaudit.get_label_quality_scores(arrays.labels, arrays.probs, verbose=False, n_jobs=1)


def test_misspelt_options_are_refused(synthetic: Callable[..., Any]) -> None:
    """The reference silently ignores any keyword it does not know; a typo must not pass."""
    arrays = synthetic(6, n=1, k=3, h=6, w=6)
    with pytest.raises(TypeError, match="temprature"):
        segaudit.get_label_quality_scores(arrays.labels, arrays.probs, temprature=0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="downsampel"):
        segaudit.find_label_issues(arrays.labels, arrays.probs, downsampel=2)  # type: ignore[call-arg]


@pytest.mark.parametrize("dtype", DTYPES)
def test_negative_zero_is_a_probability(dtype: Any, synthetic: Callable[..., Any]) -> None:
    """-0.0 (sign bit set) is zero, not a negative probability, as for the reference."""
    arrays = synthetic(8, n=2, k=4, h=5, w=6, dtype=dtype, quantum=2, error_rate=0.3)
    labels = arrays.labels.astype(np.int64)
    signed = arrays.probs.copy()
    signed[signed == 0] = -0.0
    assert np.signbit(signed).any()
    np.testing.assert_array_equal(
        segaudit.find_label_issues(labels, signed), segaudit.find_label_issues(labels, arrays.probs)
    )
    result = audit_arrays(labels, signed)
    assert result.confident_count == reference_thresholds_and_count(labels, signed)[1]


def test_float64_ties_are_judged_at_float32_resolution() -> None:
    """Documented difference: scores 0.1, 0.1 + 1e-12, 0.1 + 2e-12 are one float32, so with
    T = 1 all three disagreeing pixels are selected; the reference takes the lowest only."""
    labels = np.array([[[0, 0, 0, 1, 1, 1]]])
    probs = np.array(
        [
            [0.1, 0.1 + 1e-12, 0.1 + 2e-12, 0.05, 0.05, 0.05],
            [0.9, 0.5, 0.5, 0.9, 0.9, 0.9],  # t1 = 0.9: only pixel 0 is confident
            [0.0, 0.4 - 1e-12, 0.4 - 2e-12, 0.05, 0.05, 0.05],
        ]
    )[None, :, None, :]
    result = audit_arrays(labels, probs)
    assert result.confident_count == reference_thresholds_and_count(labels, probs)[1] == 1
    ours = segaudit.find_label_issues(labels, probs)
    ref = ref_filter.find_label_issues(labels, probs, verbose=False, n_jobs=1)
    np.testing.assert_array_equal(ref, [[[True, False, False, False, False, False]]])
    np.testing.assert_array_equal(ours, [[[True, True, True, False, False, False]]])
    check_masks_same_count(
        Case(labels, probs, "float64 near-ties"), ours, ref, result.cutoff.value, 1
    )
