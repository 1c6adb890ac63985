"""Calibrate once on a trusted set; score later batches in one pass.

``segaudit calibrate`` runs pass 1 (and, for float32/64 input, the refine pass) on a set of
images whose labels the team trusts, and saves what pass 2 needs: the per-class thresholds,
the confident count T and the selection cutoff (the T-th lowest self-confidence), with the
per-class pixel counts, temperature, ignore values and class names they came from.

``segaudit score --calibration FILE`` then reads each image of a new batch once
(:func:`segaudit.core.incremental.run_calibrated_audit`): a pixel is flagged when the model
disagrees with its label and its self-confidence is at most the saved cutoff. Scoring the
trusted set itself this way reproduces the full two-pass run exactly.

The file is JSON; floats are written with ``repr`` precision, so they load back bit-exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segaudit.config import ClassesConfig, read_json_object
from segaudit.core.audit import (
    AuditOptions,
    AuditResult,
    Executor,
    ImageSink,
    ProgressCallback,
    run_audit,
    run_pass_one,
)
from segaudit.core.dataset import Dataset
from segaudit.core.incremental import run_calibrated_audit
from segaudit.core.selection import Cutoff
from segaudit.errors import ConfigError
from segaudit.output.atomic import atomic_write, check_output_folder
from segaudit.parallel import ThreadExecutor

if TYPE_CHECKING:
    from segaudit.run import ScoreRequest

CALIBRATION_VERSION = 1
_KEYS = (
    "version",
    "num_classes",
    "class_names",
    "thresholds",
    "labelled_pixels",
    "confident_count",
    "cutoff",
    "temperature",
    "ignore",
)


@dataclass(frozen=True)
class Calibration:
    """Pass 1's outcome on a trusted set: what a single-pass score needs."""

    class_names: tuple[str, ...]
    thresholds: tuple[float, ...]
    labelled_pixels: tuple[int, ...]
    confident_count: int
    cutoff: float | None
    temperature: float
    ignore: frozenset[int]
    num_images: int = 0
    valid_pixels: int = 0
    inputs: tuple[tuple[str, str], ...] = ()
    segaudit_version: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.thresholds)

    @property
    def threshold_array(self) -> NDArray[np.float64]:
        return np.asarray(self.thresholds, dtype=np.float64)

    @property
    def selection(self) -> Cutoff:
        return Cutoff(self.cutoff)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": CALIBRATION_VERSION,
            "segaudit_version": self.segaudit_version,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "thresholds": list(self.thresholds),
            "labelled_pixels": list(self.labelled_pixels),
            "confident_count": self.confident_count,
            "cutoff": self.cutoff,
            "temperature": self.temperature,
            "ignore": sorted(self.ignore),
            "num_images": self.num_images,
            "valid_pixels": self.valid_pixels,
            "inputs": dict(self.inputs),
        }


def write_calibration(calibration: Calibration, path: Path) -> None:
    with atomic_write(path) as handle:
        json.dump(calibration.as_dict(), handle, indent=2, allow_nan=False)
        handle.write("\n")


def _bad(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}; re-create it with `segaudit calibrate`")


def _numbers(path: Path, key: str, value: Any, k: int, kind: type) -> list[Any]:
    """A list of k numbers; ``kind`` float accepts integers too (JSON writes 1.0 as 1.0,
    but a hand-edited file may not)."""
    kinds = (int, float) if kind is float else (kind,)
    ok = isinstance(value, list) and len(value) == k
    ok = ok and all(isinstance(v, kinds) and not isinstance(v, bool) for v in value)
    if not ok:
        raise _bad(path, key, f"expected a list of {k} numbers")
    return list(value)


