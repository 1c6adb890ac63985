"""``segaudit check``: a finished run against a policy (and a baseline), with CI outputs.

Also behind ``segaudit score --policy``. Loads the policy and the run (validated by
:mod:`segaudit.rundir`), applies or updates the baseline, evaluates, and writes the outputs
asked for: JUnit XML, JSON, the GitHub job summary, GitHub annotations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from segaudit.config.baseline import Finding, load_baseline, write_baseline
from segaudit.config.policy import Policy, load_policy
from segaudit.errors import ExitCode, OptionError, OutputError
from segaudit.gate.evaluate import GateReport, evaluate
from segaudit.gate.formats import github_annotations, json_report, junit_xml, markdown, text_lines
from segaudit.output.atomic import atomic_write, check_output_folder
from segaudit.rundir import read_run


@dataclass(frozen=True)
class GateRequest:
    """What ``segaudit check`` was asked to do."""

    run_dir: Path
    policy: Path | Policy
    baseline: Path | None = None
    update_baseline: bool = False
    junit: Path | None = None
    json: Path | None = None
    review: Path | None = None  # add its kept images' findings to the baseline first


@dataclass
class GateOutcome:
    """The report, what to print, and the exit code."""

    report: GateReport
    lines: list[str]
    annotations: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.report.passed else ExitCode.GATE_FAILED


def check_gate_request(request: GateRequest) -> Policy:
    """Everything about the gate's arguments that can be wrong, checked before any scoring:
    the policy, the baseline options, and where the CI outputs go."""
    policy = request.policy if isinstance(request.policy, Policy) else load_policy(request.policy)
    if request.update_baseline and request.baseline is None:
        raise OptionError("--update-baseline needs --baseline FILE: where to write it")
    known = request.baseline
    if request.review is not None and (request.baseline is None or request.update_baseline):
        raise OptionError(
            "--review adds to --baseline FILE: give --baseline, not --update-baseline"
        )
    if (
        known is not None
        and not request.update_baseline
        and request.review is None
        and not known.is_file()
    ):
        raise OptionError(
            f"{request.baseline}: baseline not found; create it with --update-baseline"
        )
    for output in (
        request.junit,
        request.json,
        request.baseline if request.update_baseline else None,
    ):
        if output is not None:
            check_output_folder(output.parent)
    return policy


def run_gate(request: GateRequest, env: Mapping[str, str] | None = None) -> GateOutcome:
    """Evaluate a run folder against a policy and write the CI outputs asked for."""
    from segaudit import __version__

    env = os.environ if env is None else env
    policy = check_gate_request(request)
    run = read_run(request.run_dir)
    written_count: int | None = None
    if request.baseline is not None and request.update_baseline:
        current: list[Finding] = []
        for check in evaluate(policy, run).checks:
            current.extend(check.all_findings)
        written_count = write_baseline(
            current,
            request.baseline,
            policy=policy.name,
            classes=run.class_names,
            version=__version__,
        )
    if request.review is not None and request.baseline is not None:
        from segaudit.gate.accept import accept_reviewed

        written_count = accept_reviewed(policy, run, request.review, request.baseline)
    baseline = None
    if request.baseline is not None:
        baseline = load_baseline(request.baseline, policy=policy.name, classes=run.class_names)
    report = evaluate(policy, run, baseline)
    report.baseline = str(request.baseline or "")
    report.baseline_written = written_count

    outcome = GateOutcome(report, text_lines(report))
    if request.junit is not None:
        _write(request.junit, junit_xml(report))
        outcome.written.append(request.junit)
    if request.json is not None:
        _write(request.json, json.dumps(json_report(report), indent=2, allow_nan=False) + "\n")
        outcome.written.append(request.json)
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(markdown(report) + "\n")
        except OSError as error:
            raise OutputError(
                f"{summary_file}: cannot append the summary ($GITHUB_STEP_SUMMARY): "
                f"{error.strerror or error}"
            ) from None
    if env.get("GITHUB_ACTIONS") == "true":
        outcome.annotations = github_annotations(report)
    return outcome


def _write(path: Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)
