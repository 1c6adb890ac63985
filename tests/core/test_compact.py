"""Compact encodings: the rounding and selection rules, the digest made from compact images
against the dense digest, whole-run parity (top-K with K = classes gives the dense results),
and damaged stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from segaudit import ProbsWriter
from segaudit.core.audit import AuditOptions, AuditResult, run_audit
from segaudit.core.compact import (
    CODE_MAX,
    QuantizedImage,
    TopKImage,
    coarse_tail,
    encode_top_k,
    quantize,
    top_k,
)
from segaudit.core.pixel import PixelDigest, digest_image
from segaudit.errors import ImageError, ProbabilityError
from segaudit.io.inputs import InputSpec, open_inputs
from tests.conftest import synthetic_arrays, write_masks

IDS = [f"im{i}" for i in range(6)]


def _assert_same_digest(a: PixelDigest, b: PixelDigest) -> None:
    for name in ("valid", "given", "predicted", "self_confidence", "max_prob"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.exact_keys == b.exact_keys


@given(st.integers(0, 2**31), st.integers(1, 12))
def test_quantize_sums_to_255_within_one_step_and_keeps_order(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.3), size=(5, 7)).transpose(2, 0, 1)
    codes = quantize(probs)
    assert codes.dtype == np.uint8
    assert (codes.sum(axis=0, dtype=np.int64) == CODE_MAX).all()
    assert (np.abs(codes / CODE_MAX - probs) < 1 / CODE_MAX + 1e-12).all()
    for a in range(k):  # a more likely class never gets a smaller code
        for b in range(k):
            assert (codes[a][probs[a] > probs[b]] >= codes[b][probs[a] > probs[b]]).all()


def test_top_k_picks_the_largest_with_ties_to_the_lowest_class() -> None:
    rng = np.random.default_rng(1)
    probs = rng.integers(0, 4, size=(6, 9, 11)).astype(np.float32)  # many ties
    ids, values = top_k(probs, 3)
    order = np.argsort(-probs, axis=0, kind="stable")[:3]  # stable: ties keep class order
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_array_equal(values, np.take_along_axis(probs, order, axis=0))


def test_top_k_codes_and_the_rest_sum_to_255() -> None:
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(7), size=(4, 5)).transpose(2, 0, 1)
    ids, codes = encode_top_k(probs, 3, codes=True)
    top = np.take_along_axis(probs, ids.astype(np.intp), axis=0)
    rest = 1 - top.sum(axis=0)
    rest_code = CODE_MAX - codes.sum(axis=0, dtype=np.int64)
    assert (rest_code >= 0).all()
    assert (np.abs(rest_code / CODE_MAX - rest) < 1 / CODE_MAX + 1e-9).all()


def _labelled(seed: int, k: int, h: int = 9, w: int = 13) -> tuple[NDArray[np.uint8], NDArray]:
    data = synthetic_arrays(seed, n=1, k=k, h=h, w=w, ignore_rate=0.1)
    return data.labels[0], data.probs[0]


@pytest.mark.parametrize("quantum", [None, 3])  # 3: probabilities in thirds, ties everywhere
@pytest.mark.parametrize("predict_below", [None, 0.3])
def test_top_k_with_every_class_digests_as_the_dense_image(
    quantum: int | None, predict_below: float | None
) -> None:
    data = synthetic_arrays(3, n=1, k=5, h=10, w=12, quantum=quantum, ignore_rate=0.1)
    labels, probs = data.labels[0], data.probs[0]
    dense16 = probs.astype(np.float16)
    ids, values = encode_top_k(probs, 5, codes=False)
    compact = TopKImage(ids, values, 5)
    _assert_same_digest(
        compact.digest("x", labels, {255}, predict_below=predict_below),
        digest_image("x", labels, dense16, {255}, predict_below=predict_below),
    )
    ids, codes = encode_top_k(probs, 5, codes=True)
    uint8 = QuantizedImage(quantize(probs))
    _assert_same_digest(
        TopKImage(ids, codes, 5).digest("x", labels, {255}, predict_below=predict_below),
        uint8.digest("x", labels, {255}, predict_below=predict_below),
    )


@pytest.mark.parametrize("predict_below", [None, 0.2])
def test_uint8_digest_is_the_dense_digest_of_its_values(predict_below: float | None) -> None:
    labels, probs = _labelled(4, 6)
    image = QuantizedImage(quantize(probs))
    _assert_same_digest(
        image.digest("x", labels, {255}, predict_below=predict_below),
        digest_image("x", labels, image.expand(), {255}, predict_below=predict_below),
    )


def test_top_k_digest_follows_the_remainder_rule() -> None:
    """A label outside the top k gets rest / (K - k); inside, its own stored value."""
    labels, probs = _labelled(5, 8)
    for codes in (False, True):
        ids, stored = encode_top_k(probs, 3, codes=codes)
        image = TopKImage(ids, stored, 8)
        digest = image.digest("x", labels, {255})
        dense = image.expand()  # stored values, the rest spread evenly: the rule, in K planes
        np.testing.assert_allclose(dense.sum(axis=0, dtype=np.float64), 1.0, atol=3e-3)
        expected = digest_image("x", labels, dense, {255}, check_sums=False)
        np.testing.assert_array_equal(digest.self_confidence, expected.self_confidence)
        np.testing.assert_array_equal(digest.max_prob, expected.max_prob)
        np.testing.assert_array_equal(digest.predicted, ids[0])  # ties aside: the top class
        inside = (ids == np.where(labels == 255, 0, labels)[None]).any(axis=0)
        outside_value = dense.astype(np.float64)
        assert (~inside).any() and inside.any()
        rest = np.take_along_axis(outside_value, labels.astype(np.intp)[None] % 8, 0)[0]
        valid = labels != 255
        np.testing.assert_array_equal(digest.self_confidence[valid], rest[valid])


def test_coarse_tail_is_the_block_mean_edges_included() -> None:
    rng = np.random.default_rng(11)
    probs = rng.dirichlet(np.ones(3), size=(7, 10)).transpose(2, 0, 1)
    tail = coarse_tail(probs, 4)
    assert tail.shape == (3, 2, 3) and tail.dtype == np.float16
    for i, rows in enumerate((slice(0, 4), slice(4, 7))):
        for j, cols in enumerate((slice(0, 4), slice(4, 8), slice(8, 10))):
            expected = probs[:, rows, cols].mean(axis=(1, 2)).astype(np.float16)
            np.testing.assert_array_equal(tail[:, i, j], expected)


def _shared_by_hand(
    image: TopKImage, labels: NDArray[np.integer], stride: int
) -> NDArray[np.float64]:
    """The tail rule, pixel by pixel: rest * tail[label] / (tail of the classes outside
    the pixel's top k), capped at the k-th stored value; evenly without tail mass."""
    assert image.tail is not None
    k, num_classes = image.k, image.total_classes
    values = image.expand()  # only its top-k entries are used here
    h, w = labels.shape
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ids = [int(c) for c in image.classes[:, y, x]]
            stored = [float(values[c, y, x]) for c in ids]
            rest = float(np.float32(1) - np.float32(sum(np.float32(v) for v in stored)))
            if image.probs.dtype == np.uint8:
                rest = max(0, CODE_MAX - int(image.probs[:, y, x].sum(dtype=np.int64))) / CODE_MAX
            cell = image.tail[:, y // stride, x // stride].astype(np.float64)
            outside = sum(cell[c] for c in range(num_classes) if c not in ids)
            label = int(labels[y, x])
            if outside > 0:
                out[y, x] = min(rest * cell[label] / outside, stored[-1], rest)
            else:
                out[y, x] = rest / (num_classes - k)
    return out


@pytest.mark.parametrize("codes", [False, True])
def test_top_k_with_a_tail_shares_the_rest_by_the_tail(codes: bool) -> None:
    """A label outside the top k gets its tail share of the rest (computed here by hand,
    to float16), and the digest is the dense digest of what expand() gives."""
    labels, probs = _labelled(12, 9, h=11, w=14)
    ids, stored = encode_top_k(probs, 3, codes=codes)
    image = TopKImage(ids, stored, 9, coarse_tail(probs, 4), 4)
    digest = image.digest("x", labels, {255})
    dense = image.expand()
    np.testing.assert_allclose(dense.sum(axis=0, dtype=np.float64), 1.0, atol=1e-2)
    expected = digest_image("x", labels, dense, {255}, check_sums=False)
    np.testing.assert_array_equal(digest.self_confidence, expected.self_confidence)
    np.testing.assert_array_equal(digest.max_prob, expected.max_prob)
    valid = labels != 255
    inside = (ids == np.where(valid, labels, 0)[None]).any(axis=0)
    outside = valid & ~inside
    assert outside.sum() > 20
    by_hand = _shared_by_hand(image, np.where(valid, labels, 0), 4)
    np.testing.assert_allclose(
        digest.self_confidence[outside], by_hand[outside], rtol=2e-3, atol=1e-7
    )


def test_where_probabilities_are_smooth_the_tail_recovers_outside_labels() -> None:
    """Probabilities constant over 4x4 blocks (as upsampled model output nearly is): the
    share of an outside label is its probability, to float16; the even share is far off."""
    rng = np.random.default_rng(18)
    coarse = rng.dirichlet(np.full(9, 0.3), size=(3, 4)).transpose(2, 0, 1)
    probs = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    labels = rng.integers(0, 9, size=(12, 16)).astype(np.uint8)
    ids, stored = encode_top_k(probs, 3, codes=False)
    outside = ~(ids == labels[None]).any(axis=0)
    truth = np.take_along_axis(probs, labels[None].astype(np.intp), 0)[0]
    shared = TopKImage(ids, stored, 9, coarse_tail(probs, 4), 4).digest("x", labels)
    even = TopKImage(ids, stored, 9).digest("x", labels)
    tail_error = np.abs(shared.self_confidence - truth)[outside]
    even_error = np.abs(even.self_confidence - truth)[outside]
    assert outside.sum() > 50
    assert tail_error.max() < 2e-3 * max(truth[outside].max(), 1e-3) + 1e-4
    assert even_error.mean() > 10 * tail_error.mean()


def test_a_tail_with_no_mass_outside_falls_back_to_the_even_share() -> None:
    labels, probs = _labelled(13, 5)
    ids, stored = encode_top_k(probs, 2, codes=True)
    tail = np.zeros((5, 3, 4), np.float16)  # 9x13 at stride 4
    shared = TopKImage(ids, stored, 5, tail, 4).digest("x", labels, {255})
    even = TopKImage(ids, stored, 5).digest("x", labels, {255})
    np.testing.assert_array_equal(shared.self_confidence, even.self_confidence)


def test_damaged_tails_are_refused() -> None:
    labels, probs = _labelled(14, 5)
    ids, stored = encode_top_k(probs, 2, codes=True)
    tail = coarse_tail(probs, 4)
    with pytest.raises(ProbabilityError, match="tail is"):
        TopKImage(ids, stored, 5, tail[:, :2], 4).digest("x", labels, {255})
    with pytest.raises(ProbabilityError, match="tail is"):
        TopKImage(ids, stored, 5, tail, 8).digest("x", labels, {255})
    nan = tail.copy()
    nan[1, 0, 0] = np.nan  # a missing chunk's fill
    with pytest.raises(ProbabilityError, match="tail has NaN"):
        TopKImage(ids, stored, 5, nan, 4).digest("x", labels, {255})


def test_damaged_compact_images_are_refused() -> None:
    labels, probs = _labelled(6, 4)
    ids, codes = encode_top_k(probs, 2, codes=True)
    broken = ids.copy()
    broken[0, 0, 0] = 255  # a missing chunk's fill value
    with pytest.raises(ProbabilityError, match="class id 255"):
        TopKImage(broken, codes, 4).digest("x", labels, {255})
    over = codes.copy()
    over[:, 0, 0] = 200  # two codes of 200: more than 255 in all
    with pytest.raises(ProbabilityError, match="damaged"):
        TopKImage(ids, over, 4).digest("x", labels, {255})
    with pytest.raises(ProbabilityError, match="damaged"):
        QuantizedImage(np.zeros((4, *labels.shape), np.uint8)).digest("x", labels, {255})
    nan = np.full((2, *labels.shape), np.nan, np.float16)
    with pytest.raises(ProbabilityError, match="NaN"):
        TopKImage(ids, nan, 4).digest("x", labels, {255})
    with pytest.raises(ImageError, match="mask is 9x12 but probabilities are 9x13"):
        TopKImage(ids, codes, 4).digest("x", labels[:, :-1], {255})


# ------------------------------------------------------------------ whole runs on stores


def _flags(dataset_root: Path, probs: Path) -> tuple[AuditResult, dict[int, NDArray[np.bool_]]]:
    flags: dict[int, NDArray[np.bool_]] = {}

    def keep(index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]) -> None:
        flags[index] = flagged.copy()

    spec = InputSpec(labels=dataset_root / "masks", probs=probs, pairing_check=False)
    dataset = open_inputs(spec).dataset
    return run_audit(dataset, AuditOptions(), sinks=[keep]), flags


def _same_run(a: tuple[AuditResult, dict[int, NDArray[np.bool_]]], b: tuple) -> None:
    (ra, fa), (rb, fb) = a, b
    assert ra.images == rb.images
    np.testing.assert_array_equal(ra.thresholds, rb.thresholds)
    np.testing.assert_array_equal(ra.confusion, rb.confusion)
    assert (ra.confident_count, ra.cutoff) == (rb.confident_count, rb.cutoff)
    assert fa.keys() == fb.keys()
    for index in fa:
        np.testing.assert_array_equal(fa[index], fb[index])


def _dataset(tmp_path: Path, k: int = 5, seed: int = 7) -> tuple[Path, NDArray]:
    data = synthetic_arrays(seed, n=6, k=k, h=14, w=18, ignore_rate=0.05)
    write_masks(tmp_path / "masks", IDS, data.labels)
    np.save(tmp_path / "probs.npy", data.probs.astype(np.float16))
    return tmp_path, data.probs


def _store(path: Path, probs: NDArray, **options: object) -> Path:
    with ProbsWriter(path, **options) as writer:  # type: ignore[arg-type]
        writer.append(probs[:4], ids=IDS[:4])
        writer.append(probs[4:], ids=IDS[4:])
    return path


def test_top_k_of_every_class_gives_exactly_the_dense_run(tmp_path: Path) -> None:
    root, probs = _dataset(tmp_path)
    dense = _flags(root, root / "probs.npy")
    _same_run(dense, _flags(root, _store(root / "f16.zarr", probs)))
    _same_run(dense, _flags(root, _store(root / "topk.zarr", probs, top_k=5)))
    uint8 = _flags(root, _store(root / "u8.zarr", probs, dtype="uint8"))
    _same_run(uint8, _flags(root, _store(root / "topk8.zarr", probs, top_k=5, dtype="uint8")))


def test_compact_runs_never_expand_to_k_planes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, probs = _dataset(tmp_path, k=9)
    stores = [
        _store(root / "topk.zarr", probs, top_k=3, dtype="uint8"),
        _store(root / "u8.zarr", probs, dtype="uint8"),
    ]

    def refuse(self: object) -> None:
        raise AssertionError("expanded to K planes")

    monkeypatch.setattr(TopKImage, "expand", refuse)
    monkeypatch.setattr(QuantizedImage, "expand", refuse)
    for store in stores:
        result, _ = _flags(root, store)
        assert all(r.skipped is None for r in result.images)
        assert result.flagged_pixels > 0


def test_compact_runs_stay_close_to_the_dense_run(tmp_path: Path) -> None:
    """Not a target, a sanity bound: top-3 of 5 classes ranks images much as dense does."""
    from scipy.stats import spearmanr

    root, probs = _dataset(tmp_path, k=5, seed=8)
    dense, _ = _flags(root, root / "probs.npy")
    compact, _ = _flags(root, _store(root / "topk.zarr", probs, top_k=3, dtype="uint8"))
    a = [r.label_quality for r in dense.images]
    b = [r.label_quality for r in compact.images]
    assert spearmanr(a, b).statistic > 0.8


def test_a_missing_chunk_is_a_skipped_image_not_a_plausible_one(tmp_path: Path) -> None:
    root, probs = _dataset(tmp_path)
    for options in ({"top_k": 2, "dtype": "uint8"}, {"dtype": "uint8"}, {}):
        store = _store(root / "s.zarr", probs, overwrite=True, **options)
        chunk = store / "probs" / "c" / "2" / "0" / "0" / "0"
        assert chunk.is_file()
        chunk.unlink()
        classes = store / "classes" / "c" / "2" / "0" / "0" / "0"
        if classes.exists():
            classes.unlink()
        result, _ = _flags(root, store)
        skipped = {r.image_id: r.skipped for r in result.images if r.skipped}
        assert list(skipped) == [IDS[2]], options


def test_a_truncated_chunk_is_a_skipped_image(tmp_path: Path) -> None:
    root, probs = _dataset(tmp_path)
    store = _store(root / "s.zarr", probs, top_k=2, dtype="uint8")
    chunk = store / "probs" / "c" / "3" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:5])
    result, _ = _flags(root, store)
    assert [r.image_id for r in result.images if r.skipped] == [IDS[3]]
