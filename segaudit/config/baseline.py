"""Baselines of known findings.

A finding is one thing a rule objects to: an image scoring too low, a region too large in
an image, a class whose threshold fell, the run's flagged fraction. A baseline file lists
the findings a team has accepted. The gate then counts only findings that are new, or worse
than when they were accepted. An image is identified by its id *and* the SHA-256 of its
mask file, so an image that was re-annotated since is judged again.

The mask hashes come from the run folder's ``masks.json`` (:mod:`segaudit.rundir`), so a run
can be checked against a baseline on another machine. A baseline records the policy and the
classes it was made for and is refused for others.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segaudit.config.schema import Schema
from segaudit.output.atomic import atomic_write

BASELINE_VERSION = 1
_TOP_KEYS = {"version", "segaudit_version", "policy", "class_names", "findings"}
_FINDING_KEYS = {"check", "key", "value", "mask_sha256"}


@dataclass(frozen=True)
class Finding:
    """One thing a check objects to.

    ``key`` is an image id, a class name, or "" for the whole run; ``value`` is what is
    compared (a score, an area, a fraction); ``mask_sha256`` identifies the annotation for
    image findings.
    """

    check: str
    key: str
    value: float
    text: str
    mask_sha256: str = ""


@dataclass(frozen=True)
class Baseline:
    """Accepted findings, looked up by (check, key)."""

    entries: dict[tuple[str, str], Finding]

    def is_known(self, finding: Finding, higher_is_worse: bool) -> bool:
        """Known: same check, same key, same mask, and not worse than when accepted."""
        known = self.entries.get((finding.check, finding.key))
        if known is None or known.mask_sha256 != finding.mask_sha256:
            return False
        if higher_is_worse:
            return finding.value <= known.value
        return finding.value >= known.value


def write_baseline(
    findings: Iterable[Finding], path: Path, *, policy: str, classes: Sequence[str], version: str
) -> int:
    """Write every current finding as accepted; returns how many. The policy's name and the
    run's classes are recorded, so the baseline is not silently applied to another dataset."""
    rows = [
        {"check": f.check, "key": f.key, "value": f.value, "mask_sha256": f.mask_sha256}
        for f in sorted(findings, key=lambda f: (f.check, f.key))
    ]
    document = {
        "version": BASELINE_VERSION,
        "segaudit_version": version,
        "policy": policy,
        "class_names": list(classes),
        "findings": rows,
    }
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=1, allow_nan=False)
        handle.write("\n")
    return len(rows)


def _entry(schema: Schema, i: int, row: Any) -> Finding:
    key = f"findings[{i}]"
    data = schema.mapping(key, row, _FINDING_KEYS)
    for name in _FINDING_KEYS:
        schema.require(key, data, name, "missing")
    return Finding(
        schema.text(f"{key}.check", data["check"]),
        schema.text(f"{key}.key", data["key"], empty=True, limit=4096),
        schema.number(f"{key}.value", data["value"]),
        "",
        schema.text(f"{key}.mask_sha256", data["mask_sha256"], empty=True, limit=64),
    )


def load_baseline(path: Path, *, policy: str, classes: Sequence[str]) -> Baseline:
    """Read a baseline file written by ``--update-baseline`` for this policy and classes."""
    from segaudit.config.files import read_json_object

    data = read_json_object(path, if_missing="create it with --update-baseline")
    schema = Schema(path)
    schema.version(data, BASELINE_VERSION)
    schema.mapping("", data, _TOP_KEYS)
    rows = schema.sequence("findings", data.get("findings"))
    entries = {}
    for i, row in enumerate(rows):
        finding = _entry(schema, i, row)
        entries[(finding.check, finding.key)] = finding
    recorded = schema.text("policy", data.get("policy"), limit=200)
    if recorded != policy:
        raise schema.fail(
            "policy",
            f"the baseline was made for policy {recorded!r}, not {policy!r}; "
            "make one for this policy with --update-baseline",
        )
    names = schema.sequence("class_names", data.get("class_names"))
    if names != list(classes):
        raise schema.fail(
            "class_names",
            "the baseline was made for a dataset with other classes; "
            "make one for this dataset with --update-baseline",
        )
    return Baseline(entries)
