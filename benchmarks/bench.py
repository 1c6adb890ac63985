"""``make bench``: segaudit's speed and memory against the reference and against plain reading.

For each dataset size it writes a synthetic dataset (PNG masks, float16 probabilities as npy
and as zarr with one image per chunk, see synth.py) under build/bench, then times, each in
its own process so that memory is measured cleanly:

- read limit: read every image's probabilities twice, one max over classes each time, on two
  threads (read_limit.py), from npy and from zarr;
- ``segaudit score --top 0`` from npy and from zarr (the CLI, as users run it; no overlays);
- the reference: cleanlab 2.9.0 ``get_label_quality_scores`` + ``find_label_issues``,
  n_jobs=1, on the npy opened memory-mapped (reference.py; timed from its import to its
  answer; only for sizes up to --reference-max, it holds every pixel's score in memory).

Peak memory is the anonymous memory (RssAnon) of the whole process tree, sampled every 20 ms;
pages of the memory-mapped npy are file pages and do not count (measure.py). CPU is the
process tree's user+system time over wall time: 200% means both cores busy.

    python benchmarks/bench.py                      # sizes 200 and 2000, about 5 minutes
    python benchmarks/bench.py --sizes 200 --keep   # one size, keep the data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import Measured, run  # noqa: E402
from synth import Synthetic, generate  # noqa: E402

PYTHON = sys.executable
MB = 2**20


@dataclass(frozen=True)
class Row:
    """One timed program on one dataset."""

    images: int
    name: str
    source: str  # npy / zarr
    seconds: float
    pixels: int
    peak_bytes: int
    cpu_seconds: float
    steady_cpu: float  # median CPU % over half-second windows
    note: str = ""

    @property
    def pixels_per_second(self) -> float:
        return self.pixels / self.seconds


def _timed(command: list[str]) -> tuple[Measured, float]:
    """Run a command; also return the CPU seconds its process tree used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    measured = run(command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return measured, cpu


def _segaudit_command() -> list[str]:
    script = Path(PYTHON).parent / "segaudit"
    return [str(script)] if script.exists() else [PYTHON, "-m", "segaudit"]


def bench_size(data: Synthetic, root: Path, args: argparse.Namespace) -> list[Row]:
    """Every program on one dataset; read limits first so all runs see a warm page cache."""
    rows: list[Row] = []
    probs = {"npy": data.npy, "zarr": data.zarr}
    for source, path in probs.items():
        measured, cpu = _timed([PYTHON, str(HERE / "read_limit.py"), str(path)])
        rows.append(
            Row(
                data.images,
                "read limit",
                source,
                measured.seconds,
                data.pixels,
                measured.peak_bytes,
                cpu,
                measured.steady_cpu_percent,
            )
        )
    for source, path in probs.items():
        out = root / f"run-{source}"
        command = [
            *_segaudit_command(),
            "score",
            "--labels",
            str(data.masks),
            "--probs",
            str(path),
            "--out",
            str(out),
            "--top",
            "0",
        ]
        if args.workers:
            command += ["--workers", str(args.workers)]
        measured, cpu = _timed(command)
        summary = json.loads((out / "summary.json").read_text())
        rows.append(
            Row(
                data.images,
                "segaudit score",
                source,
                measured.seconds,
                data.pixels,
                measured.peak_bytes,
                cpu,
                measured.steady_cpu_percent,
                f"{summary['flagged_pixels']:,} flagged",
            )
        )
    if not args.skip_reference and data.images <= args.reference_max:
        measured, cpu = _timed([PYTHON, str(HERE / "reference.py"), str(data.masks), str(data.npy)])
        seconds, flagged, _ = measured.stdout.split()
        rows.append(
            Row(
                data.images,
                "reference (cleanlab)",
                "npy",
                float(seconds),
                data.pixels,
                measured.peak_bytes,
                cpu,
                measured.steady_cpu_percent,
                f"{int(flagged):,} flagged",
            )
        )
    return rows


def _find(rows: list[Row], images: int, name: str, source: str) -> Row | None:
    for row in rows:
        if (row.images, row.name, row.source) == (images, name, source):
            return row
    return None


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (pastes into the README as is)."""
    lines = [
        "| images | program | from | wall s | Mpx/s | peak MB | CPU % | steady CPU % "
        "| vs reference | vs read limit | note |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        reference = _find(rows, row.images, "reference (cleanlab)", "npy")
        limit = _find(rows, row.images, "read limit", row.source)
        vs_ref = vs_limit = ""
        if row.name == "segaudit score":
            if reference is not None and row.source == "npy":
                vs_ref = f"{row.seconds / reference.seconds:.2f}x"
            if limit is not None:
                vs_limit = f"{row.seconds / limit.seconds:.2f}x"
        lines.append(
            f"| {row.images:,} | {row.name} | {row.source} | {row.seconds:.2f} "
            f"| {row.pixels_per_second / 1e6:.1f} | {row.peak_bytes / MB:.0f} "
            f"| {100 * row.cpu_seconds / row.seconds:.0f} | {row.steady_cpu:.0f} | {vs_ref} "
            f"| {vs_limit} | {row.note} |"
        )
    return "\n".join(lines)


def targets(rows: list[Row], sizes: list[int]) -> list[str]:
    """Which of issue 6's targets hold in these measurements."""
    notes: list[str] = []
    small, large = min(sizes), max(sizes)
    seg = _find(rows, small, "segaudit score", "npy")
    ref = _find(rows, small, "reference (cleanlab)", "npy")
    if seg and ref:
        speedup = ref.seconds / seg.seconds
        notes.append(
            f"[{'met' if speedup >= 5 else 'NOT met'}] {small} images from npy: "
            f"{speedup:.1f}x faster than the reference (target >= 5x)"
        )
    for size in sizes:
        seg = _find(rows, size, "segaudit score", "zarr")
        limit = _find(rows, size, "read limit", "zarr")
        if seg and limit:
            ratio = seg.seconds / limit.seconds
            notes.append(
                f"[{'met' if ratio <= 2 else 'NOT met'}] {size} images from zarr: "
                f"{ratio:.2f}x the read limit (target <= 2x)"
            )
    segs = [r for r in rows if r.name == "segaudit score"]
    peak = max(r.peak_bytes for r in segs)
    notes.append(
        f"[{'met' if peak < 1024 * MB else 'NOT met'}] peak memory {peak / MB:.0f} MB "
        "(target < 1 GB)"
    )
    if large != small:
        for source in ("npy", "zarr"):
            a = _find(rows, small, "segaudit score", source)
            b = _find(rows, large, "segaudit score", source)
            if a and b:
                growth = b.peak_bytes - a.peak_bytes
                flat = growth <= max(0.15 * a.peak_bytes, 64 * MB)
                notes.append(
                    f"[{'met' if flat else 'NOT met'}] memory flat in N ({source}): "
                    f"{a.peak_bytes / MB:.0f} MB at {small}, {b.peak_bytes / MB:.0f} MB at "
                    f"{large} (target within +15% or +64 MB)"
                )
    busy = min(r.steady_cpu for r in segs)
    overall = min(100 * r.cpu_seconds / r.seconds for r in segs)
    notes.append(
        f"[{'met' if busy >= 150 else 'NOT met'}] both cores busy: segaudit's median CPU use "
        f"over half-second windows is {busy:.0f}% or more (200% = two cores; {overall:.0f}% "
        "or more averaged over the whole run, start-up and writing included)"
    )
    return notes


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.0f} GB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; load average at start "
        f"{load:.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, help="one dataset of this many images")
    parser.add_argument("--sizes", default="200,2000", help="comma-separated image counts")
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--workers", type=int, help="segaudit --workers (default: every CPU)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--reference-max",
        type=int,
        default=200,
        help="run the reference only on datasets of at most this many images (it holds "
        "every pixel's score in memory)",
    )
    parser.add_argument("--root", type=Path, default=Path("build/bench"))
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument(
        "--skip-compact", action="store_true", help="skip the compact-encodings section"
    )
    args = parser.parse_args(argv)
    sizes = [args.images] if args.images else [int(s) for s in args.sizes.split(",")]

    print(f"machine: {machine()}", flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    for size in sizes:
        root = args.root / f"n{size}"
        shutil.rmtree(root, ignore_errors=True)
        free = shutil.disk_usage(args.root.parent if args.root.parent.exists() else ".").free
        need = 2 * size * args.classes * args.height * args.width * 2
        if free < 1.2 * need:
            sys.exit(f"not enough disk for {size} images: need ~{need / 2**30:.1f} GB")
        data = generate(root, size, args.classes, args.height, args.width)
        print(
            f"generated {size} images, K={args.classes}, {args.height}x{args.width}, float16 "
            f"in {data.seconds:.1f} s",
            flush=True,
        )
        new = bench_size(data, root, args)
        for row in new:
            print(
                f"  {row.name:<22} {row.source:<5} {row.seconds:7.2f} s  "
                f"{row.peak_bytes / MB:6.0f} MB  {row.note}",
                flush=True,
            )
        rows.extend(new)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"K={args.classes}, {args.height}x{args.width}, float16; {machine()}")
    print()
    print(table(rows))
    print()
    for note in targets(rows, sizes):
        print(note)
    if not args.skip_compact:  # issue 12: compact encodings, size and agreement
        from compact import run_all

        print("\nCompact encodings (benchmarks/compact.py) against the float16 run:\n")
        print(run_all(args.root / "compact", min(100, *sizes)), flush=True)
        shutil.rmtree(args.root / "compact", ignore_errors=True)
    print(f"\nbench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
