"""What the pairing check costs: seconds on a synthetic dataset, as given and mispaired.

    .venv/bin/python benchmarks/pairing_check.py [--images 200 --height 256 --width 512]

Writes the dataset under build/bench-pairing/ once (benchmarks/synth.py), then times
``check_pairing`` on the zarr probabilities (float16, one image per chunk): the check as it
runs at the start of score, and on the same rows reversed (the failure path, which also
tries the reversed and shifted partners).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from synth import generate

from segaudit.errors import PairingError
from segaudit.io.inputs import InputSpec, open_inputs
from segaudit.io.pairing_check import check_pairing


def timed(dataset: object, repeats: int = 3) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            stats = check_pairing(dataset)  # type: ignore[arg-type]
            outcome = f"passed ({stats.wins}/{stats.images}, agreement {stats.own:.0%})"
        except PairingError as error:
            outcome = f"failed: {error.cause}"
        best = min(best, time.perf_counter() - started)
    return best, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    args = parser.parse_args()
    root = Path("build") / f"bench-pairing-{args.images}-{args.height}x{args.width}"
    if not (root / "probs.zarr").exists():
        generate(root, args.images, args.classes, args.height, args.width)
    spec = InputSpec(labels=root / "masks", probs=root / "probs.zarr", pairing_check=False)
    dataset = open_inputs(spec).dataset
    seconds, outcome = timed(dataset)
    print(
        f"{args.images} images {args.height}x{args.width}, K={args.classes}: "
        f"pairing check {seconds:.3f} s, {outcome}"
    )
    dataset.rows = list(np.arange(args.images)[::-1])  # type: ignore[attr-defined]
    seconds, outcome = timed(dataset)
    print(f"same rows reversed: {seconds:.3f} s, {outcome}")


if __name__ == "__main__":
    main()
