"""ProbsWriter: what it stores, what it refuses, interrupted writes, and the guide's snippets
(run with numpy stand-ins for torch, mmseg and transformers)."""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray

from segaudit import ProbsWriter, SegauditError
from segaudit.core.audit import run_audit
from segaudit.core.compact import TAIL_MAX_CLASSES, TAIL_STRIDE
from segaudit.errors import DatasetError, OptionError, OutputError
from segaudit.io.inputs import InputSpec, open_inputs
from segaudit.io.sources import open_probs
from segaudit.io.store import StoreProbs
from segaudit.io.transforms import resize_probs, softmax
from tests.conftest import synthetic_arrays, write_masks

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "probabilities.md"


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"img{i:03d}" for i in range(start, start + n)]


def _logits(rng: np.random.Generator, *shape: int) -> NDArray[np.float32]:
    return (rng.normal(size=shape) * 3).astype(np.float32)


def test_dense_store_round_trip(tmp_path: Path) -> None:
    data = synthetic_arrays(0, n=5, k=4, h=6, w=7)
    with ProbsWriter(tmp_path / "p.zarr") as writer:
        writer.append(data.probs[:3], ids=_ids(3))
        writer.append(data.probs[3:], ids=_ids(2, 3))
    group = zarr.open_group(str(tmp_path / "p.zarr"), mode="r")
    attrs = dict(group.attrs)
    assert attrs["complete"] is True and attrs["encoding"] == "float16"
    assert (attrs["layout"], attrs["num_classes"], attrs["images"]) == ("stacked", 4, 5)
    assert attrs["image_ids"] == _ids(5)
    assert group["probs"].chunks == (1, 4, 6, 7)  # one image per chunk
    reader = open_probs(tmp_path / "p.zarr")
    assert reader.image_ids == _ids(5)
    stored = reader.read(0, 5)
    assert isinstance(stored, np.ndarray)
    np.testing.assert_array_equal(stored, data.probs.astype(np.float16))


def test_nhwc_batches_and_array_likes_store_the_same(tmp_path: Path) -> None:
    data = synthetic_arrays(1, n=3, k=5, h=4, w=6)

    class Tensor:  # what a torch tensor offers numpy after .cpu()
        def __init__(self, array: NDArray[Any]) -> None:
            self.array = array

        def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
            return self.array

    with ProbsWriter(tmp_path / "a.zarr") as writer:
        writer.append(data.probs)
    with ProbsWriter(tmp_path / "b.zarr", layout="nhwc") as writer:
        writer.append(Tensor(np.moveaxis(data.probs, 1, -1)))
    a, b = open_probs(tmp_path / "a.zarr").read(0, 3), open_probs(tmp_path / "b.zarr").read(0, 3)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert open_probs(tmp_path / "a.zarr").image_ids is None  # no ids given: none stored


def test_logits_are_softmaxed_when_written(tmp_path: Path) -> None:
    logits = _logits(np.random.default_rng(2), 2, 3, 5, 5)
    with ProbsWriter(tmp_path / "p.zarr", logits=True, dtype="float32") as writer:
        writer.append(logits, ids=["a", "b"])
    stored = np.asarray(open_probs(tmp_path / "p.zarr").read(0, 2))
    np.testing.assert_allclose(stored, np.stack([softmax(x) for x in logits]), rtol=1e-6)
    assert zarr.open_group(str(tmp_path / "p.zarr"), mode="r").attrs["softmax_applied"] is True


def test_logits_without_the_flag_are_refused(tmp_path: Path) -> None:
    writer = ProbsWriter(tmp_path / "p.zarr")
    with pytest.raises(OptionError, match="logits=True"):
        writer.append(_logits(np.random.default_rng(3), 1, 3, 4, 4), ids=["a"])


def test_images_of_different_sizes_go_per_image(tmp_path: Path) -> None:
    """A list batch makes a per-image store; it scores as the same files in a folder do."""
    rng = np.random.default_rng(4)
    sizes = [(6, 8), (5, 9), (7, 4)]
    probs = [rng.dirichlet(np.ones(3), size=s).transpose(2, 0, 1).astype(np.float16) for s in sizes]
    labels = [rng.integers(0, 3, size=s).astype(np.uint8) for s in sizes]
    ids = _ids(3)
    masks, folder = tmp_path / "masks", tmp_path / "files"
    masks.mkdir()
    folder.mkdir()
    for i, image_id in enumerate(ids):
        write_masks(masks, [image_id], labels[i][None])
        np.save(folder / f"{image_id}.npy", probs[i])
    with ProbsWriter(tmp_path / "p.zarr") as writer:
        writer.append(probs[:2], ids=ids[:2])
        writer.append(probs[2:], ids=ids[2:])
    reader = open_probs(tmp_path / "p.zarr")
    assert isinstance(reader, StoreProbs) and reader.layout == "per-image"
    a = run_audit(
        open_inputs(InputSpec(labels=masks, probs=tmp_path / "p.zarr", pairing_check=False)).dataset
    )
    b = run_audit(open_inputs(InputSpec(labels=masks, probs=folder, pairing_check=False)).dataset)
    assert a.images == b.images
    np.testing.assert_array_equal(a.confusion, b.confusion)


