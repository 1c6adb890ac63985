"""``cleanlab.segmentation.rank``: image and pixel label quality scores."""

from segaudit.api import find_label_issues, get_label_quality_scores, issues_from_scores

__all__ = ["find_label_issues", "get_label_quality_scores", "issues_from_scores"]
