"""The report page's size and build time for a synthetic run of N images.

Writes a run folder through segaudit's own writer (no dataset, no scoring: made-up rows
that pass the run-folder reader), then builds report.html::

    python benchmarks/report_size.py --images 100000 --out build/report-size

A third of the images get flagged pixels and 1-4 regions each.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from dataclasses import replace
from pathlib import Path

from segaudit.commands.report import ReportRequest, build_report
from segaudit.rundir import ClassRow, IssueRow, RankingRow, RegionRow, RunSummary, RunWriter
from segaudit.rundir.writer import RegionSpill

NAMES = ("road", "sidewalk", "building", "sky", "car", "person")
COLORS = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (70, 130, 180), (0, 0, 142), (220, 20, 60))
VALID = 96 * 160


def make_run(folder: Path, images: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows, regions = [], []
    for i in range(images):
        image_id = f"city_{i // 1000:03d}/frame_{i:07d}"
        flagged = rng.randint(1, 900) if i % 3 == 0 else 0
        parts: list[RegionRow] = []
        left = flagged
        while left > 0:
            area = left if len(parts) == 3 else rng.randint(1, left)
            g, p = rng.sample(range(len(NAMES)), 2)
            parts.append(
                RegionRow(
                    image_id,
                    len(parts) + 1,
                    NAMES[g],
                    NAMES[p],
                    area,
                    0,
                    0,
                    160,
                    96,
                    rng.random() * 0.2,
                    0.5 + rng.random() / 2,
                    rng.random(),
                )
            )
            left -= area
        parts.sort(key=lambda r: -r.area)
        parts = [replace(r, region_id=k) for k, r in enumerate(parts, start=1)]
        regions.append(parts)
        score = rng.random() * (0.3 if flagged else 1.0)
        rows.append((score, image_id, flagged, parts))
    rows.sort(key=lambda r: (r[0], -r[2]))
    ranking = []
    for rank, (score, image_id, flagged, parts) in enumerate(rows, start=1):
        largest = parts[0] if parts else None
        ranking.append(
            RankingRow(
                rank,
                image_id,
                score,
                flagged,
                flagged / VALID,
                largest.given if largest else "",
                largest.predicted if largest else "",
                largest.area if largest else 0,
                len(parts),
                largest.area if largest else 0,
                largest.given if largest else "",
                largest.predicted if largest else "",
                VALID,
                "",
            )
        )
    total = sum(r.flagged_pixels for r in ranking)
    per_class = [0] * len(NAMES)
    for image_regions in regions:
        for r in image_regions:
            per_class[NAMES.index(r.given)] += r.area
    summary = RunSummary(
        run_id=hashlib.sha256(str(images).encode()).hexdigest()[:16],
        segaudit_version="0.1.0",
        inputs={"labels": "", "probs": "", "manifest": "", "ids": "", "images": "", "classes": ""},
        parameters={"top": 0},
        num_images=images,
        class_names=NAMES,
        class_colors=COLORS,
        valid_pixels=VALID * images,
        flagged_pixels=total,
        confident_count=total,
        cutoff=0.1,
        classes=tuple(
            ClassRow(
                n,
                0.5,
                VALID * images // len(NAMES) + (VALID * images % len(NAMES) if k == 0 else 0),
                per_class[k],
            )
            for k, n in enumerate(NAMES)
        ),
        common_label_issues=(IssueRow("road", "sidewalk", total),),
        skipped=(),
    )
    # region_rank: the whole run's regions by region_score, highest first
    ordered = sorted((r.region_score, i, r.region_id) for i, rs in enumerate(regions) for r in rs)
    ranks = {(i, rid): n for n, (_, i, rid) in enumerate(reversed(ordered), start=1)}
    spill = RegionSpill()
    for index, image_regions in enumerate(regions):
        ranked = [replace(r, region_rank=ranks[(index, r.region_id)]) for r in image_regions]
        spill.add(index, ranked)
    with RunWriter(folder) as writer:
        spill.write(writer)
        spill.close()
        writer.write_ranking(ranking)
        writer.write_mask_hashes(
            {r.image_id: hashlib.sha256(r.image_id.encode()).hexdigest() for r in ranking}
        )
        writer.write_summary(summary)
        writer.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("build/report-size"))
    args = parser.parse_args()
    make_run(args.out, args.images)
    started = time.perf_counter()
    outcome = build_report(ReportRequest(args.out))
    seconds = time.perf_counter() - started
    print(
        f"{args.images} images: report.html {outcome.size_bytes / 1e6:.2f} MB "
        f"({outcome.size_bytes / args.images:.0f} bytes/image), built in {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
