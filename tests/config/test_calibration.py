"""Calibrate once, score increments in one pass: how the result relates to a full run.

- On the trusted set itself the single pass reproduces the full two-pass run exactly
  (masks, scores, T, cutoff), for float16 (exact histograms) and float32 (refine pass).
- On new data a pixel is flagged iff the model disagrees with its label and its
  self-confidence (as float32) is <= the saved cutoff; T is counted with the saved
  thresholds and reported, but selects nothing.
- Each image is read once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from segaudit.api import ArrayDataset
from segaudit.cli import app
from segaudit.config.calibration import (
    Calibration,
    check_compatible,
    load_calibration,
    write_calibration,
)
from segaudit.config.classes import default_classes
from segaudit.core.audit import AuditOptions, AuditResult, run_audit
from segaudit.core.dataset import LoadedImage
from segaudit.core.incremental import run_calibrated_audit
from segaudit.core.pixel import PixelDigest, digest_image
from segaudit.errors import ConfigError, DatasetError
from segaudit.io.inputs import open_folder


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


class MaskSink:
    """Collects every flagged mask and digest by image index."""

    def __init__(self) -> None:
        self.masks: dict[int, NDArray[np.bool_]] = {}
        self.digests: dict[int, PixelDigest] = {}

    def __call__(
        self, index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None:
        self.masks[index] = flagged.copy()
        self.digests[index] = digest


@dataclass
class CountingDataset:
    """Wraps a dataset and counts how often each image is loaded."""

    inner: Any
    loads: dict[int, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.inner.num_classes)

    @property
    def image_ids(self) -> Sequence[str]:
        ids: Sequence[str] = self.inner.image_ids
        return ids

    def blocks(self) -> Sequence[range]:
        blocks: Sequence[range] = self.inner.blocks()
        return blocks

    def load(self, block: range) -> Iterator[LoadedImage]:
        for image in self.inner.load(block):
            self.loads[image.index] = self.loads.get(image.index, 0) + 1
            yield image


def assert_same_run(full: AuditResult, single: AuditResult, a: MaskSink, b: MaskSink) -> None:
    assert single.images == full.images
    assert single.confident_count == full.confident_count
    assert single.cutoff == full.cutoff
    np.testing.assert_array_equal(single.thresholds, full.thresholds)
    np.testing.assert_array_equal(single.confusion, full.confusion)
    assert a.masks.keys() == b.masks.keys()
    for index in a.masks:
        np.testing.assert_array_equal(a.masks[index], b.masks[index])


def test_trusted_set_reproduces_the_full_run_float16(example_dir: Any) -> None:
    dataset = open_folder(example_dir.root / "masks", example_dir.root / "probs.zarr")
    options = AuditOptions()
    full_sink, single_sink = MaskSink(), MaskSink()
    full = run_audit(dataset, options, sinks=[full_sink])
    counting = CountingDataset(dataset)
    single = run_calibrated_audit(
        counting, options, full.thresholds, full.cutoff, sinks=[single_sink]
    )
    assert_same_run(full, single, full_sink, single_sink)
    assert full.flagged_pixels > 0
    assert counting.loads == {i: 1 for i in range(len(dataset.image_ids))}  # one read each


def test_trusted_set_reproduces_the_full_run_float32(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(3, n=6, k=4, h=10, w=12, dtype=np.float32, ignore_rate=0.05)
    dataset = ArrayDataset(arrays.labels, arrays.probs, block_size=2)
    full_sink, single_sink = MaskSink(), MaskSink()
    full = run_audit(dataset, AuditOptions(), sinks=[full_sink])
    assert "refine_seconds" in full.timings  # the exact cutoff needed the refine pass
    single = run_calibrated_audit(
        dataset, AuditOptions(), full.thresholds, full.cutoff, sinks=[single_sink]
    )
    assert_same_run(full, single, full_sink, single_sink)


def test_new_batch_flags_disagreeing_pixels_at_or_below_the_saved_cutoff(
    synthetic: Callable[..., Any],
) -> None:
    trusted = synthetic(1, n=5, k=4, h=10, w=12, dtype=np.float32, error_rate=0.02)
    batch = synthetic(2, n=4, k=4, h=10, w=12, dtype=np.float32, error_rate=0.2)
    calibration = run_audit(ArrayDataset(trusted.labels, trusted.probs))
    assert calibration.cutoff.value is not None
    sink = MaskSink()
    dataset = ArrayDataset(batch.labels, batch.probs)
    result = run_calibrated_audit(
        dataset, AuditOptions(), calibration.thresholds, calibration.cutoff, sinks=[sink]
    )
    np.testing.assert_array_equal(result.thresholds, calibration.thresholds)
    assert result.cutoff == calibration.cutoff
    cutoff = np.float32(calibration.cutoff.value)
    confident = 0
    for index in range(len(dataset.image_ids)):
        digest = digest_image(str(index), batch.labels[index], batch.probs[index], {255})
        disagree = digest.valid & (digest.predicted != digest.given)
        expected = disagree & (digest.self_confidence.astype(np.float32) <= cutoff)
        np.testing.assert_array_equal(sink.masks[index], expected)
        limit = calibration.thresholds[digest.predicted] - 1e-6
        confident += int(np.count_nonzero(disagree & (digest.max_prob >= limit)))
    assert result.confident_count == confident  # reported, not used for selection
    assert result.flagged_pixels == sum(int(m.sum()) for m in sink.masks.values())
    assert result.flagged_pixels != result.confident_count  # the saved cutoff selected


def test_thresholds_must_match_the_classes(synthetic: Callable[..., Any]) -> None:
    arrays = synthetic(1, n=2, k=4)
    with pytest.raises(DatasetError, match="4"):
        run_calibrated_audit(
            ArrayDataset(arrays.labels, arrays.probs),
            AuditOptions(),
            np.full(3, 0.5),
            run_audit(ArrayDataset(arrays.labels, arrays.probs)).cutoff,
        )


# ------------------------------------------------------------------------ files and CLI


def test_calibration_file_round_trips_exactly(tmp_path: Path) -> None:
    calibration = Calibration(
        class_names=("a", "b"),
        thresholds=(0.1 + 0.2, 1 / 3),
        labelled_pixels=(5, 7),
        confident_count=3,
        cutoff=float(np.float32(0.123456789)),
        temperature=0.05,
        ignore=frozenset({255, 0}),
        num_images=2,
        valid_pixels=12,
        inputs=(("labels", "m"),),
        segaudit_version="x",
    )
    write_calibration(calibration, tmp_path / "c.json")
    assert load_calibration(tmp_path / "c.json") == calibration


def _calibrate(data: Path, out: Path, *extra: object) -> tuple[int, str]:
    return invoke(
        "calibrate", "--labels", data / "masks", "--probs", data / "probs.zarr",
        "--classes", data / "classes.yaml", "--out", out, *extra,
    )  # fmt: skip


def _score(data: Path, out: Path, *extra: object) -> tuple[int, str]:
    return invoke(
        "score", "--labels", data / "masks", "--probs", data / "probs.zarr",
        "--classes", data / "classes.yaml", "--out", out, "--top", "0", *extra,
    )  # fmt: skip


def test_calibrate_then_score_the_trusted_set_matches_a_full_run(
    example_dir: Any, tmp_path: Path
) -> None:
    data = example_dir.root
    cal = tmp_path / "calibration.json"
    code, output = _calibrate(data, cal)
    assert code == 0, output
    assert _score(data, tmp_path / "full")[0] == 0
    saved = json.loads(cal.read_text())
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert saved["thresholds"] == [c["threshold"] for c in summary["classes"]]
    assert saved["labelled_pixels"] == [c["labelled_pixels"] for c in summary["classes"]]
    assert saved["cutoff"] == summary["cutoff"]
    assert saved["confident_count"] == summary["confident_count"]
    assert saved["class_names"] == summary["class_names"]
    assert saved["ignore"] == summary["parameters"]["ignore"]

    code, output = _score(data, tmp_path / "single", "--calibration", cal)
    assert code == 0, output
    for name in ("ranking.csv", "regions.csv", "masks.json"):
        assert (tmp_path / "single" / name).read_bytes() == (
            tmp_path / "full" / name
        ).read_bytes(), name


def test_calibration_errors_exit_2(example_dir: Any, tmp_path: Path) -> None:
    data = example_dir.root
    cal = tmp_path / "calibration.json"
    assert _calibrate(data, cal)[0] == 0
    good = json.loads(cal.read_text())
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "version": 9}, "version"),
        ({k: v for k, v in good.items() if k != "cutoff"}, "cutoff"),
        ({**good, "thresholds": good["thresholds"][:-1]}, "thresholds"),
        ({**good, "cutoff": "low"}, "cutoff"),
        ({**good, "ignore": [0]}, "ignore values"),
        ({**good, "class_names": [*good["class_names"][:-1], "other"]}, "classes"),
    ]
    for i, (document, key) in enumerate(cases):
        path = tmp_path / f"bad{i}.json"
        path.write_text(json.dumps(document))
        code, output = _score(data, tmp_path / f"run{i}", "--calibration", path)
        assert code == 2 and key in output, (key, output)
    code, output = _score(data, tmp_path / "t", "--calibration", cal, "--temperature", "0.2")
    assert code == 2 and "--temperature 0.1" in output
    code, output = _score(data, tmp_path / "m", "--calibration", tmp_path / "missing.json")
    assert code == 2 and "segaudit calibrate" in output


def test_check_compatible_names_the_mismatch(tmp_path: Path) -> None:
    calibration = Calibration(("a", "b"), (0.5, 0.5), (1, 1), 0, None, 0.1, frozenset({255}))
    options = AuditOptions()
    check_compatible(calibration, tmp_path, _classes(("a", "b")), options)
    with pytest.raises(ConfigError, match="3"):
        check_compatible(calibration, tmp_path, _classes(("a", "b", "c")), options)
    with pytest.raises(ConfigError, match="temperature"):
        check_compatible(calibration, tmp_path, _classes(("a", "b")), AuditOptions(0.2))


def _classes(names: tuple[str, ...]) -> Any:
    return replace(default_classes(len(names)), names=names)


def test_calibrated_run_records_its_calibration(example_dir: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(example_dir.root, data)
    cal = tmp_path / "calibration.json"
    assert _calibrate(data, cal)[0] == 0
    assert _score(data, tmp_path / "run", "--calibration", cal)[0] == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["inputs"]["calibration"] == str(cal)
