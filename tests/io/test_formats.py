"""Every input format, read from real files written by the library that produces it.

Masks: Pillow (modes L, P, 1, I;16, I, RGB). Probabilities: numpy (.npy, .npz), zarr v2 and
v3 (arrays and groups, local paths, file:// and memory:// URLs). Each reader's output is
compared with the arrays the files were written from; transforms (layout, logits, resize,
downsample, remap) against direct numpy computations.
"""

from __future__ import annotations

import csv
import json
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.config.classes import load_classes
from segaudit.core.dataset import LoadedImage
from segaudit.errors import DatasetError, ImageError
from segaudit.io import transforms
from segaudit.io.inputs import InputSpec, open_folder, open_inputs
from segaudit.io.masks import MaskDecoder, read_mask, remap_values
from segaudit.io.paired import PairedDataset
from segaudit.io.transforms import (
    Layout,
    Resize,
    downsample_labels,
    mean_pool,
    pool_labels,
    resize_probs,
    softmax,
)

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def rng_labels(seed: int, h: int, w: int, k: int) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, k, (h, w)).astype(np.uint8)


def rng_probs(seed: int, k: int, h: int, w: int, dtype: Any = np.float32) -> NDArray[Any]:
    logits = np.random.default_rng(seed).normal(size=(k, h, w)) * 2
    probs = np.exp(logits - logits.max(axis=0))
    return (probs / probs.sum(axis=0)).astype(dtype)


def load_all(dataset: PairedDataset) -> list[LoadedImage]:
    return [image for block in dataset.blocks() for image in dataset.load(block)]


def score(tmp_path: Path, *args: str) -> Any:
    """score without the pairing check: these tests' probabilities are random, unrelated to
    the masks (the check is tested in test_pairing_check.py)."""
    args = ("--no-pairing-check", *args)
    return runner.invoke(app, ["score", "--out", str(tmp_path / "run"), "--top", "0", *args])


# ------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("mode", ["L", "P"])
def test_mask_8bit_modes_keep_class_ids(tmp_path: Path, mode: str) -> None:
    labels = rng_labels(0, 9, 11, 21)
    labels[0, :3] = 255
    image = Image.fromarray(labels, mode="L")
    if mode == "P":
        image = image.convert("P")  # same indices, a palette attached
        image.putpalette(np.random.default_rng(1).integers(0, 256, 768).astype(np.uint8).tobytes())
    image.save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as written:
        assert written.mode == mode
    np.testing.assert_array_equal(read_mask("m", tmp_path / "m.png"), labels)


def test_mask_bilevel_mode_reads_zero_and_one(tmp_path: Path) -> None:
    labels = rng_labels(2, 8, 8, 2)
    Image.fromarray(labels.astype(bool)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask("m", tmp_path / "m.png"), labels)


@pytest.mark.parametrize(("dtype", "suffix"), [(np.uint16, ".png"), (np.int32, ".tif")])
def test_mask_16_and_32_bit_ids(tmp_path: Path, dtype: Any, suffix: str) -> None:
    """16-bit PNG (mode I;16); mode I comes from TIFF (Pillow writes no 32-bit PNG)."""
    labels = np.random.default_rng(3).integers(0, 3000, (7, 13)).astype(dtype)
    path = tmp_path / f"m{suffix}"
    Image.fromarray(labels).save(path)
    with Image.open(path) as written:
        assert written.mode.startswith("I")
    np.testing.assert_array_equal(read_mask("m", path), labels)


def test_rgb_mask_through_the_palette(tmp_path: Path) -> None:
    config = load_classes(REPO / "configs" / "voc.yaml")
    labels = rng_labels(4, 10, 12, config.num_classes)
    palette = np.array(config.colors, np.uint8)
    Image.fromarray(palette[labels]).save(tmp_path / "m.png")
    decoded = read_mask("m", tmp_path / "m.png", MaskDecoder.from_config(config))
    np.testing.assert_array_equal(decoded, labels)


