"""``segaudit score``: open the inputs, audit them, write the run folder.

The run folder is written whole into a staging folder and swapped in at the end
(:class:`segaudit.rundir.RunWriter`), so an interrupted run leaves the previous run as it
was. ``--out`` may not overlap the inputs: a run folder inside the masks would be read as
masks next time, and the masks inside a run folder would be replaced with it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segaudit.config.calibration import Calibration, check_compatible, load_calibration
from segaudit.config.classes import ClassesConfig
from segaudit.core.audit import (
    AuditOptions,
    AuditResult,
    Executor,
    ImageSink,
    ProgressCallback,
    flagged_mask,
    run_audit,
)
from segaudit.core.compact import digest_probs
from segaudit.core.dataset import Dataset
from segaudit.core.image import DEFAULT_TEMPERATURE
from segaudit.core.incremental import run_calibrated_audit
from segaudit.core.methods import DEFAULT_METHOD, NEEDS, get_method
from segaudit.core.regions import RegionOptions
from segaudit.core.tiles import reduced_view
from segaudit.errors import OptionError
from segaudit.execute import default_workers, open_executor
from segaudit.io.encoding import ClassEncoder
from segaudit.io.inputs import Inputs, InputSpec, open_inputs
from segaudit.io.probs import is_url
from segaudit.io.transforms import Resize
from segaudit.output.atomic import check_output_folder
from segaudit.output.overlay import OverlayWriter
from segaudit.output.saved_masks import MaskSaver
from segaudit.output.suspects import (
    RegionCollector,
    RegionSummary,
    image_regions,
    region_method_score,
)
from segaudit.rundir import (
    ClassRow,
    IssueRow,
    RankingRow,
    RunSummary,
    RunWriter,
    SkippedRow,
    file_sha256,
    run_id,
)


@dataclass(frozen=True)
class ScoreOptions:
    """What ``segaudit score`` was asked to do."""

    inputs: InputSpec
    out: Path
    temperature: float = DEFAULT_TEMPERATURE
    strict: bool = False
    workers: int | None = None  # threads, or with scheduler "local" Dask worker processes
    scheduler: str | None = None  # a Dask scheduler address, or "local"; None: local threads
    top: int = 20
    regions: RegionOptions = field(default_factory=RegionOptions)
    calibration: Path | None = None  # saved thresholds and cutoff: score in one pass
    method: str = DEFAULT_METHOD  # the image score (segaudit.core.methods)
    overlay_full_resolution: bool = False  # overlays at the image's size, not a preview
    save_masks: bool = False  # flagged/ and suggested/ masks per image with flagged pixels


@dataclass
class ScoreOutcome:
    """Where the outputs went, and the result they came from."""

    result: AuditResult
    classes: ClassesConfig
    summary: RunSummary
    folder: Path
    overlays: list[Path] = field(default_factory=list)


def _inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


def check_out_apart(out: Path, spec: InputSpec) -> None:
    """Refuse an --out that is, contains or is inside an input folder or file."""
    target = out.resolve()
    inputs = [
        ("--labels", spec.labels),
        ("--images", spec.images),
        ("--manifest", spec.manifest),
        ("--probs", None if spec.probs is None or is_url(spec.probs) else Path(spec.probs)),
    ]
    for option, path in inputs:
        if path is None:
            continue
        source = path.resolve()
        if _inside(target, source) or _inside(source, target):
            raise OptionError(
                f"--out {out} overlaps {option} {path}: a run folder must be apart from the "
                "inputs (segaudit replaces its run folder; the next run would read it as data)"
            )


def audit_dataset(
    dataset: Dataset,
    options: AuditOptions,
    calibration: Calibration | None,
    *,
    executor: Executor,
    sinks: Sequence[ImageSink] = (),
    on_progress: ProgressCallback | None = None,
) -> AuditResult:
    """The full two-pass audit, or with a calibration the single-pass one."""
    if calibration is None:
        return run_audit(dataset, options, executor=executor, sinks=sinks, on_progress=on_progress)
    return run_calibrated_audit(
        dataset,
        options,
        calibration.threshold_array,
        calibration.selection,
        executor=executor,
        sinks=sinks,
        on_progress=on_progress,
    )


def region_sink(collector: RegionCollector, executor: Executor) -> ImageSink:
    """The regions collector as a sink this executor can run: on Dask, regions (and their
    pass-2 score parts) are found on the workers and sent back to the collector; locally the
    collector is the sink."""
    if not executor.remote:
        return collector
    from segaudit.execute.dask import ShippedSink

    return ShippedSink(functools.partial(image_regions, collector.options), collector.add)


def rescore_by_regions(
    result: AuditResult, method: str, scores: dict[int, NDArray[np.float64]]
) -> AuditResult:
    """The result with each image scored by a region method (known once every image's
    regions are in: a region's score depends on how common its pair is in the dataset)."""
    empty = np.zeros(0)
    images = [
        record
        if record.skipped
        else replace(
            record,
            label_quality=region_method_score(
                method, record.valid_pixels, scores.get(record.index, empty)
            ),
        )
        for record in result.images
    ]
    return replace(result, images=images)


def render_overlays(
    dataset: Dataset,
    result: AuditResult,
    writer: OverlayWriter,
    ignore: frozenset[int],
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> None:
    """Draw overlays for the writer's images, re-reading only those (a few, after the audit),
    one image per worker thread at a time (digesting, PNG coding and resizing release the
    GIL), reporting progress as stage "overlays"."""
    from concurrent.futures import ThreadPoolExecutor

    def draw(index: int) -> None:
        for image in dataset.load(range(index, index + 1)):
            if image.tiles is not None:  # too large to hold: drawn from a reduced view
                view, flagged = reduced_view(
                    image.image_id,
                    image.tiles,
                    ignore,
                    functools.partial(flagged_mask, cutoff=result.cutoff),
                )
                writer(index, image.image_id, view, flagged)
                continue
            if image.labels is None or image.probs is None:
                continue
            digest = digest_probs(image.image_id, image.labels, image.probs, ignore)
            writer(index, image.image_id, digest, flagged_mask(digest, result.cutoff))

    indices = sorted(writer.indices)
    if not indices:
        return
    with ThreadPoolExecutor(min(len(indices), workers or default_workers())) as pool:
        for done, _ in enumerate(pool.map(draw, indices), start=1):
            if on_progress is not None:
                on_progress("overlays", done, len(indices))


def ranking_rows(
    result: AuditResult, classes: ClassesConfig, regions: dict[int, RegionSummary]
) -> list[RankingRow]:
    """One row per image, most suspect first (region fields empty without regions)."""
    names = classes.names

    def name(k: int | None) -> str:
        return "" if k is None else names[k]

    rows = []
    for rank, image in enumerate(result.ranking(), start=1):
        region = regions.get(image.index)
        rows.append(
            RankingRow(
                rank=rank,
                image_id=image.image_id,
                label_quality=image.label_quality,
                flagged_pixels=image.flagged_pixels,
                flagged_fraction=image.flagged_fraction,
                top_given=name(image.top_given),
                top_predicted=name(image.top_predicted),
                top_pair_pixels=image.top_pair_pixels,
                region_count=None if region is None else region.count,
                largest_region_area=None if region is None else region.largest_area,
                largest_region_given="" if region is None else name(region.largest_given),
                largest_region_predicted="" if region is None else name(region.largest_predicted),
                valid_pixels=image.valid_pixels,
                skipped=image.skipped or "",
                agreement=image.agreement,
            )
        )
    return rows


def run_summary(
    result: AuditResult, options: ScoreOptions, classes: ClassesConfig, identity: str
) -> RunSummary:
    """Everything about the run that is not per image."""
    from segaudit import __version__

    names = classes.names
    spec = options.inputs
    parameters: dict[str, object] = {
        "method": options.method,
        "temperature": result.options.temperature,
        "ignore": sorted(result.options.ignore),
        "strict": result.options.strict,
        "connectivity": options.regions.connectivity,
        "min_region_area": options.regions.min_area,
        "layout": spec.layout.value,
        "logits": spec.logits,
        "resize": spec.resize.value if spec.resize else "",
        "downsample": spec.downsample,
        "pairing_check": spec.pairing_check,
        "top": options.top,
    }
    inputs = spec.provenance()
    inputs["calibration"] = str(options.calibration or "")
    return RunSummary(
        run_id=identity,
        segaudit_version=__version__,
        inputs=inputs,
        parameters=parameters,
        num_images=len(result.images),
        class_names=names,
        class_colors=classes.colors,
        valid_pixels=result.valid_pixels,
        flagged_pixels=result.flagged_pixels,
        confident_count=result.confident_count,
        cutoff=result.cutoff.value,
        classes=tuple(
            ClassRow(
                names[k],
                float(result.thresholds[k]),
                int(result.class_pixels[k]),
                int(result.class_flagged[k]),
            )
            for k in range(result.num_classes)
        ),
        common_label_issues=tuple(
            IssueRow(names[p.given], names[p.predicted], p.pixels)
            for p in result.common_label_issues()
        ),
        skipped=tuple(SkippedRow(r.image_id, r.skipped) for r in result.images if r.skipped),
        timings={k: round(v, 4) for k, v in result.timings.items()},
    )


def _identity(rows: list[RankingRow], hashes: dict[str, str], summary: RunSummary) -> str:
    """The run id: a digest of the results, the masks and the options that shape results
    (not of timings, of where the run ran or where the data was read from), so the same
    data scored the same way gets the same id."""
    text = "\n".join("\t".join(row.cells()) for row in rows)
    masks = "\n".join(f"{k}\t{v}" for k, v in sorted(hashes.items()))
    facts = json.dumps(summary.parameters, sort_keys=True)
    return run_id(*(part.encode("utf-8", "surrogatepass") for part in (text, masks, facts)))


def open_score_inputs(options: ScoreOptions) -> tuple[Inputs, AuditOptions, Calibration | None]:
    """Check the options and open the inputs: everything that can fail before the audit."""
    check_out_apart(options.out, options.inputs)
    check_save_masks(options)
    check_output_folder(options.out)
    get_method(options.method)  # an unknown name fails now
    inputs = open_inputs(options.inputs)
    engine_method = DEFAULT_METHOD if NEEDS[options.method] == "regions" else options.method
    audit = AuditOptions(
        temperature=options.temperature,
        ignore=inputs.classes.ignore,
        strict=options.strict,
        method=engine_method,
    )
    calibration = load_calibration(options.calibration) if options.calibration else None
    if calibration is not None and options.calibration is not None:
        check_compatible(calibration, options.calibration, inputs.classes, audit)
    return inputs, audit, calibration


def check_save_masks(options: ScoreOptions) -> None:
    """Refuse --save-masks where the flagged pixels are not the mask's pixels."""
    if not options.save_masks:
        return
    spec = options.inputs
    if spec.downsample > 1 or spec.resize is Resize.LABELS:
        raise OptionError(
            "--save-masks needs the masks audited at their own size: drop --downsample and "
            "--resize labels (use --resize probs)"
        )
    if options.scheduler is not None:
        raise OptionError("--save-masks runs on local threads: drop --scheduler")


def _mask_saver(
    options: ScoreOptions,
    inputs: Inputs,
    regions: RegionCollector,
    run: RunWriter,
    executor: Executor,
) -> MaskSaver | None:
    if not options.save_masks or executor.remote:
        return None
    encoder = ClassEncoder.for_decoder(inputs.dataset.decoder, inputs.dataset.classes)
    encoder.check(inputs.classes.names)
    return MaskSaver(regions, run, inputs.dataset.masks, encoder)


def score(options: ScoreOptions, on_progress: ProgressCallback | None = None) -> ScoreOutcome:
    """Audit the inputs and write the run folder ``options.out`` (complete or not at all)."""
    inputs, audit, calibration = open_score_inputs(options)
    dataset, classes = inputs.dataset, inputs.classes
    with (
        RunWriter(options.out) as run,
        open_executor(options.scheduler, options.workers) as executor,
        RegionCollector(classes.names, options.regions) as regions,
    ):
        saver = _mask_saver(options, inputs, regions, run, executor)
        started = time.perf_counter()
        result = audit_dataset(
            dataset,
            audit,
            calibration,
            executor=executor,
            sinks=[saver or region_sink(regions, executor)],
            on_progress=on_progress,
        )
        if saver is not None:
            saver.write_index()
        audited = sum(1 for record in result.images if record.skipped is None)
        if NEEDS[options.method] == "regions":
            result = rescore_by_regions(result, options.method, regions.scores(audited))
        result.timings["total_seconds"] = time.perf_counter() - started
        rows = ranking_rows(result, classes, regions.summaries)
        hashes = {i: file_sha256(m) for i, m in zip(dataset.ids, dataset.masks, strict=True)}
        summary = run_summary(result, replace(options, inputs=inputs.spec), classes, "")
        summary = replace(summary, run_id=_identity(rows, hashes, summary))
        regions.write(run, audited)
        run.write_ranking(rows)
        run.write_mask_hashes(hashes)
        run.write_summary(summary)

        top = [r.index for r in result.ranking()[: options.top] if r.skipped is None]
        pictures = {
            image_id: path
            for image_id, path in zip(dataset.ids, dataset.images, strict=False)
            if path is not None
        }
        writer = OverlayWriter(
            run.overlay_path,
            classes,
            set(top),
            options.inputs.images,
            options.regions,
            image_files=pictures,
            full_resolution=options.overlay_full_resolution,
        )
        workers = options.workers if options.scheduler is None else None
        render_overlays(dataset, result, writer, classes.ignore, on_progress, workers)
        run.write_overlay_index(writer.names())
        run.commit()
    final = {i: options.out / p.parent.name / p.name for i, p in writer.written.items()}
    overlays = [final[i] for i in top if i in final]
    return ScoreOutcome(result, classes, summary, options.out, overlays)
