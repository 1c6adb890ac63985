"""``cleanlab.segmentation`` (2.9.0), name for name, on segaudit's engine.

Switch existing code with one import line::

    # from cleanlab.segmentation import rank, filter, summary
    from segaudit.compat.cleanlab import rank, filter, summary

Same calls, same answers and same exception types on inputs both accept, except for the
deliberate differences listed in ``docs/guide/cleanlab.md`` (ignored label 255, ties at
the cutoff, float64 thresholds, majority downsampling, among others). cleanlab itself is
never imported.
"""

from segaudit.compat.cleanlab import filter, rank, summary

__all__ = ["filter", "rank", "summary"]
