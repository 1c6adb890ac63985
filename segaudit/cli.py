"""The ``segaudit`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from segaudit.errors import ExitCode, SegauditError
from segaudit.io.transforms import Layout, Resize

app = typer.Typer(
    name="segaudit",
    help="Find label errors in semantic-segmentation datasets and gate CI on label quality.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

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
            console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
        except ValueError as error:  # library argument checks (e.g. temperature)
            console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(ExitCode.USAGE) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]; no partial output was written")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except typer.Exit:
            raise
        except Exception as error:
            if _debug:
                traceback.print_exc()
            console.print(
                f"[bold red]unexpected error:[/] {type(error).__name__}: {error} "
                "(run with --debug for a traceback, and please report it)",
                highlight=False,
                soft_wrap=True,
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


@app.command()
@handle_errors
def score(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="Run folder to write ranking.csv, summary.json and overlays/ into."
        ),
    ],
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Folder of PNG masks (class id per pixel, or RGB colours with --classes); ids are file paths without the suffix, sub-folders included.",
        ),
    ] = None,
    probs: Annotated[
        str | None,
        typer.Option(
            "--probs",
            help="Predicted probabilities: a zarr array or group (path or URL: file://, s3://, memory://), a .npy file (N, K, H, W), or a folder of per-image .npy/.npz files named by id.",
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="CSV with columns image_id, mask, probs (row of --probs, or a per-image file) and optional image; paths relative to the CSV. Replaces --labels.",
        ),
    ] = None,
    layout: Annotated[
        Layout,
        typer.Option(
            "--layout",
            help="Where the class axis of the probabilities is: first (nchw: N,K,H,W or K,H,W) or last (nhwc).",
        ),
    ] = Layout.NCHW,
    logits: Annotated[
        bool,
        typer.Option("--logits", help="The probabilities are logits: apply a softmax over classes."),
    ] = False,
    resize: Annotated[
        Resize | None,
        typer.Option(
            "--resize",
            help="When probabilities and masks differ in size: upsample the probabilities bilinearly (probs) or pool the labels by majority (labels).",
        ),
    ] = None,
    downsample: Annotated[
        int,
        typer.Option(
            "--downsample",
            min=1,
            help="Audit at 1/F resolution: labels pooled by majority vote (ignore pixels do not vote), probabilities by mean.",
        ),
    ] = 1,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", help="Folder of RGB images named by id, drawn under the overlays."
        ),
    ] = None,
    ids: Annotated[
        Path | None,
        typer.Option(
            "--ids",
            help="Text file of image ids, one per line, in the probabilities' order (default: the zarr 'image_ids' attribute, else sorted mask names).",
        ),
    ] = None,
    classes: Annotated[
        Path | None,
        typer.Option(
            "--classes",
            help="Classes config YAML: class names, colours, ignore values (see configs/).",
        ),
    ] = None,
    temperature: Annotated[
        float,
        typer.Option(
            help="Softmin temperature for image scores: lower leans harder on the worst pixels. Must be > 0."
        ),
    ] = 0.1,
    ignore_index: Annotated[
        list[int] | None,
        typer.Option(
            "--ignore-index",
            help="Label value that takes part in nothing (repeatable). Default: the classes config's, else 255.",
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            min=0, help="Draw overlays for this many of the most suspect images; 0 for none."
        ),
    ] = 20,
    strict: Annotated[
        bool,
        typer.Option(
            help="Fail (exit 2) on the first unreadable or invalid image instead of skipping it."
        ),
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Threads to use (default: every CPU).")
    ] = None,
    connectivity: Annotated[
        int,
        typer.Option(
            min=4, max=8, help="Suspect regions: flagged pixels touching by an edge (4) or also by a corner (8) are one region."
        ),
    ] = 8,
    min_region_area: Annotated[
        int,
        typer.Option(
            min=1, help="Suspect regions: leave out regions smaller than this many pixels from regions.csv (default 1: every flagged pixel is in a region)."
        ),
    ] = 1,
) -> None:
    """Score every image's labels and write the ranking, summary, regions and overlays."""
    from segaudit.run import ScoreRequest
    from segaudit.run import score as run_score

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
        connectivity=connectivity,
        min_region_area=min_region_area,
        manifest=manifest,
        layout=layout,
        logits=logits,
        resize=resize,
        downsample=downsample,
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
        console.print(f"[yellow]skipped[/] {record.image_id}: {record.skipped}", highlight=False)
    if len(skipped) > 5:
        console.print(f"[yellow]skipped[/] {len(skipped) - 5} more (see ranking.csv)")
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="segaudit")


if __name__ == "__main__":  # pragma: no cover
    main()
