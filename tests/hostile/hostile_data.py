"""Small datasets for the hostile tests, written by code under tmp_path (nothing cached).

Names may hold any character a Linux file name can (everything but '/' and NUL): the
ids are paired with rows of a stacked .npy by sorted mask name, as segaudit does.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app

REPO = Path(__file__).resolve().parents[2]
K = 3
SIZE = 8


@dataclass(frozen=True)
class Inputs:
    """A dataset on disk: its masks folder and probabilities file."""

    masks: Path
    probs: Path
    ids: list[str]


def write_inputs(
    root: Path, ids: list[str], *, seed: int = 0, k: int = K, size: int = SIZE
) -> Inputs:
    """Masks (PNG) named ``<id>.png`` and probs.npy rows in sorted-id order, with a few
    labels flipped so that some pixels are flagged."""
    rng = np.random.default_rng(seed)
    masks = root / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    ordered = sorted(ids)
    true = rng.integers(0, k, (len(ordered), size, size))
    logits = rng.normal(size=(len(ordered), k, size, size))
    np.put_along_axis(logits, true[:, None], np.take_along_axis(logits, true[:, None], 1) + 3, 1)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.where(rng.random(true.shape) < 0.15, (true + 1) % k, true).astype(np.uint8)
    for image_id, mask in zip(ordered, labels, strict=True):
        Image.fromarray(mask).save(masks / f"{image_id}.png")
    path = root / "probs.npy"
    np.save(path, probs.astype(np.float32))
    return Inputs(masks, path, ordered)


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Run the CLI in-process; the result has exit_code, output (stdout+stderr). score runs
    without the pairing check: these probabilities are random, unrelated to the masks."""
    if args and args[0] == "score":
        args = (*args, "--no-pairing-check")
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})


def score(inputs: Inputs, out: Path, *extra: str | Path) -> Any:
    return cli("score", "--labels", inputs.masks, "--probs", inputs.probs, "--out", out, *extra)


def assert_clean_exit(result: Any, *codes: int) -> None:
    """An expected exit code and no traceback (exit 3 would be an internal error)."""
    assert result.exit_code in codes, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) by relative path: its sha256."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def read_ranking(out: Path) -> list[dict[str, str]]:
    with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def segaudit_command() -> list[str]:
    return [sys.executable, "-m", "segaudit"]


def run_subprocess(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*segaudit_command(), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
    )
