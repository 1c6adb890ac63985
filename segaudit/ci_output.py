"""Running the gate for CI, and its outputs: text, markdown, JUnit XML, JSON, annotations.

:func:`run_gate` is the library call behind ``segaudit check`` and ``segaudit score
--policy``: load the policy and the run, apply or update the baseline, evaluate, write the
requested files. Every output comes from the same :class:`~segaudit.gate.GateReport`:

- text lines for the terminal, one per check;
- markdown, appended to ``$GITHUB_STEP_SUMMARY`` when that is set (the job summary page);
- JUnit XML (``--junit``): one testcase per check, so CI test tabs list the rules;
- JSON (``--json``): the whole report, for scripts;
- GitHub Actions workflow commands (``::error title=...::...``) for failed checks when
  ``GITHUB_ACTIONS=true``, which GitHub shows as annotations on the run.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit.baseline import Finding, load_baseline, write_baseline
from segaudit.errors import ConfigError, ExitCode, OutputError
from segaudit.gate import CheckResult, GateReport, evaluate, format_limit, format_value, load_run
from segaudit.output.atomic import atomic_write, check_output_folder
from segaudit.policy import Policy, load_policy

#: Findings listed per failed check in the markdown summary (GitHub caps it at 1 MiB).
MARKDOWN_LISTED = 50


@dataclass(frozen=True)
class GateRequest:
    """What ``segaudit check`` was asked to do."""

    run_dir: Path
    policy: Path | Policy
    baseline: Path | None = None
    update_baseline: bool = False
    junit: Path | None = None
    json: Path | None = None


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
        raise ConfigError("--update-baseline needs --baseline FILE: where to write it")
    known = request.baseline
    if known is not None and not request.update_baseline and not known.is_file():
        raise ConfigError(
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
    env = os.environ if env is None else env
    policy = check_gate_request(request)
    run = load_run(request.run_dir, with_hashes=request.baseline is not None)
    written_count: int | None = None
    if request.baseline is not None and request.update_baseline:
        from segaudit import __version__

        current: list[Finding] = []
        for check in evaluate(policy, run).checks:
            current.extend(check.all_findings)
        written_count = write_baseline(current, request.baseline, policy.name, __version__)
    baseline = load_baseline(request.baseline) if request.baseline is not None else None
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


def verdict(report: GateReport) -> str:
    failed = len(report.failed)
    total = len(report.checks)
    if failed:
        return f"FAILED: {failed} of {total} checks failed"
    return f"passed: {total} of {total} checks passed"


def text_lines(report: GateReport) -> list[str]:
    """One line per check, then the verdict."""
    lines = [f"policy {report.policy.name} on {report.run.folder}"]
    if report.baseline_written is not None:
        lines.append(f"baseline {report.baseline}: wrote {report.baseline_written} findings")
    elif report.baseline:
        lines.append(f"baseline {report.baseline}: known findings are set aside")
    lines.extend(check.message for check in report.checks)
    lines.append(f"gate {verdict(report)}")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: GateReport) -> str:
    """A job summary: the verdict, a table of checks, then each failure's findings."""
    icon = "✅" if report.passed else "❌"
    out = [
        f"## {icon} segaudit gate {verdict(report)}",
        "",
        f"Policy `{report.policy.name}` on run `{report.run.folder}` "
        f"({len(report.run.images)} images)"
        + (f", baseline `{report.baseline}`" if report.baseline else "")
        + ".",
        "",
        "| check | what | observed | limit | result |",
        "|---|---|---:|---:|---|",
    ]
    for check in report.checks:
        result = "pass" if check.passed else "**FAIL**"
        if check.known:
            result += f" ({len(check.known)} known)"
        out.append(
            f"| `{check.check}` | {_cell(check.description)} "
            f"| {format_value(check.observed, check.unit)} "
            f"| {_cell(format_limit(check.limit, check.unit))} | {result} |"
        )
    for check in report.failed:
        out += ["", f"### `{check.check}`", ""]
        out += [f"- {_cell(f.text)}" for f in check.findings[:MARKDOWN_LISTED]]
        more = len(check.findings) - MARKDOWN_LISTED
        if more > 0:
            out.append(f"- and {more} more (see the JSON report)")
    return "\n".join(out) + "\n"


def junit_xml(report: GateReport) -> str:
    """JUnit XML: one testsuite for the policy, one testcase per check."""
    suite = ET.Element(
        "testsuite",
        name=f"segaudit gate: {report.policy.name}",
        tests=str(len(report.checks)),
        failures=str(len(report.failed)),
        errors="0",
        skipped="0",
    )
    for check in report.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"segaudit.{report.policy.name}", name=check.check
        )
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message, type="PolicyFailed")
            failure.text = "\n".join(f.text for f in check.findings)
        if check.known:
            out = ET.SubElement(case, "system-out")
            out.text = "known in the baseline:\n" + "\n".join(f.text for f in check.known)
    suites = ET.Element("testsuites", name="segaudit")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _finding(f: Finding) -> dict[str, Any]:
    return {"key": f.key, "value": f.value, "text": f.text, "mask_sha256": f.mask_sha256}


def _number(value: float | None, unit: str) -> float | int | None:
    """Counts and areas as integers, the rest as floats."""
    if value is None or unit not in ("count", "pixels"):
        return value
    return int(value)


def _check(check: CheckResult) -> dict[str, Any]:
    return {
        "check": check.check,
        "description": check.description,
        "unit": check.unit,
        "observed": _number(check.observed, check.unit),
        "limit": _number(check.limit, check.unit),
        "passed": check.passed,
        "message": check.message,
        "findings": [_finding(f) for f in check.findings],
        "known": [_finding(f) for f in check.known],
    }


def json_report(report: GateReport) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    return {
        "passed": report.passed,
        "policy": report.policy.name,
        "policy_file": report.policy.source,
        "run": str(report.run.folder),
        "num_images": len(report.run.images),
        "baseline": report.baseline or None,
        "baseline_written": report.baseline_written,
        "checks": [_check(check) for check in report.checks],
    }


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: GateReport) -> list[str]:
    """``::error`` workflow commands, one per failed check."""
    return [
        f"::error title={_escape_property('segaudit ' + check.check)}::"
        + _escape_data(check.message)
        for check in report.failed
    ]