def test_interrupted_write_is_refused_by_readers(tmp_path: Path) -> None:
    data = synthetic_arrays(5, n=4, k=3, h=5, w=5)
    path = tmp_path / "p.zarr"
    with pytest.raises(KeyboardInterrupt), ProbsWriter(path, top_k=2, dtype="uint8") as writer:
        writer.append(data.probs[:2], ids=_ids(2))
        raise KeyboardInterrupt  # the loop dies mid-way
    assert zarr.open_group(str(path), mode="r").attrs["complete"] is False
    with pytest.raises(DatasetError, match=r"incomplete.*write it again"):
        open_probs(path)
    write_masks(tmp_path / "masks", _ids(2), data.labels[:2])
    with pytest.raises(DatasetError, match="incomplete"):
        open_inputs(InputSpec(labels=tmp_path / "masks", probs=path, pairing_check=False))


def test_a_store_left_open_is_incomplete(tmp_path: Path) -> None:
    """A process killed before close() never wrote complete=true."""
    writer = ProbsWriter(tmp_path / "p.zarr")
    writer.append(synthetic_arrays(6, n=2).probs, ids=["a", "b"])
    with pytest.raises(DatasetError, match="incomplete"):
        open_probs(tmp_path / "p.zarr")
    writer.close()
    assert open_probs(tmp_path / "p.zarr").image_ids == ["a", "b"]


@pytest.mark.parametrize(
    ("second_ids", "message"),
    [(["b", "b"], "b appear more than once"), (["c", "a"], "a appear more than once")],
)
def test_repeated_ids_are_refused_and_nothing_of_the_batch_is_written(
    tmp_path: Path, second_ids: list[str], message: str
) -> None:
    data = synthetic_arrays(7, n=4, k=3)
    writer = ProbsWriter(tmp_path / "p.zarr")
    writer.append(data.probs[:2], ids=["a", "z"])
    with pytest.raises(OptionError, match=message):
        writer.append(data.probs[2:], ids=second_ids)
    writer.close()
    reader = open_probs(tmp_path / "p.zarr")
    assert reader.shape[0] == 2 and reader.image_ids == ["a", "z"]


def test_class_count_changing_mid_write_is_refused(tmp_path: Path) -> None:
    writer = ProbsWriter(tmp_path / "p.zarr")
    writer.append(synthetic_arrays(8, n=2, k=4).probs, ids=["a", "b"])
    with pytest.raises(OptionError, match=r"image c has 5 classes but the store has 4"):
        writer.append(synthetic_arrays(9, n=1, k=5).probs, ids=["c"])
    assert zarr.open_group(str(tmp_path / "p.zarr"), mode="r").attrs["images"] == 2
    with pytest.raises(DatasetError, match="incomplete"):
        open_probs(tmp_path / "p.zarr")


def test_top_k_larger_than_the_classes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="top_k=6 is more than the 5 classes"):
        ProbsWriter(tmp_path / "a.zarr", top_k=6, num_classes=5)
    writer = ProbsWriter(tmp_path / "b.zarr", top_k=6)
    with pytest.raises(OptionError, match="top_k=6 is more than the 5 classes"):
        writer.append(synthetic_arrays(10, n=1, k=5).probs, ids=["a"])


