"""Every file segaudit reads is parsed with bounds: exit 2 naming the file, within seconds,
for each malformed input of the issue; never exit 3, never a hang."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segaudit.errors import ImageError
from segaudit.io.manifest import read_manifest
from tests.hostile.hostile_data import assert_clean_exit, cli, score, tree_digest, write_inputs

SECONDS = 10  # "within seconds": generous for a loaded CI machine

BILLION_LAUGHS = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
classes: *i
rules: *i
"""


def _timed(*args: Any) -> Any:
    started = time.monotonic()
    result = cli(*args)
    assert time.monotonic() - started < SECONDS, "took too long: unbounded parsing?"
    return result


def _config_commands(tmp_path: Path, config: Path) -> list[tuple[Any, ...]]:
    """Every command that reads a YAML file, given that file."""
    inputs = write_inputs(tmp_path / "data", ["a", "b", "c"])
    run = tmp_path / "run"
    assert_clean_exit(score(inputs, run), 0)
    base = ("--labels", inputs.masks, "--probs", inputs.probs)
    return [
        ("validate-config", config),
        ("score", *base, "--out", tmp_path / "r2", "--classes", config),
        ("score", *base, "--out", tmp_path / "r3", "--policy", config),
        ("check", run, "--policy", config),
        ("inspect", *base, "--classes", config),
    ]


YAML_CASES = {
    "alias bomb": BILLION_LAUGHS.encode(),
    "not UTF-8": b"classes:\n  - road\n  - \xff\xfe\n",
    "nested 100,000 deep": b"classes: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "nested mappings": b"classes:\n" + b"".join(b" " * i + b"a:\n" for i in range(1, 3000)),
    "empty": b"",
    "truncated": b"classes:\n  - {name: road, color: [1, 2",
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_malformed_yaml_exits_2_naming_the_file(tmp_path: Path, case: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(YAML_CASES[case])
    for command in _config_commands(tmp_path, config):
        result = _timed(*command)
        assert_clean_exit(result, 2)
        assert "config.yaml" in result.output, (command, result.output)


@pytest.mark.parametrize("option", ["--policy", "--classes"])
def test_dev_zero_and_a_fifo_do_not_hang(tmp_path: Path, option: str) -> None:
    inputs = write_inputs(tmp_path / "data", ["a", "b"])
    base = ("score", "--labels", inputs.masks, "--probs", inputs.probs, "--out", tmp_path / "r")
    result = _timed(*base, option, "/dev/zero")
    assert_clean_exit(result, 2)
    assert "/dev/zero" in result.output
    assert_clean_exit(_timed("validate-config", "/dev/zero"), 2)


def test_json_nested_100000_deep(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", ["a", "b"])
    run = tmp_path / "run"
    assert_clean_exit(score(inputs, run), 0)
    deep = "[" * 100_000 + "]" * 100_000
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nrules:\n  min_score: 0.0\n")
    originals = {name: (run / name).read_bytes() for name in ("summary.json", "masks.json")}
    for name, text in (
        ("baseline.json", deep),
        ("baseline.json", '{"a": ' + deep + "}"),
        ("summary.json", '{"a": ' + deep + "}"),
        ("masks.json", deep),
    ):
        target = tmp_path / name if name == "baseline.json" else run / name
        for original, data in originals.items():
            (run / original).write_bytes(data)
        target.write_text(text)
        if name == "baseline.json":
            result = _timed("check", run, "--policy", policy, "--baseline", target)
        else:
            result = _timed("check", run, "--policy", policy)
        assert_clean_exit(result, 2)
        assert name in result.output
    calibration = tmp_path / "calibration.json"
    calibration.write_text(deep)
    result = _timed(
        "score", "--labels", inputs.masks, "--probs", inputs.probs, "--out", tmp_path / "r2",
        "--calibration", calibration,
    )  # fmt: skip
    assert_clean_exit(result, 2)
    assert "calibration.json" in result.output


def test_zero_byte_npy(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "data", ["a", "b"])
    inputs.probs.write_bytes(b"")
    result = score(inputs, tmp_path / "run")
    assert_clean_exit(result, 2)
    assert "probs.npy" in result.output
    # one image's own file empty: that image is skipped with the reason, the other scored
    folder = tmp_path / "per-image"
    folder.mkdir()
    rng = np.random.default_rng(0)
    good = rng.random((3, 8, 8)).astype(np.float32)
    np.save(folder / "a.npy", good / good.sum(axis=0))
    (folder / "b.npy").write_bytes(b"")
    out = tmp_path / "run2"
    result = cli("score", "--labels", inputs.masks, "--probs", folder, "--out", out)
    assert_clean_exit(result, 0, 2)
    if result.exit_code == 0:
        summary = json.loads((out / "summary.json").read_text())
        assert [s["image_id"] for s in summary["skipped"]] == ["b"]


@pytest.mark.parametrize("cell", ["²", "١", "1²", "+1", "-1", "1.0", "0x1", "1_0"])
def test_manifest_cell_that_is_not_a_plain_row_number(tmp_path: Path, cell: str) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"image_id,mask,probs\na,a.png,{cell}\n", encoding="utf-8")
    rows = read_manifest(manifest)  # never int() of a non-ASCII digit
    assert rows[0].probs_index is None  # not a row number: a path, that later must exist
    inputs = write_inputs(tmp_path / "data", ["a"])
    (tmp_path / "a.png").write_bytes((inputs.masks / "a.png").read_bytes())
    result = cli(
        "score", "--manifest", manifest, "--probs", inputs.probs, "--out", tmp_path / "run"
    )
    assert_clean_exit(result, 2)
    assert "manifest.csv" in result.output


@pytest.mark.parametrize("factor", ["9", "100000", str(2**40)])
def test_downsample_larger_than_the_image(tmp_path: Path, factor: str) -> None:
    inputs = write_inputs(tmp_path / "data", ["a", "b"])  # 8 x 8 images
    before = tree_digest(tmp_path)
    started = time.monotonic()
    result = score(inputs, tmp_path / "run", "--downsample", factor)
    assert time.monotonic() - started < SECONDS
    assert_clean_exit(result, 2)
    assert "downsample" in result.output and "8x8" in result.output
    assert tree_digest(tmp_path) == before


def test_downsample_check_happens_before_allocating() -> None:
    from segaudit.io.transforms import ImageTransform

    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (3, 4, 4), (0, 0, 0))
    with pytest.raises(ImageError, match="downsample 100000 is larger than the image"):
        ImageTransform(downsample=100_000).apply("x", np.zeros((4, 4), np.uint8), huge, {255})
