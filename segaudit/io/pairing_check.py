"""Do the probabilities belong to the masks? A cheap check on a few images, before the audit.

A wrong pairing does not make reading fail: probabilities in reverse row order, or masks
one class off the probability planes (ADE20K read without reduce-zero-label) give
plausible-looking numbers and a ranking in which every image looks suspect. What gives
them away is *agreement*, the share of valid pixels where the model's class (argmax) is
the label:

- **order**: a mask agrees with its own image's probabilities more than with any other
  image's. On a sample of images, each mask is compared with its own probabilities and
  with those of every other sampled image (resampled to its size). When fewer than half
  of the masks agree best with their own, the rows or files are not the masks' images;
  which wrong order (reversed, shifted by one, shuffled) is then told by trying the
  reversed and shifted partners.
- **offset**: labels equal to the predicted class plus or minus one on most pixels, and
  equal to it on few: the classic reduce-zero-label slip (a 0 = "other" label read
  without the remap, or a remap applied to masks already reduced).

Both tests compare the given pairing against an alternative on the same pixels, so a weak
model (low agreement everywhere) does not fail them; a dataset whose masks all look alike
(agreement ties) passes too. A failure is a :class:`PairingError` naming the likely cause
and ``--no-pairing-check``, which skips the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

import numpy as np
from numpy.typing import NDArray

from segaudit.core.audit import ImageRecord
from segaudit.core.compact import digest_probs
from segaudit.core.dataset import LoadedImage
from segaudit.core.pixel import valid_mask
from segaudit.errors import ImageError, PairingError
from segaudit.io.paired import PairedDataset
from segaudit.io.transforms import ResampledProbs

#: Images sampled for the check (evenly spread over the dataset).
SAMPLE = 8
#: Pixels per image compared (a regular grid): agreement is a share, 16k pixels pin it down.
PIXELS = 16384
#: Below this many usable images, order cannot be judged.
MIN_IMAGES = 3
#: Offset: labels = predicted ± 1 on at least this share of pixels ...
OFFSET_SHARE = 0.5
#: ... and on this many times the share where labels = predicted.
OFFSET_RATIO = 2.0
#: Images whose agreement is under this share of the dataset's median are warned about.
LOW_AGREEMENT_RATIO = 0.5
OVERRIDE = "--no-pairing-check"


@dataclass
class _Sampled:
    index: int
    image_id: str
    labels: NDArray[np.integer]
    valid: NDArray[np.bool_]
    predicted: NDArray[np.intp]


@dataclass(frozen=True)
class PairingStats:
    """What the check measured on its sample."""

    images: int
    own: float  # pooled agreement of the masks with their own probabilities
    others: float  # pooled agreement of the masks with the other sampled images' probabilities
    wins: int  # masks agreeing at least as well with their own probabilities as with any other's
    offset: dict[int, float] = field(default_factory=dict)  # d -> share where label = pred + d


def _resampled(predicted: NDArray[np.intp], shape: tuple[int, ...]) -> NDArray[np.intp]:
    """A predicted class map brought to ``shape`` by nearest neighbour (images may differ)."""
    if predicted.shape == shape:
        return predicted
    rows = np.arange(shape[0]) * predicted.shape[0] // shape[0]
    cols = np.arange(shape[1]) * predicted.shape[1] // shape[1]
    out: NDArray[np.intp] = predicted[rows[:, None], cols[None, :]]
    return out


def _agreeing(image: _Sampled, predicted: NDArray[np.intp], offset: int = 0) -> int:
    predicted = _resampled(predicted, image.labels.shape)
    return int(np.count_nonzero(image.valid & (image.labels == predicted + offset)))


def _read(dataset: PairedDataset, index: int) -> _Sampled | None:
    """One image's labels, valid pixels and predicted classes; None when it cannot be read
    (the audit reports such images as skipped rows)."""
    for image in dataset.load(range(index, index + 1)):
        if image.tiles is not None:  # too large to read whole: its first band of rows
            try:
                band = next(image.tiles.bands())
            except (ImageError, StopIteration):
                return None
            image = LoadedImage(index, image.image_id, band.labels, band.probs)
        if image.labels is None or image.probs is None:
            return None
        h, w = image.labels.shape
        step = max(1, int(np.sqrt(h * w / PIXELS)))  # a regular grid of about PIXELS
        labels = image.labels[::step, ::step]
        valid = valid_mask(labels, dataset.ignore)
        if not valid.any():
            return None
        probs = image.probs
        if isinstance(probs, np.ndarray):
            predicted = probs[:, ::step, ::step].argmax(axis=0).astype(np.intp)
        elif isinstance(probs, ResampledProbs) and probs.always_valid():
            predicted = grid_predicted(image.image_id, probs, step)
        else:  # compact, or made in bands: its argmax without K full planes
            try:
                anything = np.zeros(image.labels.shape, np.uint8)  # labels do not matter here
                digest = digest_probs(image.image_id, anything, probs, (), check_sums=False)
            except ImageError:
                return None
            predicted = digest.predicted[::step, ::step]
        return _Sampled(index, image.image_id, labels, valid, predicted)
    return None


def grid_predicted(image_id: str, probs: ResampledProbs, step: int) -> NDArray[np.intp]:
    """The digest's predicted classes at ``[::step, ::step]`` of probabilities that cannot
    fail it (``always_valid``), from the grid's rows only: the same floats, so the same
    argmax, for 1/step of the work."""
    rows = range(0, probs.shape[1], step)
    grid = np.stack([probs.rows(y, y + 1)[:, 0, ::step].copy() for y in rows], axis=1)
    anything = np.zeros(grid.shape[1:], np.uint8)  # labels do not matter here
    return digest_probs(image_id, anything, grid, (), check_sums=False).predicted


def sample_indices(total: int, count: int = SAMPLE) -> list[int]:
    """Up to ``count`` indices spread evenly over ``total`` images."""
    if total <= count:
        return list(range(total))
    return sorted(set(np.linspace(0, total - 1, count).round().astype(int).tolist()))


def measure(dataset: PairedDataset, indices: list[int]) -> tuple[PairingStats, list[_Sampled]]:
    """Agreement of the sampled masks with their own, shifted and other images' classes."""
    sampled = [s for s in (_read(dataset, i) for i in indices) if s is not None]
    valid = sum(int(s.valid.sum()) for s in sampled) or 1
    own = sum(_agreeing(s, s.predicted) for s in sampled)
    offset = {d: sum(_agreeing(s, s.predicted, d) for s in sampled) / valid for d in (1, -1)}
    others_agree = others_valid = wins = 0
    for s in sampled:
        mine = _agreeing(s, s.predicted)
        best = 0
        for other in sampled:
            if other is not s:
                agree = _agreeing(s, other.predicted)
                best = max(best, agree)
                others_agree += agree
                others_valid += int(s.valid.sum())
        wins += mine >= best
    others = others_agree / others_valid if others_valid else 0.0
    return PairingStats(len(sampled), own / valid, others, wins, offset), sampled


