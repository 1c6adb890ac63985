"""The ``segaudit`` command line: options and rendering. Each command parses its options,
calls one function of :mod:`segaudit.commands`, and prints what it returns.

Everything printed that came from users' files (ids, class names, paths, messages) goes
through :func:`shown`, which escapes control characters: a name with a newline cannot
start a line of output that a CI system reads as a command (GitHub's ``::``).
"""

from __future__ import annotations

import functools
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from segaudit.commands.check import GateRequest, check_gate_request, run_gate
from segaudit.core.compact import MAX_TAIL_STRIDE, TAIL_MAX_CLASSES, TAIL_STRIDE
from segaudit.core.methods import METHODS
from segaudit.errors import ExitCode, OptionError, SegauditError
from segaudit.io.inputs import InputSpec
from segaudit.io.transforms import Layout, Resize

app = typer.Typer(
    name="segaudit",
    help="Find label errors in semantic-segmentation datasets and gate CI on label quality.\n\n"
    "Exit codes: 0 done (gate passed), 1 gate failed, 2 bad input or options (the message says "
    "what and where), 3 unexpected error (please report it; --debug shows the traceback), "
    "130 interrupted, 143 terminated. An interrupted run leaves earlier outputs as they were.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Markup off: ids, paths and messages come from users' files and may hold "[...]". Off a
# terminal (CI logs) lines are not wrapped and table cells not cut short.
_WIDTH = None if sys.stdout.isatty() else 100_000
console = Console(stderr=True, markup=False, highlight=False, width=_WIDTH)
out = Console(markup=False, highlight=False, width=_WIDTH)


def shown(text: str) -> str:
    """Text from users' files, safe to print: control characters (newlines, escapes, a
    carriage return) are shown as escapes, everything else as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _say(label: str, style: str, message: str) -> None:
    """One line on stderr: a coloured label, then the message (control characters escaped)."""
    console.print(Text.assemble((label, style), " ", shown(message)), soft_wrap=True)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that clean-up runs as for Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


F = TypeVar("F", bound=Callable[..., Any])
_debug = False


def _version(value: bool) -> None:
    if value:
        from segaudit import __version__

        out.print(f"segaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool,
        typer.Option("--debug", metavar="", help="Show a traceback for unexpected errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            metavar="",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """segaudit: rank images by how likely their labels are wrong, show where, gate CI.

    Exit codes: 0 done (gate passed), 1 gate failed, 2 bad input or options (the message
    says what and where), 3 unexpected error (a bug: please report it), 130 interrupted
    (Ctrl-C), 143 terminated (SIGTERM). Interrupted runs leave no partial output."""
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
                "interrupted:",
                "yellow",
                "nothing was half-written; earlier outputs are as they were",
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Terminated:
            _say(
                "terminated:",
                "yellow",
                "nothing was half-written; earlier outputs are as they were",
            )
            raise typer.Exit(ExitCode.TERMINATED) from None
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
        "inspect": "inspect: reading masks",
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
        help="Folder of PNG masks (class id per pixel, or RGB colours with --classes), sub-folders included; which files are masks: --mask-pattern.",
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
    typer.Option(
        "--logits/--no-logits",
        metavar="",
        help="The probabilities are logits: apply a softmax over classes (default: they are probabilities).",
    ),
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
        help="Text file of image ids, one per line (e.g. VOC's ImageSets/Segmentation/val.txt): only these are audited, in this order. For an array without an 'image_ids' attribute, the ids of its rows in order.",
    ),
]
ClassesOption = Annotated[
    Path | None,
    typer.Option(
        "--classes",
        help="Classes config: a YAML file or a built-in name (cityscapes, voc, ade20k, ...: see `segaudit configs`). Class names, colours, ignore values, remap and the dataset's file names.",
    ),
]
MaskPatternOption = Annotated[
    str | None,
    typer.Option(
        "--mask-pattern",
        help="Which files under --labels are masks, e.g. '*_gtFine_labelTrainIds.png'; an id is the file's path with the text after the last '*' removed. Default: the classes config's, else '*.png'.",
    ),
]
ImagePatternOption = Annotated[
    str | None,
    typer.Option(
        "--image-pattern",
        help="The file name of an image under --images, e.g. '{id}_leftImg8bit.png' or '{id}.jpg'. Default: the classes config's, else {id} with any image suffix.",
    ),
]
ProbsKeyOption = Annotated[
    str | None,
    typer.Option(
        "--probs-key",
        help="The array inside each per-image .npz that holds the probabilities. Default: the only array, else one named pred_probs, probs, probabilities or logits.",
    ),
]
PairingCheckOption = Annotated[
    bool,
    typer.Option(
        "--pairing-check/--no-pairing-check",
        metavar="",
        help="Before scoring, check on a few images that the probabilities belong to the masks (order, labels one off the planes); exit 2 when they do not.",
    ),
]
ImagesOption = Annotated[
    Path | None,
    typer.Option(
        "--images",
        help="Folder of RGB images drawn under the overlays, file names by --image-pattern.",
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
        "--strict/--no-strict",
        metavar="",
        help="Fail (exit 2) on the first unreadable or invalid image instead of skipping it.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="Threads to use (default: every CPU)."),
]
ScoreWorkersOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Threads to use (default: every CPU); with --scheduler local, the number of Dask worker processes.",
    ),
]

# Gate options shared by score and check.
_BASELINE = typer.Option(
    "--baseline",
    help="Known findings (JSON): fail only on findings that are new or worse than these.",
)
_UPDATE_BASELINE = typer.Option(
    "--update-baseline",
    metavar="",
    help="Write the current findings to --baseline FILE (accept them).",
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
    images: ImagesOption = None,
    ids: IdsOption = None,
    classes: ClassesOption = None,
    mask_pattern: MaskPatternOption = None,
    image_pattern: ImagePatternOption = None,
    probs_key: ProbsKeyOption = None,
    pairing_check: PairingCheckOption = True,
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
            metavar="",
            help="Draw overlays at the images' own size (default: panels at most 640 px wide, a preview that draws in a fraction of the time).",
        ),
    ] = False,
    strict: StrictOption = False,
    workers: ScoreWorkersOption = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run on Dask: a scheduler address (tcp://host:8786), or 'local' for a LocalCluster. Workers need segaudit and the same data paths/URLs; needs segaudit\\[dask].",
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
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help=f"How images are scored: {', '.join(METHODS)}. softmin (the default) is cleanlab's; docs/guide/detection.md measures each.",
        ),
    ] = "softmin",
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
    save_masks: Annotated[
        bool,
        typer.Option(
            "--save-masks",
            metavar="",
            help="Per image with flagged pixels, write flagged/ (region ids) and suggested/ (the mask with flagged pixels set to the model's class, in the input's encoding) into the run folder; `segaudit apply` needs them.",
        ),
    ] = False,
) -> None:
    """Score every image's labels and write the run folder: ranking.csv, summary.json,
    regions.csv, masks.json and overlays/ (replaced whole, or left as it was on failure).

    With --policy, also check the run against the policy (exit 1 when it fails)."""
    from segaudit.commands.score import ScoreOptions
    from segaudit.commands.score import score as run_score
    from segaudit.core.regions import RegionOptions

    gate = None
    if policy is not None:  # every gate argument is checked before scoring starts
        gate = GateRequest(out_dir, policy, baseline, update_baseline, junit, json_out)
        gate = replace(gate, policy=check_gate_request(gate))
    elif baseline or update_baseline or junit or json_out:
        raise OptionError("--baseline, --update-baseline, --junit and --json need --policy")

    spec = _input_spec(
        labels, probs, manifest, ids, classes, layout, logits, resize, downsample, ignore_index
    )
    spec = _naming(spec, images, mask_pattern, image_pattern, probs_key, pairing_check)
    options = ScoreOptions(
        inputs=spec,
        out=out_dir,
        temperature=temperature,
        strict=strict,
        workers=workers,
        scheduler=scheduler,
        top=top,
        regions=RegionOptions(connectivity, min_region_area),
        calibration=calibration,
        method=method,
        save_masks=save_masks,
        overlay_full_resolution=overlay_full_resolution,
    )
    with progress_bars() as on_progress:
        outcome = run_score(options, on_progress)
    _print_ranking(outcome)
    _warn_low_agreement(outcome.result.images)
    if gate is not None:
        _gate(gate)


def _input_spec(
    labels: Path | None,
    probs: str | None,
    manifest: Path | None,
    ids: Path | None,
    classes: Path | None,
    layout: Layout,
    logits: bool,
    resize: Resize | None,
    downsample: int,
    ignore_index: list[int] | None,
) -> InputSpec:
    return InputSpec(
        labels=labels,
        probs=_probs_location(probs),
        manifest=manifest,
        ids=ids,
        classes=classes,
        layout=layout,
        logits=logits,
        resize=resize,
        downsample=downsample,
        ignore=_ignore_values(ignore_index),
    )


def _naming(
    spec: InputSpec,
    images: Path | None,
    mask_pattern: str | None,
    image_pattern: str | None,
    probs_key: str | None,
    pairing_check: bool,
) -> InputSpec:
    """The file-naming options on top of the input spec, checked."""
    from segaudit.config.naming import FileNames, image_pattern_problem, mask_pattern_problem

    if mask_pattern is not None and (problem := mask_pattern_problem(mask_pattern)):
        raise OptionError(f"--mask-pattern {problem}")
    if image_pattern is not None and (problem := image_pattern_problem(image_pattern)):
        raise OptionError(f"--image-pattern {problem}")
    names = FileNames(mask_pattern or "", image_pattern or "", probs_key or "")
    return replace(spec, images=images, names=names, pairing_check=pairing_check)


def _warn_low_agreement(records: Any) -> None:
    """Images that agree with the model far less than the dataset's others: often a mask
    paired with another image's probabilities."""
    from segaudit.io.pairing_check import low_agreement

    low, middle = low_agreement(list(records))
    if not low:
        return
    listed = ", ".join(f"{shown(r.image_id)} ({r.agreement:.0%})" for r in low[:5])
    more = f" and {len(low) - 5} more" if len(low) > 5 else ""
    _say(
        "warning:",
        "yellow",
        f"{len(low)} image(s) agree with the model on under half the dataset's median share "
        f"of pixels ({middle:.0%}): {listed}{more}; check that they are paired with their "
        "own probabilities (ranking.csv: agreement)",
    )


def _print_ranking(outcome: Any) -> None:
    """The ten most suspect images, skipped ones, totals, and where the outputs are."""
    result = outcome.result
    names = outcome.classes.names
    table = Table(title="Most suspect images", title_justify="left")
    for column in ("rank", "image", "label quality", "flagged px", "most common issue"):
        table.add_column(column, justify="right" if column != "image" else "left")
    for rank, record in enumerate(result.ranking()[:10], start=1):
        pair = (
            f"{shown(names[record.top_given])} → {shown(names[record.top_predicted])}"
            if record.top_given is not None and record.top_predicted is not None
            else ""
        )
        quality = "skipped" if record.skipped else f"{record.label_quality:.4f}"
        table.add_row(
            str(rank), shown(record.image_id), quality, f"{record.flagged_pixels:,}", pair
        )
    out.print(table)
    skipped = [r for r in result.images if r.skipped]
    for record in skipped[:5]:
        _say("skipped", "yellow", f"{record.image_id}: {record.skipped}")
    if len(skipped) > 5:
        _say("skipped", "yellow", f"{len(skipped) - 5} more (see ranking.csv)")
    out.print(
        f"{len(result.images)} images, {result.flagged_pixels:,} pixels flagged "
        f"of {result.valid_pixels:,}; T = {result.confident_count:,}"
    )
    folder = outcome.folder
    out.print(f"run folder: {shown(str(folder))}")
    out.print(f"ranking:  {shown(str(folder / 'ranking.csv'))}")
    out.print(f"summary:  {shown(str(folder / 'summary.json'))}")
    out.print(f"regions:  {shown(str(folder / 'regions.csv'))}")
    if outcome.overlays:
        out.print(f"overlays: {shown(str(folder / 'overlays'))} ({len(outcome.overlays)} images)")


def _gate(request: GateRequest) -> None:
    """Run the gate, print its lines (and GitHub annotations), exit with its code."""
    outcome = run_gate(request)
    for line in outcome.lines:
        style = "red" if line.startswith(("FAIL", "gate FAILED")) else None
        out.print(shown(line), style=style, soft_wrap=True)
    for line in outcome.annotations:  # workflow commands: their data is escaped already
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
    review: Annotated[
        Path | None,
        typer.Option(
            "--review",
            help="review.json from the report: add the findings of images reviewed 'keep' to --baseline FILE (created if missing), then check.",
        ),
    ] = None,
) -> None:
    """Check a finished run against a policy: exit 0 pass, 1 fail, 2 bad input.

    Appends a markdown summary to $GITHUB_STEP_SUMMARY when set; prints GitHub annotations for failed checks when GITHUB_ACTIONS=true."""
    _gate(GateRequest(run_dir, policy, baseline, update_baseline, junit, json_out, review))


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
    mask_pattern: MaskPatternOption = None,
    probs_key: ProbsKeyOption = None,
    pairing_check: PairingCheckOption = True,
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
    from segaudit.commands.calibrate import CalibrateOptions
    from segaudit.commands.calibrate import calibrate as run_calibrate

    spec = _input_spec(
        labels, probs, manifest, ids, classes, layout, logits, resize, downsample, ignore_index
    )
    spec = _naming(spec, None, mask_pattern, None, probs_key, pairing_check)
    options = CalibrateOptions(spec, out_file, temperature, strict, workers)
    with progress_bars() as on_progress:
        result = run_calibrate(options, on_progress)
    table = Table(title="Per-class thresholds", title_justify="left")
    for column in ("class", "threshold", "labelled px"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, threshold, count in zip(
        result.class_names, result.thresholds, result.labelled_pixels, strict=True
    ):
        table.add_row(shown(name), f"{threshold:.4f}", f"{count:,}")
    out.print(table)
    cutoff = "none" if result.cutoff is None else f"{result.cutoff:.6g}"
    out.print(f"{result.num_images} images; T = {result.confident_count:,}; cutoff = {cutoff}")
    out.print(f"calibration: {shown(str(out_file))}")


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
    from segaudit.commands.report import ReportRequest, build_report

    outcome = build_report(ReportRequest(run_dir, out_file, top, class_name))
    scope = f" (class {shown(outcome.class_name)})" if outcome.class_name is not None else ""
    out.print(
        f"{outcome.images} images{scope}, {outcome.flagged_pixels:,} flagged pixels; "
        f"gallery of the {outcome.gallery} most suspect"
    )
    for sentence in outcome.top_issues:
        out.print(f"  {shown(sentence)}")
    out.print(f"report: {shown(str(outcome.path))} ({outcome.size_bytes / 1e6:.1f} MB)")


@app.command("validate-config")
@handle_errors
def validate_config(
    file: Annotated[Path, typer.Argument(help="A classes config or a gate policy (YAML).")],
) -> None:
    """Check a classes config (or a gate policy) and say what is wrong, by key path."""
    from segaudit.commands.validate import validate_config_file

    out.print(f"OK {shown(validate_config_file(file))}")


@app.command()
@handle_errors
def inspect(
    labels: LabelsOption = None,
    probs: ProbsOption = None,
    manifest: ManifestOption = None,
    ids: IdsOption = None,
    classes: ClassesOption = None,
    images: ImagesOption = None,
    mask_pattern: MaskPatternOption = None,
    image_pattern: ImagePatternOption = None,
    probs_key: ProbsKeyOption = None,
    pairing_check: PairingCheckOption = True,
    layout: LayoutOption = Layout.NCHW,
    logits: LogitsOption = False,
    resize: ResizeOption = None,
    downsample: DownsampleOption = 1,
    ignore_index: IgnoreOption = None,
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="Masks read in full for the class histogram.")
    ] = 32,
) -> None:
    """score without the audit: open the dataset as score would, check the pairing, and show
    counts, sizes, dtypes, layout and classes.

    Takes score's input options and exits 2 on every problem score would refuse."""
    from segaudit.commands.inspect import inspect_dataset

    spec = _input_spec(
        labels, probs, manifest, ids, classes, layout, logits, resize, downsample, ignore_index
    )
    spec = _naming(spec, images, mask_pattern, image_pattern, probs_key, pairing_check)
    with progress_bars() as on_progress:
        report = inspect_dataset(spec, histogram_sample=sample, on_progress=on_progress)
    config = report.inputs.classes
    sizes = ", ".join(f"{h}x{w} ({n})" for (h, w), n in list(report.mask_sizes.items())[:5])
    modes = ", ".join(f"{m} ({n})" for m, n in report.mask_modes.items())
    table = Table(title="Dataset", title_justify="left", show_header=False)
    table.add_row("images", f"{report.masks:,}")
    table.add_row("mask sizes (H x W)", sizes + (" …" if len(report.mask_sizes) > 5 else ""))
    table.add_row("mask modes", modes)
    if report.headers_read < report.masks:
        table.add_row("", f"sizes and modes from {report.headers_read:,} masks")
    if spec.images is not None:
        table.add_row("pictures", f"{report.pictures:,} of {report.masks:,} found")
    info = report.probs
    table.add_row("probabilities", shown(f"{info.path} ({info.kind}, {info.images:,} images)"))
    table.add_row("shape, dtype", f"{info.shape}, {info.dtype}")
    guess = info.layout_guess.value if info.layout_guess else "unclear"
    table.add_row("layout", f"{info.layout.value} given, looks {guess}; {info.num_classes} classes")
    table.add_row("values look like", f"{info.looks_like} (from {len(info.values)} images)")
    if report.pairing is not None:
        pairing = report.pairing
        table.add_row(
            "pairing check",
            f"passed: {pairing.wins} of {pairing.images} sampled masks agree best with their "
            f"own probabilities (agreement {pairing.own:.0%}, with other images' "
            f"{pairing.others:.0%})",
        )
    out.print(table)
    read = f"{report.histogram_masks} of {report.masks} masks" if report.sampled else "all masks"
    hist = Table(title=f"Labels by class ({read})", title_justify="left")
    for column in ("class", "name", "pixels", "share"):
        hist.add_column(column, justify="left" if column == "name" else "right")
    total = sum(report.class_histogram.values()) or 1
    for value, pixels in report.class_histogram.items():
        name = config.names[value] if 0 <= value < config.num_classes else ""
        if value in config.ignore:
            name = "(ignored)"
        hist.add_row(str(value), shown(name), f"{pixels:,}", f"{pixels / total:.1%}")
    out.print(hist)
    for image_id, reason in list(report.unreadable.items())[:10]:
        _say("warning:", "yellow", f"unreadable mask {image_id} (score skips it): {reason}")
    if info.looks_like == "logits" and not spec.logits:
        _say("warning:", "yellow", "some values look like logits: score with --logits")
    out.print("no problems found" if not report.unreadable else "usable; see the warnings")


