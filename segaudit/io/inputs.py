"""From what the user handed over to a dataset the engine can read: ``InputSpec -> Inputs``.

Pairs masks with probabilities (by image id, or by a manifest), checks everything that
concerns the dataset as a whole (ids, the number of classes, the classes config) and then
reads a few images the way the audit will: when every one fails, the problem is the
dataset's, reported at once as one :class:`DatasetError`. Problems of single images
surface later as skipped rows. ``score``, ``calibrate`` and ``inspect`` all open their
inputs here, so they accept and refuse the same data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from segaudit.config.builtin import resolve_classes
from segaudit.config.classes import ClassesConfig, default_classes, load_classes
from segaudit.config.naming import FileNames
from segaudit.errors import DatasetError, ImageError
from segaudit.io.manifest import read_manifest
from segaudit.io.masks import MaskDecoder, mask_ids, utf8_id
from segaudit.io.paired import FileDataset, PairedDataset, StackedDataset
from segaudit.io.probfiles import FileProbs, is_probs_folder, load_probs_file
from segaudit.io.probs import ProbsReader, is_url
from segaudit.io.sources import open_probs
from segaudit.io.store import StoreProbs
from segaudit.io.transforms import ImageTransform, Layout, Resize, class_axis

if TYPE_CHECKING:
    from segaudit.io.pairing_check import PairingStats

#: How many ids an error message lists before it says "and N more".
LISTED_IDS = 10
#: An ids file is text, one id a line: 64 MiB is millions of ids.
IDS_FILE_BYTES = 64 << 20


@dataclass(frozen=True)
class InputSpec:
    """Where the data is and how to read it: the input options of score, calibrate, inspect."""

    labels: Path | None = None
    probs: Path | str | None = None  # str: an fsspec URL
    manifest: Path | None = None  # CSV pairing image_id, mask, probs (row or file), image
    ids: Path | None = None
    classes: Path | None = None
    images: Path | None = None  # RGB pictures, only drawn under overlays
    layout: Layout = Layout.NCHW
    logits: bool = False
    resize: Resize | None = None
    downsample: int = 1
    ignore: frozenset[int] | None = None  # None: the classes config's, else {255}
    names: FileNames = field(default_factory=FileNames)  # patterns given on the command line
    pairing_check: bool = True  # check that the probabilities belong to the masks

    @property
    def transform(self) -> ImageTransform:
        return ImageTransform(self.layout, self.logits, self.resize, self.downsample)

    def provenance(self) -> dict[str, str]:
        """The input paths, as summary.json records them."""
        return {
            "labels": str(self.labels or ""),
            "probs": str(self.probs or ""),
            "manifest": str(self.manifest or ""),
            "ids": str(self.ids or ""),
            "images": str(self.images or ""),
            "classes": str(self.classes or ""),
            "mask_pattern": self.names.masks,
            "image_pattern": self.names.images,
            "probs_key": self.names.probs_key,
        }


@dataclass
class Inputs:
    """The paired dataset and the classes to report with."""

    dataset: PairedDataset
    classes: ClassesConfig
    spec: InputSpec = field(default_factory=InputSpec)
    pairing: PairingStats | None = None  # what the pairing check measured


def listed(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) if not i.isprintable() else i for i in ids[:LISTED_IDS])
    more = len(ids) - LISTED_IDS
    return shown + (f" and {more} more" if more > 0 else "")


def read_ids_file(path: Path) -> list[str]:
    """One image id per line; blank lines and '#' comments are skipped."""
    from segaudit.config.files import read_text

    def fault(where: Path, problem: str) -> DatasetError:
        return DatasetError(f"{where}: ids file {problem}")

    text = read_text(path, IDS_FILE_BYTES, fault)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _check_unique(ids: Sequence[str], source: str) -> None:
    for image_id in ids:
        utf8_id(image_id, source)
    counts = Counter(ids)
    duplicates = sorted(i for i, count in counts.items() if count > 1)
    if duplicates:
        raise DatasetError(f"{source}: duplicate image ids: {listed(duplicates)}")


def _suffix_hint(missing: Sequence[str], have: Iterable[str]) -> str:
    """When mask ids are the wanted ids plus a suffix (Cityscapes' ``_gtFine_labelIds``),
    the mask pattern to pass."""
    wanted = missing[0] + "_"
    suffixes = sorted({h[len(missing[0]) :] for h in have if h.startswith(wanted)})
    if not suffixes:
        return ""
    shown = ", ".join(f"'*{s}.png'" for s in suffixes[:4])
    return (
        f"; masks are named <id>{suffixes[0]}.png and the like: pass --mask-pattern with one "
        f"of {shown}, or the dataset's classes config (segaudit configs)"
    )


def _check_pairing(ids: Sequence[str], found: Iterable[str], where: str, what: str) -> None:
    have = set(found)
    missing = [i for i in ids if i not in have]
    if missing:
        raise DatasetError(
            f"{where}: no {what} for {len(missing)} image(s): {listed(missing)}"
            + _suffix_hint(missing, have)
        )
    extra = sorted(have - set(ids))
    if extra:
        raise DatasetError(
            f"{where}: {len(extra)} {what}(s) have no partner: {listed(extra)}; "
            "remove them or list the ids to use with --ids / --manifest"
        )


def _file_classes(
    files: list[Path], ids: list[str], layout: Layout, source: str, key: str = ""
) -> int:
    """K from the first per-image file (of three tried) that has three dimensions."""
    shapes = []
    for index in sorted({0, len(ids) // 2, len(ids) - 1}):
        try:
            shape = load_probs_file(ids[index], files[index], key).shape
        except ImageError as error:
            shapes.append(error.reason)
            continue
        if len(shape) == 3:
            return int(shape[class_axis(layout, 3)])
        shapes.append(f"{files[index].name} {shape}")
    raise DatasetError(
        f"{source}: no readable per-image file with 3 dimensions among those tried "
        f"({'; '.join(shapes) or 'none readable'}); expected (K, H, W) or, with --layout nhwc, "
        "(H, W, K)"
    )


def _stacked(
    ids: list[str], masks: list[Path], reader: ProbsReader, rows: list[int], layout: Layout
) -> StackedDataset:
    classes = int(reader.shape[class_axis(layout, 4)])
    return StackedDataset(ids, masks, reader.path, classes, reader=reader, rows=rows)


def _files(
    ids: list[str],
    masks: list[Path],
    files: list[Path],
    source: str,
    layout: Layout,
    key: str = "",
) -> FileDataset:
    classes = _file_classes(files, ids, layout, source, key)
    return FileDataset(ids, masks, source, classes, files=files, probs_key=key)


def _listed_ids(spec: InputSpec) -> list[str] | None:
    """The ids of --ids (unique), or None without it."""
    if spec.ids is None:
        return None
    ids = read_ids_file(spec.ids)
    if not ids:
        raise DatasetError(f"{spec.ids}: ids file lists no image id")
    _check_unique(ids, str(spec.ids))
    return ids


def _require(ids: Sequence[str], found: Iterable[str], where: str, what: str, source: str) -> None:
    """Every listed id has its file (extra files are not listed, so not audited)."""
    have = set(found)
    missing = [i for i in ids if i not in have]
    if missing:
        raise DatasetError(
            f"{where}: no {what} for {len(missing)} id(s) listed in {source}: {listed(missing)}"
        )


def _pair_folder(spec: InputSpec, names: FileNames) -> PairedDataset:
    if spec.labels is None or spec.probs is None:
        raise DatasetError("give --labels and --probs, or a --manifest")
    masks = mask_ids(spec.labels, names)
    layout = spec.layout
    chosen = _listed_ids(spec)
    if not is_url(spec.probs) and is_probs_folder(Path(spec.probs)):
        probs = FileProbs.open(Path(spec.probs))
        if chosen is not None:  # --ids selects and orders; unlisted files are ignored
            ids = chosen
            _require(ids, masks.keys(), str(spec.labels), "mask", str(spec.ids))
            _require(ids, probs.files.keys(), probs.path, "probabilities file", str(spec.ids))
        else:
            ids = sorted(masks)
            unpaired = sorted(set(probs.files) - set(masks))
            if unpaired:
                raise DatasetError(
                    f"{probs.path}: {len(unpaired)} probabilities file(s) have no mask in "
                    f"{spec.labels}: {listed(unpaired)}"
                )
            unpaired = [i for i in ids if i not in probs.files]
            if unpaired:
                raise DatasetError(
                    f"{spec.labels}: {len(unpaired)} mask(s) have no probabilities file in "
                    f"{probs.path}: {listed(unpaired)}"
                )
        files = [probs.files[i] for i in ids]
        return _files(ids, [masks[i] for i in ids], files, probs.path, layout, names.probs_key)
    reader = open_probs(spec.probs)
    n = reader.shape[0]
    if chosen is not None and reader.image_ids is not None:
        # the array names its rows: --ids selects and orders them by id
        rows_of = {image_id: row for row, image_id in enumerate(reader.image_ids)}
        _check_unique(reader.image_ids, f"{reader.path} (image_ids attribute)")
        _require(chosen, rows_of, reader.path, "probabilities row", str(spec.ids))
        _require(chosen, masks.keys(), str(spec.labels), "mask", str(spec.ids))
        rows = [rows_of[i] for i in chosen]
        return _stacked(chosen, [masks[i] for i in chosen], reader, rows, layout)
    if chosen is not None:
        ids, source = chosen, str(spec.ids)
    elif reader.image_ids is not None:
        ids, source = reader.image_ids, f"{reader.path} (image_ids attribute)"
    else:
        ids, source = sorted(masks), f"sorted mask names in {spec.labels}"
    if len(ids) != n:
        raise DatasetError(
            f"{reader.path}: holds {n} images but {source} lists {len(ids)} ids; "
            "give the probabilities' image order with --ids FILE (or use --manifest)"
        )
    _check_unique(ids, source)
    if chosen is not None:  # the ids name the rows; masks not listed are not audited
        _require(ids, masks.keys(), str(spec.labels), "mask", str(spec.ids))
    else:
        _check_pairing(ids, masks.keys(), str(spec.labels), "mask")
    return _stacked(list(ids), [masks[i] for i in ids], reader, list(range(n)), layout)


def _pair_manifest(spec: InputSpec, manifest: Path) -> PairedDataset:
    rows = read_manifest(manifest)
    ids = [row.image_id for row in rows]
    absent = [row.image_id for row in rows if not row.mask.is_file()]
    if absent:
        raise DatasetError(
            f"{manifest}: mask file missing for {len(absent)} id(s): {listed(absent)}"
        )
    masks = [row.mask for row in rows]
    images = [row.image for row in rows]
    dataset: PairedDataset
    if rows[0].probs_path is not None:
        files = [row.probs_path for row in rows if row.probs_path is not None]
        absent = [row.image_id for row in rows if row.probs_path and not row.probs_path.is_file()]
        if absent:
            raise DatasetError(
                f"{manifest}: probabilities file missing for {len(absent)} id(s): {listed(absent)}"
            )
        dataset = _files(ids, masks, files, str(manifest), spec.layout, spec.names.probs_key)
    else:
        if spec.probs is None:
            raise DatasetError(
                f"{manifest}: the probs column holds array rows; pass the array with --probs"
            )
        reader = open_probs(spec.probs)
        indices = [row.probs_index for row in rows if row.probs_index is not None]
        outside = [i for i, r in zip(ids, indices, strict=True) if r >= reader.shape[0]]
        if outside:
            raise DatasetError(
                f"{manifest}: probs row out of range (the array holds {reader.shape[0]} "
                f"images) for: {listed(outside)}"
            )
        dataset = _stacked(ids, masks, reader, indices, spec.layout)
    dataset.images = images
    return dataset


def pair(spec: InputSpec, names: FileNames | None = None) -> PairedDataset:
    """Pair masks with probabilities (no image read yet, default reading options).
    ``names``: the file naming to use (default: the command line's)."""
    names = spec.names if names is None else names
    if spec.manifest is not None:
        if spec.labels is not None:
            raise DatasetError(
                f"{spec.manifest}: the manifest names the masks; drop --labels {spec.labels}"
            )
        if spec.ids is not None:
            raise DatasetError(
                f"{spec.manifest}: the manifest lists the ids; drop --ids {spec.ids}"
            )
        return _pair_manifest(replace(spec, names=names), spec.manifest)
    return _pair_folder(spec, names)


def _file_names(spec: InputSpec, config: ClassesConfig | None) -> FileNames:
    """The command line's naming over the config's. A config's mask pattern that matches
    nothing in --labels gives way to plain ``*.png`` (masks exported under their ids)."""
    names = spec.names.over(config.files if config is not None else None)
    if (
        not spec.names.masks
        and names.masks
        and spec.labels is not None
        and spec.labels.is_dir()
        and not any(spec.labels.rglob(f"*{names.mask_tail}"))
    ):
        names = replace(names, masks="")
    return names


def _pictures(dataset: PairedDataset, folder: Path, names: FileNames) -> None:
    """Each image's picture in --images; an error when the folder holds none of them
    (--images would otherwise do nothing, silently)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: --images folder not found")
    pictures = [names.image_path(folder, i) for i in dataset.ids]
    if dataset.images:  # a manifest's image column wins
        pictures = [m or p for m, p in zip(dataset.images, pictures, strict=True)]
    if not any(pictures):
        example = (names.images or "{id}.png").replace("{id}", dataset.ids[0])
        raise DatasetError(
            f"{folder}: no picture found for any image (e.g. {folder / example}); give the "
            "file names with --image-pattern, such as '{id}_leftImg8bit.png' or '{id}.jpg'"
        )
    dataset.images = pictures


def open_inputs(spec: InputSpec, *, probe: bool = True) -> Inputs:
    """Pair, check the classes config against the data, set how images are read, probe
    a few images and check that the probabilities belong to the masks (see the module
    doc). The classes: the config's, else numbered ones; --ignore-index wins over the
    config's ignore values."""
    config = load_classes(resolve_classes(spec.classes)) if spec.classes else None
    ignore = spec.ignore
    if ignore is None:
        ignore = config.ignore if config is not None else frozenset({255})
    names = _file_names(spec, config)
    dataset = pair(spec, names)
    if config is not None and config.num_classes != dataset.classes:
        axis = "last" if spec.layout is Layout.NHWC else "first"
        raise DatasetError(
            f"{spec.classes}: lists {config.num_classes} classes but the probabilities in "
            f"{dataset.source} have {dataset.classes} (class axis {axis}; see --layout); use "
            "the config the model was trained with"
        )
    if isinstance(dataset, StackedDataset) and isinstance(dataset.reader, StoreProbs):
        dataset.reader.check_transform(spec.transform)  # compact stores are read as stored
    dataset.transform = spec.transform
    dataset.decoder = MaskDecoder.from_config(config, ignore)
    dataset.ignore = ignore
    if spec.images is not None:
        _pictures(dataset, spec.images, names)
    pairing = None
    if probe:
        dataset.probe()
        if spec.pairing_check:
            from segaudit.io.pairing_check import check_pairing

            pairing = check_pairing(dataset)
    classes = default_classes(dataset.classes, ignore) if config is None else config
    return Inputs(dataset, replace(classes, ignore=ignore), replace(spec, names=names), pairing)


def open_folder(
    labels: Path, probs: Path | str, ids: Path | None = None, *, pairing_check: bool = False
) -> PairedDataset:
    """Masks named by id paired with probabilities, default reading options (for the
    library and tests; the pairing check only on request: callers may hand over any
    arrays, the CLI checks)."""
    spec = InputSpec(labels=labels, probs=probs, ids=ids, pairing_check=pairing_check)
    return open_inputs(spec).dataset
