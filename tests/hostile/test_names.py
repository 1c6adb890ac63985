"""Untrusted names are data: every id reaches ranking.csv and back unchanged, never starts
a line of terminal output (GitHub Actions runs lines starting with ``::``), never breaks a
file name, and a name that cannot be written faithfully is refused up front."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from segaudit.rundir import read_run
from segaudit.rundir.reader import read_ranking as segaudit_ranking
from tests.hostile.hostile_data import (
    assert_clean_exit,
    cli,
    read_ranking,
    score,
    tree_digest,
    write_inputs,
)

CONTROL = [chr(c) for c in (*range(1, 32), 127, 0x85, 0x2028, 0x2029)]
#: ids that spreadsheets would evaluate as formulas
FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "'quoted", "\tTab", '=HYPERLINK("x")']

POLICY = "version: 1\nrules:\n  low_score:\n    below: 1.0\n    max_count: 0\n"


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _unquoted(cell: str) -> str:
    return cell[1:] if cell[:1] == "'" and cell[1:2] in "=+-@\t\r'" else cell


def _lines(output: str) -> list[str]:
    """Lines as any CI log reader splits them (every Unicode line break)."""
    return output.splitlines()


def test_every_control_character_round_trips(tmp_path: Path) -> None:
    ids = [f"a{c}b" for c in CONTROL] + ["plain", "\r\nstarts", "ends\r"]
    inputs = write_inputs(tmp_path / "data", ids)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out, "--top", "3"), 0)
    # Python's csv module (what a user would use) reads every id back
    with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        read = [row["image_id"] for row in csv.DictReader(handle)]
    # ... with a ' before a leading tab or CR (docs/guide/report.md: spreadsheet safety)
    assert sorted(_unquoted(cell) for cell in read) == sorted(inputs.ids)
    # and segaudit's own validating reader too
    run = read_run(out)
    assert sorted(row.image_id for row in segaudit_ranking(out, run.summary)) == sorted(ids)
    for command in (("report", out), ("check", out, "--policy", _policy(tmp_path))):
        result = cli(*command)
        assert_clean_exit(result, 0, 1)


@pytest.mark.parametrize("github", [False, True])
def test_no_output_line_is_a_workflow_command(tmp_path: Path, github: bool) -> None:
    ids = ["x\n::add-mask::secret", "y\r::set-output name=a::b", "z\u2028::warning::w", "ok"]
    inputs = write_inputs(tmp_path / "data", ids)
    out = tmp_path / "run"
    env = {"GITHUB_ACTIONS": "true"} if github else {"GITHUB_ACTIONS": ""}
    results = [
        score(inputs, out),
        cli("check", out, "--policy", _policy(tmp_path), env=env),
        cli("report", out),
        cli("inspect", "--labels", inputs.masks, "--probs", inputs.probs),
    ]
    for result in results:
        assert_clean_exit(result, 0, 1)
        for line in _lines(result.output):
            if github and line.startswith("::error title=segaudit"):
                continue  # segaudit's own annotation, the id escaped inside it
            assert not line.lstrip().startswith("::"), line


def test_a_232_character_id(tmp_path: Path) -> None:
    long_id = "L" * 232
    inputs = write_inputs(tmp_path / "data", [long_id, "short"])
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out, "--top", "2"), 0)
    assert {row["image_id"] for row in read_ranking(out)} == {long_id, "short"}
    overlays = list((out / "overlays").glob("*.png"))
    assert len(overlays) == 2 and all(len(p.name) < 100 for p in overlays)
    assert_clean_exit(cli("report", out), 0)


def test_non_utf8_file_name_is_refused_up_front(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", ["good", "bad"])
    bad = os.fsencode(inputs.masks) + b"/bad\xff.png"
    os.rename(os.fsencode(inputs.masks / "bad.png"), bad)
    before = tree_digest(tmp_path)
    result = score(inputs, tmp_path / "run")
    assert_clean_exit(result, 2)
    assert "bad\\xff.png" in result.output and "UTF-8" in result.output
    assert not (tmp_path / "run").exists()
    assert tree_digest(tmp_path) == before


def test_non_utf8_probability_file_name_is_refused(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", ["good"])
    folder = tmp_path / "probs"
    folder.mkdir()
    probs = np.load(inputs.probs)
    np.save(folder / "good.npy", probs[0])
    with open(os.fsencode(folder) + b"/\xfe.npy", "wb") as handle:
        np.save(handle, probs[0])
    result = cli("score", "--labels", inputs.masks, "--probs", folder, "--out", tmp_path / "r")
    assert_clean_exit(result, 2)
    assert "\\xfe.npy" in result.output


def test_class_name_with_a_newline_is_refused_by_validate_config(tmp_path: Path) -> None:
    config = tmp_path / "classes.yaml"
    config.write_text('classes:\n  - "road"\n  - "car\\n::add-mask::x"\n  - "sky"\n')
    result = cli("validate-config", config)
    assert_clean_exit(result, 2)
    assert "classes" in result.output
    inputs = write_inputs(tmp_path / "data", ["a", "b"])
    result = score(inputs, tmp_path / "run", "--classes", config)
    assert_clean_exit(result, 2)


def test_spreadsheet_formulas_are_written_as_text_and_read_back(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", FORMULAS)
    out = tmp_path / "run"
    assert_clean_exit(score(inputs, out), 0)
    with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        cells = [row["image_id"] for row in csv.DictReader(handle)]
    assert all(cell[:1] not in ("=", "+", "-", "@", "\t") for cell in cells)  # never a formula
    assert sorted(_unquoted(cell) for cell in cells) == sorted(FORMULAS)
    run = read_run(out)
    assert sorted(row.image_id for row in segaudit_ranking(out, run.summary)) == sorted(FORMULAS)
    with (out / "regions.csv").open(encoding="utf-8", newline="") as handle:
        regions = [row["image_id"] for row in csv.DictReader(handle)]
    assert all(cell[:1] not in ("=", "+", "-", "@", "\t") for cell in regions)
