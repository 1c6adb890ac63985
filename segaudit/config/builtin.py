"""The dataset configs shipped inside the package (``segaudit/configs/*.yaml``), so that
``--classes cityscapes`` works from an installed wheel without the repository.

The repository's ``configs/`` holds the same files for reading and copying (a test keeps
them identical); ``segaudit configs`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segaudit.errors import ConfigError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class BuiltinConfig:
    """One shipped config: its name (the file stem), file and first comment sentence."""

    name: str
    path: Path
    summary: str


def builtin_configs() -> list[BuiltinConfig]:
    """The shipped classes configs, by name."""
    found = []
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        header = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            header.append(line.lstrip("# ").strip())
        sentence = " ".join(header).split(". ")[0].rstrip(".")
        found.append(BuiltinConfig(path.stem, path, sentence))
    return found


def resolve_classes(value: Path) -> Path:
    """A classes config file: ``value`` when it exists, else the built-in config of that
    name (``cityscapes`` or ``cityscapes.yaml``). A missing path with a folder or a YAML
    suffix stays as it is (reading it then says it is not found)."""
    if value.exists():
        return value
    names = {c.name: c.path for c in builtin_configs()}
    stem = value.name.removesuffix(".yaml").removesuffix(".yml")
    if value.parent == Path(".") and stem in names:
        return names[stem]
    if value.parent == Path(".") and not value.suffix:
        raise ConfigError(
            f"{value}: no such classes config file, and not a built-in name "
            f"(built-in: {', '.join(sorted(names))}; `segaudit configs` lists them)",
            path=str(value),
        )
    return value
