"""The benchmark scripts stay runnable: every one imports (a moved module broke ``make bench``
once), and the compact-encodings table is built end to end on a tiny dataset."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))


@pytest.fixture(autouse=True)
def _on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_script_imports(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"benchmarks/{name}.py says what it measures"


def test_compact_table_on_a_tiny_dataset(tmp_path: Path) -> None:
    compact = importlib.import_module("compact")
    encodings = (
        ("float16", None, "float16", None),
        ("top-4 uint8", 4, "uint8", None),
        ("top-4 uint8 even", 4, "uint8", 0),
    )
    case = compact.Case("synthetic", 19, 3, 64, 128, encodings)
    rows = compact.run_case(case, tmp_path / "tiny")
    assert [r.encoding for r in rows] == [e[0] for e in encodings]
    assert (rows[0].ratio, rows[0].spearman, rows[0].iou, rows[0].top) == (1.0, 1.0, 1.0, 1.0)
    assert rows[1].ratio > 2 and rows[2].ratio > rows[1].ratio  # the tail costs a little
    assert all(0 <= r.iou <= 1 for r in rows)
    notes = compact.targets(rows)
    assert len(notes) == 3 and all(n.startswith(("[met]", "[NOT met]")) for n in notes)
    assert "| synthetic | 19 | top-4 uint8 even |" in compact.table(rows)
    assert not (tmp_path / "tiny").exists()
    sys.modules.pop("compact", None)
