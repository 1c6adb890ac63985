"""One validation layer for every file format segaudit reads (configs, policies,
calibrations, baselines, reviews and the run folder's JSON).

A :class:`Schema` is bound to one file; each check takes the key path of the value it looks
at (``classes[3].color``) and, when the value is wrong, raises the file's error class naming
the file, the key path and what was expected. Unknown keys are errors, so a typo never
silently does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segaudit.errors import ConfigError, SegauditError

#: (path, key, problem) -> the exception to raise.
KeyFault = Callable[[Path, str, str], SegauditError]


def config_key_fault(path: Path, key: str, problem: str) -> SegauditError:
    return ConfigError(f"{path}: {key}: {problem}", path=str(path), key=key)


def is_plain_text(text: str) -> bool:
    """No control characters (C0, DEL, C1) and no line or paragraph separators: text that
    is safe in a CSV cell, a terminal line, a file name part and a log."""
    return not any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in text)


@dataclass(frozen=True)
class Schema:
    """Checks for the values of one file."""

    path: Path
    fault: KeyFault = config_key_fault

    def fail(self, key: str, problem: str) -> SegauditError:
        return self.fault(self.path, key, problem)

    def mapping(self, key: str, value: Any, allowed: Collection[str]) -> dict[str, Any]:
        """A mapping whose keys are all in ``allowed``."""
        if not isinstance(value, dict):
            raise self.fail(key or "top level", f"expected a mapping with keys {_list(allowed)}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            prefix = f"{key}." if key else ""
            raise self.fail(prefix + unknown[0], f"unknown key (allowed: {_list(allowed)})")
        return value

    def require(self, key: str, data: dict[str, Any], name: str, why: str = "required") -> Any:
        if name not in data:
            raise self.fail(_join(key, name), why)
        return data[name]

    def integer(
        self, key: str, value: Any, *, low: int | None = None, high: int | None = None
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_shown(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, f"expected an integer in {_range(low, high)}, got {value}")
        return value

    def count(self, key: str, value: Any) -> int:
        """A whole number >= 0."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"expected a whole number >= 0, got {_shown(value)}")
        return value

    def number(
        self, key: str, value: Any, *, low: float = -math.inf, high: float = math.inf
    ) -> float:
        """A finite number in [low, high]; integers are numbers too."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {_shown(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(key, f"expected a finite number, got {value!r}")
        if not low <= number <= high:
            raise self.fail(key, f"expected a number in [{low:g}, {high:g}], got {value!r}")
        return number

    def text(self, key: str, value: Any, *, empty: bool = False, limit: int = 1000) -> str:
        """A one-line string without control characters (it reaches CSV cells, terminals
        and file names)."""
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_shown(value)}")
        if not value and not empty:
            raise self.fail(key, "expected a non-empty string")
        if len(value) > limit:
            raise self.fail(key, f"longer than {limit} characters")
        if not is_plain_text(value):
            raise self.fail(key, f"contains control characters: {value!r}")
        return value

    def string(self, key: str, value: Any, *, empty: bool = True, limit: int = 4096) -> str:
        """Any string (an image id or a path from the user's files may hold any character
        but NUL); its writers quote or escape it."""
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_shown(value)}")
        if (not value and not empty) or len(value) > limit or "\0" in value:
            raise self.fail(key, f"expected a string of 1..{limit} characters without NUL")
        return value

    def sequence(self, key: str, value: Any, *, min_length: int = 0) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {_shown(value)}")
        if len(value) < min_length:
            raise self.fail(key, f"expected at least {min_length} item(s)")
        return value

    def numbers(self, key: str, value: Any, length: int, *, integers: bool = False) -> list[Any]:
        """A list of exactly ``length`` numbers (whole numbers >= 0 with ``integers``)."""
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(key, f"expected a list of {length} numbers")
        check = self.count if integers else self.number
        return [check(f"{key}[{i}]", v) for i, v in enumerate(value)]

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_shown(value)}")
        return value

    def version(self, data: dict[str, Any], expected: int) -> None:
        version = data.get("version")
        if isinstance(version, bool) or version != expected:
            raise self.fail("version", f"expected {expected}, got {_shown(version)}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _list(names: Collection[str]) -> str:
    return ", ".join(sorted(names))


def _range(low: int | None, high: int | None) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def _shown(value: Any) -> str:
    """A value in a message, cut short (it may be a huge list from a hostile file)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