@app.command("configs")
@handle_errors
def configs() -> None:
    """List the built-in classes configs: pass a name to --classes (e.g. --classes cityscapes)."""
    from segaudit.config.builtin import builtin_configs
    from segaudit.config.classes import load_classes

    table = Table(title="Built-in classes configs", title_justify="left")
    for column in ("name", "classes", "masks", "images", "about"):
        table.add_column(column)
    for entry in builtin_configs():
        config = load_classes(entry.path)
        table.add_row(
            entry.name,
            str(config.num_classes),
            config.files.masks or "*.png",
            config.files.images or "{id}.<suffix>",
            entry.summary,
        )
    out.print(table)


@app.command()
@handle_errors
def convert(
    probs: Annotated[
        str,
        typer.Option(
            "--probs",
            help="Probabilities to convert: anything score reads (zarr array/group or URL, .npy, folder of per-image .npy/.npz, a segaudit store).",
        ),
    ],
    out_store: Annotated[
        Path,
        typer.Option("--out", help="The zarr store to write (replaced only with --overwrite)."),
    ],
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            min=1,
            help="Keep each pixel's K most likely classes; the rest of the mass is shared over the others by a coarse copy of all classes (see --tail-stride).",
        ),
    ] = None,
    tail_stride: Annotated[
        int | None,
        typer.Option(
            "--tail-stride",
            min=0,
            max=MAX_TAIL_STRIDE,
            show_default=False,
            help=f"With --top-k: keep every class's mean over S x S pixel blocks, which decides how the rest of a pixel's mass is shared (a label outside the top K gets its share); 0 shares it evenly. Costs K*2/S^2 bytes a pixel. Default: {TAIL_STRIDE} up to {TAIL_MAX_CLASSES} classes, 0 above.",
        ),
    ] = None,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="float16 (default), float32, or uint8 (1/255 steps); with --top-k: float16 or uint8.",
        ),
    ] = "float16",
    layout: LayoutOption = Layout.NCHW,
    logits: LogitsOption = False,
    ids: IdsOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", metavar="", help="Replace an existing store.")
    ] = False,
) -> None:
    """Write probabilities as a segaudit store, optionally compact (uint8, top-k), atomically.

    See docs/guide/probabilities.md for what the compact encodings change."""
    from segaudit.commands.convert import ConvertRequest
    from segaudit.commands.convert import convert as run_convert

    request = ConvertRequest(
        _probs_location(probs) or probs,
        out_store,
        top_k,
        dtype,
        layout,
        logits,
        ids,
        overwrite,
        tail_stride,
    )
    with progress_bars() as on_progress:
        outcome = run_convert(request, on_progress)
    ratio = (
        f"; input {outcome.input_bytes / 1e6:.1f} MB ({outcome.input_bytes / outcome.bytes:.1f}x)"
        if outcome.input_bytes and outcome.bytes
        else ""
    )
    out.print(
        f"wrote {outcome.path}: {outcome.images} images, {outcome.num_classes} classes, "
        f"{outcome.encoding}, {outcome.bytes / 1e6:.1f} MB{ratio}",
        highlight=False,
    )


