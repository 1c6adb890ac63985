"""The layering contract, read from the source: no import cycles (lazy imports included),
and each layer imports only what it may. `make lint` runs this file; see
docs/architecture.md for the layers."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segaudit"

#: Third-party packages each part may import (beyond the standard library and segaudit).
ALLOWED_THIRD_PARTY = {
    "core": {"numpy", "scipy"},
}
#: Packages only one module may import.
OWNERS = {"typer": {"segaudit.cli"}, "rich": {"segaudit.cli"}, "yaml": {"segaudit.config.files"}}
#: segaudit modules a layer must never import (prefixes).
FORBIDDEN = {
    "segaudit.core": ("segaudit.io", "segaudit.config", "segaudit.output", "segaudit.rundir",
                      "segaudit.gate", "segaudit.execute", "segaudit.commands", "segaudit.cli",
                      "segaudit.api"),
    "segaudit.io": ("segaudit.commands", "segaudit.cli", "segaudit.output", "segaudit.gate",
                    "segaudit.rundir"),
    "segaudit.config": ("segaudit.commands", "segaudit.cli", "segaudit.io", "segaudit.gate",
                        "segaudit.rundir"),
    "segaudit.output": ("segaudit.commands", "segaudit.cli", "segaudit.io", "segaudit.gate"),
    "segaudit.rundir": ("segaudit.commands", "segaudit.cli", "segaudit.io", "segaudit.gate",
                        "segaudit.core"),
    "segaudit.gate": ("segaudit.commands", "segaudit.cli", "segaudit.io"),
    "segaudit.execute": ("segaudit.commands", "segaudit.cli", "segaudit.io", "segaudit.output"),
    "segaudit.commands": ("segaudit.cli",),
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module this file imports, at any depth (function-level imports count too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in imports(path) if t in modules and t != name}
        edges[name] = targets
    return edges


def third_party(path: Path) -> set[str]:
    roots = {i.split(".")[0] for i in imports(path)}
    return {r for r in roots if r and r != "segaudit" and r not in sys.stdlib_module_names}


def test_no_import_cycles() -> None:
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=module_name)
def test_layer_imports(path: Path) -> None:
    name = module_name(path)
    for prefix, banned in FORBIDDEN.items():
        if name == prefix or name.startswith(prefix + "."):
            bad = sorted(t for t in imports(path) if t.startswith(banned))
            assert bad == [], f"{name} may not import {bad}"
    for package, owners in OWNERS.items():
        if package in third_party(path):
            assert name in owners, f"only {sorted(owners)} may import {package}, not {name}"
    for part, allowed in ALLOWED_THIRD_PARTY.items():
        if name.startswith(f"segaudit.{part}"):
            extra = third_party(path) - allowed
            assert not extra, f"{name} imports {sorted(extra)}; segaudit.{part} may use {allowed}"
