"""Compact encodings (issue 12): store size against a float16 zarr store, and agreement with
the full-precision run.

Datasets: a 19-class and a 150-class synthetic one (synth.py: label errors are rectangles of
a uniformly random class, and every wrong class gets smooth random logits, so the label of
an error is usually deep in the tail: the worst case for top-k); the detection benchmark
(benchmarks/detection, K=10: out-of-fold probabilities of a trained model, the errors of Lad
& Mueller 2023; needs scikit-learn, the ``bench`` extra); and the bundled example
(examples/make_example.py, K=6). It converts the float16 probabilities with ``segaudit
convert`` (library call) to each encoding (top-k with the default tail: 8x8 blocks up to 64
classes, none above; "even": no tail, the rest shared evenly; "tail": a tail where the
default has none), scores every store with the same engine and compares each run with the run on the
original float16 .npy:

- size: the store's bytes against the float16 store (same chunks, same zstd);
- Spearman rank correlation of the image scores;
- flagged-pixel IoU: |A and B| / |A or B| over every pixel;
- top-50: the share of the 50 most suspect images both rankings have.

    python benchmarks/compact.py                 # both datasets, about 2 minutes
    python benchmarks/compact.py --images 40     # smaller
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.stats import spearmanr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synth import generate  # noqa: E402

from segaudit.commands.convert import ConvertRequest, convert, tree_bytes  # noqa: E402
from segaudit.core.audit import AuditOptions, AuditResult, run_audit  # noqa: E402
from segaudit.core.pixel import PixelDigest  # noqa: E402
from segaudit.execute import open_executor  # noqa: E402
from segaudit.io.inputs import InputSpec, open_inputs  # noqa: E402

MB = 2**20
TOP = 50


@dataclass(frozen=True)
class Case:
    """One dataset: classes, images, size, and the encodings to try on it."""

    name: str
    classes: int
    images: int
    height: int
    width: int
    # (name, top_k, dtype, tail stride: None the default for K, 0 none)
    encodings: tuple[tuple[str, int | None, str, int | None], ...]


@dataclass(frozen=True)
class Row:
    dataset: str
    classes: int
    encoding: str
    megabytes: float
    ratio: float
    spearman: float
    iou: float
    top: float
    seconds: float


def _audit(masks: Path, probs: Path) -> tuple[AuditResult, NDArray[np.bool_], float]:
    """Score with the engine; every image's flagged mask, packed in one array."""
    dataset = open_inputs(InputSpec(labels=masks, probs=probs)).dataset
    flags: dict[int, NDArray[np.bool_]] = {}

    def keep(index: int, image_id: str, digest: PixelDigest, flagged: NDArray[np.bool_]) -> None:
        flags[index] = np.packbits(flagged)

    started = time.perf_counter()
    with open_executor(None, None) as executor:
        result = run_audit(dataset, AuditOptions(), executor=executor, sinks=[keep])
    seconds = time.perf_counter() - started
    packed = np.stack([flags[i] for i in range(len(dataset.ids))])
    return result, packed, seconds


def _compare(
    base: tuple[AuditResult, NDArray[np.bool_]], other: tuple[AuditResult, NDArray[np.bool_]]
) -> tuple[float, float, float]:
    (a, fa), (b, fb) = base, other
    sa = np.array([r.label_quality for r in a.images])
    sb = np.array([r.label_quality for r in b.images])
    both = ~(np.isnan(sa) | np.isnan(sb))
    rho = float(spearmanr(sa[both], sb[both]).statistic)
    union = int(np.unpackbits(fa | fb).sum())
    iou = int(np.unpackbits(fa & fb).sum()) / union if union else 1.0
    top = min(TOP, len(a.images))
    ta = {r.index for r in a.ranking()[:top]}
    tb = {r.index for r in b.ranking()[:top]}
    return rho, iou, len(ta & tb) / top


