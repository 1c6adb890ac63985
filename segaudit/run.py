"""``segaudit score`` as a library call: open the dataset, audit it, write the run folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from segaudit.baseline import MASK_HASHES_FILE, write_mask_hashes
from segaudit.calibration import audit_dataset, check_compatible, load_calibration
from segaudit.config import ClassesConfig, default_classes, load_classes
from segaudit.core.audit import AuditOptions, AuditResult, ProgressCallback, flagged_mask
from segaudit.core.dataset import Dataset
from segaudit.core.pixel import digest_image
from segaudit.core.regions import DEFAULT_CONNECTIVITY, DEFAULT_MIN_AREA, RegionOptions
from segaudit.io.dataset import DatasetSpec, FolderDataset, open_dataset
from segaudit.io.masks import MaskDecoder
from segaudit.io.transforms import ImageTransform, Layout, Resize
from segaudit.output.atomic import check_output_folder
from segaudit.output.overlay import OVERLAY_DIR, OverlayWriter
from segaudit.output.regions import REGIONS_FILE, RegionCollector
from segaudit.output.report import REPORT_FILE
from segaudit.output.table import (
    RANKING_FILE,
    SUMMARY_FILE,
    summary_dict,
    write_ranking,
    write_summary,
)
from segaudit.parallel import open_executor, region_sink


@dataclass(frozen=True)
class ScoreRequest:
    """What ``segaudit score`` was asked to do."""

    labels: Path | None  # None with a manifest
    probs: Path | str | None  # str: an fsspec URL; None with a manifest of per-image files
    out: Path
    images: Path | None = None
    ids: Path | None = None
    classes: Path | None = None
    temperature: float = 0.1
    ignore: frozenset[int] | None = None  # None: the classes config's, else {255}
    top: int = 20
    strict: bool = False
    workers: int | None = None  # threads, or with scheduler "local" Dask worker processes
    scheduler: str | None = None  # a Dask scheduler address, or "local"; None: local threads
    connectivity: int = DEFAULT_CONNECTIVITY  # suspect regions: 4 or 8 neighbours
    min_region_area: int = DEFAULT_MIN_AREA  # suspect regions: smaller ones are dropped
    manifest: Path | None = None  # CSV pairing image_id, mask, probs (row or file), image
    layout: Layout = Layout.NCHW  # class axis first (nchw) or last (nhwc)
    logits: bool = False  # softmax over classes before auditing
    resize: Resize | None = None  # match sizes: upsample probs, or pool labels
    downsample: int = 1  # majority-pool labels, mean-pool probs by this factor
    calibration: Path | None = None  # saved thresholds and cutoff: score in one pass
    overlay_full_resolution: bool = False  # overlays at the image's size, not a preview


@dataclass
class ScoreOutcome:
    """Where the outputs went, and the result they came from."""

    result: AuditResult
    classes: ClassesConfig
    summary: dict[str, Any]
    ranking_path: Path
    summary_path: Path
    overlays: list[Path] = field(default_factory=list)
    regions_path: Path | None = None


def open_request_dataset(request: ScoreRequest) -> tuple[FolderDataset, ClassesConfig]:
    """Pair and check the request's inputs, reading masks through the classes config, and
    the classes to report with (the config's, else numbered ones; --ignore-index wins)."""
    config = load_classes(request.classes) if request.classes else None
    ignore = request.ignore
    if ignore is None:
        ignore = config.ignore if config is not None else frozenset({255})
    spec = DatasetSpec(
        labels=request.labels,
        probs=request.probs,
        ids=request.ids,
        manifest=request.manifest,
        transform=ImageTransform(
            request.layout, request.logits, request.resize, request.downsample
        ),
        decoder=MaskDecoder.from_config(config, ignore),
        ignore=ignore,
        num_classes=config.num_classes if config is not None else None,
        classes_source=str(request.classes or ""),
    )
    dataset = open_dataset(spec)  # checks the config's class count against the data
    if config is None:
        return dataset, default_classes(dataset.num_classes, ignore)
    return dataset, replace(config, ignore=ignore)


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

    from segaudit.parallel import default_workers

    def draw(index: int) -> None:
        for image in dataset.load(range(index, index + 1)):
            if image.labels is None or image.probs is None:
                continue
            digest = digest_image(image.image_id, image.labels, image.probs, ignore)
            writer(index, image.image_id, digest, flagged_mask(digest, result.cutoff))

    indices = sorted(writer.indices)
    if not indices:
        return
    with ThreadPoolExecutor(min(len(indices), workers or default_workers())) as pool:
        for done, _ in enumerate(pool.map(draw, indices), start=1):
            if on_progress is not None:
                on_progress("overlays", done, len(indices))


def _remove_stale(run_dir: Path) -> None:
    """Outputs of an earlier run in the same folder that this run would not replace (old
    overlays, a report of the old results): a reader would take them for this run's."""
    stale = [run_dir / REPORT_FILE, *(run_dir / OVERLAY_DIR).glob("*.png")]
    for path in stale:
        path.unlink(missing_ok=True)


def score(request: ScoreRequest, on_progress: ProgressCallback | None = None) -> ScoreOutcome:
    """Audit the dataset and write ranking.csv, summary.json and overlays/ into request.out."""
    check_output_folder(request.out)  # a bad --out fails now, not after the audit
    dataset, classes = open_request_dataset(request)
    options = AuditOptions(
        temperature=request.temperature, ignore=classes.ignore, strict=request.strict
    )
    calibration = load_calibration(request.calibration) if request.calibration else None
    if calibration is not None and request.calibration is not None:
        check_compatible(calibration, request.calibration, classes, options)
    region_options = RegionOptions(request.connectivity, request.min_region_area)
    with (
        open_executor(request.scheduler, request.workers) as executor,
        RegionCollector(classes.names, region_options) as regions,
    ):
        started = time.perf_counter()
        result = audit_dataset(
            dataset,
            options,
            calibration,
            executor=executor,
            sinks=[region_sink(regions, region_options, executor)],
            on_progress=on_progress,
        )
        result.timings["total_seconds"] = time.perf_counter() - started
        regions_path = request.out / REGIONS_FILE
        regions.write(regions_path)

    from segaudit import __version__

    inputs = {
        "labels": str(request.labels or ""),
        "probs": str(request.probs or ""),
        "manifest": str(request.manifest or ""),
        "images": str(request.images) if request.images else "",
        "classes": str(request.classes) if request.classes else "",
        "calibration": str(request.calibration) if request.calibration else "",
    }
    summary = summary_dict(result, classes, inputs, __version__)
    summary["parameters"]["connectivity"] = region_options.connectivity
    summary["parameters"]["min_region_area"] = region_options.min_area
    summary["class_colors"] = [list(c) for c in classes.colors]  # the report's swatches
    ranking_path = request.out / RANKING_FILE
    summary_path = request.out / SUMMARY_FILE
    write_ranking(result, classes, ranking_path, regions.summaries)
    write_summary(summary, summary_path)
    masks = dict(zip(dataset.ids, dataset.masks, strict=True))
    write_mask_hashes(masks, request.out / MASK_HASHES_FILE)  # for baselines

    _remove_stale(request.out)
    top = [r.index for r in result.ranking()[: request.top] if r.skipped is None]
    manifest_images = {
        image_id: path
        for image_id, path in zip(dataset.ids, dataset.images, strict=False)
        if path is not None
    }
    writer = OverlayWriter(
        request.out / OVERLAY_DIR,
        classes,
        set(top),
        request.images,
        region_options,
        image_files=manifest_images,
        full_resolution=request.overlay_full_resolution,
    )
    workers = request.workers if request.scheduler is None else None
    render_overlays(dataset, result, writer, classes.ignore, on_progress, workers)
    writer.write_index()
    overlays = [writer.written[i] for i in top if i in writer.written]
    return ScoreOutcome(
        result, classes, summary, ranking_path, summary_path, overlays, regions_path
    )
