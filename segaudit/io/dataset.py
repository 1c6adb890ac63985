"""Pair masks with probabilities by image id and read them a block at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from segaudit.core.dataset import LoadedImage, even_blocks
from segaudit.errors import DatasetError, ImageError
from segaudit.io.masks import mask_ids, read_mask
from segaudit.io.probs import ProbsReader, open_probs

#: How many ids an error message lists before it says "and N more".
LISTED_IDS = 10


def _listed(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:LISTED_IDS])
    more = len(ids) - LISTED_IDS
    return shown + (f" and {more} more" if more > 0 else "")


def read_ids_file(path: Path) -> list[str]:
    """One image id per line; blank lines and '#' comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ids file ({error.strerror})") from None
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@dataclass
class FolderDataset:
    """A folder of PNG masks paired with an (N, K, H, W) probabilities array.

    The probabilities' image order comes from, in this order: an explicit ids list, the
    array's ``image_ids`` attribute, or the sorted mask ids.
    """

    masks: dict[str, Path]
    probs: ProbsReader
    ids: list[str]

    @classmethod
    def open(cls, mask_dir: Path, probs_path: Path, ids_file: Path | None = None) -> FolderDataset:
        masks = mask_ids(mask_dir)
        probs = open_probs(probs_path)
        n = probs.shape[0]
        if ids_file is not None:
            ids, source = read_ids_file(ids_file), str(ids_file)
        elif probs.image_ids is not None:
            ids, source = probs.image_ids, f"{probs.path} (image_ids attribute)"
        else:
            ids, source = sorted(masks), f"sorted mask names in {mask_dir}"
        if len(ids) != n:
            raise DatasetError(
                f"{probs.path}: holds {n} images but {source} lists {len(ids)} ids; "
                "give the probabilities' image order with --ids FILE"
            )
        duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != n else []
        if duplicates:
            raise DatasetError(f"{source}: duplicate image ids: {_listed(duplicates)}")
        missing = [i for i in ids if i not in masks]
        if missing:
            raise DatasetError(
                f"{mask_dir}: no mask for {len(missing)} image(s) in the probabilities: "
                f"{_listed(missing)}"
            )
        extra = sorted(set(masks) - set(ids))
        if extra:
            raise DatasetError(
                f"{mask_dir}: {len(extra)} mask(s) have no probabilities: {_listed(extra)}"
            )
        return cls({i: masks[i] for i in ids}, probs, list(ids))

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]

    @property
    def image_ids(self) -> Sequence[str]:
        return self.ids

    def blocks(self) -> Sequence[range]:
        return even_blocks(len(self.ids), self.probs.block_size)

    def load(self, block: range) -> Iterator[LoadedImage]:
        probs = self.probs.read(block.start, block.stop)
        for offset, index in enumerate(block):
            image_id = self.ids[index]
            try:
                labels = read_mask(image_id, self.masks[image_id])
            except ImageError as error:
                yield LoadedImage(index, image_id, None, None, error)
                continue
            yield LoadedImage(index, image_id, labels, probs[offset])
