"""The reference: cleanlab 2.9.0's segmentation scores and label issues, as its users run it.

Labels are loaded first as one (N, H, W) uint8 array (not timed); the probabilities are the
.npy opened memory-mapped. Timed from ``import cleanlab`` to the answer: image scores, the
flagged-pixel masks, and the ranking. Prints the seconds and a digest of the answer.

Usage: python reference.py MASK_DIR PROBS.npy
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main(mask_dir: str, npy: str) -> None:
    paths = sorted(Path(mask_dir).glob("*.png"))
    labels = np.stack([np.asarray(Image.open(path)) for path in paths]).astype(np.uint8)
    started = time.perf_counter()
    from cleanlab.segmentation.filter import find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores

    pred_probs = np.load(npy, mmap_mode="r")
    scores, _ = get_label_quality_scores(labels, pred_probs, n_jobs=1, verbose=False)
    issues = find_label_issues(labels, pred_probs, n_jobs=1, verbose=False)
    ranking = np.argsort(scores, kind="stable")
    seconds = time.perf_counter() - started
    print(f"{seconds:.6f} {int(issues.sum())} {int(ranking[0])}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