@app.command()
@handle_errors
def apply(
    run_dir: Annotated[
        Path, typer.Argument(help="Run folder written by `segaudit score --save-masks --out`.")
    ],
    review: Annotated[
        Path,
        typer.Option(
            "--review", help="review.json downloaded from the report page (or written by a script)."
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="New or empty folder for the corrected copy of every mask (never the input folder).",
        ),
    ],
) -> None:
    """Write a corrected copy of the masks: regions marked 'fix' take the model's class.

    Same relative paths, names and encoding as the input masks; everything else is copied unchanged. Refuses (exit 2, nothing written) another run's review, unknown images or regions, masks changed since scoring, a non-empty --out."""
    from segaudit.commands.apply import ApplyRequest, apply_review

    outcome = apply_review(ApplyRequest(run_dir, review, out_dir))
    for change in outcome.changed:
        regions = ", ".join(str(r) for r in change.regions)
        out.print(
            f"fixed {shown(change.path)}: region(s) {regions}, {change.pixels:,} pixels changed"
        )
    out.print(
        f"{outcome.copied} masks written to {shown(str(outcome.out))}: {len(outcome.changed)} corrected, "
        f"{outcome.copied - len(outcome.changed)} copied unchanged; {outcome.kept} region(s) kept as labelled"
    )


