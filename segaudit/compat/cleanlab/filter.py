"""``cleanlab.segmentation.filter``: which pixels are likely label issues."""

from segaudit.api import find_label_issues

__all__ = ["find_label_issues"]
