"""The gate's outputs for CI: text, markdown, JUnit XML, JSON, annotations.

Every output comes from the same :class:`~segaudit.gate.evaluate.GateReport`:

- text lines for the terminal, one per check;
- markdown, appended to ``$GITHUB_STEP_SUMMARY`` when that is set (the job summary page);
- JUnit XML (``--junit``): one testcase per check, so CI test tabs list the rules;
- JSON (``--json``): the whole report, for scripts;
- GitHub Actions workflow commands (``::error title=...::...``) for failed checks when
  ``GITHUB_ACTIONS=true``, which GitHub shows as annotations on the run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from segaudit.config.baseline import Finding
from segaudit.gate.evaluate import CheckResult, GateReport, format_limit, format_value

#: Findings listed per failed check in the markdown summary (GitHub caps it at 1 MiB).
MARKDOWN_LISTED = 50


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
        f"({len(report.run.ranking)} images)"
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
        "num_images": len(report.run.ranking),
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
