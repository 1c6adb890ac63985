"""``cleanlab.segmentation.summary``: tables and pictures of the issues found.

As in the reference, :func:`common_label_issues` returns a pandas DataFrame and prints its
rows by default (pandas is the ``pandas`` extra), and :func:`display_issues` shows figures
with matplotlib (the ``plot`` extra). Without the extra, each raises an ``ImportError``
that names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray

from segaudit import api
from segaudit.api import (
    DEFAULT_IGNORE_INDEX,
    DataFrame,
    IgnoreIndex,
    display_issues,
    filter_by_class,
)

__all__ = ["common_label_issues", "display_issues", "filter_by_class"]


def common_label_issues(
    issues: NDArray[Any],
    labels: NDArray[Any],
    pred_probs: NDArray[Any],
    *,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
    top: int | None = None,
    verbose: bool = True,
    ignore_index: IgnoreIndex = DEFAULT_IGNORE_INDEX,
) -> DataFrame:
    """The reference's DataFrame (``given_label``, ``predicted_label``, ``num_pixel_issues``)
    of (given, predicted) pairs among flagged pixels, most pixels first; see
    :func:`segaudit.api.common_label_issues`, which can also return plain pairs."""
    return api.common_label_issues(
        issues,
        labels,
        pred_probs,
        class_names=class_names,
        exclude=exclude,
        top=top,
        verbose=verbose,
        as_frame=True,
        ignore_index=ignore_index,
    )
