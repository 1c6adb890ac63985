"""The ``segaudit`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from segaudit.ci_output import GateRequest, check_gate_request, run_gate
from segaudit.errors import ConfigError, ExitCode, SegauditError
from segaudit.io.transforms import Layout, Resize

app = typer.Typer(
    name="segaudit",
    help="Find label errors in semantic-segmentation datasets and gate CI on label quality.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Markup off: ids, paths and messages come from users' files and may hold "[...]".
console = Console(stderr=True, markup=False, highlight=False)
out = Console(markup=False, highlight=False)


def _say(label: str, style: str, message: str) -> None:
    """One line on stderr: a coloured label, then the message exactly as it is."""
    console.print(Text.assemble((label, style), " ", message), soft_wrap=True)


F = TypeVar("F", bound=Callable[..., Any])
_debug = False


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback for unexpected errors.")
    ] = False,
) -> None:
    """segaudit: rank images by how likely their labels are wrong, show where, gate CI."""
    global _debug
    _debug = debug


def handle_errors(command: F) -> F:
    """One error handler: 2 for problems the user can fix, 3 unexpected, 130 interrupted."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SegauditError as error:
            _say("error:", "bold red", str(error))
            raise typer.Exit(ExitCode.USAGE) from None
        except KeyboardInterrupt:
            _say(
                "interrupted:", "yellow", "files already written are whole; nothing is half-written"
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except typer.Exit:
            raise
        except Exception as error:
            if _debug:
                traceback.print_exc()
            _say(
                "unexpected error:",
                "bold red",
                f"{type(error).__name__}: {error} "
                "(run with --debug for a traceback, and please report it)",
            )
            raise typer.Exit(ExitCode.UNEXPECTED) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar per audit stage, fed by the engine's on_progress callback."""
    labels = {
        "statistics": "pass 1: thresholds",
        "refine": "pass 1b: exact cutoff",
        "issues": "pass 2: flag pixels",
        "calibrated": "one pass (calibrated)",
        "overlays": "overlays",
    }
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(labels.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done)

        yield update


def _ignore_values(values: list[int] | None) -> frozenset[int] | None:
    return frozenset(values) if values else None


def _probs_location(value: str | None) -> Path | str | None:
    """URLs stay strings (a Path would fold 's3://' into 's3:/'); the rest are paths."""
    return value if value is None or "://" in value else Path(value)


# Dataset options shared by score, calibrate and inspect: one definition, one help text.
LabelsOption = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="Folder of PNG masks (class id per pixel, or RGB colours with --classes); ids are file paths without the suffix, sub-folders included.",
    ),
]
ProbsOption = Annotated[
    str | None,
    typer.Option(
        "--probs",
        help="Predicted probabilities: a zarr array or group (path or URL: file://, s3://, memory://), a .npy file (N, K, H, W), or a folder of per-image .npy/.npz files named by id.",
    ),
]
ManifestOption = Annotated[
    Path | None,
    typer.Option(
        "--manifest",
        help="CSV with columns image_id, mask, probs (row of --probs, or a per-image file) and optional image; paths relative to the CSV. Replaces --labels.",
    ),
]
LayoutOption = Annotated[
    Layout,
    typer.Option(
        "--layout",
        help="Where the class axis of the probabilities is: first (nchw: N,K,H,W or K,H,W) or last (nhwc).",
    ),
]
LogitsOption = Annotated[
    bool,
    typer.Option("--logits", help="The probabilities are logits: apply a softmax over classes."),
]
ResizeOption = Annotated[
    Resize | None,
    typer.Option(
        "--resize",
        help="When probabilities and masks differ in size: upsample the probabilities bilinearly (probs) or pool the labels by majority (labels).",
    ),
]
DownsampleOption = Annotated[
    int,
    typer.Option(
        "--downsample",
        min=1,
        help="Audit at 1/F resolution: labels pooled by majority vote (ignore pixels do not vote), probabilities by mean.",
    ),
]
IdsOption = Annotated[
    Path | None,
    typer.Option(
        "--ids",
        help="Text file of image ids, one per line, in the probabilities' order (default: the zarr 'image_ids' attribute, else sorted mask names).",
    ),
]
ClassesOption = Annotated[
    Path | None,
    typer.Option(
        "--classes",
        help="Classes config YAML: class names, colours, ignore values (see configs/).",
    ),
]
TemperatureOption = Annotated[
    float,
    typer.Option(
        help="Softmin temperature for image scores: lower leans harder on the worst pixels. Must be > 0."
    ),
]
IgnoreOption = Annotated[
    list[int] | None,
    typer.Option(
        "--ignore-index",
        help="Label value that takes part in nothing (repeatable). Default: the classes config's, else 255.",
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option(
        help="Fail (exit 2) on the first unreadable or invalid image instead of skipping it."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Threads to use (default: every CPU); for score --scheduler local, the number of Dask worker processes.",
    ),
]

# Gate options shared by score and check.
_BASELINE = typer.Option(
    "--baseline",
    help="Known findings (JSON): fail only on findings that are new or worse than these.",
)
_UPDATE_BASELINE = typer.Option(
    "--update-baseline", help="Write the current findings to --baseline FILE (accept them)."
)
_JUNIT = typer.Option("--junit", help="Write a JUnit XML report: one testcase per check.")
_JSON = typer.Option("--json", help="Write the gate report as JSON.")


@app.command()
@handle_errors
def score(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Run folder to write ranking.csv, summary.json and overlays/ into."
        ),
    ],
    labels: LabelsOption = None,
    probs: ProbsOption = None,
    manifest: ManifestOption = None,
    layout: LayoutOption = Layout.NCHW,
    logits: LogitsOption = False,
    resize: ResizeOption = None,
    downsample: DownsampleOption = 1,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", help="Folder of RGB images named by id, drawn under the overlays."
        ),
    ] = None,
    ids: IdsOption = None,
    classes: ClassesOption = None,
    temperature: TemperatureOption = 0.1,
    ignore_index: IgnoreOption = None,
    top: Annotated[
        int,
        typer.Option(
            min=0, help="Draw overlays for this many of the most suspect images; 0 for none."
        ),
    ] = 20,
    overlay_full_resolution: Annotated[
        bool,
        typer.Option(
            "--overlay-full-resolution",
            help="Draw overlays at the images' own size (default: panels at most 640 px wide, a preview that draws in a fraction of the time).",
        ),
    ] = False,
    strict: StrictOption = False,
    workers: WorkersOption = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run on Dask: a scheduler address (tcp://host:8786), or 'local' for a LocalCluster. Workers need segaudit and the same data paths/URLs; needs segaudit[dask].",
        ),
    ] = None,
    connectivity: Annotated[
        int,
        typer.Option(
            min=4,
            max=8,
            help="Suspect regions: flagged pixels touching by an edge (4) or also by a corner (8) are one region.",
        ),
    ] = 8,
    min_region_area: Annotated[
        int,
        typer.Option(
            min=1,
            help="Suspect regions: leave out regions smaller than this many pixels from regions.csv (default 1: every flagged pixel is in a region).",
        ),
    ] = 1,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="Calibration JSON from `segaudit calibrate`: score in one pass with its thresholds and cutoff (for CI increments).",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Gate policy YAML: check the run after scoring; exit 0 pass, 1 fail (see configs/gate.yaml).",
        ),
    ] = None,
    baseline: Annotated[Path | None, _BASELINE] = None,
    update_baseline: Annotated[bool, _UPDATE_BASELINE] = False,
    junit: Annotated[Path | None, _JUNIT] = None,
    json_out: Annotated[Path | None, _JSON] = None,
) -> None:
    """Score every image's labels and write the ranking, summary, regions and overlays.

    With --policy, also check the run against the policy (exit 1 when it fails)."""
    from segaudit.run import ScoreRequest
    from segaudit.run import score as run_score

    gate = None
    if policy is not None:  # every gate argument is checked before scoring starts
        gate = GateRequest(out_dir, policy, baseline, update_baseline, junit, json_out)
        gate = replace(gate, policy=check_gate_request(gate))
    elif baseline or update_baseline or junit or json_out:
        raise ConfigError("--baseline, --update-baseline, --junit and --json need --policy")

    request = ScoreRequest(
        labels=labels,
        probs=_probs_location(probs),
        out=out_dir,
        images=images,
        ids=ids,
        classes=classes,
        temperature=temperature,
        ignore=_ignore_values(ignore_index),
        top=top,
        strict=strict,
        workers=workers,
        scheduler=scheduler,
        connectivity=connectivity,
        min_region_area=min_region_area,
        manifest=manifest,
        layout=layout,
        logits=logits,
        resize=resize,
        downsample=downsample,
        calibration=calibration,
        overlay_full_resolution=overlay_full_resolution,
    )
    with progress_bars() as on_progress:
        outcome = run_score(request, on_progress)
    result = outcome.result
    names = outcome.classes.names
    table = Table(title="Most suspect images", title_justify="left")
    for column in ("rank", "image", "label quality", "flagged px", "most common issue"):
        table.add_column(column, justify="right" if column != "image" else "left")
    for rank, record in enumerate(result.ranking()[:10], start=1):
        pair = (
            f"{names[record.top_given]} → {names[record.top_predicted]}"
            if record.top_given is not None and record.top_predicted is not None
            else ""
        )
        quality = "skipped" if record.skipped else f"{record.label_quality:.4f}"
        table.add_row(str(rank), record.image_id, quality, f"{record.flagged_pixels:,}", pair)
    out.print(table)
    skipped = [r for r in result.images if r.skipped]
    for record in skipped[:5]:
        _say("skipped", "yellow", f"{record.image_id}: {record.skipped}")
    if len(skipped) > 5:
        _say("skipped", "yellow", f"{len(skipped) - 5} more (see ranking.csv)")
    out.print(
        f"{len(result.images)} images, {result.flagged_pixels:,} pixels flagged "
        f"of {result.valid_pixels:,}; T = {result.confident_count:,}",
        highlight=False,
    )
    out.print(f"ranking:  {outcome.ranking_path}", highlight=False)
    out.print(f"summary:  {outcome.summary_path}", highlight=False)
    if outcome.regions_path is not None:
        out.print(f"regions:  {outcome.regions_path}", highlight=False)
    if outcome.overlays:
        out.print(
            f"overlays: {outcome.overlays[0].parent} ({len(outcome.overlays)} images)",
            highlight=False,
        )
    if gate is not None:
        _gate(gate)