def test_other_bad_batches(tmp_path: Path) -> None:
    data = synthetic_arrays(11, n=2, k=3, h=4, w=4)
    writer = ProbsWriter(tmp_path / "p.zarr")
    with pytest.raises(OptionError, match="batch\\[None\\]"):
        writer.append(data.probs[0])
    with pytest.raises(OptionError, match="dtype int64"):
        writer.append(np.zeros((1, 3, 4, 4), np.int64))
    with pytest.raises(OptionError, match="NaN"):
        writer.append(np.full((1, 3, 4, 4), np.nan, np.float32))
    with pytest.raises(OptionError, match="2 ids for a batch of 1"):
        writer.append(data.probs[:1], ids=["a", "b"])
    writer.append(data.probs[:1], ids=["a"])
    with pytest.raises(OptionError, match="storage='per-image'"):
        writer.append(synthetic_arrays(12, n=1, k=3, h=5, w=4).probs, ids=["b"])
    with pytest.raises(OptionError, match="give them every batch"):
        writer.append(data.probs[1:])
    with pytest.raises(OptionError, match="no images"):
        ProbsWriter(tmp_path / "empty.zarr").close()
    bad_options: list[dict[str, Any]] = [
        {"dtype": "int8"},
        {"storage": "rows"},
        {"top_k": 0},
        {"top_k": 2, "dtype": "float32"},
    ]
    for bad in bad_options:
        with pytest.raises(ValueError):  # SegauditError and ValueError, as input errors are
            ProbsWriter(tmp_path / "x.zarr", **bad)


def test_existing_paths_are_not_replaced_by_accident(tmp_path: Path) -> None:
    data = synthetic_arrays(13, n=1)
    with ProbsWriter(tmp_path / "p.zarr") as writer:
        writer.append(data.probs)
    with pytest.raises(OutputError, match="overwrite=True"):
        ProbsWriter(tmp_path / "p.zarr")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not a zarr store"):
        ProbsWriter(tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "a.txt").exists()
    with ProbsWriter(tmp_path / "p.zarr", overwrite=True, dtype="uint8") as writer:
        writer.append(data.probs)
    assert isinstance(open_probs(tmp_path / "p.zarr"), StoreProbs)


def test_store_attributes_that_do_not_add_up_are_refused(tmp_path: Path) -> None:
    data = synthetic_arrays(14, n=2, k=4)
    with ProbsWriter(tmp_path / "p.zarr", top_k=2, dtype="uint8") as writer:
        writer.append(data.probs, ids=["a", "b"])
    group = zarr.open_group(str(tmp_path / "p.zarr"), mode="r+")
    group.attrs["top_k"] = 9  # K is 4
    with pytest.raises(DatasetError, match="top_k is 9 but the store has 4 classes"):
        open_probs(tmp_path / "p.zarr")
    group.attrs["top_k"] = 2
    group.attrs["images"] = 3  # truncated: the arrays hold 2
    with pytest.raises(DatasetError, match=r"ids for 3 images|truncated"):
        open_probs(tmp_path / "p.zarr")


def test_top_k_stores_keep_a_tail_unless_told_not_to(tmp_path: Path) -> None:
    data = synthetic_arrays(15, n=3, k=6, h=10, w=13)
    with ProbsWriter(tmp_path / "t.zarr", top_k=2, dtype="uint8", tail_stride=4) as writer:
        writer.append(data.probs, ids=["a", "b", "c"])
    group = zarr.open_group(str(tmp_path / "t.zarr"), mode="r")
    assert group.attrs["tail_stride"] == 4
    assert group["tail"].shape == (3, 6, 3, 4) and group["tail"].dtype == np.float16
    reader = open_probs(tmp_path / "t.zarr")
    assert isinstance(reader, StoreProbs) and reader.tail_stride == 4
    with ProbsWriter(tmp_path / "e.zarr", top_k=2, dtype="uint8", tail_stride=0) as writer:
        writer.append(data.probs, ids=["a", "b", "c"])
    assert "tail" not in zarr.open_group(str(tmp_path / "e.zarr"), mode="r")
    with pytest.raises(OptionError, match="tail_stride"):
        ProbsWriter(tmp_path / "x.zarr", top_k=2, tail_stride=-1)
    with pytest.raises(OptionError, match="top-k stores only"):
        ProbsWriter(tmp_path / "x.zarr", tail_stride=4)


@pytest.mark.parametrize(("classes", "stride"), [(6, TAIL_STRIDE), (TAIL_MAX_CLASSES + 1, 0)])
def test_the_default_tail_depends_on_the_class_count(
    tmp_path: Path, classes: int, stride: int
) -> None:
    probs = np.random.default_rng(19).dirichlet(np.ones(classes), size=(2, 5, 7))
    with ProbsWriter(tmp_path / "p.zarr", top_k=3, dtype="uint8") as writer:
        writer.append(probs.transpose(0, 3, 1, 2))
    group = zarr.open_group(str(tmp_path / "p.zarr"), mode="r")
    assert group.attrs["tail_stride"] == stride
    assert ("tail" in group) is (stride > 0)


