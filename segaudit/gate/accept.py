"""Reviewed *keep* decisions into a baseline: ``segaudit check --review review.json``.

An image whose regions a reviewer marked *keep* (and none *fix*) is judged right as
labelled: its current image findings (low score, large regions), with its mask's
SHA-256, join the baseline, next to what the baseline already held. The gate then sets
them aside, as long as the mask is unchanged and the finding no worse; run-wide findings
(flagged fractions, thresholds) and images not reviewed keep counting.
"""

from __future__ import annotations

from pathlib import Path

from segaudit.config.baseline import Finding, load_baseline, write_baseline
from segaudit.config.policy import Policy
from segaudit.config.review import check_review, load_review
from segaudit.gate.evaluate import evaluate
from segaudit.rundir import Run


def accept_reviewed(policy: Policy, run: Run, review_path: Path, baseline: Path) -> int:
    """Add the kept images' findings to ``baseline`` (created if missing); how many."""
    from segaudit import __version__

    review = load_review(review_path)
    check_review(review, run, run.regions() if run.has_regions() else [])
    kept = review.kept_images()
    ids = {row.image_id for row in run.ranking}
    accepted: list[Finding] = [
        finding
        for check in evaluate(policy, run).checks
        for finding in check.all_findings
        if finding.key in kept and finding.key in ids and finding.mask_sha256
    ]
    entries: dict[tuple[str, str], Finding] = {}
    if baseline.is_file():
        entries.update(load_baseline(baseline, policy=policy.name, classes=run.class_names).entries)
    entries.update({(f.check, f.key): f for f in accepted})
    write_baseline(
        entries.values(),
        baseline,
        policy=policy.name,
        classes=run.class_names,
        version=__version__,
    )
    return len(accepted)