def test_rgb_ignore_colors_read_as_ignore(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "version: 1\nignore: [255]\nignore_colors: [[224, 224, 192]]\nclasses:\n"
        "  - {name: a, color: [10, 0, 0]}\n  - {name: b, color: [0, 20, 0]}\n"
    )
    config = load_classes(config_path)
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[...] = (10, 0, 0)
    rgb[1] = (0, 20, 0)
    rgb[2] = (224, 224, 192)
    Image.fromarray(rgb).save(tmp_path / "m.png")
    decoded = read_mask("m", tmp_path / "m.png", MaskDecoder.from_config(config))
    np.testing.assert_array_equal(decoded[:, 0], [0, 1, 255, 0])


def test_rgb_colour_outside_the_palette_names_the_colour(tmp_path: Path) -> None:
    config = load_classes(REPO / "configs" / "voc.yaml")
    rgb = np.zeros((3, 3, 3), np.uint8)
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "m.png")
    with pytest.raises(ImageError, match=r"\(1, 2, 3\)"):
        read_mask("m", tmp_path / "m.png", MaskDecoder.from_config(config))


def test_cityscapes_labelids_remap_to_train_ids(tmp_path: Path) -> None:
    config = load_classes(REPO / "configs" / "cityscapes-labelids.yaml")
    raw = np.arange(34, dtype=np.uint8).reshape(2, 17)
    Image.fromarray(raw).save(tmp_path / "m.png")
    decoded = read_mask("m", tmp_path / "m.png", MaskDecoder.from_config(config))
    expected = np.vectorize(lambda v: config.remap.get(int(v), int(v)))(raw)
    np.testing.assert_array_equal(decoded, expected)
    assert set(np.unique(decoded)) <= set(range(19)) | set(config.ignore)


def test_ade20k_reduce_zero_label(tmp_path: Path) -> None:
    config = load_classes(REPO / "configs" / "ade20k.yaml")
    raw = np.arange(151, dtype=np.uint8).reshape(1, 151)
    Image.fromarray(raw).save(tmp_path / "m.png")
    decoded = read_mask("m", tmp_path / "m.png", MaskDecoder.from_config(config))
    assert decoded[0, 0] in config.ignore
    np.testing.assert_array_equal(decoded[0, 1:], np.arange(150))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_remap_table_matches_a_direct_replacement(dtype: Any) -> None:
    signed = np.dtype(dtype).kind == "i"
    low = -3 if signed else 0
    values = np.random.default_rng(5).integers(low, 60, (20, 30)).astype(dtype)
    remap = {-1: 255, 7: 0, 59: 1, 1000: 2} if signed else {7: 0, 59: 1, 1000: 2}
    expected = values.astype(np.int64)
    for source, target in remap.items():
        expected[values == source] = target
    np.testing.assert_array_equal(remap_values(values, remap), expected)


def test_remap_of_a_huge_value_range_falls_back() -> None:
    values = np.array([[-(2**30), 5, 2**30]], np.int64)
    np.testing.assert_array_equal(remap_values(values, {5: 1}), [[-(2**30), 1, 2**30]])


# ------------------------------------------------------------------ probabilities: stacked


def write_masks(folder: Path, ids: list[str], labels: list[NDArray[np.uint8]]) -> None:
    for image_id, mask in zip(ids, labels, strict=True):
        path = folder / f"{image_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(path)


def stacked(
    tmp_path: Path, n: int = 3, k: int = 4, h: int = 6, w: int = 8
) -> tuple[list[str], NDArray[np.float32]]:
    ids = [f"im{i}" for i in range(n)]
    write_masks(tmp_path / "masks", ids, [rng_labels(i, h, w, k) for i in range(n)])
    return ids, np.stack([rng_probs(10 + i, k, h, w) for i in range(n)])


