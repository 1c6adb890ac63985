"""``segaudit validate-config``: check a classes config or a gate policy, by key path."""

from __future__ import annotations

from pathlib import Path

from segaudit.config.builtin import resolve_classes
from segaudit.config.classes import parse_classes
from segaudit.config.files import read_yaml
from segaudit.config.policy import parse_policy


def validate_config_file(path: Path) -> str:
    """Validate a classes config, or a gate policy (a file with top-level ``rules:``).

    Returns a one-line description of what was found; raises ConfigError naming the key.
    A built-in config name (``cityscapes``) names the shipped file.
    """
    path = resolve_classes(path)
    data = read_yaml(path)
    if "rules" in data:
        parse_policy(path, data)
        return f"{path}: valid gate policy"
    classes = parse_classes(path, data)
    ignore = ", ".join(str(v) for v in sorted(classes.ignore)) or "none"
    remap = f", {len(classes.remap)} remapped values" if classes.remap else ""
    return (
        f"{path}: valid classes config '{classes.name}': {classes.num_classes} classes, "
        f"ignore {ignore}{remap}"
    )


__all__ = ["validate_config_file"]