def load_calibration(path: Path) -> Calibration:
    """Read and validate a calibration file."""
    data = read_json_object(path, if_missing="make it with `segaudit calibrate`")
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise _bad(path, missing[0], "missing")
    if data["version"] != CALIBRATION_VERSION:
        raise _bad(path, "version", f"expected {CALIBRATION_VERSION}, got {data['version']!r}")
    k = data["num_classes"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise _bad(path, "num_classes", f"expected a positive integer, got {k!r}")
    names = data["class_names"]
    if not isinstance(names, list) or len(names) != k or not all(isinstance(n, str) for n in names):
        raise _bad(path, "class_names", f"expected {k} class names")
    floats = [float(v) for v in _numbers(path, "thresholds", data["thresholds"], k, float)]
    if not all(math.isfinite(t) and t > 0 for t in floats):
        raise _bad(path, "thresholds", "expected positive finite numbers")
    counts = _numbers(path, "labelled_pixels", data["labelled_pixels"], k, int)
    cutoff = data["cutoff"]
    if cutoff is not None and (
        isinstance(cutoff, bool) or not isinstance(cutoff, int | float) or not 0 <= cutoff <= 2
    ):
        raise _bad(path, "cutoff", f"expected null or a number in [0, 2], got {cutoff!r}")
    temperature = data["temperature"]
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or temperature <= 0
    ):
        raise _bad(path, "temperature", f"expected a positive number, got {temperature!r}")
    ignore = data["ignore"]
    if not isinstance(ignore, list) or not all(isinstance(v, int) for v in ignore):
        raise _bad(path, "ignore", "expected a list of integers")
    confident = data["confident_count"]
    if isinstance(confident, bool) or not isinstance(confident, int) or confident < 0:
        raise _bad(path, "confident_count", f"expected a whole number, got {confident!r}")
    inputs = data.get("inputs") or {}
    return Calibration(
        class_names=tuple(names),
        thresholds=tuple(floats),
        labelled_pixels=tuple(int(c) for c in counts),
        confident_count=confident,
        cutoff=None if cutoff is None else float(cutoff),
        temperature=float(temperature),
        ignore=frozenset(ignore),
        num_images=int(data.get("num_images", 0)),
        valid_pixels=int(data.get("valid_pixels", 0)),
        inputs=tuple((str(a), str(b)) for a, b in inputs.items())
        if isinstance(inputs, dict)
        else (),
        segaudit_version=str(data.get("segaudit_version", "")),
    )


def calibrate(
    request: ScoreRequest, out: Path, on_progress: ProgressCallback | None = None
) -> Calibration:
    """Run pass 1 on the trusted set ``request`` describes and write the calibration to ``out``.

    The inputs are read exactly as ``segaudit score`` reads them (``request.out`` is unused).
    """
    from segaudit import __version__
    from segaudit.run import open_request_dataset

    check_output_folder(out.parent)  # a bad --out fails now, not after pass 1
    dataset, classes = open_request_dataset(request)
    options = AuditOptions(
        temperature=request.temperature, ignore=classes.ignore, strict=request.strict
    )
    one = run_pass_one(dataset, options, ThreadExecutor(request.workers), on_progress, {})
    counts = one.stats.class_stats.counts
    calibration = Calibration(
        class_names=classes.names,
        thresholds=tuple(float(t) for t in one.thresholds),
        labelled_pixels=tuple(int(c) for c in counts),
        confident_count=one.confident_count,
        cutoff=one.cutoff.value,
        temperature=request.temperature,
        ignore=classes.ignore,
        num_images=len(dataset.image_ids),
        valid_pixels=int(counts.sum()),
        inputs=(
            ("labels", str(request.labels or "")),
            ("probs", str(request.probs or "")),
            ("classes", str(request.classes or "")),
        ),
        segaudit_version=__version__,
    )
    write_calibration(calibration, out)
    return calibration


def check_compatible(
    calibration: Calibration, path: Path, classes: ClassesConfig, options: AuditOptions
) -> None:
    """Raise unless a batch is read the way the trusted set was (classes, ignore, temperature)."""
    if calibration.num_classes != classes.num_classes:
        raise ConfigError(
            f"{path}: calibrated for {calibration.num_classes} classes but this batch has "
            f"{classes.num_classes}; calibrate with the same model and classes"
        )
    if calibration.class_names != classes.names:
        raise ConfigError(
            f"{path}: calibrated with classes {', '.join(calibration.class_names)} but this "
            f"batch uses {', '.join(classes.names)}; pass the same --classes config"
        )
    if calibration.ignore != options.ignore:
        raise ConfigError(
            f"{path}: calibrated with ignore values {sorted(calibration.ignore)} but this "
            f"batch ignores {sorted(options.ignore)}; use the same ignore values"
        )
    if calibration.temperature != options.temperature:
        raise ConfigError(
            f"{path}: calibrated with temperature {calibration.temperature:g}; pass "
            f"--temperature {calibration.temperature:g} or calibrate again"
        )


def audit_dataset(
    dataset: Dataset,
    options: AuditOptions,
    calibration: Calibration | None,
    *,
    executor: Executor,
    sinks: Sequence[ImageSink] = (),
    on_progress: ProgressCallback | None = None,
) -> AuditResult:
    """The full two-pass audit, or with a calibration the single-pass one."""
    if calibration is None:
        return run_audit(dataset, options, executor=executor, sinks=sinks, on_progress=on_progress)
    return run_calibrated_audit(
        dataset,
        options,
        calibration.threshold_array,
        calibration.selection,
        executor=executor,
        sinks=sinks,
        on_progress=on_progress,
    )
