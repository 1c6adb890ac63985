"""segaudit's exceptions and the CLI's exit codes.

The library raises; only the CLI turns an exception into an exit code. Each kind of problem
is a class with fields (which file, which key, which image, which value), so code that
needs to know what went wrong asks the type and its fields, never the message text.
Problems with what the user handed over subclass ``ValueError`` as well, so code written
against other libraries' ``except ValueError`` keeps working.
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
    TERMINATED = 143  # SIGTERM, as shells report it (128 + 15)


class SegauditError(Exception):
    """A problem the user can fix: the message says what and where."""


class InputError(SegauditError, ValueError):
    """Something the user handed over (an option, a file, the data) is not acceptable."""


class OptionError(InputError):
    """An argument is out of range or options contradict each other."""


class ConfigError(InputError):
    """A configuration, policy, calibration, baseline or review file is invalid.

    ``path`` and ``key`` (a key path such as ``rules.regions[1].max_area``) are set when
    the problem is at a known place in a known file.
    """

    def __init__(self, message: str, *, path: str = "", key: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.key = key


class DatasetError(InputError):
    """The dataset as a whole cannot be audited (missing files, mismatched ids, shapes)."""


class PairingError(DatasetError):
    """The probabilities do not seem to belong to the masks (order, class offset, layout).

    ``cause`` names the likely cause; ``override`` the flag that accepts the data as it is.
    """

    def __init__(self, message: str, *, cause: str, override: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.override = override


class RunFolderError(InputError):
    """A run folder is missing, damaged or forged: ``path`` is the file, ``field`` what is
    wrong in it ("" when the whole file is)."""

    def __init__(self, path: str, problem: str, *, field: str = "") -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + problem)
        self.path = path
        self.field = field
        self.problem = problem


class OutputError(SegauditError):
    """An output file or folder cannot be written (exists as a file, no permission, disk full,
    another run holds it)."""


class ImageError(InputError):
    """One image cannot be audited (unreadable mask, bad values); other images still can."""

    def __init__(self, image_id: str, reason: str) -> None:
        super().__init__(f"{image_id}: {reason}")
        self.image_id = image_id
        self.reason = reason


class ReadError(ImageError):
    """A file of one image could not be read or decoded (``path``)."""

    def __init__(self, image_id: str, path: str, reason: str) -> None:
        super().__init__(image_id, f"{path}: {reason}")
        self.path = path


class LabelValueError(ImageError):
    """A label value that is neither a class id (0..K-1) nor ignored."""

    def __init__(self, image_id: str, value: int, num_classes: int) -> None:
        super().__init__(
            image_id,
            f"label value {value} is not a class (0..{num_classes - 1}) and not ignored; "
            "add it to the ignore values or remap it",
        )
        self.value = value
        self.num_classes = num_classes


class ShapeMismatchError(ImageError):
    """The mask and the probabilities of one image differ in size (H, W)."""

    def __init__(
        self,
        image_id: str,
        mask_shape: tuple[int, int],
        probs_shape: tuple[int, int],
        hint: str = "",
    ) -> None:
        super().__init__(
            image_id,
            f"mask is {mask_shape[0]}x{mask_shape[1]} but probabilities are "
            f"{probs_shape[0]}x{probs_shape[1]} (H x W){hint}",
        )
        self.mask_shape = mask_shape
        self.probs_shape = probs_shape


class ProbabilityError(ImageError):
    """The predicted probabilities of one image are not valid probabilities."""


class ProbabilitySumError(ProbabilityError):
    """Class probabilities that do not sum to 1 (``worst_sum`` is the actual sum farthest
    from 1 among the pixels checked)."""

    def __init__(self, image_id: str, worst_sum: float) -> None:
        super().__init__(
            image_id,
            f"class probabilities sum to {worst_sum:.3g} at some pixels, not 1; "
            "if these are logits, pass --logits",
        )
        self.worst_sum = worst_sum


class ProbabilitySumWarning(UserWarning):
    """The library audits probabilities that do not sum to 1 as given, and says so."""
