"""``review.json``: a reviewer's decisions on a run's suspect regions.

Written by the report page (the "download review.json" button) or by a script::

    {"version": 1, "run": "<run_id of summary.json>",
     "decisions": [{"image_id": "...", "region_id": 3, "decision": "fix"}, ...]}

``fix``: the region is a label error, take the model's class there (``segaudit apply``).
``keep``: the label is right (``segaudit check --review`` adds it to a baseline).
A review belongs to one run: :func:`check_review` refuses another run's review, and
images or regions the run does not have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from segaudit.config.files import read_json_object
from segaudit.config.schema import Schema
from segaudit.errors import ConfigError
from segaudit.output.atomic import atomic_write
from segaudit.rundir import RegionRow, Run

REVIEW_VERSION = 1
_TOP_KEYS = {"version", "run", "decisions"}
_DECISION_KEYS = {"image_id", "region_id", "decision"}


class Decision(StrEnum):
    FIX = "fix"
    KEEP = "keep"


@dataclass(frozen=True)
class RegionDecision:
    image_id: str
    region_id: int
    decision: Decision


@dataclass(frozen=True)
class Review:
    """A review file, read and checked (one decision per region, the last one wins in
    the page, so a file with two is refused as ambiguous)."""

    path: Path
    run: str
    decisions: tuple[RegionDecision, ...]

    def regions(self, decision: Decision) -> dict[str, set[int]]:
        """Region ids per image with this decision."""
        found: dict[str, set[int]] = {}
        for d in self.decisions:
            if d.decision is decision:
                found.setdefault(d.image_id, set()).add(d.region_id)
        return found

    def kept_images(self) -> set[str]:
        """Images whose every decision is keep (at least one): judged right as labelled."""
        fixed = set(self.regions(Decision.FIX))
        return set(self.regions(Decision.KEEP)) - fixed


def load_review(path: Path) -> Review:
    """Read and validate a review file (not yet against a run: see :func:`check_review`)."""
    data = read_json_object(path, if_missing="download it from the report page")
    s = Schema(path)
    s.mapping("", data, _TOP_KEYS)
    s.version(data, REVIEW_VERSION)
    run = s.text("run", s.require("", data, "run"), limit=64)
    seen: set[tuple[str, int]] = set()
    decisions = []
    for i, row in enumerate(s.sequence("decisions", s.require("", data, "decisions"))):
        key = f"decisions[{i}]"
        row = s.mapping(key, row, _DECISION_KEYS)
        image_id = s.string(f"{key}.image_id", s.require(key, row, "image_id"), empty=False)
        region_id = s.integer(f"{key}.region_id", s.require(key, row, "region_id"), low=1)
        value = s.text(f"{key}.decision", s.require(key, row, "decision"))
        if value not in {d.value for d in Decision}:
            raise s.fail(f"{key}.decision", f"expected fix or keep, got {value!r}")
        if (image_id, region_id) in seen:
            raise s.fail(key, f"region {region_id} of {image_id!r} is decided twice")
        seen.add((image_id, region_id))
        decisions.append(RegionDecision(image_id, region_id, Decision(value)))
    return Review(path, run, tuple(decisions))


def check_review(review: Review, run: Run, regions: Iterable[RegionRow]) -> None:
    """Refuse a review of another run, or one naming images or regions the run lacks."""
    where = str(review.path)
    if review.run != run.summary.run_id:
        raise ConfigError(
            f"{where}: run: the review is of run {review.run}, but {run.folder} is run "
            f"{run.summary.run_id}; review this run's report.html",
            path=where,
            key="run",
        )
    known = {(r.image_id, r.region_id) for r in regions}
    ids = {row.image_id for row in run.ranking}
    for i, d in enumerate(review.decisions):
        if d.image_id not in ids:
            raise ConfigError(
                f"{where}: decisions[{i}].image_id: {d.image_id!r} is not an image of the run",
                path=where,
                key=f"decisions[{i}].image_id",
            )
        if (d.image_id, d.region_id) not in known:
            raise ConfigError(
                f"{where}: decisions[{i}].region_id: {d.image_id!r} has no region "
                f"{d.region_id} in regions.csv",
                path=where,
                key=f"decisions[{i}].region_id",
            )


def write_review(path: Path, run_id: str, decisions: Iterable[RegionDecision]) -> None:
    """Write a review file (for scripts and tests; the page writes the same format)."""
    document = {
        "version": REVIEW_VERSION,
        "run": run_id,
        "decisions": [
            {"image_id": d.image_id, "region_id": d.region_id, "decision": d.decision.value}
            for d in decisions
        ],
    }
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
