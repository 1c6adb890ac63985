"""Readers, the basics: masks as class ids, memory-mapped .npy, zarr blocks by chunk,
pairing masks with probabilities by id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from PIL import Image

from segaudit.errors import DatasetError, ImageError
from segaudit.io.inputs import open_folder
from segaudit.io.masks import read_mask
from segaudit.io.probs import NpyProbs, ZarrProbs
from segaudit.io.sources import open_probs


def ids_image(h: int = 9, w: int = 13) -> np.ndarray[Any, np.dtype[np.uint8]]:
    values = np.arange(h * w).reshape(h, w) % 21
    values[0, 0] = 255
    return values.astype(np.uint8)


def test_mode_l_mask_reads_class_ids(tmp_path: Path) -> None:
    ids = ids_image()
    Image.fromarray(ids).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "L"
    np.testing.assert_array_equal(read_mask("a", tmp_path / "a.png"), ids)


def test_mode_p_mask_reads_indices_not_colours(tmp_path: Path) -> None:
    ids = ids_image()
    image = Image.fromarray(ids)
    rng = np.random.default_rng(0)
    image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())  # VOC-like colours
    image.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as saved:
        assert saved.mode == "P"
    np.testing.assert_array_equal(read_mask("p", tmp_path / "p.png"), ids)


def test_unsupported_mode_is_an_image_error_naming_the_mode(tmp_path: Path) -> None:
    ids = ids_image()
    Image.fromarray(np.stack([ids, ids], axis=2), mode="LA").save(tmp_path / "la.png")
    with pytest.raises(ImageError, match="mode LA") as caught:
        read_mask("la", tmp_path / "la.png")
    assert caught.value.image_id == "la" and "la.png" in caught.value.reason


def test_rgb_mask_without_a_palette_is_refused(tmp_path: Path) -> None:
    rgb = np.repeat(ids_image()[..., None], 3, axis=2)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetError, match=r"rgb\.png: colour \(RGB\) mask but no palette"):
        read_mask("rgb", tmp_path / "rgb.png")


def test_npy_is_memory_mapped_and_read_without_copies(
    tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path, n=5, k=3, h=6, w=7, fmt="npy", dtype=np.float32)
    reader = open_probs(made.probs_path)
    assert isinstance(reader, NpyProbs)
    assert isinstance(reader._array, np.memmap)
    assert reader.block_size >= 1  # whole images, about BLOCK_BYTES a block
    block = reader.read(1, 3)
    assert np.shares_memory(block, reader._array)  # a view of the mapped file, not a copy
    np.testing.assert_array_equal(block, made.probs[1:3])


@pytest.mark.parametrize(("chunk", "sizes"), [(1, [1] * 7), (3, [3, 3, 1]), (7, [7])])
def test_zarr_blocks_follow_chunks(
    chunk: int,
    sizes: list[int],
    tmp_path: Path,
    make_dataset: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("segaudit.io.probs.BLOCK_BYTES", 1)  # one chunk per block
    made = make_dataset(tmp_path, n=7, k=3, h=5, w=6, chunk=chunk)
    reader = open_probs(made.probs_path)
    assert isinstance(reader, ZarrProbs)
    assert reader.block_size == chunk
    assert reader.image_ids == made.ids
    dataset = open_folder(made.masks, made.probs_path)
    blocks = dataset.blocks()
    assert [len(b) for b in blocks] == sizes
    assert [i for b in blocks for i in b] == list(range(7))


def test_ids_come_from_sorted_mask_names_without_the_attribute(
    tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    made = make_dataset(tmp_path, n=4, k=3, h=5, w=6, ids_attribute=False)
    assert open_probs(made.probs_path).image_ids is None
    assert list(open_folder(made.masks, made.probs_path).image_ids) == sorted(made.ids)


def test_masks_pair_with_probabilities_by_id(
    tmp_path: Path, make_dataset: Callable[..., Any]
) -> None:
    """Probabilities stored in reverse order, with their ids: each mask meets its own."""
    made = make_dataset(tmp_path, n=5, k=3, h=5, w=6)
    reversed_path = tmp_path / "reversed.zarr"
    array = zarr.create_array(
        store=str(reversed_path), shape=made.probs.shape, chunks=(2, 3, 5, 6), dtype="float16"
    )
    array[...] = made.probs[::-1]
    array.attrs["image_ids"] = made.ids[::-1]
    dataset = open_folder(made.masks, reversed_path)
    assert list(dataset.image_ids) == made.ids[::-1]
    for block in dataset.blocks():
        for image in dataset.load(block):
            original = made.ids.index(image.image_id)
            assert image.probs is not None and image.labels is not None
            np.testing.assert_array_equal(image.probs, made.probs[original])
            np.testing.assert_array_equal(image.labels, made.labels[original])
