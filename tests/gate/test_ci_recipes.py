"""The CI recipes in examples/ci/ run: their segaudit commands, on the bundled example.

Each recipe is parsed with yaml.safe_load, the ``segaudit ...`` commands it runs are
extracted (GitHub ``run:`` scripts, GitLab ``script:`` items, the pre-commit ``entry``), and
run through the CLI in a workspace laid out the way the recipes expect:

    data/masks/  data/probs.zarr  data/classes.yaml      the bundled example (12 images)
    .segaudit/policy.yaml  .segaudit/known.json  .segaudit/calibration.json

once with a policy the example passes (exit 0) and once with configs/gate.yaml, which its
injected errors fail (exit 1). A recipe whose flags or paths drift from the CLI fails here.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.config.baseline import write_baseline
from segaudit.config.classes import load_classes
from segaudit.config.policy import load_policy

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "examples" / "ci"
GATE_YAML = REPO / "configs" / "gate.yaml"
#: A policy the whole example (errors included) meets: at most half the images score low.
PASSING_POLICY = {
    "version": 1,
    "name": "lenient",
    "rules": {"low_score": {"below": 0.1, "max_share": 0.5}, "skipped": {"max_count": 0}},
}


def _shell_lines(script: str) -> list[str]:
    """Commands of a shell script: backslash continuations joined, comments dropped."""
    joined = script.replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip()]


def github_commands(recipe: Any) -> list[str]:
    return [
        line
        for job in recipe["jobs"].values()
        for step in job["steps"]
        if "run" in step
        for line in _shell_lines(step["run"])
    ]


def gitlab_commands(recipe: Any) -> list[str]:
    return [
        line
        for job in recipe.values()
        if isinstance(job, dict) and "script" in job
        for item in job["script"]
        for line in _shell_lines(item)
    ]


def precommit_commands(recipe: Any) -> list[str]:
    return [" ".join([hook["entry"], *hook.get("args", [])]) for hook in recipe]


EXTRACTORS = {
    "github-actions.yml": github_commands,
    "gitlab-ci.yml": gitlab_commands,
    "pre-commit-hooks.yaml": precommit_commands,
}


def segaudit_commands(name: str) -> list[list[str]]:
    recipe = yaml.safe_load((RECIPES / name).read_text())
    commands = [shlex.split(line) for line in EXTRACTORS[name](recipe)]
    return [c for c in commands if c and c[0] == "segaudit"]


def test_every_recipe_is_covered() -> None:
    assert sorted(p.name for p in RECIPES.iterdir()) == sorted(EXTRACTORS)
    for name in EXTRACTORS:
        assert segaudit_commands(name), f"{name} runs no segaudit command"


@pytest.fixture(scope="module")
def workspace_template(example_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/ = the example; .segaudit/ = an empty baseline and a calibration made on the
    clean images (the trusted set), the way the recipes' comments say to make them."""
    root = tmp_path_factory.mktemp("recipes")
    shutil.copytree(example_dir.root, root / "data")
    trusted = tmp_path_factory.mktemp("trusted")
    (trusted / "masks").mkdir()
    clean = sorted(
        p for p in (root / "data" / "masks").glob("*.png") if p.stem not in example_dir.corrupted
    )
    for mask in clean:
        shutil.copy(mask, trusted / "masks" / mask.name)
    probs = np.load(root / "data" / "probs.npy")
    ids = sorted(p.stem for p in (root / "data" / "masks").glob("*.png"))
    np.save(trusted / "probs.npy", probs[[ids.index(p.stem) for p in clean]])
    (root / ".segaudit").mkdir()
    result = CliRunner().invoke(
        app,
        [
            "calibrate", "--labels", str(trusted / "masks"), "--probs", str(trusted / "probs.npy"),
            "--classes", str(root / "data" / "classes.yaml"),
            "--out", str(root / ".segaudit" / "calibration.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("recipe", sorted(EXTRACTORS))
@pytest.mark.parametrize("outcome", ["pass", "fail"])
def test_recipe_runs_on_the_example(
    recipe: str,
    outcome: str,
    workspace_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = tmp_path / "repo"
    shutil.copytree(workspace_template, workspace)
    policy = workspace / ".segaudit" / "policy.yaml"
    if outcome == "pass":
        policy.write_text(yaml.safe_dump(PASSING_POLICY))
    else:
        shutil.copy(GATE_YAML, policy)
    names = load_classes(workspace / "data" / "classes.yaml").names
    known = workspace / ".segaudit" / "known.json"
    write_baseline([], known, policy=load_policy(policy).name, classes=names, version="test")
    summary = tmp_path / "step-summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    if recipe != "github-actions.yml":
        env = {"GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    monkeypatch.chdir(workspace)

    commands = segaudit_commands(recipe)
    for i, command in enumerate(commands):
        result = CliRunner().invoke(app, command[1:], env=env)
        assert "Traceback" not in result.output
        last = i == len(commands) - 1
        expected = 0 if outcome == "pass" or not last else 1
        assert result.exit_code == expected, (recipe, command, result.output)

    assert "gate passed" in result.output if outcome == "pass" else "gate FAILED" in result.output
    assert (workspace / "build" / "segaudit-run" / "ranking.csv").is_file()
    if recipe == "github-actions.yml":
        assert "segaudit gate" in summary.read_text()
        assert ("::error " in result.output) == (outcome == "fail")
        assert (workspace / "build" / "segaudit-junit.xml").is_file()
