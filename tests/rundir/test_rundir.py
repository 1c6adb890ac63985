"""The run folder: written whole or not at all, read back validated, never replacing what
segaudit did not write."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.errors import OutputError, RunFolderError
from segaudit.rundir import RANKING_FILE, SUMMARY_FILE, RunWriter, read_run

GATE = Path(__file__).resolve().parents[2] / "configs" / "gate.yaml"


def invoke(*args: object) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_folder(example_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    root = example_dir.root
    result = invoke(
        "score", "--labels", root / "masks", "--probs", root / "probs.zarr",
        "--classes", root / "classes.yaml", "--out", out, "--top", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(run_folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run_folder, target)
    return target


def test_a_written_run_reads_back(run_folder: Path) -> None:
    run = read_run(run_folder)
    assert len(run.ranking) == run.summary.num_images
    assert [row.rank for row in run.ranking] == list(range(1, len(run.ranking) + 1))
    assert sum(r.flagged_pixels for r in run.ranking) == run.summary.flagged_pixels
    assert set(run.mask_hashes) == {r.image_id for r in run.ranking}
    assert len(run.overlays) == 2
    regions = run.regions()
    assert sum(r.area for r in regions) == run.summary.flagged_pixels  # min area 1


@pytest.mark.parametrize("field", ["flagged_pixels", "valid_pixels"])
def test_a_summary_missing_a_field_is_refused_by_check_and_report(copy: Path, field: str) -> None:
    """Issue 9's reproduction: with the field deleted, check reported "observed 0.0000%" and
    passed a failing run."""
    summary = json.loads((copy / SUMMARY_FILE).read_text())
    del summary[field]
    (copy / SUMMARY_FILE).write_text(json.dumps(summary))
    for command in (("check", copy, "--policy", GATE), ("report", copy)):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert f"summary.json: {field}: missing" in result.output
        assert "Traceback" not in result.output


def _rewrite_cell(path: Path, row: int, column: str, value: str) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[row][column] = value
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8", newline="")


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("rank", "x", "expected a whole number"),
        ("label_quality", "nan", "expected a finite number"),
        ("label_quality", "-1", "expected a number in [0, 1]"),
        ("flagged_pixels", "inf", "expected a whole number"),
    ],
)
def test_a_damaged_ranking_is_refused_by_check_and_report(
    copy: Path, column: str, value: str, problem: str
) -> None:
    _rewrite_cell(copy / RANKING_FILE, 0, column, value)
    for command in (("check", copy, "--policy", GATE), ("report", copy)):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert f"ranking.csv: line 2, {column}: {problem}" in result.output
    with pytest.raises(RunFolderError) as caught:
        read_run(copy)
    assert caught.value.field == f"line 2, {column}"


def test_an_empty_summary_with_a_header_only_ranking_is_refused(copy: Path) -> None:
    (copy / SUMMARY_FILE).write_text("{}")
    lines = (copy / RANKING_FILE).read_text(encoding="utf-8").splitlines()
    (copy / RANKING_FILE).write_text(lines[0] + "\r\n", encoding="utf-8")
    result = invoke("check", copy, "--policy", GATE)
    assert result.exit_code == 2 and "summary.json: format" in result.output


def test_a_folder_with_foreign_files_is_not_replaced(copy: Path) -> None:
    (copy / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"notes\.txt"), RunWriter(copy):
        pass
    assert (copy / "notes.txt").read_text() == "mine"


def test_a_folder_that_is_not_a_run_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mask.png").write_bytes(b"x")
    with (
        pytest.raises(OutputError, match="not a segaudit run folder"),
        RunWriter(tmp_path / "data"),
    ):
        pass
    assert (tmp_path / "data" / "mask.png").read_bytes() == b"x"


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path: Path) -> None:
    first = RunWriter(tmp_path / "run")
    with first, pytest.raises(OutputError, match="another segaudit run"), RunWriter(first.folder):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing committed, nothing left


def test_commit_replaces_the_previous_run_whole(copy: Path) -> None:
    before = set(p.name for p in copy.iterdir())
    with RunWriter(copy) as writer:
        (writer.path(SUMMARY_FILE)).write_text("{}")
        assert set(p.name for p in copy.iterdir()) == before  # the old run until commit
        writer.commit()
    assert sorted(p.name for p in copy.iterdir()) == [".segaudit-run", SUMMARY_FILE]
    assert sorted(p.name for p in copy.parent.iterdir()) == ["run"]