def _gate(request: GateRequest) -> None:
    """Run the gate, print its lines (and GitHub annotations), exit with its code."""
    outcome = run_gate(request)
    for line in outcome.lines:
        style = "red" if line.startswith(("FAIL", "gate FAILED")) else None
        out.print(line, style=style, soft_wrap=True)
    for line in outcome.annotations:
        typer.echo(line)
    raise typer.Exit(outcome.exit_code)


@app.command()
@handle_errors
def check(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `segaudit score --out`.")],
    policy: Annotated[
        Path, typer.Option("--policy", help="Gate policy YAML (see configs/gate.yaml).")
    ],
    baseline: Annotated[Path | None, _BASELINE] = None,
    update_baseline: Annotated[bool, _UPDATE_BASELINE] = False,
    junit: Annotated[Path | None, _JUNIT] = None,
    json_out: Annotated[Path | None, _JSON] = None,
) -> None:
    """Check a finished run against a policy: exit 0 pass, 1 fail, 2 bad input.

    Appends a markdown summary to $GITHUB_STEP_SUMMARY when set; prints GitHub annotations for failed checks when GITHUB_ACTIONS=true."""
    _gate(GateRequest(run_dir, policy, baseline, update_baseline, junit, json_out))


@app.command()
@handle_errors
def calibrate(
    out_file: Annotated[
        Path, typer.Option("--out", help="Calibration JSON to write (thresholds, cutoff).")
    ],
    labels: LabelsOption = None,
    probs: ProbsOption = None,
    manifest: ManifestOption = None,
    ids: IdsOption = None,
    classes: ClassesOption = None,
    layout: LayoutOption = Layout.NCHW,
    logits: LogitsOption = False,
    resize: ResizeOption = None,
    downsample: DownsampleOption = 1,
    temperature: TemperatureOption = 0.1,
    ignore_index: IgnoreOption = None,
    strict: StrictOption = False,
    workers: WorkersOption = None,
) -> None:
    """Run pass 1 on a trusted set and save thresholds and the selection cutoff.

    Then `segaudit score --calibration FILE` scores new batches in one pass."""
    from segaudit.calibration import calibrate as run_calibrate
    from segaudit.run import ScoreRequest

    request = ScoreRequest(
        labels=labels,
        probs=_probs_location(probs),
        out=out_file.parent,
        ids=ids,
        classes=classes,
        temperature=temperature,
        ignore=_ignore_values(ignore_index),
        strict=strict,
        workers=workers,
        manifest=manifest,
        layout=layout,
        logits=logits,
        resize=resize,
        downsample=downsample,
    )
    with progress_bars() as on_progress:
        result = run_calibrate(request, out_file, on_progress)
    table = Table(title="Per-class thresholds", title_justify="left")
    for column in ("class", "threshold", "labelled px"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, threshold, count in zip(
        result.class_names, result.thresholds, result.labelled_pixels, strict=True
    ):
        table.add_row(name, f"{threshold:.4f}", f"{count:,}")
    out.print(table)
    cutoff = "none" if result.cutoff is None else f"{result.cutoff:.6g}"
    out.print(
        f"{result.num_images} images; T = {result.confident_count:,}; cutoff = {cutoff}",
        highlight=False,
    )
    out.print(f"calibration: {out_file}", highlight=False)


@app.command()
@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `segaudit score --out`.")],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default: RUNDIR/report.html)."),
    ] = None,
    top: Annotated[
        int, typer.Option(min=0, help="Show this many of the most suspect images in the gallery.")
    ] = 20,
    class_name: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="Narrow everything to flagged pixels whose given or predicted class is NAME.",
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML page for reviewing a run: worst images first."""
    from segaudit.report import ReportRequest, build_report

    outcome = build_report(ReportRequest(run_dir, out_file, top, class_name))
    scope = f" (class {outcome.class_name})" if outcome.class_name is not None else ""
    out.print(
        f"{outcome.images} images{scope}, {outcome.flagged_pixels:,} flagged pixels; "
        f"gallery of the {outcome.gallery} most suspect",
        highlight=False,
    )
    for sentence in outcome.top_issues:
        out.print(f"  {sentence}")
    out.print(f"report: {outcome.path} ({outcome.size_bytes / 1e6:.1f} MB)", highlight=False)


@app.command("validate-config")
@handle_errors
def validate_config(
    file: Annotated[Path, typer.Argument(help="A classes config or a gate policy (YAML).")],
) -> None:
    """Check a classes config (or a gate policy) and say what is wrong, by key path."""
    from segaudit.config import validate_config_file

    out.print(f"OK {validate_config_file(file)}", highlight=False)


@app.command()
@handle_errors
def inspect(
    labels: LabelsOption = None,
    probs: ProbsOption = None,
    manifest: ManifestOption = None,
    ids: IdsOption = None,
    layout: LayoutOption = Layout.NCHW,
    classes: Annotated[
        Path | None,
        typer.Option("--classes", help="Classes config: remap and palette for reading masks."),
    ] = None,
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="Masks read in full for the class histogram.")
    ] = 32,
) -> None:
    """A fast look at a dataset before scoring: counts, sizes, dtypes, layout, classes, pairing.

    Exits 2 when score would refuse the dataset (pairing problems, unopenable files)."""
    from segaudit.config import load_classes
    from segaudit.inspect import inspect_dataset

    config = load_classes(classes) if classes else None
    report = inspect_dataset(
        labels,
        _probs_location(probs),
        ids=ids,
        manifest=manifest,
        layout=layout,
        classes=config,
        histogram_sample=sample,
    )
    sizes = ", ".join(f"{h}x{w} ({n})" for (h, w), n in list(report.mask_sizes.items())[:5])
    modes = ", ".join(f"{m} ({n})" for m, n in report.mask_modes.items())
    table = Table(title="Dataset", title_justify="left", show_header=False)
    table.add_row("masks", f"{report.masks:,}")
    table.add_row("mask sizes (H x W)", sizes + (" …" if len(report.mask_sizes) > 5 else ""))
    table.add_row("mask modes", modes)
    if report.headers_read < report.masks:
        table.add_row("", f"sizes and modes from {report.headers_read:,} masks")
    info = report.probs
    if info is not None:
        table.add_row("probabilities", f"{info.path} ({info.kind}, {info.images:,} images)")
        table.add_row("shape, dtype", f"{info.shape}, {info.dtype}")
        guess = info.layout_guess.value if info.layout_guess else "unclear"
        table.add_row(
            "layout", f"{info.layout.value} given, looks {guess}; {info.num_classes} classes"
        )
        table.add_row("values look like", f"{info.looks_like} (from {len(info.values)} images)")
    out.print(table)
    read = f"{report.histogram_masks} of {report.masks} masks" if report.sampled else "all masks"
    hist = Table(title=f"Labels by class ({read})", title_justify="left")
    for column in ("class", "name", "pixels", "share"):
        hist.add_column(column, justify="left" if column == "name" else "right")
    total = sum(report.class_histogram.values()) or 1
    for value, pixels in report.class_histogram.items():
        name = config.names[value] if config and 0 <= value < config.num_classes else ""
        if config and value in config.ignore:
            name = "(ignored)"
        hist.add_row(str(value), name, f"{pixels:,}", f"{pixels / total:.1%}")
    out.print(hist)
    problems = [
        *report.problems,
        *(f"no mask for {i}" for i in report.missing_masks[:10]),
        *(f"mask without probabilities: {i}" for i in report.extra_masks[:10]),
        *(f"duplicate id {i}" for i in report.duplicate_ids[:10]),
        *(f"unreadable mask {i}: {r}" for i, r in list(report.unreadable.items())[:10]),
    ]
    if info is not None and info.looks_like == "logits":
        problems.append("the values look like logits: score with --logits")
    for problem in problems:
        _say("problem:", "yellow", problem)
    if not problems:
        out.print("no problems found")
    if report.problems or report.missing_masks or report.extra_masks or report.duplicate_ids:
        raise typer.Exit(ExitCode.USAGE)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="segaudit")


if __name__ == "__main__":  # pragma: no cover
    main()
