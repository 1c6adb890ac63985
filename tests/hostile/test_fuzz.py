"""Property-based fuzzing (hypothesis): any id survives score -> CSV -> check/report, and
truncated or mutated config, CSV and JSON files give exit 0, 1 or 2, never a traceback,
never a changed user file."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segaudit.rundir import read_run
from segaudit.rundir.format import from_csv_cell
from segaudit.rundir.reader import read_ranking
from tests.hostile.hostile_data import assert_clean_exit, cli, score, tree_digest, write_inputs

POLICY = (
    "version: 1\nname: fuzz\nrules:\n  min_score: 0.2\n"
    "  low_score:\n    below: 0.5\n    max_count: 1\n"
)
CLASSES = (
    "classes:\n  - {name: road, color: [128, 64, 128]}\n  - {name: car, color: [0, 0, 142]}\n"
    "  - {name: sky, color: [70, 130, 180]}\nignore_index: [255]\nremap: {7: 0}\n"
)

#: Characters a Linux file name may hold: anything but '/' and NUL (and no lone surrogates,
#: which are not text; non-UTF-8 names are refused, see test_names.py).
NAME_CHARS = st.characters(exclude_characters="/\x00", exclude_categories=("Cs",))
IDS = st.lists(
    st.text(NAME_CHARS, min_size=1, max_size=30).filter(lambda s: s not in (".", "..")),
    min_size=2,
    max_size=4,
    unique=True,
)
FAST = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _no_workflow_commands(output: str) -> None:
    for line in output.splitlines():
        assert not line.lstrip().startswith("::"), line


@pytest.mark.slow
@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=IDS)
def test_any_id_round_trips_through_score_check_and_report(ids: list[str]) -> None:
    if len({(i + ".png").encode() for i in ids}) < len(ids) or any(
        len(i.encode()) > 200 for i in ids
    ):
        return  # the file system cannot hold these names
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        inputs = write_inputs(root / "data", ids)
        before = tree_digest(root / "data")
        out = root / "run"
        result = score(inputs, out, "--top", "2")
        assert_clean_exit(result, 0)
        _no_workflow_commands(result.output)
        with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
            cells = [row["image_id"] for row in csv.DictReader(handle)]
        assert sorted(from_csv_cell(c) for c in cells) == sorted(ids)
        run = read_run(out)
        assert sorted(r.image_id for r in read_ranking(out, run.summary)) == sorted(ids)
        policy = root / "policy.yaml"
        policy.write_text(POLICY)
        for command in (("check", out, "--policy", policy), ("report", out)):
            checked = cli(*command, env={"GITHUB_ACTIONS": ""})
            assert_clean_exit(checked, 0, 1)
            _no_workflow_commands(checked.output)
        assert tree_digest(root / "data") == before


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Truncate, flip, insert or delete bytes somewhere in ``data``."""
    kind = draw(st.sampled_from(["truncate", "replace", "insert", "delete"]))
    at = draw(st.integers(0, max(0, len(data) - 1)))
    if kind == "truncate":
        return data[:at]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 20)) :]
    piece = draw(
        st.one_of(
            st.binary(min_size=1, max_size=8),
            st.sampled_from([b"&a ", b"*a", b"[", b"{", b"-1", b"nan", b"1e999", b'"', b"\n"]),
        )
    )
    if kind == "insert":
        return data[:at] + piece + data[at:]
    return data[:at] + piece + data[at + len(piece) :]


@st.composite
def mutated(draw: st.DrawFn, text: str) -> bytes:
    data = text.encode()
    for _ in range(draw(st.integers(1, 3))):
        data = _mutate(data, draw)
    return data


@FAST
@given(data=mutated(CLASSES))
def test_mutated_classes_config(tmp_path: Path, data: bytes) -> None:
    config = tmp_path / "classes.yaml"
    config.write_bytes(data)
    assert_clean_exit(cli("validate-config", config), 0, 2)
    assert config.read_bytes() == data


@FAST
@given(data=mutated(POLICY))
def test_mutated_policy(tmp_path: Path, data: bytes) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(data)
    assert_clean_exit(cli("validate-config", policy), 0, 2)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-run")
    inputs = write_inputs(root / "data", [f"img_{i}" for i in range(4)])
    assert_clean_exit(score(inputs, root / "run", "--top", "1"), 0)
    (root / "policy.yaml").write_text(POLICY)
    assert_clean_exit(
        cli(
            "check", root / "run", "--policy", root / "policy.yaml",
            "--baseline", root / "baseline.json", "--update-baseline",
        ),
        0, 1,
    )  # fmt: skip
    return root


RUN_FILES = ["ranking.csv", "summary.json", "regions.csv", "masks.json", "overlays/index.json"]


@pytest.mark.slow
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([*RUN_FILES, "baseline.json"]), data=st.data())
def test_mutated_run_files(good_run: Path, name: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        run = root / "run"
        shutil.copytree(good_run / "run", run)
        baseline = root / "baseline.json"
        shutil.copy(good_run / "baseline.json", baseline)
        target = baseline if name == "baseline.json" else run / name
        changed = data.draw(mutated(target.read_text(encoding="utf-8")))
        target.write_bytes(changed)
        policy = good_run / "policy.yaml"
        results = [
            cli("check", run, "--policy", policy, "--baseline", baseline),
            cli("report", run, "--out", root / "page.html"),
        ]
        for result in results:
            assert_clean_exit(result, 0, 1, 2)
        assert target.read_bytes() == changed  # a reader never rewrites what it reads
