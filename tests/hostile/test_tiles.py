"""Images larger than the working-set budget are read in bands of rows (segaudit.io.tiles):
the results must be the untiled results (identical counts and cutoff, scores to 1e-12)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import segaudit.io.tiles as tiles
from segaudit.cli import app
from segaudit.core.dataset import Band
from segaudit.core.image import softmin_score
from segaudit.core.tiles import RunningSoftmin

SCORE_TOLERANCE = 1e-12


def _score(masks: Path, probs: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["score", "--labels", str(masks), "--probs", str(probs), "--out", str(out), *extra]
    args.append("--no-pairing-check")  # the synthetic model is barely better than chance
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        ranking = list(csv.DictReader(handle))
    with (out / "regions.csv").open(encoding="utf-8", newline="") as handle:
        regions = list(csv.DictReader(handle))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {"ranking": ranking, "regions": regions, "summary": summary}


def _tiled(monkeypatch: pytest.MonkeyPatch, band_bytes: int) -> list[int]:
    """Make every image a tiled one; returns the list the first rows of bands read go to."""
    monkeypatch.setattr(tiles, "TILE_IMAGE_BYTES", 1)
    monkeypatch.setattr(tiles, "TILE_BAND_BYTES", band_bytes)
    tops: list[int] = []
    bands = tiles.BandedImage.bands

    def counted(self: tiles.BandedImage) -> Iterator[Band]:
        for band in bands(self):
            tops.append(band.top)
            yield band

    monkeypatch.setattr(tiles.BandedImage, "bands", counted)
    return tops


@pytest.mark.parametrize("fmt", ["zarr", "npy"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_tiled_run_equals_untiled_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset: Any, fmt: str, dtype: Any
) -> None:
    data = make_dataset(
        tmp_path / "data", n=4, k=5, h=37, w=23, dtype=dtype, fmt=fmt, ignore_rate=0.05
    )
    whole = _score(data.masks, data.probs_path, tmp_path / "whole")
    # bands of 2 rows (5 classes x 23 columns x itemsize bytes per row)
    tops = _tiled(monkeypatch, 2 * 5 * 23 * np.dtype(dtype).itemsize)
    banded = _score(data.masks, data.probs_path, tmp_path / "banded")
    assert max(tops) == 36 and sorted(set(tops)) == list(range(0, 37, 2))

    a, b = whole["summary"], banded["summary"]
    for key in ("flagged_pixels", "valid_pixels", "confident_count", "cutoff", "classes"):
        assert a[key] == b[key], key
    assert len(whole["ranking"]) == len(banded["ranking"])
    by_id = {row["image_id"]: row for row in banded["ranking"]}
    for row in whole["ranking"]:
        other = by_id[row["image_id"]]
        for key in ("flagged_pixels", "valid_pixels", "top_given", "top_predicted", "agreement"):
            assert row[key] == other[key], key
        assert math.isclose(
            float(row["label_quality"]), float(other["label_quality"]), rel_tol=SCORE_TOLERANCE
        )
    # regions are cut at band borders, but every flagged pixel is in exactly one region
    for image_id, row in by_id.items():
        areas = sum(int(r["area"]) for r in banded["regions"] if r["image_id"] == image_id)
        assert areas == int(row["flagged_pixels"])
        ys = [
            int(r["y"]) + int(r["height"]) for r in banded["regions"] if r["image_id"] == image_id
        ]
        assert all(y <= 37 for y in ys)


def test_tiled_run_with_downsample_equals_untiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset: Any
) -> None:
    data = make_dataset(tmp_path / "data", n=3, k=4, h=30, w=20, fmt="npy")
    whole = _score(data.masks, data.probs_path, tmp_path / "whole", "--downsample", "3")
    _tiled(monkeypatch, 4 * 20 * 2)  # 4 rows: rounded down to 3, one downsampling block
    banded = _score(data.masks, data.probs_path, tmp_path / "banded", "--downsample", "3")
    assert whole["summary"]["classes"] == banded["summary"]["classes"]
    assert whole["summary"]["flagged_pixels"] == banded["summary"]["flagged_pixels"]


def test_overlays_of_tiled_images_are_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset: Any
) -> None:
    data = make_dataset(tmp_path / "data", n=3, k=4, h=40, w=30, fmt="zarr")
    _tiled(monkeypatch, 3 * 4 * 30 * 2)
    out = tmp_path / "run"
    _score(data.masks, data.probs_path, out)
    assert list((out / "overlays").glob("*.png"))


@pytest.mark.parametrize("seed", range(20))
def test_running_softmin_merges_bands_like_one_array(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random(rng.integers(1, 5000)) ** rng.integers(1, 8)
    whole = softmin_score(scores, 0.1)
    one = RunningSoftmin(0.1)
    one.add(scores)
    assert one.score == whole  # a single band is the untiled computation, bit for bit
    running = RunningSoftmin(0.1)
    cuts = np.sort(rng.integers(0, scores.size, 6))
    for part in np.split(scores, cuts):
        running.add(part)
    assert math.isclose(running.score, whole, rel_tol=SCORE_TOLERANCE)


def test_calibrated_single_pass_on_tiled_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset: Any
) -> None:
    data = make_dataset(tmp_path / "data", n=4, k=4, h=20, w=16, fmt="npy")
    calibration = tmp_path / "calibration.json"
    result = CliRunner().invoke(
        app,
        ["calibrate", "--labels", str(data.masks), "--probs", str(data.probs_path),
         "--out", str(calibration)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    extra = ("--calibration", str(calibration))
    whole = _score(data.masks, data.probs_path, tmp_path / "whole", *extra)
    tops = _tiled(monkeypatch, 3 * 4 * 16 * 2)
    banded = _score(data.masks, data.probs_path, tmp_path / "banded", *extra)
    assert tops
    assert whole["summary"]["flagged_pixels"] == banded["summary"]["flagged_pixels"]
    assert whole["summary"]["classes"] == banded["summary"]["classes"]
    for a, b in zip(whole["ranking"], banded["ranking"], strict=True):
        assert a["image_id"] == b["image_id"] and a["flagged_pixels"] == b["flagged_pixels"]


def test_a_corrupt_band_skips_its_image_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset: Any
) -> None:
    import zarr

    data = make_dataset(tmp_path / "data", n=3, k=4, h=16, w=8, fmt="zarr")
    store = tmp_path / "rows.zarr"  # chunked by 4 rows, as advised for large images
    array = zarr.create_array(
        store=str(store), shape=data.probs.shape, chunks=(1, 4, 4, 8), dtype=data.probs.dtype
    )
    array[...] = data.probs
    array.attrs["image_ids"] = data.ids
    (store / "c" / "1" / "0" / "2" / "0").write_bytes(b"\x00broken")  # image 1, rows 8..11
    _tiled(monkeypatch, 4 * 4 * 8 * 2)
    out = tmp_path / "run"
    run = _score(data.masks, store, out)
    skipped = {r["image_id"]: r["skipped"] for r in run["ranking"] if r["skipped"]}
    assert list(skipped) == [data.ids[1]]
    assert "rows 8..11" in skipped[data.ids[1]]
    # the healthy images' statistics are those of a run without the broken image
    assert run["summary"]["valid_pixels"] == sum(
        int(r["valid_pixels"]) for r in run["ranking"] if not r["skipped"]
    )


def test_errors_of_tiled_images_are_explained_without_reading_them_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_dataset: Any
) -> None:
    data = make_dataset(tmp_path / "data", n=2, k=4, h=16, w=8, fmt="npy")
    probs = np.load(data.probs_path) * 3.0  # logits-like: no image sums to 1
    np.save(data.probs_path, probs)
    _tiled(monkeypatch, 4 * 4 * 8 * 4)
    result = CliRunner().invoke(
        app,
        ["score", "--labels", str(data.masks), "--probs", str(data.probs_path),
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "sum" in result.output
