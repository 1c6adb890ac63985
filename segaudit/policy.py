"""The gate policy: which label-quality limits a run must meet, validated at load time.

Schema (version 1); every rule is optional, at least one is required::

    version: 1
    name: street-labels            # optional; shown in reports (default: the file name)
    rules:
      low_score:                   # the share or count of images scoring below a value
        below: 0.1
        max_count: 0               # or max_share: 0.05 (exactly one of the two)
      min_score: 0.02              # the lowest image score allowed
      flagged_fraction:
        max: 0.02                  # flagged pixels / valid pixels over the whole run
        per_class: {car: 0.05}     # flagged pixels labelled c / pixels labelled c
      regions:                     # no region of flagged pixels larger than max_area
        - {given: car, predicted: road, max_area: 150}
        - {predicted: person, max_area: 300}   # a missing class means any class
      class_thresholds:            # per-class threshold (the model's mean confidence in c
        min: 0.5                   # where annotators said c) must not fall below this
        classes: [car, person]     # optional; default: every class with labelled pixels
      skipped:
        max_count: 0               # images that could not be read

Errors name the key path (``rules.regions[1].max_area``); unknown keys are errors too, so a
typo never silently disables a rule. Loaded with ``yaml.safe_load``: no Python tags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.config import _fail, check_keys, check_version, read_yaml

_TOP_KEYS = {"version", "name", "rules"}
_RULE_KEYS = {
    "low_score",
    "min_score",
    "flagged_fraction",
    "regions",
    "class_thresholds",
    "skipped",
}
_LOW_SCORE_KEYS = {"below", "max_count", "max_share"}
_FRACTION_KEYS = {"max", "per_class"}
_REGION_KEYS = {"given", "predicted", "max_area"}
_THRESHOLD_KEYS = {"min", "classes"}
_SKIPPED_KEYS = {"max_count"}


@dataclass(frozen=True)
class LowScoreRule:
    """At most ``max_count`` images (or ``max_share`` of scored images) score below ``below``."""

    below: float
    max_count: int | None = None
    max_share: float | None = None


@dataclass(frozen=True)
class RegionRule:
    """No flagged region of this (given, predicted) pair larger than ``max_area`` pixels.

    ``None`` for a class means any class.
    """

    max_area: int
    given: str | None = None
    predicted: str | None = None

    @property
    def label(self) -> str:
        return f"{self.given or '*'}->{self.predicted or '*'}"


@dataclass(frozen=True)
class ThresholdRule:
    """Per-class thresholds must be at least ``min``; ``classes`` None: every labelled class."""

    min: float
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Policy:
    """A validated gate policy (see the module docstring for the YAML it comes from)."""

    name: str
    low_score: LowScoreRule | None = None
    min_score: float | None = None
    max_flagged_fraction: float | None = None
    class_flagged_fraction: dict[str, float] = field(default_factory=dict)
    regions: tuple[RegionRule, ...] = ()
    class_thresholds: ThresholdRule | None = None
    max_skipped: int | None = None
    source: str = ""

    def class_names(self) -> set[str]:
        """Every class name the policy refers to (checked against the run's classes)."""
        names = set(self.class_flagged_fraction)
        for rule in self.regions:
            names |= {n for n in (rule.given, rule.predicted) if n is not None}
        if self.class_thresholds and self.class_thresholds.classes:
            names |= set(self.class_thresholds.classes)
        return names


def _number(path: Path, key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, key, f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise _fail(path, key, f"expected a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _count(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, key, f"expected a whole number >= 0, got {value!r}")
    return value


def _class_name(path: Path, key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise _fail(path, key, f"expected a class name, got {value!r}")
    return str(value)


def _mapping(path: Path, key: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, key, f"expected a mapping with keys {', '.join(sorted(allowed))}")
    check_keys(path, key, value, allowed)
    return value


def _low_score(path: Path, raw: Any) -> LowScoreRule:
    key = "rules.low_score"
    data = _mapping(path, key, raw, _LOW_SCORE_KEYS)
    if "below" not in data:
        raise _fail(path, f"{key}.below", "required: the score under which an image counts")
    below = _number(path, f"{key}.below", data["below"], 0.0, 1.0)
    if ("max_count" in data) == ("max_share" in data):
        raise _fail(path, key, "give exactly one of max_count or max_share")
    if "max_count" in data:
        return LowScoreRule(below, max_count=_count(path, f"{key}.max_count", data["max_count"]))
    return LowScoreRule(below, max_share=_number(path, f"{key}.max_share", data["max_share"], 0, 1))


def _flagged(path: Path, raw: Any) -> tuple[float | None, dict[str, float]]:
    key = "rules.flagged_fraction"
    data = _mapping(path, key, raw, _FRACTION_KEYS)
    overall = _number(path, f"{key}.max", data["max"], 0, 1) if "max" in data else None
    per_class_raw = data.get("per_class") or {}
    if not isinstance(per_class_raw, dict):
        raise _fail(path, f"{key}.per_class", "expected a mapping of class name: fraction")
    per_class = {
        _class_name(path, f"{key}.per_class", name): _number(
            path, f"{key}.per_class.{name}", value, 0, 1
        )
        for name, value in per_class_raw.items()
    }
    if overall is None and not per_class:
        raise _fail(path, key, "give max, per_class or both")
    return overall, per_class


def _regions(path: Path, raw: Any) -> tuple[RegionRule, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "rules.regions", "expected a list of {given, predicted, max_area}")
    rules = []
    for i, entry in enumerate(raw):
        key = f"rules.regions[{i}]"
        data = _mapping(path, key, entry, _REGION_KEYS)
        if "max_area" not in data:
            raise _fail(path, f"{key}.max_area", "required: the largest region allowed, pixels")
        given, predicted = (
            _class_name(path, f"{key}.{name}", data[name]) if name in data else None
            for name in ("given", "predicted")
        )
        rules.append(
            RegionRule(_count(path, f"{key}.max_area", data["max_area"]), given, predicted)
        )
    return tuple(rules)


def _thresholds(path: Path, raw: Any) -> ThresholdRule:
    key = "rules.class_thresholds"
    data = _mapping(path, key, raw, _THRESHOLD_KEYS)
    if "min" not in data:
        raise _fail(path, f"{key}.min", "required: the lowest per-class threshold allowed")
    floor = _number(path, f"{key}.min", data["min"], 0, 1)
    classes = data.get("classes")
    if classes is None:
        return ThresholdRule(floor)
    if not isinstance(classes, list) or not classes:
        raise _fail(path, f"{key}.classes", "expected a non-empty list of class names")
    names = tuple(_class_name(path, f"{key}.classes[{i}]", c) for i, c in enumerate(classes))
    return ThresholdRule(floor, names)


def parse_policy(path: Path, data: dict[str, Any]) -> Policy:
    """Validate a policy mapping already read from ``path``."""
    check_version(path, data)
    check_keys(path, "", data, _TOP_KEYS)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise _fail(path, "name", f"expected a non-empty string, got {name!r}")
    rules = data.get("rules")
    if not isinstance(rules, dict) or not rules:
        raise _fail(path, "rules", f"expected a mapping of rules ({', '.join(sorted(_RULE_KEYS))})")
    check_keys(path, "rules", rules, _RULE_KEYS)
    overall, per_class = (
        _flagged(path, rules["flagged_fraction"]) if "flagged_fraction" in rules else (None, {})
    )
    skipped = None
    if "skipped" in rules:
        skipped_data = _mapping(path, "rules.skipped", rules["skipped"], _SKIPPED_KEYS)
        if "max_count" not in skipped_data:
            raise _fail(path, "rules.skipped.max_count", "required: images allowed to be skipped")
        skipped = _count(path, "rules.skipped.max_count", skipped_data["max_count"])
    return Policy(
        name=name,
        low_score=_low_score(path, rules["low_score"]) if "low_score" in rules else None,
        min_score=(
            _number(path, "rules.min_score", rules["min_score"], 0, 1)
            if "min_score" in rules
            else None
        ),
        max_flagged_fraction=overall,
        class_flagged_fraction=per_class,
        regions=_regions(path, rules["regions"]) if "regions" in rules else (),
        class_thresholds=(
            _thresholds(path, rules["class_thresholds"]) if "class_thresholds" in rules else None
        ),
        max_skipped=skipped,
        source=str(path),
    )


def load_policy(path: Path) -> Policy:
    """Load and validate a gate policy YAML file; ConfigError names the bad key."""
    return parse_policy(path, read_yaml(path))
