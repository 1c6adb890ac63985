"""segaudit's exceptions and the CLI's exit codes.

The library raises; only the CLI turns an exception into an exit code. Errors whose cause
is the input are ``ValueError``s too, so ``except ValueError`` around cleanlab-style code
keeps working.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes shared by every command."""

    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    UNEXPECTED = 3
    INTERRUPTED = 130


class SegauditError(Exception):
    """A problem the user can fix: the message says what and where."""


class OptionError(SegauditError, ValueError):
    """An argument is out of range (a ValueError too, as library users expect)."""


class ConfigError(SegauditError, ValueError):
    """A configuration or policy file is invalid."""


class DatasetError(SegauditError, ValueError):
    """The dataset as a whole cannot be audited (missing files, mismatched ids, shapes)."""


class OutputError(SegauditError):
    """An output file or folder cannot be written (exists as a file, no permission, disk full)."""


class ImageError(SegauditError, ValueError):
    """One image cannot be audited (unreadable mask, bad values); other images still can."""

    def __init__(self, image_id: str, reason: str) -> None:
        super().__init__(f"{image_id}: {reason}")
        self.image_id = image_id
        self.reason = reason


class ProbabilityError(ImageError):
    """The predicted probabilities of one image are not valid probabilities."""


class ProbabilitySumWarning(UserWarning):
    """The library was given class probabilities that do not sum to 1 and audits them as
    given (the CLI refuses them instead and suggests --logits)."""
