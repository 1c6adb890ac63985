"""The CI gate: evaluate a finished run against a policy, optionally against a baseline.

Each rule of the policy (:mod:`segaudit.policy`) becomes one or more *checks*, each reported
as observed vs limit, pass or fail, with the *findings* behind it (the images, regions or
classes it objects to). With a baseline, findings that are known (same image id, same mask
hash, not worse) are set aside first, so the gate fails only on new or worse findings.

Inputs are the run folder's files, read and validated by :mod:`segaudit.rundir`. The library
raises; the CLI turns the report into exit code 0 (pass), 1 (fail) or 2 (a SegauditError: bad
policy or input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from segaudit.config.baseline import Baseline, Finding
from segaudit.config.policy import Policy, RegionRule
from segaudit.errors import ConfigError, RunFolderError
from segaudit.rundir import RankingRow, RegionRow, Run

__all__ = ["CheckResult", "GateReport", "evaluate"]

#: How many findings a message lists before it says "and N more".
LISTED = 10


@dataclass
class CheckResult:
    """One check: what was observed, the limit, and the findings behind it."""

    check: str
    description: str
    unit: str  # count, share, score, fraction, pixels, threshold
    observed: float | None
    limit: float
    passed: bool
    findings: list[Finding]  # new (or worse) findings: these count
    known: list[Finding] = field(default_factory=list)  # set aside by the baseline

    @property
    def all_findings(self) -> list[Finding]:
        return self.findings + self.known

    @property
    def message(self) -> str:
        """One line naming the check, observed vs limit, and the findings."""
        verdict = "pass" if self.passed else "FAIL"
        text = (
            f"{verdict} {self.check}: {self.description}: observed "
            f"{format_value(self.observed, self.unit)}, limit {format_limit(self.limit, self.unit)}"
        )
        if self.findings:
            listed = ", ".join(f.text for f in self.findings[:LISTED])
            more = len(self.findings) - LISTED
            text += f"; {'new: ' if self.known else ''}{listed}"
            text += f" and {more} more" if more > 0 else ""
        if self.known:
            text += f" ({len(self.known)} known in the baseline)"
        return text


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("count", "pixels"):
        return f"{int(value):,}"
    if unit in ("share", "fraction"):
        return f"{value:.4%}" if value < 0.01 else f"{value:.2%}"
    return f"{value:.4g}"


def format_limit(limit: float, unit: str) -> str:
    sign = ">=" if unit in ("score", "threshold") else "<="
    return f"{sign} {format_value(limit, unit)}"


@dataclass
class GateReport:
    """Every check of a policy on one run."""

    policy: Policy
    run: Run
    checks: list[CheckResult]
    baseline: str = ""
    baseline_written: int | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]


def _split(
    findings: list[Finding], baseline: Baseline | None, higher_is_worse: bool
) -> tuple[list[Finding], list[Finding]]:
    if baseline is None:
        return findings, []
    new = [f for f in findings if not baseline.is_known(f, higher_is_worse)]
    known = [f for f in findings if baseline.is_known(f, higher_is_worse)]
    return new, known


def _scored(run: Run) -> list[RankingRow]:
    return sorted(
        (i for i in run.ranking if not math.isnan(i.label_quality)),
        key=lambda i: (i.label_quality, i.image_id),
    )


def _image_finding(run: Run, check: str, image: RankingRow) -> Finding:
    text = f"{image.image_id!r} (score {image.label_quality:.4g})"
    score = image.label_quality
    return Finding(check, image.image_id, score, text, run.mask_hash(image.image_id))


def _check_low_score(policy: Policy, run: Run, baseline: Baseline | None) -> CheckResult:
    rule = policy.low_score
    assert rule is not None
    scored = _scored(run)
    findings = [_image_finding(run, "low_score", i) for i in scored if i.label_quality < rule.below]
    new, known = _split(findings, baseline, higher_is_worse=False)
    if rule.max_share is not None:
        observed = len(new) / len(scored) if scored else 0.0
        limit, unit = rule.max_share, "share"
    else:
        observed, limit, unit = float(len(new)), float(rule.max_count or 0), "count"
    description = f"images scoring below {rule.below:g}" + (
        " (not in the baseline)" if baseline else ""
    )
    return CheckResult(
        "low_score", description, unit, observed, limit, observed <= limit, new, known
    )


def _check_min_score(policy: Policy, run: Run, baseline: Baseline | None) -> CheckResult:
    floor = policy.min_score
    assert floor is not None
    scored = _scored(run)
    findings = [_image_finding(run, "min_score", i) for i in scored if i.label_quality < floor]
    new, known = _split(findings, baseline, higher_is_worse=False)
    waived = {f.key for f in known}
    rest = [i.label_quality for i in scored if i.image_id not in waived]
    observed = min(rest) if rest else None
    return CheckResult(
        "min_score", "lowest image score", "score", observed, floor, not new, new, known
    )


def _check_fractions(policy: Policy, run: Run, baseline: Baseline | None) -> list[CheckResult]:
    checks = []
    limits: list[tuple[str, str, float, int, int]] = []
    summary = run.summary
    if policy.max_flagged_fraction is not None:
        limits.append(
            (
                "flagged_fraction",
                "",
                policy.max_flagged_fraction,
                summary.flagged_pixels,
                summary.valid_pixels,
            )
        )
    per_class = {row.name: row for row in summary.classes}
    for name, limit in policy.class_flagged_fraction.items():
        row = per_class[name]
        limits.append(
            (f"flagged_fraction[{name}]", name, limit, row.flagged_pixels, row.labelled_pixels)
        )
    for check, key, limit, flagged, total in limits:
        fraction = flagged / total if total else 0.0
        what = f"pixels labelled {key}" if key else "valid pixels"
        text = f"{flagged:,} of {total:,} {what} flagged"
        findings = [Finding(check, key, fraction, text)] if fraction > limit else []
        new, known = _split(findings, baseline, higher_is_worse=True)
        description = f"flagged share of {what}"
        checks.append(
            CheckResult(check, description, "fraction", fraction, limit, not new, new, known)
        )
    return checks


def _check_region(
    rule: RegionRule, rows: list[RegionRow], run: Run, baseline: Baseline | None
) -> CheckResult:
    check = f"regions[{rule.label}]"
    largest: dict[str, tuple[int, RegionRow]] = {}
    for row in rows:
        if rule.given is not None and row.given != rule.given:
            continue
        if rule.predicted is not None and row.predicted != rule.predicted:
            continue
        if row.area > largest.get(row.image_id, (-1, row))[0]:
            largest[row.image_id] = (row.area, row)
    findings = []
    for image_id, (area, row) in sorted(largest.items(), key=lambda kv: (-kv[1][0], kv[0])):
        if area > rule.max_area:
            text = (
                f"{image_id!r} ({area:,} px labelled {row.given}, predicted {row.predicted}, "
                f"at x={row.x} y={row.y} w={row.width} h={row.height})"
            )
            findings.append(Finding(check, image_id, float(area), text, run.mask_hash(image_id)))
    new, known = _split(findings, baseline, higher_is_worse=True)
    waived = {f.key for f in known}
    areas = [area for image_id, (area, _) in largest.items() if image_id not in waived]
    description = (
        f"largest flagged region, given {rule.given or 'any'} predicted {rule.predicted or 'any'}"
    )
    observed = float(max(areas)) if areas else 0.0
    return CheckResult(check, description, "pixels", observed, rule.max_area, not new, new, known)


def _check_thresholds(policy: Policy, run: Run, baseline: Baseline | None) -> CheckResult:
    rule = policy.class_thresholds
    assert rule is not None
    rows = list(run.summary.classes)
    if rule.classes is not None:
        wanted = set(rule.classes)
        rows = [row for row in rows if row.name in wanted]
    else:
        rows = [row for row in rows if row.labelled_pixels > 0]
    findings = []
    values: dict[str, float] = {}
    for row in rows:
        name, threshold = row.name, row.threshold
        values[name] = threshold
        if threshold < rule.min:
            text = f"{name} (threshold {threshold:.4g})"
            findings.append(Finding("class_thresholds", name, threshold, text))
    new, known = _split(findings, baseline, higher_is_worse=False)
    waived = {f.key for f in known}
    rest = [v for name, v in values.items() if name not in waived]
    return CheckResult(
        "class_thresholds",
        "lowest per-class threshold",
        "threshold",
        min(rest) if rest else None,
        rule.min,
        not new,
        new,
        known,
    )


def _check_skipped(policy: Policy, run: Run, baseline: Baseline | None) -> CheckResult:
    limit = policy.max_skipped
    assert limit is not None
    findings = [
        Finding(
            "skipped", i.image_id, 0.0, f"{i.image_id!r} ({i.skipped})", run.mask_hash(i.image_id)
        )
        for i in run.ranking
        if i.skipped
    ]
    new, known = _split(findings, baseline, higher_is_worse=True)
    return CheckResult(
        "skipped",
        "images that could not be read",
        "count",
        len(new),
        limit,
        len(new) <= limit,
        new,
        known,
    )


def check_class_names(policy: Policy, run: Run) -> None:
    """Raise when the policy names a class the run does not have."""
    names = set(run.class_names)
    unknown = sorted(policy.class_names() - names)
    if unknown:
        raise ConfigError(
            f"{policy.source}: class {unknown[0]!r} is not a class of the run in {run.folder} "
            f"(its classes: {', '.join(run.class_names)})",
            path=policy.source,
        )


def evaluate(policy: Policy, run: Run, baseline: Baseline | None = None) -> GateReport:
    """Every check of ``policy`` on ``run``; findings in ``baseline`` are set aside."""
    check_class_names(policy, run)
    checks: list[CheckResult] = []
    if policy.low_score is not None:
        checks.append(_check_low_score(policy, run, baseline))
    if policy.min_score is not None:
        checks.append(_check_min_score(policy, run, baseline))
    checks.extend(_check_fractions(policy, run, baseline))
    if policy.regions:
        if not run.has_regions():
            raise RunFolderError(
                str(run.folder),
                "the run has no regions.csv, which region rules need; re-run `segaudit score` "
                "or drop rules.regions",
                field="regions.csv",
            )
        rows = run.regions()
        checks.extend(_check_region(rule, rows, run, baseline) for rule in policy.regions)
    if policy.class_thresholds is not None:
        checks.append(_check_thresholds(policy, run, baseline))
    if policy.max_skipped is not None:
        checks.append(_check_skipped(policy, run, baseline))
    return GateReport(policy, run, checks)
