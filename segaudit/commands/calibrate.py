"""``segaudit calibrate``: pass 1 on a trusted set, saved for single-pass scoring later."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segaudit.config.calibration import Calibration, write_calibration
from segaudit.core.audit import AuditOptions, ProgressCallback, run_pass_one
from segaudit.core.image import DEFAULT_TEMPERATURE
from segaudit.execute import ThreadExecutor
from segaudit.io.inputs import InputSpec, open_inputs
from segaudit.output.atomic import check_output_folder


@dataclass(frozen=True)
class CalibrateOptions:
    """What ``segaudit calibrate`` was asked to do."""

    inputs: InputSpec
    out: Path  # the calibration JSON
    temperature: float = DEFAULT_TEMPERATURE
    strict: bool = False
    workers: int | None = None


def calibrate(
    options: CalibrateOptions, on_progress: ProgressCallback | None = None
) -> Calibration:
    """Run pass 1 on the trusted set and write the calibration to ``options.out``. The inputs
    are read exactly as ``segaudit score`` reads them."""
    from segaudit import __version__

    check_output_folder(options.out.parent)  # a bad --out fails now, not after pass 1
    inputs = open_inputs(options.inputs)
    dataset, classes = inputs.dataset, inputs.classes
    audit = AuditOptions(
        temperature=options.temperature, ignore=classes.ignore, strict=options.strict
    )
    one = run_pass_one(dataset, audit, ThreadExecutor(options.workers), on_progress, {})
    counts = one.stats.class_stats.counts
    spec = options.inputs
    calibration = Calibration(
        class_names=classes.names,
        thresholds=tuple(float(t) for t in one.thresholds),
        labelled_pixels=tuple(int(c) for c in counts),
        confident_count=one.confident_count,
        cutoff=one.cutoff.value,
        temperature=options.temperature,
        ignore=classes.ignore,
        num_images=len(dataset.image_ids),
        valid_pixels=int(counts.sum()),
        inputs=(
            ("labels", str(spec.labels or "")),
            ("probs", str(spec.probs or "")),
            ("classes", str(spec.classes or "")),
        ),
        segaudit_version=__version__,
    )
    write_calibration(calibration, options.out)
    return calibration
