"""Bad input, case by case, through the CLI.

Whole-dataset problems exit 2 with one line naming the file and nothing written; problems
of one image become a skipped row with its reason and a warning (fatal with --strict).
"""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app

runner = CliRunner()
N, K, H, W = 4, 4, 6, 8


def make(tmp_path: Path, *, fmt: str = "npy") -> tuple[Path, Path, NDArray[np.float32]]:
    """Masks ``im0..im3`` (mode L) and probabilities that agree with them mostly."""
    rng = np.random.default_rng(0)
    masks = tmp_path / "masks"
    masks.mkdir()
    probs = np.empty((N, K, H, W), np.float32)
    for i in range(N):
        labels = rng.integers(0, K, (H, W)).astype(np.uint8)
        Image.fromarray(labels).save(masks / f"im{i}.png")
        logits = rng.normal(size=(K, H, W))
        logits[labels, np.arange(H)[:, None], np.arange(W)] += 2
        probs[i] = np.exp(logits) / np.exp(logits).sum(axis=0)
    if fmt == "files":
        path = tmp_path / "probs"
        path.mkdir()
        for i in range(N):
            np.save(path / f"im{i}.npy", probs[i])
    else:
        path = tmp_path / "probs.npy"
        np.save(path, probs)
    return masks, path, probs


