"""The report page stays small at scale: the tables are embedded as compact JSON and drawn
in pages, so the page grows by well under 100 bytes per image (10 MB at 100,000 images).
The full 100,000-image measure: ``python benchmarks/report_size.py --images 100000``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from segaudit.commands.report import ReportRequest, build_report

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 5000


def _report_size_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "report_size", ROOT / "benchmarks" / "report_size.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_page_bytes_per_image(tmp_path: Path) -> None:
    _report_size_module().make_run(tmp_path / "run", IMAGES)
    small = build_report(ReportRequest(tmp_path / "run", out=tmp_path / "a.html", top=0))
    assert small.images == IMAGES
    _report_size_module().make_run(tmp_path / "run2", 2 * IMAGES)
    large = build_report(ReportRequest(tmp_path / "run2", out=tmp_path / "b.html", top=0))
    per_image = (large.size_bytes - small.size_bytes) / IMAGES
    assert per_image < 100, per_image  # so 100,000 images stay under 10 MB
    assert large.size_bytes + per_image * (100_000 - 2 * IMAGES) < 10e6