def _wrong_order(dataset: PairedDataset, sampled: list[_Sampled]) -> str:
    """Which order the probabilities seem to be in: tries reversed and shifted partners."""
    n = len(dataset.ids)
    partners = {  # name -> (sign, offset): the partner of mask i is sign * i + offset
        "in reverse order": (-1, n - 1),
        "shifted by one (image i's probabilities sit at position i+1)": (1, 1),
        "shifted by one (image i's probabilities sit at position i-1)": (1, -1),
    }
    best, best_wins = "", 0
    for name, (sign, offset) in partners.items():
        wins = 0
        for s in sampled:
            j = sign * s.index + offset
            if not 0 <= j < n or j == s.index:
                continue
            other = _read(dataset, j)
            if other is not None and _agreeing(s, other.predicted) > _agreeing(s, s.predicted):
                wins += 1
        if wins > best_wins:
            best, best_wins = name, wins
    if best and best_wins * 2 > len(sampled):
        return f"the probabilities look {best}"
    return "the probabilities look shuffled or made for other images"


def check_pairing(dataset: PairedDataset, sample: int = SAMPLE) -> PairingStats:
    """Raise :class:`PairingError` when the probabilities do not seem to belong to the
    masks (see the module doc); return what was measured otherwise."""
    stats, sampled = measure(dataset, sample_indices(len(dataset.ids), sample))
    where = f"{dataset.source}"
    for d, share in stats.offset.items():
        if share >= OFFSET_SHARE and share >= OFFSET_RATIO * stats.own:
            above = "above" if d > 0 else "below"
            fix = (
                "masks whose 0 means 'other' need the reduce-zero-label remap (e.g. --classes "
                "ade20k)"
                if d > 0
                else "the remap lowers labels that are already class ids (drop it, or use "
                "the config that matches the masks)"
            )
            raise PairingError(
                f"{where}: the labels look one class {above} the probability planes "
                f"(label = predicted {d:+d} on {share:.0%} of sampled pixels, = predicted on "
                f"{stats.own:.0%}): {fix}; to score as given pass {OVERRIDE}",
                cause="reduce-zero-label" if d > 0 else "label-offset",
                override=OVERRIDE,
            )
    if stats.images >= MIN_IMAGES and stats.wins * 2 < stats.images:
        cause = _wrong_order(dataset, sampled)
        raise PairingError(
            f"{where}: the probabilities do not seem to belong to the masks: only {stats.wins} "
            f"of {stats.images} sampled masks agree best with their own probabilities "
            f"(agreement {stats.own:.0%}, with other images' {stats.others:.0%}); {cause}. "
            f"Check the order (--ids, the image_ids attribute, the manifest); to score as "
            f"given pass {OVERRIDE}",
            cause="order",
            override=OVERRIDE,
        )
    return stats


def low_agreement(records: list[ImageRecord]) -> tuple[list[ImageRecord], float]:
    """Images whose agreement is implausibly low for the dataset (under half its median),
    most implausible first, and the median."""
    values = [r.agreement for r in records if r.skipped is None and r.agreement == r.agreement]
    if len(values) < MIN_IMAGES:
        return [], float("nan")
    middle = median(values)
    limit = LOW_AGREEMENT_RATIO * middle
    low = [r for r in records if r.skipped is None and r.agreement < limit]
    return sorted(low, key=lambda r: (r.agreement, r.index)), middle
