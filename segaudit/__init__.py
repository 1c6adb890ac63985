"""segaudit: find label errors in semantic-segmentation datasets.

The library API mirrors ``cleanlab.segmentation`` on in-memory arrays, and streams over
datasets on disk through :func:`run_audit`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from segaudit.api import (
    ArrayDataset,
    audit_arrays,
    common_label_issues,
    display_issues,
    filter_by_class,
    find_label_issues,
    get_label_quality_scores,
    issues_from_scores,
)
from segaudit.core.audit import AuditOptions, AuditResult, ImageRecord, IssuePair, run_audit
from segaudit.errors import SegauditError
from segaudit.io.writer import ProbsWriter

try:
    __version__ = version("segaudit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ArrayDataset",
    "AuditOptions",
    "AuditResult",
    "ImageRecord",
    "IssuePair",
    "ProbsWriter",
    "SegauditError",
    "__version__",
    "audit_arrays",
    "common_label_issues",
    "display_issues",
    "filter_by_class",
    "find_label_issues",
    "get_label_quality_scores",
    "issues_from_scores",
    "run_audit",
]
