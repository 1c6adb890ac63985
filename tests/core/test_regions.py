"""Suspect regions: grouping, options, the thread-safe collector and regions.csv."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

from segaudit.api import ArrayDataset
from segaudit.cli import app
from segaudit.core.audit import AuditOptions, SerialExecutor, run_audit
from segaudit.core.pixel import PixelDigest, digest_image
from segaudit.core.regions import RegionOptions, find_regions
from segaudit.execute import ThreadExecutor
from segaudit.output.suspects import RegionCollector
from segaudit.rundir import REGION_COLUMNS, RunWriter


def read_regions(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


ROOT = Path(__file__).resolve().parents[2]


def load_example_module() -> ModuleType:
    """examples/make_example.py, imported by path (examples/ is not a package)."""
    name = "segaudit_make_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "make_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def digest_of(
    given: NDArray[np.integer], predicted: NDArray[np.integer], k: int = 4
) -> PixelDigest:
    """A digest whose argmax is ``predicted`` with probability 0.7, self-confidence varying."""
    h, w = given.shape
    probs = np.full((k, h, w), 0.3 / (k - 1))
    rows, cols = np.indices((h, w))
    probs[predicted, rows, cols] = 0.7
    return digest_image("x", given, probs)


def test_regions_split_by_component_and_pair() -> None:
    given = np.zeros((8, 10), int)
    predicted = np.zeros((8, 10), int)
    predicted[1:3, 1:4] = 1  # 6 px, 0 -> 1
    predicted[5:7, 6:9] = 1  # 6 px, 0 -> 1, elsewhere
    predicted[5:7, 9] = 2  # 2 px, 0 -> 2, touching the previous block
    digest = digest_of(given, predicted)
    flagged = digest.disagrees
    regions = find_regions(digest, flagged)
    assert [(r.given, r.predicted, r.area) for r in regions] == [(0, 1, 6), (0, 1, 6), (0, 2, 2)]
    assert [r.region_id for r in regions] == [1, 2, 3]
    first, second, third = regions
    assert (first.x, first.y, first.width, first.height) == (1, 1, 3, 2)
    assert (second.x, second.y, second.width, second.height) == (6, 5, 3, 2)
    assert (third.x, third.y, third.width, third.height) == (9, 5, 1, 2)
    assert first.mean_predicted_probability == pytest.approx(0.7)
    assert first.mean_self_confidence == pytest.approx(0.1)


def test_connectivity_and_min_area() -> None:
    given = np.zeros((5, 5), int)
    predicted = np.zeros((5, 5), int)
    for i in range(4):
        predicted[i, i] = 3  # a diagonal line of 4 pixels
    digest = digest_of(given, predicted)
    flagged = digest.disagrees
    assert [r.area for r in find_regions(digest, flagged, RegionOptions(8))] == [4]
    assert [r.area for r in find_regions(digest, flagged, RegionOptions(4))] == [1, 1, 1, 1]
    assert find_regions(digest, flagged, RegionOptions(4, min_area=2)) == []
    with pytest.raises(ValueError, match="connectivity"):
        RegionOptions(6)
    with pytest.raises(ValueError, match="at least 1"):
        RegionOptions(8, 0)


def test_no_flagged_pixels_no_regions() -> None:
    digest = digest_of(np.zeros((3, 3), int), np.zeros((3, 3), int))
    assert find_regions(digest, np.zeros((3, 3), bool)) == []


@pytest.mark.parametrize("connectivity", [4, 8])
def test_regions_cover_every_flagged_pixel_once(connectivity: int) -> None:
    rng = np.random.default_rng(7)
    given = rng.integers(0, 3, (30, 40))
    predicted = rng.integers(0, 3, (30, 40))
    digest = digest_of(given, predicted, k=3)
    flagged = digest.disagrees & (rng.random((30, 40)) < 0.6)
    regions = find_regions(digest, flagged, RegionOptions(connectivity))
    assert sum(r.area for r in regions) == int(flagged.sum())
    pairs = Counter[tuple[int, int]]()
    for r in regions:
        pairs[(r.given, r.predicted)] += r.area
        box_given = digest.given[r.y : r.y + r.height, r.x : r.x + r.width]
        box_flagged = flagged[r.y : r.y + r.height, r.x : r.x + r.width]
        assert (box_flagged & (box_given == r.given)).sum() >= r.area
    expected = Counter(
        zip(digest.given[flagged].tolist(), digest.predicted[flagged].tolist(), strict=True)
    )
    assert pairs == expected
    areas = [r.area for r in regions]
    assert areas == sorted(areas, reverse=True)


def _example_arrays(tmp_path: Path, n: int = 12) -> tuple[NDArray[np.uint8], NDArray[np.float16]]:
    example = load_example_module()
    example.make_example(tmp_path / "ex", num_images=n, height=48, width=64, seed=3)
    masks = [
        np.asarray(Image.open(tmp_path / "ex" / "masks" / f"img_{i:03d}.png")) for i in range(n)
    ]
    return np.stack(masks), np.load(tmp_path / "ex" / "probs.npy")


def test_collector_is_deterministic_across_executors(tmp_path: Path) -> None:
    labels, probs = _example_arrays(tmp_path)
    names = ("road", "sidewalk", "building", "sky", "car", "person")
    outputs = []
    for executor, block in ((SerialExecutor(), 12), (ThreadExecutor(4), 1)):
        dataset = ArrayDataset(labels, probs, block_size=block)
        folder = tmp_path / f"run-{block}"
        with RegionCollector(names) as collector, RunWriter(folder) as run:
            result = run_audit(dataset, AuditOptions(), executor=executor, sinks=[collector])
            collector.write(run, len(dataset.image_ids))
            run.commit()
        path = folder / "regions.csv"
        outputs.append(path.read_text(encoding="utf-8"))
        rows = read_regions(path)
        assert sum(int(r["area"]) for r in rows) == result.flagged_pixels
        per_image = Counter(r["image_id"] for r in rows)
        for index, summary in collector.summaries.items():
            assert summary.count == per_image.get(str(index), 0)
    assert outputs[0] == outputs[1]
    header = outputs[0].splitlines()[0]
    assert tuple(header.split(",")) == REGION_COLUMNS


def test_score_writes_regions_and_ranking_columns(tmp_path: Path) -> None:
    example = load_example_module()
    ex = tmp_path / "ex"
    example.make_example(ex, num_images=6, height=48, width=64, seed=1)
    run = tmp_path / "run"
    common = ["score", "--labels", str(ex / "masks"), "--probs", str(ex / "probs.npy")]
    result = CliRunner().invoke(app, [*common, "--out", str(run), "--top", "2"])
    assert result.exit_code == 0, result.output
    regions = read_regions(run / "regions.csv")
    with (run / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        ranking = list(csv.DictReader(handle))
    per_image = Counter(r["image_id"] for r in regions)
    for row in ranking:
        assert int(row["region_count"]) == per_image.get(row["image_id"], 0)
        mine = [r for r in regions if r["image_id"] == row["image_id"]]
        if mine:
            assert int(row["largest_region_area"]) == max(int(r["area"]) for r in mine)
            assert row["largest_region_given"] == mine[0]["given"]
    order = [r["image_id"] for r in regions]
    assert order == sorted(order)  # image order equals id order in the example

    coarse = tmp_path / "coarse"
    args = [*common, "--out", str(coarse), "--top", "0", "--min-region-area", "10"]
    result = CliRunner().invoke(app, [*args, "--connectivity", "4"])
    assert result.exit_code == 0, result.output
    kept = read_regions(coarse / "regions.csv")
    assert kept and all(int(r["area"]) >= 10 for r in kept)
    result = CliRunner().invoke(app, [*args, "--connectivity", "6"])
    assert result.exit_code == 2


def _per_pair_regions(
    digest: PixelDigest, flagged: NDArray[np.bool_], structure: NDArray[np.bool_]
) -> list[tuple[int, ...]]:
    """The definition, slowly: label each (given, predicted) pair's flagged pixels apart."""
    from scipy import ndimage

    found = []
    k = int(max(digest.given.max(), digest.predicted.max())) + 1
    codes = np.where(flagged, digest.given * k + digest.predicted, -1)
    for code in np.unique(codes[flagged]).tolist():
        labels, _ = ndimage.label(codes == code, structure=structure)
        for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
            area = int((labels == label).sum())
            found.append(
                (
                    code // k,
                    code % k,
                    area,
                    cols.start,
                    rows.start,
                    cols.stop - cols.start,
                    rows.stop - rows.start,
                )
            )
    return sorted(found)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_pass_labelling_matches_labelling_each_pair(connectivity: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (40, 50)
    blocky = np.kron(rng.integers(0, 4, (8, 10)), np.ones((5, 5), int))  # touching blocks
    given = np.where(rng.random(shape) < 0.2, rng.integers(0, 4, shape), blocky)
    predicted = rng.integers(0, 4, shape)
    digest = digest_of(given, predicted, k=4)
    flagged = digest.disagrees & (rng.random(shape) < 0.7)
    options = RegionOptions(connectivity)
    fast = sorted(
        (r.given, r.predicted, r.area, r.x, r.y, r.width, r.height)
        for r in find_regions(digest, flagged, options)
    )
    assert fast == _per_pair_regions(digest, flagged, options.structure)
