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
typo never silently disables a rule. Read with segaudit's bounded YAML reader
(:mod:`segaudit.config.files`): safe tags only, no aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.config.schema import Schema

POLICY_VERSION = 1

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


def _class_name(schema: Schema, key: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a class named by its id
    return schema.text(key, value, limit=200)


def _low_score(schema: Schema, raw: Any) -> LowScoreRule:
    key = "rules.low_score"
    data = schema.mapping(key, raw, _LOW_SCORE_KEYS)
    below = schema.require(key, data, "below", "required: the score under which an image counts")
    below = schema.number(f"{key}.below", below, low=0.0, high=1.0)
    if ("max_count" in data) == ("max_share" in data):
        raise schema.fail(key, "give exactly one of max_count or max_share")
    if "max_count" in data:
        return LowScoreRule(below, max_count=schema.count(f"{key}.max_count", data["max_count"]))
    share = schema.number(f"{key}.max_share", data["max_share"], low=0, high=1)
    return LowScoreRule(below, max_share=share)


def _flagged(schema: Schema, raw: Any) -> tuple[float | None, dict[str, float]]:
    key = "rules.flagged_fraction"
    data = schema.mapping(key, raw, _FRACTION_KEYS)
    overall = schema.number(f"{key}.max", data["max"], low=0, high=1) if "max" in data else None
    per_class_raw = data.get("per_class") or {}
    if not isinstance(per_class_raw, dict):
        raise schema.fail(f"{key}.per_class", "expected a mapping of class name: fraction")
    per_class = {
        _class_name(schema, f"{key}.per_class", name): schema.number(
            f"{key}.per_class.{name}", value, low=0, high=1
        )
        for name, value in per_class_raw.items()
    }
    if overall is None and not per_class:
        raise schema.fail(key, "give max, per_class or both")
    return overall, per_class


def _regions(schema: Schema, raw: Any) -> tuple[RegionRule, ...]:
    if not isinstance(raw, list) or not raw:
        raise schema.fail("rules.regions", "expected a list of {given, predicted, max_area}")
    rules = []
    for i, entry in enumerate(raw):
        key = f"rules.regions[{i}]"
        data = schema.mapping(key, entry, _REGION_KEYS)
        area = schema.require(key, data, "max_area", "required: the largest region allowed, pixels")
        given, predicted = (
            _class_name(schema, f"{key}.{name}", data[name]) if name in data else None
            for name in ("given", "predicted")
        )
        rules.append(RegionRule(schema.count(f"{key}.max_area", area), given, predicted))
    return tuple(rules)


def _thresholds(schema: Schema, raw: Any) -> ThresholdRule:
    key = "rules.class_thresholds"
    data = schema.mapping(key, raw, _THRESHOLD_KEYS)
    floor = schema.require(key, data, "min", "required: the lowest per-class threshold allowed")
    floor = schema.number(f"{key}.min", floor, low=0, high=1)
    classes = data.get("classes")
    if classes is None:
        return ThresholdRule(floor)
    if not isinstance(classes, list) or not classes:
        raise schema.fail(f"{key}.classes", "expected a non-empty list of class names")
    names = tuple(_class_name(schema, f"{key}.classes[{i}]", c) for i, c in enumerate(classes))
    return ThresholdRule(floor, names)


def parse_policy(path: Path, data: dict[str, Any]) -> Policy:
    """Validate a policy mapping already read from ``path``."""
    schema = Schema(path)
    schema.version(data, POLICY_VERSION)
    schema.mapping("", data, _TOP_KEYS)
    name = schema.text("name", data.get("name", path.stem), limit=200)
    rules = data.get("rules")
    if not isinstance(rules, dict) or not rules:
        raise schema.fail("rules", f"expected a mapping of rules ({', '.join(sorted(_RULE_KEYS))})")
    schema.mapping("rules", rules, _RULE_KEYS)
    overall, per_class = (
        _flagged(schema, rules["flagged_fraction"]) if "flagged_fraction" in rules else (None, {})
    )
    skipped = None
    if "skipped" in rules:
        skipped_data = schema.mapping("rules.skipped", rules["skipped"], _SKIPPED_KEYS)
        count = schema.require(
            "rules.skipped", skipped_data, "max_count", "required: images allowed to be skipped"
        )
        skipped = schema.count("rules.skipped.max_count", count)
    min_score = None
    if "min_score" in rules:
        min_score = schema.number("rules.min_score", rules["min_score"], low=0, high=1)
    return Policy(
        name=name,
        low_score=_low_score(schema, rules["low_score"]) if "low_score" in rules else None,
        min_score=min_score,
        max_flagged_fraction=overall,
        class_flagged_fraction=per_class,
        regions=_regions(schema, rules["regions"]) if "regions" in rules else (),
        class_thresholds=(
            _thresholds(schema, rules["class_thresholds"]) if "class_thresholds" in rules else None
        ),
        max_skipped=skipped,
        source=str(path),
    )


def load_policy(path: Path) -> Policy:
    """Load and validate a gate policy YAML file; ConfigError names the bad key."""
    from segaudit.config.files import read_yaml

    return parse_policy(path, read_yaml(path))