def run(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(app, ["score", "--out", str(tmp_path / "run"), "--top", "1", *args])


def score(tmp_path: Path, masks: Path, probs: Path | str, *args: str) -> Any:
    return run(tmp_path, "--labels", str(masks), "--probs", str(probs), *args)


def refused(result: Any, tmp_path: Path, *needles: str) -> str:
    """Exit 2, one error line that contains the needles, no traceback, nothing written."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert not (tmp_path / "run" / "ranking.csv").exists()
    assert not (tmp_path / "run" / "summary.json").exists()
    return errors[0]


def skipped(result: Any, tmp_path: Path, image_id: str, *needles: str) -> str:
    """Exit 0, the image's row says why it was skipped, a warning was printed."""
    assert result.exit_code == 0, result.output
    with (tmp_path / "run" / "ranking.csv").open() as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    reason = rows[image_id]["skipped"]
    for needle in needles:
        assert needle in reason, reason
    assert f"skipped {image_id}" in result.output.replace("\n", " ")
    assert sum(bool(row["skipped"]) for row in rows.values()) == 1
    return reason


def save_probs(path: Path, probs: NDArray[Any]) -> None:
    np.save(path, probs)


# -------------------------------------------------------------------------- pairing


def test_missing_mask(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path, fmt="files")
    (masks / "im2.png").unlink()
    refused(score(tmp_path, masks, probs), tmp_path, str(probs), "im2")


def test_extra_mask(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path, fmt="files")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(masks / "stray.png")
    refused(score(tmp_path, masks, probs), tmp_path, str(masks), "stray")


def test_extra_mask_for_an_array_with_image_ids(tmp_path: Path) -> None:
    masks, _, probs = make(tmp_path)
    array = zarr.create_array(store=str(tmp_path / "p.zarr"), data=probs)
    array.attrs["image_ids"] = [f"im{i}" for i in range(N)]
    Image.fromarray(np.zeros((H, W), np.uint8)).save(masks / "stray.png")
    refused(score(tmp_path, masks, tmp_path / "p.zarr"), tmp_path, str(masks), "stray")


def test_duplicate_ids(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    ids = tmp_path / "ids.txt"
    ids.write_text("im0\nim1\nim1\nim3\n")
    refused(
        score(tmp_path, masks, probs, "--ids", str(ids)), tmp_path, str(ids), "duplicate", "im1"
    )


def test_duplicate_ids_in_a_manifest(tmp_path: Path) -> None:
    _, probs, _ = make(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("image_id,mask,probs\nim0,masks/im0.png,0\nim0,masks/im1.png,1\n")
    result = run(tmp_path, "--manifest", str(manifest), "--probs", str(probs))
    refused(result, tmp_path, str(manifest), "duplicate image id im0")


def test_manifest_without_required_columns(tmp_path: Path) -> None:
    make(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,mask\nim0,masks/im0.png\n")
    refused(run(tmp_path, "--manifest", str(manifest)), tmp_path, str(manifest), "image_id")


def test_empty_mask_folder(tmp_path: Path) -> None:
    _, probs, _ = make(tmp_path)
    (tmp_path / "empty").mkdir()
    refused(
        score(tmp_path, tmp_path / "empty", probs), tmp_path, str(tmp_path / "empty"), "no .png"
    )


# ---------------------------------------------------------------------- broken masks


def test_corrupt_png(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    (masks / "im1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    skipped(score(tmp_path, masks, probs), tmp_path, "im1", "im1.png", "cannot read mask")


def test_truncated_png(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    data = (masks / "im2.png").read_bytes()
    (masks / "im2.png").write_bytes(data[: len(data) // 2])
    skipped(score(tmp_path, masks, probs), tmp_path, "im2", "im2.png")


def test_zero_byte_mask(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    (masks / "im3.png").write_bytes(b"")
    skipped(score(tmp_path, masks, probs), tmp_path, "im3", "im3.png", "cannot read mask")


def test_strict_makes_one_bad_image_fatal(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    (masks / "im3.png").write_bytes(b"")
    refused(score(tmp_path, masks, probs, "--strict"), tmp_path, "im3.png")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None  # Pillow's guard is on ...
    masks, probs, _ = make(tmp_path)
    (masks / "im1.png").write_bytes(png_claiming(100_000, 100_000))
    reason = skipped(score(tmp_path, masks, probs), tmp_path, "im1", "im1.png")
    assert "bomb" in reason
    assert limit == Image.MAX_IMAGE_PIXELS  # ... and nobody turned it off


def test_rgb_mask_without_a_palette(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(masks / "im0.png")
    refused(score(tmp_path, masks, probs), tmp_path, "im0.png", "--classes")


def test_label_value_not_a_class_in_one_image(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    labels = np.asarray(Image.open(masks / "im2.png")).copy()
    labels[0, 0] = K + 5
    Image.fromarray(labels).save(masks / "im2.png")
    skipped(score(tmp_path, masks, probs), tmp_path, "im2", f"label value {K + 5}")


def test_label_values_not_classes_anywhere(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    for i in range(N):
        Image.fromarray(np.full((H, W), 33, np.uint8)).save(masks / f"im{i}.png")
    refused(score(tmp_path, masks, probs), tmp_path, str(probs), "label value 33", "remap")


# ----------------------------------------------------------------- bad probabilities


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_probabilities(tmp_path: Path, value: float) -> None:
    masks, path, probs = make(tmp_path)
    probs[1, 2, 3, 4] = value
    save_probs(path, probs)
    skipped(score(tmp_path, masks, path), tmp_path, "im1", "NaN or infinite")


def test_negative_probabilities(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    probs[3, 0, 0, 0] = -0.25
    save_probs(path, probs)
    skipped(score(tmp_path, masks, path), tmp_path, "im3", "negative")


def test_rows_not_summing_to_one(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    probs[2] *= 0.5
    save_probs(path, probs)
    skipped(score(tmp_path, masks, path), tmp_path, "im2", "sum to", "--logits")


def test_logits_without_the_flag(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    save_probs(path, np.log(probs) * 3)
    refused(score(tmp_path, masks, path), tmp_path, str(path), "--logits")
    assert score(tmp_path, masks, path, "--logits").exit_code == 0


def test_wrong_number_of_dimensions(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    save_probs(path, probs[:, 0])
    refused(score(tmp_path, masks, path), tmp_path, str(path), "4 dimensions")


def test_wrong_number_of_dimensions_in_one_file(tmp_path: Path) -> None:
    masks, folder, probs = make(tmp_path, fmt="files")
    np.save(folder / "im1.npy", probs[1, 0])
    skipped(score(tmp_path, masks, folder), tmp_path, "im1", "3 dimensions")


def test_integer_probabilities(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    save_probs(path, (probs * 255).astype(np.uint8))
    refused(score(tmp_path, masks, path), tmp_path, str(path), "dtype uint8")


def test_corrupt_per_image_file(tmp_path: Path) -> None:
    masks, folder, _ = make(tmp_path, fmt="files")
    (folder / "im2.npy").write_bytes(b"not numpy")
    skipped(score(tmp_path, masks, folder), tmp_path, "im2", "im2.npy")


def test_classes_config_disagrees_with_k(tmp_path: Path) -> None:
    masks, path, _ = make(tmp_path)
    config = tmp_path / "classes.yaml"
    config.write_text(
        "version: 1\nclasses:\n"
        + "".join(f"  - {{name: c{i}, color: [{i}, 0, 0]}}\n" for i in range(K + 1))
    )
    result = score(tmp_path, masks, path, "--classes", str(config))
    refused(result, tmp_path, str(config), f"{K + 1} classes", f"have {K}")


def test_size_mismatch_without_resize(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    save_probs(path, probs[:, :, :, : W // 2].copy())
    refused(score(tmp_path, masks, path), tmp_path, str(path), "--resize")


def test_size_mismatch_in_one_image(tmp_path: Path) -> None:
    masks, folder, probs = make(tmp_path, fmt="files")
    np.save(folder / "im2.npy", probs[2, :, :, :4].copy())
    skipped(score(tmp_path, masks, folder), tmp_path, "im2", "--resize")


def test_class_axis_last_without_layout_suggests_it(tmp_path: Path) -> None:
    masks, path, probs = make(tmp_path)
    save_probs(path, np.moveaxis(probs, 1, -1).copy())
    refused(score(tmp_path, masks, path), tmp_path, str(path), "--layout nhwc")


def test_unreadable_zarr_store(tmp_path: Path) -> None:
    masks, _, _ = make(tmp_path)
    store = tmp_path / "broken.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{ not json")
    refused(score(tmp_path, masks, store), tmp_path, str(store), "zarr")


def test_probabilities_not_found(tmp_path: Path) -> None:
    masks, _, _ = make(tmp_path)
    refused(score(tmp_path, masks, tmp_path / "nope.zarr"), tmp_path, "nope.zarr", "not found")


def test_remote_url_without_its_filesystem_package(tmp_path: Path) -> None:
    masks, _, _ = make(tmp_path)
    result = score(tmp_path, masks, "nosuchprotocol://bucket/probs.zarr")
    refused(result, tmp_path, "nosuchprotocol://bucket/probs.zarr")


# -------------------------------------------------------- ids that try to leave the folder


def test_ids_cannot_escape_the_output_folder(tmp_path: Path) -> None:
    _, path, _ = make(tmp_path)
    ids = ["../../escaped", "/abs/escaped", "..", "a/../../escaped"]
    manifest = tmp_path / "m.csv"
    rows = "".join(f"{image_id},masks/im{i}.png,{i}\n" for i, image_id in enumerate(ids))
    manifest.write_text("image_id,mask,probs\n" + rows)
    result = run(tmp_path, "--manifest", str(manifest), "--probs", str(path), "--top", str(N))
    assert result.exit_code == 0, result.output
    out = tmp_path / "run"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "escaped" in p.name]
    assert written and all(out in p.parents for p in written)
    assert not list(tmp_path.parent.glob("escaped*")) and not Path("/abs").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == N if "images" in summary else True


# ------------------------------------------------------------------------ YAML configs


def validate(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return runner.invoke(app, ["validate-config", str(path)])


GOOD = (
    "version: 1\nignore: [255]\nclasses:\n"
    "  - {name: a, color: [1, 2, 3]}\n  - {name: b, color: [4, 5, 6]}\n"
)


def test_yaml_unknown_key(tmp_path: Path) -> None:
    result = validate(tmp_path, GOOD + "ignroe: [0]\n")
    assert result.exit_code == 2 and "ignroe: unknown key" in result.output


def test_yaml_unknown_key_inside_a_class(tmp_path: Path) -> None:
    result = validate(tmp_path, GOOD.replace("color: [4", "colour: [4"))
    assert result.exit_code == 2 and "classes[1].colour" in result.output


def test_yaml_wrong_types(tmp_path: Path) -> None:
    result = validate(tmp_path, GOOD.replace("ignore: [255]", "ignore: 255"))
    assert result.exit_code == 2 and "ignore: expected a list" in result.output
    result = validate(tmp_path, GOOD.replace("[4, 5, 6]", "[4, five, 6]"))
    assert result.exit_code == 2 and "classes[1].color[1]" in result.output


def test_yaml_unsafe_tag_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = GOOD + f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    result = validate(tmp_path, text)
    assert result.exit_code == 2 and "not valid YAML" in result.output
    assert not marker.exists()
    masks, path, _ = make(tmp_path)
    refused(score(tmp_path, masks, path, "--classes", str(tmp_path / "c.yaml")), tmp_path, "c.yaml")
    assert not marker.exists()


def test_yaml_remap_to_a_value_that_is_no_class(tmp_path: Path) -> None:
    result = validate(tmp_path, GOOD + "remap: {7: 9}\n")
    assert result.exit_code == 2 and "remap.7" in result.output


def test_manifest_names_a_missing_mask(tmp_path: Path) -> None:
    _, probs, _ = make(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("image_id,mask,probs\nim0,masks/im0.png,0\nim9,masks/gone.png,1\n")
    result = run(tmp_path, "--manifest", str(manifest), "--probs", str(probs))
    refused(result, tmp_path, str(manifest), "im9")


def test_manifest_row_outside_the_array(tmp_path: Path) -> None:
    _, probs, _ = make(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("image_id,mask,probs\nim0,masks/im0.png,0\nim1,masks/im1.png,99\n")
    result = run(tmp_path, "--manifest", str(manifest), "--probs", str(probs))
    refused(result, tmp_path, str(manifest), "out of range", "im1")


def test_mask_with_an_unsupported_mode(tmp_path: Path) -> None:
    masks, probs, _ = make(tmp_path)
    Image.fromarray(np.zeros((H, W, 2), np.uint8), mode="LA").save(masks / "im2.png")
    skipped(score(tmp_path, masks, probs), tmp_path, "im2", "mode LA")