@app.command()
@handle_errors
def export(
    run_dir: Annotated[
        Path, typer.Argument(help="Run folder written by `segaudit score --save-masks --out`.")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="cvat (Segmentation mask 1.1 zip), label-studio (tasks JSON + labeling config, brush RLE) or coco (RLE annotations).",
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="New or empty folder to write the export into.")
    ],
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            help="Only the N most suspect images (default: every image with flagged pixels).",
        ),
    ] = None,
    flagged: Annotated[
        bool,
        typer.Option(
            "--flagged",
            metavar="",
            help="Every image with flagged pixels (the default; excludes --top).",
        ),
    ] = False,
    image_root: Annotated[
        str,
        typer.Option(
            "--image-root",
            help="Prefix for image paths in the export (a URL or the tool's storage path); default: relative to --images.",
        ),
    ] = "",
) -> None:
    """Export the suspect images' current masks and regions for an annotation tool."""
    from segaudit.commands.export import ExportRequest, export_run
    from segaudit.export import ExportFormat

    if top is not None and flagged:
        raise OptionError("--top and --flagged exclude each other")
    formats = [f.value for f in ExportFormat]
    if to not in formats:
        raise OptionError(f"--to {to!r}: unknown format; choose one of {', '.join(formats)}")
    outcome = export_run(ExportRequest(run_dir, ExportFormat(to), out_dir, top, image_root))
    out.print(f"{outcome.images} images, {outcome.regions} regions exported as {to}:")
    for path in outcome.files:
        out.print(f"  {shown(str(path))}")


def main() -> None:
    """Console-script entry point: SIGTERM ends a run as Ctrl-C does (clean-up, exit 143)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    app(prog_name="segaudit")


if __name__ == "__main__":  # pragma: no cover
    main()