def assert_reads(dataset: PairedDataset, ids: list[str], probs: NDArray[Any]) -> None:
    images = load_all(dataset)
    assert [image.image_id for image in images] == ids
    for image, expected in zip(images, probs, strict=True):
        assert image.error is None and image.probs is not None
        np.testing.assert_array_equal(image.probs, expected)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_array_v2_and_v3(
    tmp_path: Path, zarr_format: Literal[2, 3], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("segaudit.io.probs.BLOCK_BYTES", 1)  # one chunk per block
    ids, probs = stacked(tmp_path)
    array = zarr.create_array(
        store=str(tmp_path / "p.zarr"),
        shape=probs.shape,
        dtype=probs.dtype,
        chunks=(2, *probs.shape[1:]),
        zarr_format=zarr_format,
    )
    array[...] = probs
    dataset = open_folder(tmp_path / "masks", tmp_path / "p.zarr")
    assert dataset.blocks() == [range(0, 2), range(2, 3)]  # follows the chunks
    assert_reads(dataset, ids, probs)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_group_with_one_array(tmp_path: Path, zarr_format: Literal[2, 3]) -> None:
    ids, probs = stacked(tmp_path)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=zarr_format)
    group.create_array("anything", shape=probs.shape, dtype=probs.dtype)[...] = probs
    assert_reads(open_folder(tmp_path / "masks", tmp_path / "g.zarr"), ids, probs)


def test_zarr_group_picks_pred_probs(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("labels", shape=(3, 6, 8), dtype="u1")
    group.create_array("pred_probs", shape=probs.shape, dtype=probs.dtype)[...] = probs
    assert_reads(open_folder(tmp_path / "masks", tmp_path / "g.zarr"), ids, probs)


def test_zarr_group_with_several_unnamed_arrays_is_refused(tmp_path: Path) -> None:
    stacked(tmp_path)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    for name in ("a", "b"):
        group.create_array(name, shape=(3, 4, 6, 8), dtype="f4")
    with pytest.raises(DatasetError, match="pred_probs"):
        open_folder(tmp_path / "masks", tmp_path / "g.zarr")


def test_zarr_through_a_file_url(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path)
    zarr.create_array(store=str(tmp_path / "p.zarr"), data=probs)
    url = (tmp_path / "p.zarr").as_uri()
    assert url.startswith("file://")
    assert_reads(open_folder(tmp_path / "masks", url), ids, probs)


def test_zarr_in_fsspec_memory_through_the_cli(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path)
    url = f"memory://segaudit-test-{uuid.uuid4().hex}/probs.zarr"
    array = zarr.create_array(store=url, shape=probs.shape, dtype=probs.dtype)
    array[...] = probs
    array.attrs["image_ids"] = ids
    assert_reads(open_folder(tmp_path / "masks", url), ids, probs)
    result = score(tmp_path, "--labels", str(tmp_path / "masks"), "--probs", url)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "ranking.csv").is_file()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_npy_float_dtypes(tmp_path: Path, dtype: Any) -> None:
    ids, probs = stacked(tmp_path)
    np.save(tmp_path / "p.npy", probs.astype(dtype))
    dataset = open_folder(tmp_path / "masks", tmp_path / "p.npy")
    assert_reads(dataset, ids, probs.astype(dtype))
    assert all(
        image.probs is not None and image.probs.dtype == dtype for image in load_all(dataset)
    )


def test_npy_class_axis_last(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path)
    np.save(tmp_path / "p.npy", np.moveaxis(probs, 1, -1))
    spec = InputSpec(
        labels=tmp_path / "masks",
        probs=tmp_path / "p.npy",
        layout=Layout.NHWC,
    )
    dataset = open_inputs(spec).dataset
    assert dataset.num_classes == probs.shape[1]
    assert_reads(dataset, ids, probs)


