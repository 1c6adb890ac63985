"""Images larger than the working-set budget, audited a band of rows at a time.

Every per-pixel pass of the audit is a sum over pixels (class sums, histograms, counts of
(given, predicted) pairs), so it can be made band by band and added up. The one exception
is the image's softmin score, a weighted mean whose weights are relative to the image's
lowest pixel score: :class:`RunningSoftmin` merges bands as a running log-sum-exp, rescaling
what it holds whenever a band brings a lower minimum. One band gives exactly the untiled
score; several agree with it to about 1e-15 relative (summation order), tested at 1e-12.

Regions are found band by band (a region crossing a band border is reported once per band,
cut at the border; every flagged pixel still belongs to exactly one region), and overlays
are drawn from a reduced view of the image (every s-th pixel, flagged blocks kept), so
nothing the size of the whole image is held but its mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from segaudit.core.dataset import TileSource
from segaudit.core.pixel import PixelDigest, digest_image

#: Largest side of the reduced view an overlay of a tiled image is drawn from.
OVERLAY_SIDE = 2048


class RunningSoftmin:
    """The softmin-weighted mean of pixel scores (core.image.softmin_score), fed in parts."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.low = math.inf
        self.weighted = 0.0  # sum of exp((low - s) / T) * s
        self.total = 0.0  # sum of exp((low - s) / T)

    def add(self, scores: NDArray[np.float64]) -> None:
        """Add one band's pixel scores."""
        if scores.size == 0:
            return
        low = float(scores.min())
        shifted = (low - scores) / self.temperature  # as softmin_score: <= 0, no overflow
        weights = np.exp(shifted)
        np.multiply(weights, scores, out=shifted)
        weighted, total = float(shifted.sum()), float(weights.sum())
        if low < self.low:  # what is held was relative to a higher minimum: scale it down
            scale = math.exp((low - self.low) / self.temperature) if self.total else 0.0
            self.weighted = self.weighted * scale + weighted
            self.total = self.total * scale + total
            self.low = low
        else:
            scale = math.exp((self.low - low) / self.temperature)
            self.weighted += weighted * scale
            self.total += total * scale

    @property
    def score(self) -> float:
        """The score; NaN when no pixel was added."""
        return self.weighted / self.total if self.total else math.nan


@dataclass(frozen=True)
class TiledDigests:
    """An image's band digests, made as they are iterated (each call reads it again)."""

    image_id: str
    source: TileSource
    ignore: Collection[int]
    check_sums: bool
    predict_below: float | None

    def __iter__(self) -> Iterator[tuple[int, PixelDigest]]:
        for band in self.source.bands():
            yield (
                band.top,
                digest_image(
                    self.image_id,
                    band.labels,
                    band.probs,
                    self.ignore,
                    check_sums=self.check_sums,
                    predict_below=self.predict_below,
                ),
            )


@runtime_checkable
class TileSink(Protocol):
    """An image sink that also takes a tiled image band by band: ``add_tile`` for each band
    (``top`` its first row), then ``finish_tiles`` once. Sinks without these methods are
    not called for tiled images."""

    def add_tile(
        self, index: int, image_id: str, top: int, digest: PixelDigest, flagged: NDArray[np.bool_]
    ) -> None: ...

    def finish_tiles(self, index: int, image_id: str) -> None: ...


def _columns_any(mask: NDArray[np.bool_], step: int) -> NDArray[np.bool_]:
    """Each row's flags reduced by "any" over runs of ``step`` columns."""
    h, w = mask.shape
    padded = np.zeros((h, -(-w // step) * step), dtype=bool)
    padded[:, :w] = mask
    reduced: NDArray[np.bool_] = np.any(padded.reshape(h, -1, step), axis=2)
    return reduced


def reduced_view(
    image_id: str,
    source: TileSource,
    ignore: Collection[int],
    flag: Callable[[PixelDigest], NDArray[np.bool_]],
    side: int = OVERLAY_SIDE,
) -> tuple[PixelDigest, NDArray[np.bool_]]:
    """A digest of every s-th pixel (s so the longer side is at most ``side``) and a mask
    flagged where any pixel of the s×s block is (a small issue never vanishes): what an
    overlay of a tiled image is drawn from."""
    h, w = source.shape
    step = max(1, -(-max(h, w) // side))
    flagged = np.zeros((-(-h // step), -(-w // step)), dtype=bool)
    names = ("valid", "given", "predicted", "self_confidence", "max_prob")
    parts: dict[str, list[NDArray[np.generic]]] = {name: [] for name in names}
    exact = True
    for top, digest in TiledDigests(image_id, source, ignore, False, None):
        rows = digest.valid.shape[0]
        blocks = (top + np.arange(rows)) // step
        np.logical_or.at(flagged, blocks, _columns_any(flag(digest), step))
        kept = np.arange((-top) % step, rows, step)
        for name in names:
            parts[name].append(getattr(digest, name)[kept, ::step])
        exact &= digest.exact_keys

    def joined(name: str) -> NDArray[Any]:
        stacked: NDArray[Any] = np.concatenate(parts[name]) if parts[name] else np.zeros((0, w))
        return stacked

    view = PixelDigest(
        valid=joined("valid").astype(np.bool_),
        given=joined("given").astype(np.intp),
        predicted=joined("predicted").astype(np.intp),
        self_confidence=joined("self_confidence").astype(np.float64),
        max_prob=joined("max_prob").astype(np.float64),
        exact_keys=exact,
    )
    return view, flagged
