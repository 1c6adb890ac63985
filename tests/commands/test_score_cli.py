"""``segaudit score`` through Typer's runner: outputs, ranking of the injected errors, exit
codes and messages for bad input, atomic outputs, and ``--help`` of every command."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.rundir import RANKING_COLUMNS, RANKING_FILE, SUMMARY_FILE, csv_cell

SUMMARY_KEYS = {
    "segaudit_version",
    "inputs",
    "parameters",
    "num_images",
    "num_classes",
    "class_names",
    "valid_pixels",
    "flagged_pixels",
    "confident_count",
    "cutoff",
    "classes",
    "common_label_issues",
    "skipped",
    "timings",
}


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def score(example: Any, out: Path, *extra: str | Path) -> Any:
    root = example.root
    return run(
        "score",
        "--labels",
        root / "masks",
        "--probs",
        root / "probs.zarr",
        "--out",
        out,
        *extra,
    )


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / RANKING_FILE).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == RANKING_COLUMNS
        return list(reader)


def assert_usage_error(result: Any, *needles: str) -> None:
    """Exit 2, one line saying what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


# ------------------------------------------------------------------------------ outputs


@pytest.fixture(scope="module")
def scored(example_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The bundled example scored once with images, classes and 3 overlays."""
    out = tmp_path_factory.mktemp("run")
    root = example_dir.root
    result = score(
        example_dir,
        out,
        "--images",
        root / "images",
        "--classes",
        root / "classes.yaml",
        "--top",
        "3",
    )
    assert result.exit_code == 0, result.output
    return example_dir, out


def test_ranking_csv_one_row_per_image_most_suspect_first(scored: tuple[Any, Path]) -> None:
    example, out = scored
    rows = read_rows(out)
    assert sorted(r["image_id"] for r in rows) == sorted(
        p.stem for p in (example.root / "masks").glob("*.png")
    )
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    qualities = [float(r["label_quality"]) for r in rows]
    assert qualities == sorted(qualities)
    for row in rows:
        flagged, valid = int(row["flagged_pixels"]), int(row["valid_pixels"])
        assert float(row["flagged_fraction"]) == pytest.approx(flagged / valid, rel=1e-5)
        assert (row["top_given"] == "") == (flagged == 0)


def test_corrupted_images_rank_at_the_top(scored: tuple[Any, Path]) -> None:
    example, out = scored
    corrupted = set(example.corrupted)
    assert corrupted, "the example should inject errors"
    top = [r["image_id"] for r in read_rows(out)][: len(corrupted) + 2]
    assert corrupted <= set(top), (corrupted, top)


def test_summary_json(scored: tuple[Any, Path]) -> None:
    example, out = scored
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert set(summary) >= SUMMARY_KEYS
    rows = read_rows(out)
    assert summary["num_images"] == len(rows)
    assert summary["class_names"] == example.truth["classes"]
    assert summary["flagged_pixels"] == sum(int(r["flagged_pixels"]) for r in rows)
    assert summary["valid_pixels"] == sum(int(r["valid_pixels"]) for r in rows)
    assert summary["confident_count"] > 0
    per_class = summary["classes"]
    assert [c["class"] for c in per_class] == example.truth["classes"]
    assert sum(c["flagged_pixels"] for c in per_class) == summary["flagged_pixels"]
    assert sum(c["labelled_pixels"] for c in per_class) == summary["valid_pixels"]
    assert all(c["threshold"] >= 2e-6 for c in per_class)
    pixels = [p["pixels"] for p in summary["common_label_issues"]]
    assert pixels == sorted(pixels, reverse=True)
    assert summary["parameters"]["temperature"] == 0.1


def test_top_n_overlays(scored: tuple[Any, Path]) -> None:
    _, out = scored
    assert len(list((out / "overlays").glob("*.png"))) == 3


def test_top_zero_writes_no_overlays(example_dir: Any, tmp_path: Path) -> None:
    result = score(example_dir, tmp_path / "run", "--top", "0")
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "run").rglob("*.png"))
    assert (tmp_path / "run" / RANKING_FILE).is_file()


def test_npy_probabilities_give_the_same_ranking(scored: tuple[Any, Path], tmp_path: Path) -> None:
    example, out = scored
    root = example.root
    result = run(
        "score",
        "--labels",
        root / "masks",
        "--probs",
        root / "probs.npy",
        "--out",
        tmp_path,
        "--top",
        "0",
        "--classes",
        root / "classes.yaml",
    )
    assert result.exit_code == 0, result.output
    assert read_rows(tmp_path) == read_rows(out)


# ------------------------------------------------------------------------ bad input


def test_missing_labels_dir(example_dir: Any, tmp_path: Path) -> None:
    root = example_dir.root
    result = run(
        "score", "--labels", tmp_path / "nope", "--probs", root / "probs.zarr", "--out", tmp_path
    )
    assert_usage_error(result, "nope")


def test_missing_probs(example_dir: Any, tmp_path: Path) -> None:
    root = example_dir.root
    missing = tmp_path / "missing.zarr"
    result = run("score", "--labels", root / "masks", "--probs", missing, "--out", tmp_path)
    assert_usage_error(result, "missing.zarr")


def test_missing_npy(example_dir: Any, tmp_path: Path) -> None:
    root = example_dir.root
    missing = tmp_path / "missing.npy"
    result = run("score", "--labels", root / "masks", "--probs", missing, "--out", tmp_path)
    assert_usage_error(result, "missing.npy")


def test_ids_mismatch_names_the_id(example: Any, tmp_path: Path) -> None:
    victim = sorted((example.root / "masks").glob("*.png"))[4]
    victim.unlink()
    result = score(example, tmp_path / "run")
    assert_usage_error(result, victim.stem)
    assert not (tmp_path / "run" / RANKING_FILE).exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_temperature(example_dir: Any, tmp_path: Path, value: str) -> None:
    result = score(example_dir, tmp_path / "run", "--temperature", value)
    assert_usage_error(result, "temperature")
    assert not (tmp_path / "run" / RANKING_FILE).exists()


def test_classes_config_with_wrong_class_count(example_dir: Any, tmp_path: Path) -> None:
    config = tmp_path / "three.yaml"
    config.write_text(
        "version: 1\nclasses:\n"
        "  - {name: a, color: [1, 2, 3]}\n"
        "  - {name: b, color: [4, 5, 6]}\n"
        "  - {name: c, color: [7, 8, 9]}\n"
    )
    result = score(example_dir, tmp_path / "run", "--classes", config)
    assert_usage_error(result, "three.yaml", "3")


def put_bad_label(example: Any, value: int) -> str:
    """Write ``value`` into a few pixels of one clean image's mask; return its id."""
    clean = sorted(p for p in (example.root / "masks").glob("*.png"))[1]
    mask = np.asarray(Image.open(clean)).copy()
    mask[:2, :2] = value
    Image.fromarray(mask).save(clean)
    return clean.stem


def test_label_out_of_range_is_a_skipped_row(example: Any, tmp_path: Path) -> None:
    bad = put_bad_label(example, 7)  # the example has 6 classes
    out = tmp_path / "run"
    result = score(example, out)
    assert result.exit_code == 0, result.output
    rows = {r["image_id"]: r for r in read_rows(out)}
    assert "7" in rows[bad]["skipped"] and rows[bad]["label_quality"] == ""
    assert list(rows)[-1] == bad  # skipped rows come last
    assert all(r["skipped"] == "" for i, r in rows.items() if i != bad)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert [s["image_id"] for s in summary["skipped"]] == [bad]


def test_label_out_of_range_with_strict_exits_2(example: Any, tmp_path: Path) -> None:
    bad = put_bad_label(example, 7)
    result = score(example, tmp_path / "run", "--strict")
    assert_usage_error(result, bad)
    assert not (tmp_path / "run" / RANKING_FILE).exists()


# ----------------------------------------------------------------------- atomic outputs


@pytest.mark.parametrize(("exception", "code"), [(KeyboardInterrupt, 130), (RuntimeError, 3)])
def test_interrupted_ranking_write_leaves_nothing(
    example_dir: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exception: type[BaseException],
    code: int,
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    previous = out / RANKING_FILE
    calls = {"n": 0}
    real = csv_cell

    def failing(text: str) -> str:
        calls["n"] += 1
        if calls["n"] == 40:  # a few rows into the file
            raise exception("stop")
        return real(text)

    monkeypatch.setattr("segaudit.rundir.writer.csv_cell", failing)
    result = score(example_dir, out, "--top", "0")
    assert calls["n"] == 40, "the writer was not reached"
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not previous.exists()
    assert list(out.iterdir()) == []  # the empty folder stays as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging or lock left


def test_interrupted_run_keeps_the_previous_ranking(
    example_dir: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    assert score(example_dir, out, "--top", "0").exit_code == 0
    before = (out / RANKING_FILE).read_bytes()

    def failing(text: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("segaudit.rundir.writer.csv_cell", failing)
    assert score(example_dir, out, "--top", "0").exit_code == 130
    assert (out / RANKING_FILE).read_bytes() == before


# --------------------------------------------------------------------------------- help


def _commands() -> list[tuple[list[str], Any]]:
    """Every command of the app, nested groups included, with the words that reach it.
    (Typer vendors its own click, so this goes by attributes, not click's classes.)"""
    root = typer.main.get_command(app)
    found: list[tuple[list[str], Any]] = [([], root)]
    stack: list[tuple[list[str], Any]] = [([], root)]
    while stack:
        path, command = stack.pop()
        subcommands = getattr(command, "commands", None)
        if isinstance(subcommands, dict):
            for name, sub in subcommands.items():
                found.append(([*path, name], sub))
                stack.append(([*path, name], sub))
    return found


def test_app_has_the_score_command() -> None:
    assert ["score"] in [path for path, _ in _commands()]


@pytest.mark.parametrize(
    ("path", "command"),
    [pytest.param(path, command, id=" ".join(path) or "segaudit") for path, command in _commands()],
)
def test_help_mentions_every_option(path: list[str], command: Any) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            for name in [*param.opts, *param.secondary_opts]:
                assert name in result.output, (path, name)
    if path:
        assert command.help, f"{' '.join(path)} has no help text"


def test_worker_count_does_not_change_the_outputs(example: Any, tmp_path: Path) -> None:
    texts = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        assert score(example, out, "--workers", workers, "--top", "0").exit_code == 0
        texts.append([(out / name).read_text() for name in ("ranking.csv", "regions.csv")])
    assert texts[0] == texts[1]
    assert score(example, tmp_path / "bad", "--workers", "0").exit_code == 2