def test_a_top_k_store_whose_tail_does_not_fit_is_refused(tmp_path: Path) -> None:
    data = synthetic_arrays(16, n=2, k=4, h=10, w=13)
    with ProbsWriter(tmp_path / "p.zarr", top_k=2, tail_stride=4) as writer:
        writer.append(data.probs, ids=["a", "b"])
    group = zarr.open_group(str(tmp_path / "p.zarr"), mode="r+")
    group.attrs["tail_stride"] = 2  # the tail array was made for 4
    with pytest.raises(DatasetError, match="tail array is"):
        open_probs(tmp_path / "p.zarr")
    group.attrs["tail_stride"] = 10**9
    with pytest.raises(DatasetError, match="tail_stride is"):
        open_probs(tmp_path / "p.zarr")
    group.attrs["tail_stride"] = "8"
    with pytest.raises(DatasetError, match="tail_stride"):
        open_probs(tmp_path / "p.zarr")


def test_a_per_image_store_with_a_missing_or_forged_tail_skips_that_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    sizes = [(6, 8), (5, 9), (4, 4)]
    probs = [rng.dirichlet(np.ones(4), size=s).transpose(2, 0, 1) for s in sizes]
    labels = [rng.integers(0, 4, size=s).astype(np.uint8) for s in sizes]
    masks = tmp_path / "masks"
    masks.mkdir()
    for i, image_id in enumerate(["a", "b", "c"]):
        write_masks(masks, [image_id], labels[i][None])
    with ProbsWriter(tmp_path / "p.zarr", top_k=2, dtype="uint8") as writer:
        writer.append(probs, ids=["a", "b", "c"])
    group = zarr.open_group(str(tmp_path / "p.zarr"), mode="r+")
    group["images/0"].create_array("big", shape=(4, 10**6, 10**6), dtype="float16")
    shutil.rmtree(tmp_path / "p.zarr" / "images" / "0" / "tail")
    (tmp_path / "p.zarr" / "images" / "0" / "big").rename(
        tmp_path / "p.zarr" / "images" / "0" / "tail"
    )  # a forged tail of 8 TB: refused by its shape, never read
    shutil.rmtree(tmp_path / "p.zarr" / "images" / "1" / "tail")
    spec = InputSpec(labels=masks, probs=tmp_path / "p.zarr", pairing_check=False)
    result = run_audit(open_inputs(spec).dataset)
    skipped = {r.image_id: str(r.skipped) for r in result.images if r.skipped}
    assert list(skipped) == ["a", "b"]
    assert "tail is (4, 1000000, 1000000)" in skipped["a"] and "tail" in skipped["b"]


def test_score_options_that_do_not_apply_to_a_store(tmp_path: Path) -> None:
    from segaudit.io.transforms import Layout

    data = synthetic_arrays(15, n=2, k=3)
    write_masks(tmp_path / "masks", ["a", "b"], data.labels)
    with ProbsWriter(tmp_path / "p.zarr", top_k=2, dtype="uint8") as writer:
        writer.append(data.probs, ids=["a", "b"])
    base = InputSpec(labels=tmp_path / "masks", probs=tmp_path / "p.zarr", pairing_check=False)
    for spec, message in (
        (replace(base, logits=True), "drop --logits"),
        (replace(base, layout=Layout.NHWC), "drop --layout"),
        (replace(base, downsample=2), "--resize/--downsample"),
    ):
        with pytest.raises(SegauditError, match=message):
            open_inputs(spec)


def test_store_scores_on_dask_workers_after_pickling(tmp_path: Path) -> None:
    import pickle

    data = synthetic_arrays(16, n=3, k=3)
    with ProbsWriter(tmp_path / "p.zarr", top_k=2, dtype="uint8") as writer:
        writer.append(data.probs, ids=_ids(3))
    reader = open_probs(tmp_path / "p.zarr")
    copy = pickle.loads(pickle.dumps(reader))
    a, b = reader.read(0, 3), copy.read(0, 3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.expand(), y.expand())  # type: ignore[union-attr]


# ------------------------------------------------------------------ the guide's snippets