def test_layout_results_do_not_depend_on_the_class_axis(tmp_path: Path) -> None:
    _, probs = stacked(tmp_path, n=4, k=5, h=10, w=12)
    np.save(tmp_path / "first.npy", probs)
    np.save(tmp_path / "last.npy", np.moveaxis(probs, 1, -1))
    masks = str(tmp_path / "masks")
    a = score(tmp_path / "a", "--labels", masks, "--probs", str(tmp_path / "first.npy"))
    b = score(
        tmp_path / "b", "--labels", masks, "--probs", str(tmp_path / "last.npy"), "--layout", "nhwc"
    )
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ranking = [(tmp_path / d / "run" / "ranking.csv").read_text() for d in ("a", "b")]
    assert ranking[0] == ranking[1]


# --------------------------------------------------------------- probabilities: per image


def test_folder_of_npy_and_npz_files_of_different_sizes(tmp_path: Path) -> None:
    sizes = [(6, 8), (9, 5), (12, 12)]
    ids = ["a/x", "a/y", "b/z"]  # nested: ids are relative paths
    k = 3
    write_masks(tmp_path / "masks", ids, [rng_labels(i, *s, k) for i, s in enumerate(sizes)])
    probs = [rng_probs(20 + i, k, *s) for i, s in enumerate(sizes)]
    folder = tmp_path / "probs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    np.save(folder / "a" / "x.npy", probs[0])
    np.savez(folder / "a" / "y.npz", probs[1])  # one unnamed array
    np.savez_compressed(folder / "b" / "z.npz", other=np.zeros(2), probs=probs[2])
    dataset = open_folder(tmp_path / "masks", folder)
    assert_reads(dataset, ids, probs)  # type: ignore[arg-type]
    result = score(tmp_path, "--labels", str(tmp_path / "masks"), "--probs", str(folder))
    assert result.exit_code == 0, result.output
    with (tmp_path / "run" / "ranking.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["image_id"] for r in rows) == ids
    assert not any(r.get("skipped") for r in rows)


def test_per_image_files_class_axis_last(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path)
    (tmp_path / "probs").mkdir()
    for image_id, p in zip(ids, probs, strict=True):
        np.save(tmp_path / "probs" / f"{image_id}.npy", np.moveaxis(p, 0, -1))
    spec = InputSpec(
        labels=tmp_path / "masks",
        probs=tmp_path / "probs",
        layout=Layout.NHWC,
    )
    assert_reads(open_inputs(spec).dataset, ids, probs)


# ------------------------------------------------------------------------------ logits


def test_softmax_is_stable_and_exact() -> None:
    logits = np.random.default_rng(6).normal(size=(5, 4, 4)) * 30
    logits[0, 0, 0] = 1e4  # would overflow a naive exp
    expected = np.exp(logits - logits.max(axis=0)) / np.exp(logits - logits.max(axis=0)).sum(axis=0)
    out = softmax(logits.astype(np.float16))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    half = logits.astype(np.float16).astype(np.float64)
    expected = np.exp(half - half.max(axis=0)) / np.exp(half - half.max(axis=0)).sum(axis=0)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_logits_files_give_the_probabilities(tmp_path: Path) -> None:
    _, probs = stacked(tmp_path)
    logits = np.log(probs.astype(np.float64)) + 3.0  # softmax(log p + c) == p
    np.save(tmp_path / "logits.npy", logits)
    spec = InputSpec(
        labels=tmp_path / "masks",
        probs=tmp_path / "logits.npy",
        logits=True,
    )
    for image, expected in zip(load_all(open_inputs(spec).dataset), probs, strict=True):
        assert image.probs is not None
        np.testing.assert_allclose(image.probs, expected, atol=1e-6)


def test_logits_flag_on_probabilities_is_refused(tmp_path: Path) -> None:
    stacked(tmp_path)
    _, probs = stacked(tmp_path)
    np.save(tmp_path / "p.npy", probs)
    result = score(
        tmp_path,
        "--labels",
        str(tmp_path / "masks"),
        "--probs",
        str(tmp_path / "p.npy"),
        "--logits",
    )
    assert result.exit_code == 2
    assert "drop --logits" in result.output


# ------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("size", [(20, 28), (13, 17), (5, 21)])
def test_bilinear_upsampling_matches_pillow(size: tuple[int, int]) -> None:
    """Integer and fractional factors, one axis unchanged: Pillow's bilinear, renormalised."""
    probs = rng_probs(7, 3, 5, 7)
    out = resize_probs(probs, size)

    def pillow(plane: NDArray[np.float32]) -> NDArray[np.float32]:
        resized = Image.fromarray(plane, mode="F").resize(size[::-1], Image.Resampling.BILINEAR)
        return np.asarray(resized)

    planes = [pillow(probs[c]) for c in range(3)]
    total = sum(planes)
    for c in range(3):
        np.testing.assert_allclose(out[c], planes[c] / total, atol=1e-5)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, atol=1e-6)


