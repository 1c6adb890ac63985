"""How a dataset's files are named: which files are masks, what their ids are, where an
image's picture is, which key of a per-image ``.npz`` holds the probabilities.

Official dataset trees keep several files per image side by side (Cityscapes writes four
PNGs per image into ``gtFine/<split>/<city>/``) and name pictures differently from masks
(``<id>_leftImg8bit.png``). A :class:`FileNames` says, for one dataset:

- ``masks``: a file-name pattern (``*_gtFine_labelTrainIds.png``); files that do not match
  are not masks. The id of a mask is its path under the mask folder with the pattern's
  literal tail (the text after its last ``*``) removed:
  ``frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png`` ->
  ``frankfurt/frankfurt_000000_000294``.
- ``images``: a template with ``{id}`` (``{id}_leftImg8bit.png``, ``{id}.jpg``); when it
  names no file, ``<id>`` with any image suffix is tried.
- ``probs_key``: the array of a per-image ``.npz`` (default: its only array, or one of the
  usual names).

The values come from the command line or the classes config (command line first).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MASKS = "*.png"
_WILDCARDS = "*?["
#: Suffixes tried for a picture when the template names no file.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def mask_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot select masks, or None when it can."""
    if "/" in pattern or "\\" in pattern:
        return f"{pattern!r} holds a path separator; give a file-name pattern such as '*.png'"
    if "*" not in pattern:
        return f"{pattern!r} has no '*'; the '*' stands for the image id, e.g. '*.png'"
    tail = pattern.rsplit("*", 1)[1]
    if not tail or any(c in tail for c in _WILDCARDS):
        return (
            f"{pattern!r} must end in literal text after its last '*' (such as "
            "'_gtFine_labelTrainIds.png'): that text is removed to give the id"
        )
    return None


def image_pattern_problem(template: str) -> str | None:
    """Why ``template`` cannot name pictures, or None when it can."""
    if template.count("{id}") != 1:
        return (
            f"{template!r} must hold '{{id}}' once, e.g. '{{id}}_leftImg8bit.png' or '{{id}}.jpg'"
        )
    rest = template.replace("{id}", "")
    if "{" in rest or "}" in rest:
        return f"{template!r}: only '{{id}}' may appear in braces"
    return None


@dataclass(frozen=True)
class FileNames:
    """A dataset's file naming (see the module doc); empty fields mean "not given"."""

    masks: str = ""
    images: str = ""
    probs_key: str = ""

    def over(self, other: FileNames | None) -> FileNames:
        """These values, with ``other``'s where these are not given (command line over config)."""
        if other is None:
            return self
        return FileNames(
            self.masks or other.masks,
            self.images or other.images,
            self.probs_key or other.probs_key,
        )

    @property
    def mask_pattern(self) -> str:
        return self.masks or DEFAULT_MASKS

    @property
    def mask_tail(self) -> str:
        """The text after the pattern's last '*': removed from a mask path to give its id."""
        return self.mask_pattern.rsplit("*", 1)[1]

    def mask_id(self, relative: str) -> str | None:
        """The id of the mask at ``relative`` ('/'-separated, under the mask folder), or None
        when that file is not a mask."""
        name = relative.rsplit("/", 1)[-1]
        if not fnmatch.fnmatchcase(name, self.mask_pattern):
            return None
        return relative[: len(relative) - len(self.mask_tail)]

    def image_path(self, folder: Path, image_id: str) -> Path | None:
        """The picture of ``image_id`` in ``folder``: the template's file, else ``<id>`` with
        an image suffix; None when there is none."""
        if self.images:
            candidate = folder / self.images.replace("{id}", image_id)
            if candidate.is_file():
                return candidate
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{image_id}{suffix}"
            if candidate.is_file():
                return candidate
        return None