class FakeTensor:
    """The few torch.Tensor methods the snippets use, over a numpy array."""

    def __init__(self, array: NDArray[Any]) -> None:
        self.array = np.asarray(array)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def cuda(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def detach(self) -> FakeTensor:
        return self

    def float(self) -> FakeTensor:
        return FakeTensor(self.array.astype(np.float32))

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        return self.array if dtype is None else self.array.astype(dtype)


def _interpolate(
    tensor: FakeTensor, size: tuple[int, int], mode: str, align_corners: bool
) -> FakeTensor:
    assert mode == "bilinear" and not align_corners
    out = [resize_probs(x, tuple(size), renormalise=False) for x in tensor.array]
    return FakeTensor(np.stack(out))


def _fake_torch() -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.no_grad = contextlib.nullcontext  # type: ignore[attr-defined]
    functional = types.SimpleNamespace(interpolate=_interpolate)
    torch.nn = types.SimpleNamespace(functional=functional)  # type: ignore[attr-defined]
    return torch


def _snippet(name: str, page: Path = GUIDE) -> str:
    text = page.read_text(encoding="utf-8")
    match = re.search(rf"<!-- snippet: {name} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"{page} has no snippet {name}"
    return match.group(1)


def _check_store(path: Path, ids: list[str], logits: list[NDArray[np.float32]], k: int) -> None:
    """Complete, with the ids, and each pixel's most likely stored class is the argmax (or
    within one uint8 step of it: near-ties may round to the same code)."""
    reader = open_probs(path)
    assert isinstance(reader, StoreProbs) and reader.image_ids == ids
    assert reader.encoding == "top-k" and reader.top_k == k
    for row, expected in enumerate(logits):
        (image,) = reader.read(row, row + 1)
        dense = image.expand()  # type: ignore[union-attr]
        probs = softmax(expected)
        chosen = np.take_along_axis(probs, dense.argmax(axis=0)[None], axis=0)[0]
        assert (chosen >= probs.max(axis=0) - 2 / 255).all()
        assert (dense.argmax(axis=0) == probs.argmax(axis=0)).mean() > 0.9
        np.testing.assert_allclose(dense.max(axis=0), probs.max(axis=0), atol=1 / 255 + 1e-3)


def test_the_readme_shows_the_guide_s_pytorch_snippet() -> None:
    readme = GUIDE.parents[2] / "README.md"
    assert _snippet("pytorch") == _snippet("pytorch", readme)


def test_pytorch_snippet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch())
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(20)
    batches = [_logits(rng, 2, 19, 8, 10) for _ in range(3)]
    ids = [_ids(2, 2 * b) for b in range(3)]

    class Model:
        def eval(self) -> None:
            pass

        def __call__(self, images: FakeTensor) -> FakeTensor:
            return images  # the stand-in "images" are the logits

    loader = [(FakeTensor(b), i) for b, i in zip(batches, ids, strict=True)]
    exec(_snippet("pytorch"), {"model": Model(), "loader": loader})
    everyone = [i for batch_ids in ids for i in batch_ids]
    _check_store(tmp_path / "probs.zarr", everyone, [x for b in batches for x in b], 4)


def test_mmseg_snippet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(21)
    paths = [Path(f"/data/ade/{name}.jpg") for name in ("a1", "b2", "c3")]
    logits = {p: _logits(rng, 150, 6 + i, 9 - i) for i, p in enumerate(paths)}  # sizes differ
    apis = types.ModuleType("mmseg.apis")

    def inference_model(model: object, path: str) -> Any:
        data = FakeTensor(logits[Path(path)])
        return types.SimpleNamespace(seg_logits=types.SimpleNamespace(data=data))

    apis.init_model = lambda config, checkpoint, device: object()  # type: ignore[attr-defined]
    apis.inference_model = inference_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mmseg", types.ModuleType("mmseg"))
    monkeypatch.setitem(sys.modules, "mmseg.apis", apis)
    monkeypatch.chdir(tmp_path)
    namespace = {"config_file": "cfg.py", "checkpoint_file": "ckpt.pth", "image_paths": paths}
    exec(_snippet("mmseg"), namespace)
    reader = open_probs(tmp_path / "probs.zarr")
    assert isinstance(reader, StoreProbs) and reader.layout == "per-image"
    _check_store(tmp_path / "probs.zarr", ["a1", "b2", "c3"], list(logits.values()), 5)


def test_transformers_snippet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch())
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(22)
    small = [_logits(rng, 2, 19, 4, 6) for _ in range(2)]  # the model's 1/4-size logits
    loader = [
        {
            "pixel_values": FakeTensor(s),
            "labels": FakeTensor(np.zeros((2, 16, 24), np.int64)),
            "ids": _ids(2, 2 * b),
        }
        for b, s in enumerate(small)
    ]

    def model(pixel_values: FakeTensor) -> Any:
        return types.SimpleNamespace(logits=pixel_values)

    exec(_snippet("transformers"), {"model": model, "loader": loader})
    upsampled = [resize_probs(x, (16, 24), renormalise=False) for s in small for x in s]
    _check_store(tmp_path / "probs.zarr", _ids(4), upsampled, 4)