def test_bilinear_upsampling_keeps_linear_ramps() -> None:
    ramp = np.linspace(0.2, 0.6, 8, dtype=np.float32)[None, :].repeat(4, 0)
    probs = np.stack([ramp, 1 - ramp]).astype(np.float16)
    out = resize_probs(probs, (8, 32))
    inner = out[0, :, 2:-2]  # away from the clamped borders, bilinear is exact on lines
    steps = np.diff(inner, axis=1)
    np.testing.assert_allclose(steps, steps.mean(), atol=1e-3)


def brute_majority(
    labels: NDArray[Any], rows: list[int], cols: list[int], ignore: set[int]
) -> NDArray[Any]:
    fill = min(ignore)
    out = np.full((len(rows), len(cols)), fill, dtype=np.int64)
    bounds_r = [*rows, labels.shape[0]]
    bounds_c = [*cols, labels.shape[1]]
    for i in range(len(rows)):
        for j in range(len(cols)):
            block = labels[bounds_r[i] : bounds_r[i + 1], bounds_c[j] : bounds_c[j + 1]].ravel()
            votes = [int(v) for v in block if int(v) not in ignore]
            if votes:
                counts = {v: votes.count(v) for v in set(votes)}
                best = max(counts.values())
                out[i, j] = min(v for v, c in counts.items() if c == best)
    return out


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_downsample_labels_majority(factor: int) -> None:
    rng = np.random.default_rng(factor)
    labels = rng.choice([0, 1, 2, 255], size=(10, 13), p=[0.3, 0.3, 0.2, 0.2]).astype(np.uint8)
    labels[:factor, :factor] = 255  # a block of ignore only stays ignore
    labels[factor : 2 * factor, :factor] = [1, 0][: factor % 2 + 1][0]
    got = downsample_labels(labels, factor, {255})
    rows, cols = list(range(0, 10, factor)), list(range(0, 13, factor))
    np.testing.assert_array_equal(got, brute_majority(labels, rows, cols, {255}))
    assert got[0, 0] == 255


def test_majority_ties_go_to_the_lowest_class() -> None:
    labels = np.array([[3, 1], [1, 3]], np.uint8)
    assert downsample_labels(labels, 2, {255})[0, 0] == 1
    assert downsample_labels(np.array([[2, 255], [255, 255]], np.uint8), 2, {255})[0, 0] == 2


