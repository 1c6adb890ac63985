"""Reading the YAML and JSON files users and earlier runs hand over, with bounds.

Every file is treated as hostile: only regular files are read (``/dev/zero`` or a FIFO
would never end), at most a size limit of bytes, as UTF-8; YAML without aliases (an alias
bomb expands a few hundred bytes into gigabytes; segaudit's files never need aliases) and
nested at most ``MAX_DEPTH`` deep; JSON no deeper than its decoder's recursion limit. Every
failure is the caller's error class (a :class:`ConfigError` for configs, a
:class:`RunFolderError` for run files) naming the file, within milliseconds.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from segaudit.errors import ConfigError, SegauditError

#: Config files (classes, policy): a 150-class config is about 20 KB.
CONFIG_BYTES = 1 << 20
#: JSON written by segaudit or derived from a run (summary, calibration, baseline, review).
DATA_BYTES = 256 << 20
#: Deepest nesting of lists and mappings accepted; segaudit's own files need about 5.
MAX_DEPTH = 64

#: How a reader reports a problem with a whole file: (path, problem) -> exception.
FileFault = Callable[[Path, str], SegauditError]


def config_fault(path: Path, problem: str) -> SegauditError:
    return ConfigError(f"{path}: {problem}", path=str(path))


def read_bytes(
    path: Path, limit: int, fault: FileFault = config_fault, *, if_missing: str = ""
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise fault(path, "not a regular file")
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise fault(path, "not found" + (f"; {if_missing}" if if_missing else "")) from None
    except IsADirectoryError:
        raise fault(path, "is a folder, expected a file") from None
    except OSError as error:
        raise fault(path, f"cannot read ({error.strerror or error})") from None
    if len(data) > limit:
        raise fault(path, f"larger than {limit:,} bytes; is this the right file?")
    return data


def read_text(
    path: Path, limit: int, fault: FileFault = config_fault, *, if_missing: str = ""
) -> str:
    """A bounded regular file decoded as UTF-8 (a byte-order mark is dropped)."""
    data = read_bytes(path, limit, fault, if_missing=if_missing)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise fault(path, f"not UTF-8 text (byte {error.start})") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and with a nesting limit."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.YAMLError(
                f"line {mark.line + 1}: aliases (*name) are not allowed in segaudit files"
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.YAMLError(f"line {mark.line + 1}: nested more than {MAX_DEPTH} deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml(path: Path, fault: FileFault = config_fault) -> dict[str, Any]:
    """A YAML mapping: safe tags only, no aliases, bounded size and depth."""
    text = read_text(path, CONFIG_BYTES, fault)
    try:
        data = yaml.load(text, Loader=_BoundedLoader)
    except yaml.YAMLError as error:
        raise fault(path, f"not valid YAML ({error})".replace("\n", " ")) from None
    except RecursionError:
        raise fault(path, f"not valid YAML (nested more than {MAX_DEPTH} deep)") from None
    if not isinstance(data, dict):
        raise fault(path, "expected a mapping at the top level")
    return data


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(
    path: Path,
    *,
    if_missing: str,
    fault: FileFault = config_fault,
    limit: int = DATA_BYTES,
) -> dict[str, Any]:
    """A JSON file whose top level is an object: bounded, strict (no NaN/Infinity)."""
    text = read_text(path, limit, fault, if_missing=if_missing)
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as problem:
        raise fault(path, f"not valid JSON ({problem})") from None
    except RecursionError:  # the decoder gives up on deep nesting at once, bounded
        raise fault(path, "not valid JSON (nested too deep)") from None
    if not isinstance(data, dict):
        raise fault(path, "expected a JSON object at the top level")
    return data
