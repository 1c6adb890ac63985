"""Baselines of known findings, and the mask hashes that identify an annotation.

A finding is one thing a rule objects to: an image scoring too low, a region too large in
an image, a class whose threshold fell, the run's flagged fraction. A baseline file lists
the findings a team has accepted. The gate then counts only findings that are new, or worse
than when they were accepted. An image is identified by its id *and* the SHA-256 of its
mask file, so an image that was re-annotated since is judged again.

``segaudit score`` writes ``masks.json`` (id -> SHA-256 of the mask PNG's bytes) into the
run folder, so a run can be checked against a baseline on another machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segaudit.config import read_json_object
from segaudit.errors import ConfigError, DatasetError
from segaudit.output.atomic import atomic_write

MASK_HASHES_FILE = "masks.json"
BASELINE_VERSION = 1


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for piece in iter(lambda: handle.read(1 << 20), b""):
                digest.update(piece)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read to hash it ({error.strerror})") from None
    return digest.hexdigest()


def write_mask_hashes(masks: Mapping[str, Path], path: Path) -> dict[str, str]:
    """Hash every mask file and write ``{"masks": {id: sha256}}`` to ``path``."""
    hashes = {image_id: file_sha256(mask) for image_id, mask in masks.items()}
    with atomic_write(path) as handle:
        json.dump({"algorithm": "sha256", "masks": hashes}, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return hashes


def read_mask_hashes(path: Path) -> dict[str, str]:
    """The id -> hash map a score run wrote."""
    data = read_json_object(path, if_missing="re-run `segaudit score`", error=DatasetError)
    masks = data.get("masks")
    if not isinstance(masks, dict):
        raise DatasetError(f"{path}: 'masks' is not a mapping of id: sha256")
    return {str(k): str(v) for k, v in masks.items()}


@dataclass(frozen=True)
class Finding:
    """One thing a check objects to.

    ``key`` is an image id, a class name, or "" for the whole run; ``value`` is what is
    compared (a score, an area, a fraction); ``mask_sha256`` identifies the annotation for
    image findings.
    """

    check: str
    key: str
    value: float
    text: str
    mask_sha256: str = ""


@dataclass(frozen=True)
class Baseline:
    """Accepted findings, looked up by (check, key)."""

    entries: dict[tuple[str, str], Finding]

    def is_known(self, finding: Finding, higher_is_worse: bool) -> bool:
        """Known: same check, same key, same mask, and not worse than when accepted."""
        known = self.entries.get((finding.check, finding.key))
        if known is None or known.mask_sha256 != finding.mask_sha256:
            return False
        if higher_is_worse:
            return finding.value <= known.value
        return finding.value >= known.value


def write_baseline(findings: Iterable[Finding], path: Path, policy: str, version: str) -> int:
    """Write every current finding as accepted; returns how many."""
    rows = [
        {"check": f.check, "key": f.key, "value": f.value, "mask_sha256": f.mask_sha256}
        for f in sorted(findings, key=lambda f: (f.check, f.key))
    ]
    document = {
        "version": BASELINE_VERSION,
        "segaudit_version": version,
        "policy": policy,
        "findings": rows,
    }
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=1, allow_nan=False)
        handle.write("\n")
    return len(rows)


def _entry(path: Path, i: int, row: Any) -> Finding:
    where = f"{path}: findings[{i}]"
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: expected a mapping")
    try:
        value = row["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("value is not a number")
        return Finding(
            str(row["check"]), str(row["key"]), float(value), "", str(row["mask_sha256"])
        )
    except KeyError as error:
        raise ConfigError(f"{where}: missing key {error.args[0]}") from None
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file written by ``--update-baseline``."""
    data = read_json_object(path, if_missing="create it with --update-baseline")
    if data.get("version") != BASELINE_VERSION:
        raise ConfigError(
            f"{path}: version: expected {BASELINE_VERSION}, got {data.get('version')!r}"
        )
    rows = data.get("findings")
    if not isinstance(rows, list):
        raise ConfigError(f"{path}: findings: expected a list")
    entries = {}
    for i, row in enumerate(rows):
        finding = _entry(path, i, row)
        entries[(finding.check, finding.key)] = finding
    return Baseline(entries)
