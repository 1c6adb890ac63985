"""segaudit: find label errors in semantic-segmentation datasets.

The library API mirrors ``cleanlab.segmentation`` on in-memory arrays, and streams over
datasets on disk through :func:`run_audit`.
"""

from __future__ import annotations

from segaudit.api import (
    ArrayDataset,
    audit_arrays,
    common_label_issues,
    filter_by_class,
    find_label_issues,
    get_label_quality_scores,
)
from segaudit.core.audit import AuditOptions, AuditResult, ImageRecord, IssuePair, run_audit
from segaudit.errors import SegauditError
from segaudit.io.writer import ProbsWriter

__version__ = "0.1.0"

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
    "filter_by_class",
    "find_label_issues",
    "get_label_quality_scores",
    "run_audit",
]
