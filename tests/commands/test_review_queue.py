"""regions.csv's review queue (region_score, region_rank) and score --method, through the CLI."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.core.methods import METHODS
from segaudit.rundir import read_run


def score(example: Any, out: Path, *extra: str) -> Any:
    root = example.root
    args = ["score", "--labels", root / "masks", "--probs", root / "probs.npy",
            "--out", out, "--top", "0", *extra]  # fmt: skip
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(example_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for method in ("softmin", "worst_pixel", "region_evidence"):
        out = tmp_path_factory.mktemp("runs") / method
        result = score(example_dir, out, "--method", method)
        assert result.exit_code == 0, result.output
        folders[method] = out
    return folders


def test_every_region_has_a_score_and_a_dataset_rank(runs: dict[str, Path]) -> None:
    run = read_run(runs["softmin"])  # the reader checks ranks are 1..N, once each
    regions = run.regions()
    assert regions and all(0.0 <= r.region_score <= 1.0 for r in regions)
    by_rank = sorted(regions, key=lambda r: r.region_rank)
    assert [r.region_rank for r in by_rank] == list(range(1, len(regions) + 1))
    scores = [r.region_score for r in by_rank]
    assert scores == sorted(scores, reverse=True)  # rank 1 = the highest score


def test_the_queue_puts_real_errors_before_area_order(
    runs: dict[str, Path], example_dir: Any
) -> None:
    """On the example, the top regions of the queue lie in the corrupted images at least as
    often as the largest regions do."""
    regions = read_run(runs["softmin"]).regions()
    corrupted = set(example_dir.corrupted)
    top = 10
    by_rank = sorted(regions, key=lambda r: r.region_rank)[:top]
    by_area = sorted(regions, key=lambda r: -r.area)[:top]
    in_queue = sum(r.image_id in corrupted for r in by_rank)
    in_area = sum(r.image_id in corrupted for r in by_area)
    assert in_queue >= in_area and in_queue >= top // 2


def test_worst_pixel_ranks_by_the_lowest_self_confidence(
    runs: dict[str, Path], example_dir: Any
) -> None:
    run = read_run(runs["worst_pixel"])
    assert run.summary.parameters["method"] == "worst_pixel"
    probs = np.load(example_dir.root / "probs.npy")
    ids = sorted(p.stem for p in (example_dir.root / "masks").glob("*.png"))
    expected = {}
    for i, image_id in enumerate(ids):
        labels = np.asarray(Image.open(example_dir.root / "masks" / f"{image_id}.png"))
        valid = labels != 255
        given = np.where(valid, labels, 0)
        s = np.take_along_axis(probs[i].astype(np.float64), given[None], axis=0)[0]
        expected[image_id] = float(s[valid].min())
    for row in run.ranking:
        assert math.isclose(row.label_quality, expected[row.image_id], rel_tol=1e-9)


def test_region_evidence_is_one_minus_the_largest_region_score(runs: dict[str, Path]) -> None:
    run = read_run(runs["region_evidence"])
    regions = run.regions()
    for row in run.ranking:
        mine = [r.region_score for r in regions if r.image_id == row.image_id]
        # the CSV keeps 6 significant digits of each region score
        expected = 1.0 - max(mine) if mine else 1.0
        assert math.isclose(row.label_quality, expected, abs_tol=1e-5)
    softmin_order = [r.image_id for r in read_run(runs["softmin"]).ranking]
    assert [r.image_id for r in run.ranking] != softmin_order  # a different ranking


def test_an_unknown_method_is_a_usage_error(example_dir: Any, tmp_path: Path) -> None:
    result = score(example_dir, tmp_path / "run", "--method", "best")
    assert result.exit_code == 2
    assert "unknown scoring method 'best'" in result.output
    assert not (tmp_path / "run").exists()


def test_help_lists_every_method() -> None:
    result = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "300"})
    for name in METHODS:
        assert name in result.output


def test_regions_csv_header(runs: dict[str, Path]) -> None:
    with (runs["softmin"] / "regions.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header[-2:] == ["region_score", "region_rank"]