def test_pool_labels_to_a_non_divisible_size() -> None:
    labels = np.random.default_rng(8).integers(0, 4, (17, 23)).astype(np.uint8)
    got = pool_labels(labels, (5, 7), {255})
    rows = [i * 17 // 5 for i in range(5)]
    cols = [j * 23 // 7 for j in range(7)]
    np.testing.assert_array_equal(got, brute_majority(labels, rows, cols, {255}))


def test_majority_one_class_at_a_time_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback for many blocks times many classes gives the same votes."""
    rng = np.random.default_rng(11)
    labels = rng.choice([0, 3, 7, 255], size=(19, 21)).astype(np.uint8)
    fast = downsample_labels(labels, 3, {255})
    monkeypatch.setattr(transforms, "_MAX_VOTE_TABLE", 0)
    np.testing.assert_array_equal(downsample_labels(labels, 3, {255}), fast)
    rows, cols = list(range(0, 19, 3)), list(range(0, 21, 3))
    np.testing.assert_array_equal(fast, brute_majority(labels, rows, cols, {255}))


def test_mean_pool_with_partial_blocks() -> None:
    probs = rng_probs(9, 3, 7, 5)
    got = mean_pool(probs, 3)
    for i, r in enumerate(range(0, 7, 3)):
        for j, c in enumerate(range(0, 5, 3)):
            np.testing.assert_allclose(
                got[:, i, j], probs[:, r : r + 3, c : c + 3].mean(axis=(1, 2)), rtol=1e-6
            )


def low_res(tmp_path: Path) -> tuple[Path, Path, NDArray[Any], list[NDArray[np.uint8]]]:
    ids = ["a", "b"]
    masks = [rng_labels(i, 16, 24, 3) for i in range(2)]
    write_masks(tmp_path / "masks", ids, masks)
    probs = np.stack([rng_probs(30 + i, 3, 4, 6) for i in range(2)])  # stride 4
    np.save(tmp_path / "p.npy", probs)
    return tmp_path / "masks", tmp_path / "p.npy", probs, masks


def test_resize_probs_upsamples_to_the_mask(tmp_path: Path) -> None:
    masks, path, probs, _ = low_res(tmp_path)
    spec = InputSpec(labels=masks, probs=path, resize=Resize.PROBS)
    for image, p in zip(load_all(open_inputs(spec).dataset), probs, strict=True):
        assert image.probs is not None and image.probs.shape == (3, 16, 24)
        np.testing.assert_allclose(image.probs, resize_probs(p, (16, 24)))


def test_resize_labels_pools_to_the_probabilities(tmp_path: Path) -> None:
    masks, path, _, labels = low_res(tmp_path)
    spec = InputSpec(labels=masks, probs=path, resize=Resize.LABELS)
    for image, mask in zip(load_all(open_inputs(spec).dataset), labels, strict=True):
        assert image.labels is not None
        np.testing.assert_array_equal(
            image.labels, brute_majority(mask, list(range(0, 16, 4)), list(range(0, 24, 4)), {255})
        )


@pytest.mark.parametrize("resize", ["probs", "labels"])
def test_resize_end_to_end(tmp_path: Path, resize: str) -> None:
    masks, path, _, _ = low_res(tmp_path)
    result = score(tmp_path, "--labels", str(masks), "--probs", str(path), "--resize", resize)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["valid_pixels"] == 2 * (16 * 24 if resize == "probs" else 4 * 6)


def test_downsample_end_to_end(tmp_path: Path) -> None:
    _, probs = stacked(tmp_path, n=2, k=3, h=8, w=10)
    np.save(tmp_path / "p.npy", probs)
    spec = InputSpec(labels=tmp_path / "masks", probs=tmp_path / "p.npy", downsample=2)
    for image, p in zip(load_all(open_inputs(spec).dataset), probs, strict=True):
        assert image.probs is not None and image.labels is not None
        assert image.labels.shape == (4, 5)
        np.testing.assert_allclose(image.probs, mean_pool(p, 2))
    result = score(
        tmp_path,
        "--labels",
        str(tmp_path / "masks"),
        "--probs",
        str(tmp_path / "p.npy"),
        "--downsample",
        "2",
    )
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------- ignore and pairing


def test_several_ignore_values(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path, n=2, k=4)
    labels = [np.asarray(Image.open(tmp_path / "masks" / f"{i}.png")) for i in ids]
    np.save(tmp_path / "p.npy", probs)
    result = score(
        tmp_path,
        "--labels",
        str(tmp_path / "masks"),
        "--probs",
        str(tmp_path / "p.npy"),
        "--ignore-index",
        "0",
        "--ignore-index",
        "255",
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "run" / "ranking.csv").open() as handle:
        rows = {r["image_id"]: r for r in csv.DictReader(handle)}
    for image_id, mask in zip(ids, labels, strict=True):
        assert int(rows[image_id]["valid_pixels"]) == int(np.count_nonzero(mask != 0))


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_manifest_with_array_rows_in_any_order(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path, n=4)
    np.save(tmp_path / "p.npy", probs)
    order = [2, 0, 3, 1]
    (tmp_path / "lists").mkdir()
    write_manifest(
        tmp_path / "lists" / "m.csv",
        [{"image_id": ids[i], "mask": f"../masks/{ids[i]}.png", "probs": str(i)} for i in order],
    )
    spec = InputSpec(probs=tmp_path / "p.npy", manifest=tmp_path / "lists" / "m.csv")
    assert_reads(open_inputs(spec).dataset, [ids[i] for i in order], probs[order])


def test_manifest_with_per_image_files_and_images(tmp_path: Path) -> None:
    ids, probs = stacked(tmp_path)
    for image_id, p in zip(ids, probs, strict=True):
        np.save(tmp_path / f"{image_id}-logits.npy", p)
    rows = [
        {
            "image_id": i,
            "mask": f"masks/{i}.png",
            "probs": f"{i}-logits.npy",
            "image": f"rgb/{i}.jpg",
        }
        for i in ids
    ]
    write_manifest(tmp_path / "m.csv", rows)
    dataset = open_inputs(InputSpec(manifest=tmp_path / "m.csv")).dataset
    assert dataset.images == [tmp_path / "rgb" / f"{i}.jpg" for i in ids]
    assert_reads(dataset, ids, probs)
    result = score(tmp_path, "--manifest", str(tmp_path / "m.csv"))
    assert result.exit_code == 0, result.output


def test_inspect_cli_on_a_dataset(tmp_path: Path) -> None:
    _, probs = stacked(tmp_path)
    np.save(tmp_path / "p.npy", probs)
    result = runner.invoke(
        app, ["inspect", "--labels", str(tmp_path / "masks"), "--probs", str(tmp_path / "p.npy")]
    )
    assert result.exit_code == 0, result.output
    assert "probabilities" in result.output and "no problems found" in result.output


def test_low_resolution_logits_are_resized_before_the_softmax(tmp_path: Path) -> None:
    masks, _, probs, _ = low_res(tmp_path)
    logits = np.log(probs.astype(np.float64)) * 2 - 5  # sums far from 1: renormalising would break
    np.save(tmp_path / "logits.npy", logits.astype(np.float16))
    spec = InputSpec(
        labels=masks,
        probs=tmp_path / "logits.npy",
        logits=True,
        resize=Resize.PROBS,
    )
    for image, raw in zip(
        load_all(open_inputs(spec).dataset), logits.astype(np.float16), strict=True
    ):
        assert image.probs is not None
        expected = softmax(resize_probs(raw, (16, 24), renormalise=False))
        np.testing.assert_allclose(image.probs, expected, atol=1e-6)


def test_ignore_colors_follow_an_ignore_override(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "version: 1\nignore: [255]\nignore_colors: [[0, 0, 0]]\nclasses:\n"
        "  - {name: a, color: [10, 0, 0]}\n  - {name: b, color: [0, 20, 0]}\n"
    )
    decoder = MaskDecoder.from_config(load_classes(config_path), frozenset({0, 200}))
    assert decoder.ignore_value == 0


@pytest.mark.parametrize("kind", ["zarr", "npy", "files"])
def test_datasets_pickle_for_other_processes(tmp_path: Path, kind: str) -> None:
    ids, probs = stacked(tmp_path)
    if kind == "zarr":
        zarr.create_array(store=str(tmp_path / "p.zarr"), data=probs)
        path = tmp_path / "p.zarr"
    elif kind == "npy":
        np.save(tmp_path / "p.npy", probs)
        path = tmp_path / "p.npy"
    else:
        path = tmp_path / "probs"
        path.mkdir()
        for image_id, p in zip(ids, probs, strict=True):
            np.save(path / f"{image_id}.npy", p)
    spec = InputSpec(labels=tmp_path / "masks", probs=path, downsample=2, pairing_check=False)
    dataset = open_inputs(spec).dataset
    copy = pickle.loads(pickle.dumps(dataset))
    for a, b in zip(load_all(dataset), load_all(copy), strict=True):
        assert a.probs is not None and b.probs is not None
        np.testing.assert_array_equal(a.probs, b.probs)


def test_s3_without_s3fs_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = sys.modules["fsspec.registry"]  # the module (fsspec.registry is its mapping)

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if not installed (the test extra has it)
    # ... and not imported by an earlier test either: fsspec keeps the classes it loaded
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    stacked(tmp_path)
    with pytest.raises(DatasetError, match=r"segaudit\[remote\]"):
        open_folder(tmp_path / "masks", "s3://segaudit-test-bucket/probs.zarr")


def conventions_dataset(tmp_path: Path, convention: str) -> tuple[Path, NDArray[np.bool_]]:
    """Masks in a dataset's own convention; returns the config and which pixels count."""
    rng = np.random.default_rng(12)
    config_name = {
        "cityscapes-labelids": "cityscapes-labelids.yaml",
        "voc-palette": "voc.yaml",
        "voc-rgb": "voc.yaml",
        "ade20k": "ade20k.yaml",
    }[convention]
    config = load_classes(REPO / "configs" / config_name)
    raw_values = {
        "cityscapes-labelids": np.arange(34),
        "voc-palette": np.array([*range(21), 255]),
        "voc-rgb": np.arange(21),
        "ade20k": np.arange(151),
    }[convention]
    raw = rng.choice(raw_values, size=(3, 12, 14)).astype(np.uint8)
    ids = ["a", "b", "c"]
    (tmp_path / "masks").mkdir()
    for image_id, mask in zip(ids, raw, strict=True):
        if convention == "voc-rgb":
            image = Image.fromarray(np.array(config.colors, np.uint8)[mask])
        else:
            image = Image.fromarray(mask)
            if convention == "voc-palette":
                image = image.convert("P")
        image.save(tmp_path / "masks" / f"{image_id}.png")
    class_ids = np.vectorize(lambda v: config.remap.get(int(v), int(v)))(raw)
    probs = np.stack([rng_probs(40 + i, config.num_classes, 12, 14) for i in range(3)])
    np.save(tmp_path / "p.npy", probs.astype(np.float16))
    return REPO / "configs" / config_name, ~np.isin(class_ids, list(config.ignore))


@pytest.mark.parametrize("convention", ["cityscapes-labelids", "voc-palette", "voc-rgb", "ade20k"])
def test_dataset_conventions_end_to_end(tmp_path: Path, convention: str) -> None:
    config, counted = conventions_dataset(tmp_path, convention)
    result = score(
        tmp_path,
        "--labels",
        str(tmp_path / "masks"),
        "--probs",
        str(tmp_path / "p.npy"),
        "--classes",
        str(config),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["valid_pixels"] == int(counted.sum())


def test_colour_masks_need_distinct_palette_colours(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "version: 1\nclasses:\n  - {name: a, color: [9, 9, 9]}\n  - {name: b, color: [9, 9, 9]}\n"
    )
    Image.fromarray(np.full((2, 2, 3), 9, np.uint8)).save(tmp_path / "m.png")
    decoder = MaskDecoder.from_config(load_classes(config_path))
    with pytest.raises(DatasetError, match=r"\(9, 9, 9\) is used twice"):
        read_mask("m", tmp_path / "m.png", decoder)


def test_big_endian_16bit_masks_are_remapped(tmp_path: Path) -> None:
    values = np.array([[1, 300], [7, 65535]], dtype=">u2")
    np.testing.assert_array_equal(
        MaskDecoder(remap={300: 2}).decode("m", tmp_path, values, "I;16B"), [[1, 2], [7, 65535]]
    )
