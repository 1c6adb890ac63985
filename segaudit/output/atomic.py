"""Write a file so that it either appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from segaudit.errors import OutputError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = _read_umask()


def _cannot_write(path: Path, error: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({error.strerror or error})")


def check_output_folder(folder: Path) -> None:
    """Fail now, before any long work, if ``folder`` could not be created or written;
    create nothing (a failed run leaves no empty folder behind)."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{folder}: cannot be an output folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot write there ({existing} is not writable)")


def output_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) for writing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"{folder}: cannot create the output folder ({error.strerror or error})"
        ) from None
    return folder


def _temp_beside(path: Path, suffix: str) -> tuple[int, str]:
    """A new temporary file next to ``path``, with the permissions a plain new file gets
    (mkstemp's are 0600, which would make every output private)."""
    output_folder(path.parent)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as error:
        raise _cannot_write(path, error) from None
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, temp


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a library that writes by name (e.g. Pillow)."""
    fd, temp = _temp_beside(path, path.suffix)
    os.close(fd)
    try:
        yield Path(temp)
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[str]]:
    """Open a temporary text file beside ``path``; rename it over ``path`` only on success."""
    with atomic_path(path) as temp, temp.open(mode, encoding="utf-8", newline="") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
