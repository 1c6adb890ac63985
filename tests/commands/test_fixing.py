"""From finding to fixing: score --save-masks, review.json, apply, check --review, export.

The loop end to end on the bundled example: score → mark every injected error's regions
fix (scripted, from truth.json) → apply → score the corrected masks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.commands.export import WRITERS
from segaudit.config.review import Decision, RegionDecision, write_review
from segaudit.export import ExportFormat
from segaudit.io.masks import MaskDecoder, read_mask
from segaudit.rundir import read_run
from tests.conftest import Example

runner = CliRunner()


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def flagged(run: Path) -> dict[str, int]:
    with (run / "ranking.csv").open(newline="", encoding="utf-8") as handle:
        return {r["image_id"]: int(r["flagged_pixels"]) for r in csv.DictReader(handle)}


def score(ex: Path, masks: Path, out: Path, *extra: str) -> None:
    done = invoke(
        "score",
        "--labels",
        masks,
        "--probs",
        ex / "probs.zarr",
        "--classes",
        ex / "classes.yaml",
        "--images",
        ex / "images",
        "--out",
        out,
        "--top",
        "0",
        *extra,
    )
    assert done.exit_code == 0, done.output


def review_all(run_dir: Path, fix: set[str], path: Path) -> None:
    """Every region of the run: fix on the given images, keep elsewhere."""
    run = read_run(run_dir)
    decisions = [
        RegionDecision(
            r.image_id, r.region_id, Decision.FIX if r.image_id in fix else Decision.KEEP
        )
        for r in run.regions()
    ]
    write_review(path, run.summary.run_id, decisions)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, example_dir: Example) -> Path:
    run = tmp_path_factory.mktemp("fixing") / "run"
    score(example_dir.root, example_dir.root / "masks", run, "--save-masks")
    return run


def test_the_loop_end_to_end(example_dir: Example, scored: Path, tmp_path: Path) -> None:
    ex = example_dir.root
    corrupted = set(example_dir.corrupted)
    review = tmp_path / "review.json"
    review_all(scored, corrupted, review)
    fixed = tmp_path / "fixed"
    done = invoke("apply", scored, "--review", review, "--out", fixed)
    assert done.exit_code == 0, done.output
    assert f"{len(corrupted)} corrected" in done.output

    before_masks, after_masks = tree_digest(ex / "masks"), tree_digest(fixed)
    assert before_masks.keys() == after_masks.keys()  # a complete copy, same names
    changed = {name for name in before_masks if before_masks[name] != after_masks[name]}
    assert changed == {f"{i}.png" for i in corrupted}  # clean images untouched, byte for byte

    rescored = tmp_path / "rescored"
    score(ex, fixed, rescored)
    before, after = flagged(scored), flagged(rescored)
    total_before = sum(before[i] for i in corrupted)
    total_after = sum(after[i] for i in corrupted)
    assert total_before > 0
    assert total_after <= 0.1 * total_before, (before, after)
    for image_id in corrupted:
        with (
            Image.open(ex / "masks" / f"{image_id}.png") as a,
            Image.open(fixed / f"{image_id}.png") as b,
        ):
            assert (a.mode, a.size) == (b.mode, b.size)


def test_saved_masks_are_what_the_run_flagged(example_dir: Example, scored: Path) -> None:
    run = read_run(scored)
    assert run.saved_masks is not None
    with_flags = {i for i, n in flagged(scored).items() if n > 0}
    assert set(run.saved_masks) == with_flags
    regions = run.regions()
    for image_id, (flag_path, suggested_path) in run.saved_masks.items():
        ids = np.asarray(Image.open(flag_path))
        assert int(np.count_nonzero(ids)) == flagged(scored)[image_id]
        for r in (r for r in regions if r.image_id == image_id):
            assert int(np.count_nonzero(ids == r.region_id)) == r.area
        given = np.asarray(Image.open(example_dir.root / "masks" / f"{image_id}.png"))
        suggested = np.asarray(Image.open(suggested_path))
        assert np.array_equal(given[ids == 0], suggested[ids == 0])
        assert np.count_nonzero(given != suggested) == np.count_nonzero(ids)


def _scored_variant(tmp_path: Path, ex: Path, convert: Any, classes: str | None = None) -> Path:
    """Score a copy of the example whose masks went through ``convert``."""
    masks = tmp_path / "masks"
    masks.mkdir(parents=True)
    for source in sorted((ex / "masks").glob("*.png")):
        convert(np.asarray(Image.open(source)), masks / source.name)
    config = tmp_path / "classes.yaml"
    config.write_text(classes or (ex / "classes.yaml").read_text())
    run = tmp_path / "run"
    done = invoke(
        "score",
        "--labels",
        masks,
        "--probs",
        ex / "probs.zarr",
        "--classes",
        config,
        "--out",
        run,
        "--top",
        "0",
        "--save-masks",
    )
    assert done.exit_code == 0, done.output
    return run


def _check_suggestions_decode(run_dir: Path) -> None:
    """Each suggested mask, read as the run read its masks, is the given classes with the
    flagged pixels set to a class (never an ignore value or an undecodable value)."""
    run = read_run(run_dir)
    from segaudit.commands.export import _decoder

    decoder = _decoder(run)
    assert run.saved_masks
    labels = Path(run.summary.inputs["labels"])
    for image_id, (flag_path, suggested_path) in run.saved_masks.items():
        ids = np.asarray(Image.open(flag_path))
        given = read_mask(image_id, labels / f"{image_id}.png", decoder)
        suggested = read_mask(image_id, suggested_path, decoder)
        assert np.array_equal(given[ids == 0], suggested[ids == 0])
        assert suggested[ids > 0].max() < run.summary.num_classes
        assert np.all(suggested[ids > 0] != given[ids > 0])
        with Image.open(suggested_path) as a, Image.open(labels / f"{image_id}.png") as b:
            assert a.mode == b.mode and a.getpalette() == b.getpalette()


def test_save_masks_keeps_palette_and_16_bit(example_dir: Example, tmp_path: Path) -> None:
    def palette(pixels: Any, target: Path) -> None:
        image = Image.fromarray(pixels.astype(np.uint8), mode="P")
        image.putpalette([v for k in range(256) for v in (k, 255 - k, (7 * k) % 256)])
        image.save(target)

    def sixteen(pixels: Any, target: Path) -> None:
        Image.fromarray(pixels.astype(np.uint16)).save(target)

    _check_suggestions_decode(_scored_variant(tmp_path / "p", example_dir.root, palette))
    _check_suggestions_decode(_scored_variant(tmp_path / "i", example_dir.root, sixteen))


def test_save_masks_inverts_a_remap_and_refuses_an_ambiguous_one(
    example_dir: Example, tmp_path: Path
) -> None:
    """Raw values v+10 remapped to classes v: suggestions are written as v+10."""
    import yaml

    config = yaml.safe_load((example_dir.root / "classes.yaml").read_text())
    config["remap"] = {**{k: 255 for k in range(6)}, **{k + 10: k for k in range(6)}}

    def shifted(pixels: Any, target: Path) -> None:
        Image.fromarray(np.where(pixels == 255, 255, pixels + 10).astype(np.uint8)).save(target)

    run = _scored_variant(tmp_path / "r", example_dir.root, shifted, yaml.safe_dump(config))
    _check_suggestions_decode(run)
    saved = read_run(run).saved_masks or {}
    raw = np.asarray(Image.open(next(iter(saved.values()))[1]))
    assert set(np.unique(raw).tolist()) <= {255, *range(10, 16)}

    config["remap"] = {k + 10: k for k in range(6)}  # raw 10 and raw 0 both read as 0
    with pytest.raises(AssertionError, match="several raw values"):
        _scored_variant(tmp_path / "a", example_dir.root, shifted, yaml.safe_dump(config))


def test_save_masks_of_colour_masks(example_dir: Example, tmp_path: Path) -> None:
    import yaml

    config = yaml.safe_load((example_dir.root / "classes.yaml").read_text())
    colors = [tuple(c["color"]) for c in config["classes"]]

    def colour(pixels: Any, target: Path) -> None:
        table = np.array([*colors, *([(0, 0, 0)] * (256 - len(colors)))], dtype=np.uint8)
        Image.fromarray(table[pixels], mode="RGB").save(target)

    config["ignore_colors"] = [[0, 0, 0]]
    run = _scored_variant(tmp_path / "c", example_dir.root, colour, yaml.safe_dump(config))
    _check_suggestions_decode(run)


# ------------------------------------------------------------------------------ refusals


def _one_line_refusal(result: Any, needle: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.output


def test_apply_refusals_write_nothing(example: Example, scored: Path, tmp_path: Path) -> None:
    review = tmp_path / "review.json"
    review_all(scored, set(example.corrupted), review)
    data = json.loads(review.read_text())
    out = tmp_path / "out"

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**data, "run": "0123456789abcdef"}))
    _one_line_refusal(invoke("apply", scored, "--review", other, "--out", out), "is of run")
    unknown = tmp_path / "unknown.json"
    bad = {"image_id": "nope", "region_id": 1, "decision": "fix"}
    unknown.write_text(json.dumps({**data, "decisions": [bad]}))
    _one_line_refusal(invoke("apply", scored, "--review", unknown, "--out", out), "not an image")
    region = dict(data["decisions"][0], region_id=999)
    unknown.write_text(json.dumps({**data, "decisions": [region]}))
    _one_line_refusal(invoke("apply", scored, "--review", unknown, "--out", out), "no region")
    wrong = dict(data["decisions"][0], decision="maybe")
    unknown.write_text(json.dumps({**data, "decisions": [wrong]}))
    _one_line_refusal(invoke("apply", scored, "--review", unknown, "--out", out), "fix or keep")
    _one_line_refusal(
        invoke("apply", tmp_path, "--review", review, "--out", out), "not a segaudit run"
    )
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    _one_line_refusal(invoke("apply", scored, "--review", review, "--out", full), "not empty")
    masks = Path(read_run(scored).summary.inputs["labels"])
    _one_line_refusal(
        invoke("apply", scored, "--review", review, "--out", masks / "sub"), "overlaps"
    )
    _one_line_refusal(
        invoke("apply", scored, "--review", review, "--out", scored / "fixed"), "run folder"
    )
    assert not out.exists() and not (scored / "fixed").exists()
    assert not list(tmp_path.glob(".out.*"))


def test_changed_masks_are_refused(example: Example, tmp_path: Path) -> None:
    run = tmp_path / "run"
    score(example.root, example.root / "masks", run, "--save-masks")
    review = tmp_path / "review.json"
    review_all(run, set(example.corrupted), review)
    last = sorted((example.root / "masks").glob("*.png"))[-1]
    pixels = np.asarray(Image.open(last)).copy()
    pixels[0, 0] = (int(pixels[0, 0]) + 1) % 6
    Image.fromarray(pixels).save(last)
    out = tmp_path / "out"
    _one_line_refusal(invoke("apply", run, "--review", review, "--out", out), "changed since")
    first = read_run(run).ranking[0].image_id
    shutil.copy(last, example.root / "masks" / f"{first}.png")
    _one_line_refusal(invoke("export", run, "--to", "coco", "--out", out), "changed since")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_export_refusals(scored: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _one_line_refusal(invoke("export", scored, "--to", "yolo", "--out", out), "unknown format")
    _one_line_refusal(invoke("export", tmp_path, "--to", "coco", "--out", out), "not a segaudit")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    _one_line_refusal(invoke("export", scored, "--to", "coco", "--out", full), "not empty")
    _one_line_refusal(
        invoke("export", scored, "--to", "coco", "--out", out, "--top", "2", "--flagged"),
        "exclude",
    )
    assert not out.exists()


def test_every_format_has_a_writer() -> None:
    assert set(WRITERS) == set(ExportFormat)


# ------------------------------------------------------------------------------ exports


def _given(run_dir: Path, image_id: str) -> tuple[Any, Any]:
    """The mask as class ids, and the valid (not ignored) pixels."""
    run = read_run(run_dir)
    from segaudit.commands.export import _decoder

    decoder: MaskDecoder = _decoder(run)
    labels = read_mask(image_id, Path(run.summary.inputs["labels"]) / f"{image_id}.png", decoder)
    return labels, labels != 255


def _region_ids(run_dir: Path, image_id: str) -> Any:
    saved = read_run(run_dir).saved_masks or {}
    return np.asarray(Image.open(saved[image_id][0])).astype(np.int64)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' own, on numpy 2
def test_coco_export_decodes_with_pycocotools(scored: Path, tmp_path: Path) -> None:
    from pycocotools import mask as coco_mask

    out = tmp_path / "coco"
    done = invoke("export", scored, "--to", "coco", "--out", out, "--image-root", "/data/img")
    assert done.exit_code == 0, done.output
    document = json.loads((out / "annotations.json").read_text())
    run = read_run(scored)
    regions = run.regions()
    assert len(document["annotations"]) == len(regions)
    images = {i["id"]: i for i in document["images"]}
    names = {c["id"]: c["name"] for c in document["categories"]}
    for annotation in document["annotations"]:
        image = images[annotation["image_id"]]
        assert image["file_name"].startswith("/data/img/")
        attributes = annotation["attributes"]
        rle = dict(annotation["segmentation"], counts=annotation["segmentation"]["counts"].encode())
        decoded = coco_mask.decode(rle).astype(bool)
        ids = _region_ids(scored, image["segaudit_image_id"])
        assert np.array_equal(decoded, ids == attributes["region_id"])
        assert annotation["area"] == int(coco_mask.area(rle))
        assert annotation["bbox"] == coco_mask.toBbox(rle).tolist()
        assert names[annotation["category_id"]] == attributes["given"]


def test_check_review_accepts_kept_images(
    example_dir: Example, scored: Path, tmp_path: Path
) -> None:
    """Findings of images reviewed keep go into the baseline; the others still fail."""
    policy = tmp_path / "gate.yaml"
    policy.write_text("version: 1\nname: strict\nrules:\n  regions:\n    - {max_area: 1}\n")
    run = read_run(scored)
    worst = [r.image_id for r in run.ranking if r.flagged_pixels > 0]
    baseline = tmp_path / "baseline.json"
    failing = invoke("check", scored, "--policy", policy)
    assert failing.exit_code == 1, failing.output

    review = tmp_path / "review.json"
    decisions = [
        RegionDecision(r.image_id, r.region_id, Decision.KEEP)
        for r in run.regions()
        if r.image_id != worst[0]
    ]
    write_review(review, run.summary.run_id, decisions)
    partly = invoke("check", scored, "--policy", policy, "--baseline", baseline, "--review", review)
    assert partly.exit_code == 1, partly.output  # worst[0] was not reviewed keep
    assert worst[0] in partly.output

    everything = [RegionDecision(r.image_id, r.region_id, Decision.KEEP) for r in run.regions()]
    write_review(review, run.summary.run_id, everything)
    accepted = invoke(
        "check", scored, "--policy", policy, "--baseline", baseline, "--review", review
    )
    assert accepted.exit_code == 0, accepted.output
    again = invoke("check", scored, "--policy", policy, "--baseline", baseline)
    assert again.exit_code == 0, again.output


def test_apply_with_a_manifest_keeps_the_tree(example: Example, tmp_path: Path) -> None:
    """Masks named in a manifest, in sub-folders: the copy keeps their paths below the
    masks' common folder."""
    ex = example.root
    tree = tmp_path / "data" / "gt"
    ids = sorted(p.stem for p in (ex / "masks").glob("*.png"))
    manifest = tmp_path / "data" / "list.csv"
    lines = ["image_id,mask,probs"]
    for row, image_id in enumerate(ids):
        target = tree / f"part{row % 2}" / f"{image_id}_label.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ex / "masks" / f"{image_id}.png", target)
        lines.append(f"{image_id},{target.relative_to(manifest.parent)},{row}")
    manifest.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    done = invoke(
        "score", "--manifest", manifest, "--probs", ex / "probs.zarr",
        "--classes", ex / "classes.yaml", "--out", run, "--top", "0", "--save-masks",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    review = tmp_path / "review.json"
    review_all(run, set(example.corrupted), review)
    fixed = tmp_path / "fixed"
    done = invoke("apply", run, "--review", review, "--out", fixed)
    assert done.exit_code == 0, done.output
    before, after = tree_digest(tree), tree_digest(fixed)
    assert before.keys() == after.keys()
    changed = {
        name.split("/")[1].removesuffix("_label.png")
        for name in before
        if before[name] != after[name]
    }
    assert changed == set(example.corrupted)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--downsample", "2"], "own size"),
        (["--scheduler", "local"], "local threads"),
    ],
)
def test_save_masks_refuses_other_resolutions_and_dask(
    example_dir: Example, tmp_path: Path, extra: list[str], needle: str
) -> None:
    ex = example_dir.root
    result = invoke(
        "score", "--labels", ex / "masks", "--probs", ex / "probs.zarr",
        "--out", tmp_path / "run", "--save-masks", *extra,
    )  # fmt: skip
    _one_line_refusal(result, needle)
    assert not (tmp_path / "run").exists()


def test_check_review_needs_a_baseline(scored: Path, tmp_path: Path) -> None:
    review = tmp_path / "review.json"
    review_all(scored, set(), review)
    policy = tmp_path / "gate.yaml"
    policy.write_text("version: 1\nrules:\n  regions:\n    - {max_area: 1}\n")
    result = invoke("check", scored, "--policy", policy, "--review", review)
    _one_line_refusal(result, "--baseline")
