"""``segaudit convert`` through the CLI, and ``score`` on what it writes: results, atomic
output, bad input (exit 2, nothing written), interrupted conversions."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from typer.testing import CliRunner

from segaudit import ProbsWriter
from segaudit.cli import app
from segaudit.io.store import StoreProbs
from segaudit.io.transforms import softmax
from tests.conftest import synthetic_arrays, write_masks

IDS = [f"img_{i:02d}" for i in range(7)]


def invoke(*args: Any) -> Any:
    if args and args[0] == "score":  # the synthetic model is barely better than chance,
        args = (*args, "--no-pairing-check")  # which the pairing check (rightly) refuses
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _ranking(run: Path) -> list[dict[str, str]]:
    with (run / "ranking.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _data(tmp_path: Path, k: int = 5) -> NDArray[np.floating]:
    data = synthetic_arrays(3, n=len(IDS), k=k, h=12, w=16)
    write_masks(tmp_path / "masks", IDS, data.labels)
    np.save(tmp_path / "probs.npy", data.probs.astype(np.float16))
    return data.probs


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_convert_then_score(tmp_path: Path) -> None:
    _data(tmp_path)
    result = invoke(
        "convert", "--probs", tmp_path / "probs.npy", "--out", tmp_path / "top.zarr",
        "--top-k", 3, "--dtype", "uint8", "--ids", _ids_file(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "7 images, 5 classes, top-k" in result.output
    assert _leftovers(tmp_path) == []
    store = StoreProbs.open(str(tmp_path / "top.zarr"))
    assert store is not None and store.image_ids == IDS and store.top_k == 3
    run = invoke(
        "score", "--labels", tmp_path / "masks", "--probs", tmp_path / "top.zarr",
        "--out", tmp_path / "run", "--top", 0,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert sorted(r["image_id"] for r in _ranking(tmp_path / "run")) == IDS


def test_tail_stride_sets_how_the_rest_is_shared(tmp_path: Path) -> None:
    """--tail-stride 0: the rest shared evenly, no tail array; the default keeps a tail,
    and the two stores give outside labels different self-confidences."""
    _data(tmp_path, k=6)
    stores = {}
    for stride in (0, 4):
        out = tmp_path / f"s{stride}.zarr"
        result = invoke(
            "convert", "--probs", tmp_path / "probs.npy", "--out", out, "--top-k", 2,
            "--tail-stride", stride,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        store = StoreProbs.open(str(out))
        assert store is not None and store.tail_stride == stride
        assert ("tail" in zarr.open_group(str(out), mode="r")) is (stride > 0)
        stores[stride] = store.read(0, 1)[0]
    labels = np.zeros((12, 16), np.uint8)
    even, shared = (stores[s].digest("x", labels).self_confidence for s in (0, 4))  # type: ignore[union-attr]
    assert not np.array_equal(even, shared)
    bad = invoke(
        "convert", "--probs", tmp_path / "probs.npy", "--out", tmp_path / "bad.zarr",
        "--top-k", 2, "--tail-stride", -1,
    )  # fmt: skip
    assert bad.exit_code == 2 and not (tmp_path / "bad.zarr").exists()


def _ids_file(tmp_path: Path) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(IDS) + "\n")
    return path


def test_float16_conversion_scores_exactly_as_its_input(tmp_path: Path) -> None:
    _data(tmp_path)
    converted = invoke("convert", "--probs", tmp_path / "probs.npy", "--out", tmp_path / "p.zarr")
    assert converted.exit_code == 0, converted.output
    for name, probs in (("a", "probs.npy"), ("b", "p.zarr")):
        result = invoke(
            "score", "--labels", tmp_path / "masks", "--probs", tmp_path / probs,
            "--out", tmp_path / name, "--top", 0,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert _ranking(tmp_path / "a") == _ranking(tmp_path / "b")


def test_per_image_folder_of_logits(tmp_path: Path) -> None:
    """A folder of per-image logits of different sizes becomes a per-image store holding
    their softmax; it scores as the folder does with --logits."""
    rng = np.random.default_rng(4)
    folder, masks = tmp_path / "logits", tmp_path / "masks"
    folder.mkdir()
    sizes = [(8, 10), (9, 7), (6, 12)]
    ids = ["a", "b", "c"]
    for image_id, size in zip(ids, sizes, strict=True):
        np.save(folder / f"{image_id}.npy", (rng.normal(size=(4, *size)) * 3).astype(np.float32))
        write_masks(masks, [image_id], rng.integers(0, 4, size=(1, *size)).astype(np.uint8))
    out = tmp_path / "p.zarr"
    result = invoke("convert", "--probs", folder, "--out", out, "--logits", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    store = StoreProbs.open(str(out))
    assert store is not None and store.layout == "per-image" and store.image_ids == ids
    for row, image_id in enumerate(ids):
        (stored,) = store.read(row, row + 1)
        expected = softmax(np.load(folder / f"{image_id}.npy"))
        np.testing.assert_allclose(np.asarray(stored), expected, rtol=1e-6)
    for name, probs, extra in (("x", folder, ["--logits"]), ("y", out, [])):
        run = invoke("score", "--labels", masks, "--probs", probs, "--out", tmp_path / name, *extra)
        assert run.exit_code == 0, run.output
    assert _ranking(tmp_path / "x") == _ranking(tmp_path / "y")


def test_top_k_larger_than_the_classes_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    _data(tmp_path, k=5)
    out = tmp_path / "p.zarr"
    result = invoke("convert", "--probs", tmp_path / "probs.npy", "--out", out, "--top-k", 8)
    assert result.exit_code == 2
    assert "top_k=8 is more than the 5 classes" in result.output
    assert not out.exists() and _leftovers(tmp_path) == []


def test_repeated_ids_are_exit_2(tmp_path: Path) -> None:
    _data(tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join([*IDS[:-1], IDS[0]]) + "\n")
    result = invoke(
        "convert", "--probs", tmp_path / "probs.npy", "--out", tmp_path / "p.zarr", "--ids", ids
    )
    assert result.exit_code == 2 and "img_00 appear more than once" in result.output
    assert not (tmp_path / "p.zarr").exists() and _leftovers(tmp_path) == []


def test_class_count_changing_between_files_is_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i, k in enumerate([4, 4, 5]):
        probs = rng.dirichlet(np.ones(k), size=(6, 6)).transpose(2, 0, 1).astype(np.float16)
        np.save(folder / f"im{i}.npy", probs)
    result = invoke("convert", "--probs", folder, "--out", tmp_path / "p.zarr")
    assert result.exit_code == 2
    assert "image im2 has 5 classes but the store has 4" in result.output
    assert not (tmp_path / "p.zarr").exists() and _leftovers(tmp_path) == []


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    _data(tmp_path)
    out = tmp_path / "p.zarr"
    assert invoke("convert", "--probs", tmp_path / "probs.npy", "--out", out).exit_code == 0
    again = invoke("convert", "--probs", tmp_path / "probs.npy", "--out", out, "--dtype", "uint8")
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert StoreProbs.open(str(out)).encoding == "float16"  # type: ignore[union-attr]
    replaced = invoke(
        "convert", "--probs", tmp_path / "probs.npy", "--out", out, "--dtype", "uint8",
        "--overwrite",
    )  # fmt: skip
    assert replaced.exit_code == 0, replaced.output
    assert StoreProbs.open(str(out)).encoding == "uint8"  # type: ignore[union-attr]


def test_interrupted_convert_leaves_the_output_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _data(tmp_path)
    out = tmp_path / "p.zarr"
    assert invoke("convert", "--probs", tmp_path / "probs.npy", "--out", out).exit_code == 0
    monkeypatch.setattr("segaudit.io.probs.BLOCK_BYTES", 1)  # one image per block
    monkeypatch.setattr("segaudit.io.store.images_per_block", lambda *a, **k: 1)
    calls = {"n": 0}
    original = ProbsWriter.append

    def append(self: ProbsWriter, batch: Any, ids: Any = None) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(self, batch, ids)

    monkeypatch.setattr(ProbsWriter, "append", append)
    result = invoke(
        "convert", "--probs", tmp_path / "probs.npy", "--out", out, "--top-k", 2, "--overwrite"
    )
    assert result.exit_code == 130
    assert calls["n"] == 3
    assert StoreProbs.open(str(out)).encoding == "float16"  # type: ignore[union-attr]
    assert _leftovers(tmp_path) == []


def test_score_refuses_an_incomplete_store_with_exit_2(tmp_path: Path) -> None:
    probs = _data(tmp_path)
    writer = ProbsWriter(tmp_path / "p.zarr")
    writer.append(probs[:3], ids=IDS[:3])  # never closed: the loop died
    result = invoke(
        "score", "--labels", tmp_path / "masks", "--probs", tmp_path / "p.zarr",
        "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "incomplete" in result.output and "p.zarr" in result.output
    assert not (tmp_path / "run" / "ranking.csv").exists()


def test_score_refuses_a_top_k_store_whose_k_exceeds_the_classes(tmp_path: Path) -> None:
    probs = _data(tmp_path)
    with ProbsWriter(tmp_path / "p.zarr", top_k=2) as writer:
        writer.append(probs, ids=IDS)
    zarr.open_group(str(tmp_path / "p.zarr"), mode="r+").attrs["top_k"] = 6
    result = invoke(
        "score", "--labels", tmp_path / "masks", "--probs", tmp_path / "p.zarr",
        "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.exit_code == 2 and "top_k is 6 but the store has 5 classes" in result.output


def test_score_refuses_logits_on_a_store(tmp_path: Path) -> None:
    probs = _data(tmp_path)
    with ProbsWriter(tmp_path / "p.zarr", dtype="uint8") as writer:
        writer.append(probs, ids=IDS)
    result = invoke(
        "score", "--labels", tmp_path / "masks", "--probs", tmp_path / "p.zarr",
        "--out", tmp_path / "run", "--logits",
    )  # fmt: skip
    assert result.exit_code == 2 and "drop --logits" in result.output


def test_convert_of_a_compact_store(tmp_path: Path) -> None:
    """A compact store converts back (expanded) to a dense one; both score alike."""
    probs = _data(tmp_path)
    with ProbsWriter(tmp_path / "u8.zarr", dtype="uint8") as writer:
        writer.append(probs, ids=IDS)
    out = tmp_path / "f16.zarr"
    assert invoke("convert", "--probs", tmp_path / "u8.zarr", "--out", out).exit_code == 0
    for name, store in (("a", "u8.zarr"), ("b", "f16.zarr")):
        run = invoke(
            "score", "--labels", tmp_path / "masks", "--probs", tmp_path / store,
            "--out", tmp_path / name, "--top", 0,
        )  # fmt: skip
        assert run.exit_code == 0, run.output
    assert _ranking(tmp_path / "a") == _ranking(tmp_path / "b")