def _example(root: Path, images: int) -> tuple[Path, Path]:
    """The bundled example dataset: (masks, probs.npy)."""
    path = HERE.parent / "examples" / "make_example.py"
    spec = importlib.util.spec_from_file_location("segaudit_make_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.make_example(root, num_images=images, height=192, width=320)
    return root / "masks", root / "probs.npy"


def _detection(root: Path) -> tuple[Path, Path]:
    """The detection benchmark's noisy masks and out-of-fold probabilities (float16 .npy),
    built and cached under build/detection (about 30 s the first time)."""
    sys.path.insert(0, str(HERE / "detection"))
    from data import PRESETS, load
    from PIL import Image

    bench = load(PRESETS["full"], 2)
    masks = root / "masks"
    masks.mkdir(parents=True)
    for i, mask in enumerate(bench.noisy):
        Image.fromarray(mask).save(masks / f"{i:04d}.png")
    np.save(root / "probs.npy", bench.probs.astype(np.float16))
    return masks, root / "probs.npy"


def run_case(case: Case, root: Path) -> list[Row]:
    """Generate, convert, score and compare one dataset."""
    shutil.rmtree(root, ignore_errors=True)
    if case.name == "example":
        masks, npy = _example(root, case.images)
    elif case.name == "detection":
        masks, npy = _detection(root)
    else:
        data = generate(root, case.images, case.classes, case.height, case.width, seed=1)
        masks, npy = data.masks, data.npy
    full = _audit(masks, npy)
    base = root / "float16.zarr"
    convert(ConvertRequest(npy, base))
    base_bytes = tree_bytes(base)
    rows = []
    for name, top_k, dtype, tail in case.encodings:
        store = root / f"{name}.zarr"
        if name != "float16":
            convert(ConvertRequest(npy, store, top_k=top_k, dtype=dtype, tail_stride=tail))
        else:
            store = base
        result, flags, seconds = _audit(masks, store)
        rho, iou, top = _compare(full[:2], (result, flags))
        size = tree_bytes(store)
        rows.append(
            Row(case.name, case.classes, name, size / MB, base_bytes / size, rho, iou, top, seconds)
        )
    shutil.rmtree(root, ignore_errors=True)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| data | K | encoding | MB | smaller than float16 zarr | Spearman | flagged IoU "
        "| top-50 | score s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.dataset} | {r.classes} | {r.encoding} | {r.megabytes:.1f} | {r.ratio:.1f}x "
            f"| {r.spearman:.4f} | {r.iou:.4f} | {r.top:.2f} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[str]:
    """Issue 12's targets for the compact encodings, on each 19-class-or-more dataset."""
    notes = []
    for r in rows:
        if r.encoding == "top-4 uint8" and r.classes == 19:
            for ok, text in (
                (r.ratio >= 4, f"{r.ratio:.1f}x smaller than float16 (>= 4x)"),
                (r.spearman >= 0.99, f"Spearman {r.spearman:.4f} (>= 0.99)"),
                (r.iou >= 0.95, f"flagged-pixel IoU {r.iou:.4f} (>= 0.95)"),
            ):
                notes.append(f"[{'met' if ok else 'NOT met'}] {r.dataset} K=19 top-4 uint8 {text}")
        if r.encoding == "top-5 uint8" and r.classes == 150:
            ok = r.ratio >= 25
            notes.append(
                f"[{'met' if ok else 'NOT met'}] {r.dataset} K=150 top-5 uint8 {r.ratio:.1f}x "
                "smaller than float16 zarr (>= 25x)"
            )
    return notes


def _has_sklearn() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def cases(images: int) -> list[Case]:
    encodings19 = (
        ("float16", None, "float16", None),
        ("uint8", None, "uint8", None),
        ("top-4 float16", 4, "float16", None),
        ("top-4 uint8", 4, "uint8", None),
        ("top-4 uint8 even", 4, "uint8", 0),
        ("top-8 uint8", 8, "uint8", None),
    )
    encodings150 = (
        ("float16", None, "float16", None),
        ("uint8", None, "uint8", None),
        ("top-5 uint8", 5, "uint8", None),
        ("top-5 uint8 tail", 5, "uint8", 8),
    )
    small = (
        ("float16", None, "float16", None),
        ("uint8", None, "uint8", None),
        ("top-2 uint8", 2, "uint8", None),
        ("top-3 uint8", 3, "uint8", None),
        ("top-3 uint8 even", 3, "uint8", 0),
        ("top-4 uint8", 4, "uint8", None),
    )
    return [
        Case("synthetic", 19, images, 256, 512, encodings19),
        Case("synthetic", 150, max(2, images // 2), 128, 256, encodings150),
        *([Case("detection", 10, 480, 80, 120, small)] if _has_sklearn() else []),
        Case("example", 6, images, 192, 320, small[:5]),
    ]


def run_all(root: Path, images: int) -> str:
    """Every case; the Markdown table and the target lines."""
    rows: list[Row] = []
    for case in cases(images):
        rows += run_case(case, root / f"{case.name}-k{case.classes}")
    skipped = [] if _has_sklearn() else ["(detection benchmark skipped: pip install -e '.[bench]')"]
    return "\n".join([table(rows), *skipped, "", *targets(rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images of the K=19 dataset")
    parser.add_argument("--root", type=Path, default=Path("build/compact"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(run_all(args.root, args.images))
    print(f"\ncompact bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
