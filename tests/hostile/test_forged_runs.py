"""Forged or damaged run folders are refused where they are read: ``check`` and ``report``
exit 2 naming the file and the field; a baseline from another dataset or policy is refused.
Faults stay local: a corrupt chunk skips exactly its images; messages state true values."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from PIL import Image

from segaudit.rundir.format import CSV_LINE_END, RANKING_COLUMNS
from tests.hostile.hostile_data import (
    assert_clean_exit,
    cli,
    read_ranking,
    score,
    tree_digest,
    write_inputs,
)

IDS = [f"img_{i}" for i in range(6)]
POLICY = "version: 1\nname: p1\nrules:\n  min_score: 0.0\n  skipped:\n    max_count: 5\n"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good")
    inputs = write_inputs(root / "data", IDS)
    assert_clean_exit(score(inputs, root / "run", "--top", "2"), 0)
    return root / "run"


def _copy(good_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    return run


def _policy(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _rewrite_ranking(run: Path, change: Any) -> None:
    with (run / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    rows = change(rows)
    with (run / "ranking.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator=CSV_LINE_END).writerows(rows)


def _set(column: str, value: str, row: int = 1) -> Any:
    index = RANKING_COLUMNS.index(column)

    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[row][index] = value
        return rows

    return change


RANKING_FORGERIES = {
    "nan score": (_set("label_quality", "nan"), "label_quality"),
    "inf score": (_set("label_quality", "inf"), "label_quality"),
    "score above 1": (_set("label_quality", "1.5"), "label_quality"),
    "negative flagged": (_set("flagged_pixels", "-1"), "flagged_pixels"),
    "x in rank": (_set("rank", "x"), "rank"),
    "rank out of order": (_set("rank", "5"), "rank"),
    "short row": (lambda rows: [*rows[:1], rows[1][:5], *rows[2:]], "ranking.csv"),
    "missing column": (lambda rows: [r[:-1] for r in rows], "skipped"),
    "header only": (lambda rows: rows[:1], "ranking.csv"),
    "unknown id": (_set("image_id", "someone_else"), "masks.json"),
    "fraction disagrees": (_set("flagged_fraction", "0.99"), "flagged_fraction"),
}


def _expect_refused(run: Path, tmp_path: Path, what: str, file: str) -> None:
    for command in (("check", run, "--policy", _policy(tmp_path)), ("report", run)):
        result = cli(*command)
        assert_clean_exit(result, 2)
        assert file in result.output, (command[0], result.output)
        assert what in result.output, (command[0], result.output)


@pytest.mark.parametrize("case", sorted(RANKING_FORGERIES))
def test_forged_ranking_is_refused_by_check_and_report(
    good_run: Path, tmp_path: Path, case: str
) -> None:
    run = _copy(good_run, tmp_path)
    change, field = RANKING_FORGERIES[case]
    _rewrite_ranking(run, change)
    _expect_refused(run, tmp_path, field, field if field.endswith(".json") else "ranking.csv")


SUMMARY_FORGERIES = ["num_images", "class_names", "cutoff", "classes", "valid_pixels"]


def test_empty_summary_with_header_only_ranking(good_run: Path, tmp_path: Path) -> None:
    run = _copy(good_run, tmp_path)
    (run / "summary.json").write_text("{}")
    _rewrite_ranking(run, lambda rows: rows[:1])
    _expect_refused(run, tmp_path, "summary.json", "summary.json")


@pytest.mark.parametrize("field", SUMMARY_FORGERIES)
def test_summary_with_a_deleted_field(good_run: Path, tmp_path: Path, field: str) -> None:
    run = _copy(good_run, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    del summary[field]
    (run / "summary.json").write_text(json.dumps(summary))
    _expect_refused(run, tmp_path, field, "summary.json")


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_images", 99), ("flagged_pixels", -3), ("valid_pixels", "many"), ("cutoff", 7.0)],
)
def test_summary_with_a_wrong_value(good_run: Path, tmp_path: Path, field: str, value: Any) -> None:
    run = _copy(good_run, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary[field] = value
    (run / "summary.json").write_text(json.dumps(summary))
    if field == "num_images":  # well-formed, but the ranking has another number of rows
        _expect_refused(run, tmp_path, "summary says 99 images", "ranking.csv")
    else:
        _expect_refused(run, tmp_path, field, "summary.json")


def test_mask_hashes_for_other_images(good_run: Path, tmp_path: Path) -> None:
    run = _copy(good_run, tmp_path)
    masks = json.loads((run / "masks.json").read_text())
    masks["masks"] = {"other": "0" * 64}
    (run / "masks.json").write_text(json.dumps(masks))
    result = cli("check", run, "--policy", _policy(tmp_path))
    assert_clean_exit(result, 2)
    assert "masks.json" in result.output


def test_baseline_from_another_dataset_or_policy_is_refused(good_run: Path, tmp_path: Path) -> None:
    run = _copy(good_run, tmp_path)
    baseline = tmp_path / "baseline.json"
    policy = _policy(tmp_path)
    assert_clean_exit(
        cli("check", run, "--policy", policy, "--baseline", baseline, "--update-baseline"), 0
    )
    # another policy
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.replace("name: p1", "name: p2"))
    result = cli("check", run, "--policy", other, "--baseline", baseline)
    assert_clean_exit(result, 2)
    assert "policy" in result.output
    # another dataset (other classes)
    inputs = write_inputs(tmp_path / "other-data", IDS, k=4)
    assert_clean_exit(score(inputs, tmp_path / "run4"), 0)
    result = cli("check", tmp_path / "run4", "--policy", policy, "--baseline", baseline)
    assert_clean_exit(result, 2)
    assert "classes" in result.output or "dataset" in result.output


def test_corrupt_chunk_skips_exactly_its_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = [f"img_{i}" for i in range(8)]
    masks = tmp_path / "masks"
    masks.mkdir()
    labels = rng.integers(0, 3, (8, 8, 8)).astype(np.uint8)
    for image_id, mask in zip(ids, labels, strict=True):
        Image.fromarray(mask).save(masks / f"{image_id}.png")
    probs = rng.random((8, 3, 8, 8)).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    store = tmp_path / "probs.zarr"
    array = zarr.create_array(store=str(store), shape=probs.shape, chunks=(2, 3, 8, 8), dtype="f4")
    array[...] = probs
    array.attrs["image_ids"] = ids
    chunk = store / "c" / "1" / "0" / "0" / "0"  # chunk (1, 0, 0, 0): images 2 and 3
    assert chunk.is_file()
    chunk.write_bytes(b"\x00garbage" * 3)  # images 2 and 3
    before = tree_digest(tmp_path)
    out = tmp_path / "run"
    result = cli("score", "--labels", masks, "--probs", store, "--out", out)
    assert_clean_exit(result, 0)
    skipped = {row["image_id"] for row in read_ranking(out) if row["skipped"]}
    assert skipped == {"img_2", "img_3"}
    assert tree_digest(tmp_path / "masks") == {
        k.removeprefix("masks/"): v for k, v in before.items() if k.startswith("masks/")
    }


def test_sum_message_states_the_actual_sum(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", ["a", "b"])
    probs = np.load(inputs.probs)
    probs[0] *= 0.01 / probs[0].sum(axis=0)
    np.save(inputs.probs, probs)
    out = tmp_path / "run"
    result = score(inputs, out)
    assert_clean_exit(result, 0)
    reason = next(row["skipped"] for row in read_ranking(out) if row["image_id"] == "a")
    assert "0.01" in reason and "1.99" not in reason
