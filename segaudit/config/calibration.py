"""The calibration file: calibrate once on a trusted set, score later batches in one pass.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segaudit.config.classes import ClassesConfig
from segaudit.config.schema import Schema
from segaudit.core.audit import AuditOptions
from segaudit.core.selection import Cutoff
from segaudit.errors import ConfigError
from segaudit.output.atomic import atomic_write

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


def load_calibration(path: Path) -> Calibration:
    """Read and validate a calibration file."""
    from segaudit.config.files import read_json_object

    data = read_json_object(path, if_missing="make it with `segaudit calibrate`")
    schema = Schema(path, _calibration_fault)
    for key in _KEYS:
        schema.require("", data, key, "missing")
    schema.version(data, CALIBRATION_VERSION)
    k = schema.integer("num_classes", data["num_classes"], low=1, high=65536)
    names = schema.sequence("class_names", data["class_names"])
    if len(names) != k:
        raise schema.fail("class_names", f"expected {k} class names")
    names = [schema.text(f"class_names[{i}]", n, limit=200) for i, n in enumerate(names)]
    thresholds = schema.numbers("thresholds", data["thresholds"], k)
    if not all(t > 0 for t in thresholds):
        raise schema.fail("thresholds", "expected positive finite numbers")
    counts = schema.numbers("labelled_pixels", data["labelled_pixels"], k, integers=True)
    cutoff = data["cutoff"]
    if cutoff is not None:
        cutoff = schema.number("cutoff", cutoff, low=0, high=2)
    temperature = schema.number("temperature", data["temperature"])
    if temperature <= 0:
        raise schema.fail("temperature", f"expected a positive number, got {temperature!r}")
    ignore = schema.sequence("ignore", data["ignore"])
    ignore = [schema.integer(f"ignore[{i}]", v) for i, v in enumerate(ignore)]
    confident = schema.count("confident_count", data["confident_count"])
    inputs = data.get("inputs") or {}
    return Calibration(
        class_names=tuple(names),
        thresholds=tuple(float(t) for t in thresholds),
        labelled_pixels=tuple(int(c) for c in counts),
        confident_count=confident,
        cutoff=None if cutoff is None else float(cutoff),
        temperature=float(temperature),
        ignore=frozenset(ignore),
        num_images=schema.count("num_images", data.get("num_images", 0)),
        valid_pixels=schema.count("valid_pixels", data.get("valid_pixels", 0)),
        inputs=tuple((str(a), str(b)) for a, b in inputs.items())
        if isinstance(inputs, dict)
        else (),
        segaudit_version=str(data.get("segaudit_version", "")),
    )


def _calibration_fault(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(
        f"{path}: {key}: {problem}; re-create it with `segaudit calibrate`",
        path=str(path),
        key=key,
    )


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
