"""The benchmark's data: scenes, noisy masks, and out-of-fold probabilities of a trained model.

The model is a per-pixel neural network (scikit-learn's ``MLPClassifier``, one hidden layer
of 48 units) on local features: colour, colour blurred at three scales, local contrast,
gradient strength, and position. It is trained on the NOISY masks
(what a user has) with K-fold cross-validation over images, so every image's probabilities
come from a model that never saw that image, as Lad & Mueller 2023 prescribe. Everything is
cached under ``build/detection/<preset>-seed<seed>/`` (one npz), keyed by the preset's
parameters, so a second run costs seconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scenes import CLASSES, ERROR_TYPES, inject, make_scene
from scipy import ndimage

CACHE = Path(__file__).resolve().parents[2] / "build" / "detection"


@dataclass(frozen=True)
class Preset:
    """How big the benchmark is and how the model is trained."""

    name: str
    images: int
    height: int
    width: int
    noisy_fraction: float = 0.15
    folds: int = 2
    train_pixels: int = 60_000  # sampled per fold from the training images
    epochs: int = 40


PRESETS = {
    "full": Preset("full", images=480, height=80, width=120),
    "smoke": Preset(
        "smoke",
        images=36,
        height=40,
        width=60,
        noisy_fraction=0.3,
        train_pixels=10_000,
        epochs=15,
    ),
}


@dataclass(frozen=True)
class Benchmark:
    """Images (N, H, W, 3), clean and noisy masks (N, H, W), out-of-fold probabilities
    (N, K, H, W) float32, and each image's error kind ("" when clean)."""

    images: NDArray[np.float32]
    clean: NDArray[np.uint8]
    noisy: NDArray[np.uint8]
    probs: NDArray[np.float32]
    kinds: NDArray[np.str_]
    seconds: dict[str, float]

    @property
    def num_classes(self) -> int:
        return len(CLASSES)


def features(image: NDArray[np.float32]) -> NDArray[np.float32]:
    """(H*W, F) per-pixel features of one RGB image."""
    h, w, _ = image.shape
    planes = [image[..., c] for c in range(3)]
    for sigma in (1.5, 4.0, 10.0):
        planes += [ndimage.gaussian_filter(image[..., c], sigma) for c in range(3)]
    gray = image.mean(axis=2)
    mean2 = ndimage.gaussian_filter(gray, 2.0)
    planes.append(np.sqrt(np.maximum(ndimage.gaussian_filter(gray**2, 2.0) - mean2**2, 0)))
    planes.append(ndimage.gaussian_gradient_magnitude(gray, 1.0))
    planes.append(ndimage.gaussian_gradient_magnitude(gray, 3.0))
    yy, xx = np.mgrid[:h, :w]
    planes += [yy / h, xx / w]
    return np.stack([p.ravel() for p in planes], axis=1).astype(np.float32)


def make_data(
    preset: Preset, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.str_]]:
    """Scenes and their noisy masks; a fixed fraction of images gets one error each, the
    kinds taking turns so every kind gets the same share."""
    rng = np.random.default_rng(seed)
    n, h, w = preset.images, preset.height, preset.width
    images = np.empty((n, h, w, 3), np.float32)
    clean = np.empty((n, h, w), np.uint8)
    noisy = np.empty((n, h, w), np.uint8)
    kinds = np.full(n, "", dtype="<U16")
    wanted = round(preset.noisy_fraction * n)
    chosen = set(rng.choice(n, size=wanted, replace=False).tolist())
    turn = 0
    for i in range(n):
        scene = make_scene(rng, h, w)
        images[i], clean[i], noisy[i] = scene.image, scene.clean, scene.clean
        if i in chosen:
            for attempt in range(len(ERROR_TYPES)):
                kind = ERROR_TYPES[(turn + attempt) % len(ERROR_TYPES)]
                mask = inject(rng, scene, kind)
                if mask is not None:
                    noisy[i], kinds[i] = mask, kind
                    break
            turn += 1
    return images, clean, noisy, kinds


def train_out_of_fold(
    preset: Preset, seed: int, images: NDArray[np.float32], noisy: NDArray[np.uint8]
) -> NDArray[np.float32]:
    """(N, K, H, W) probabilities, each image's from a model trained on the other folds."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    n, h, w, _ = images.shape
    k = len(CLASSES)
    rng = np.random.default_rng(seed + 1)
    fold_of = rng.permutation(n) % preset.folds
    feats = np.stack([features(images[i]) for i in range(n)])  # (N, H*W, F)
    probs = np.zeros((n, k, h, w), np.float32)
    for fold in range(preset.folds):
        train = np.flatnonzero(fold_of != fold)
        x = feats[train].reshape(-1, feats.shape[2])
        y = noisy[train].reshape(-1)
        pick = rng.choice(x.shape[0], size=min(preset.train_pixels, x.shape[0]), replace=False)
        scaler = StandardScaler().fit(x[pick])
        model = MLPClassifier(
            (48,), max_iter=preset.epochs, batch_size=256, random_state=seed + fold
        )
        # One thread: on a shared machine, BLAS threads spinning against each other cost
        # more than they give on matrices this small.
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget
            model.fit(scaler.transform(x[pick]), y[pick])
            test = np.flatnonzero(fold_of == fold)
            out = model.predict_proba(scaler.transform(feats[test].reshape(-1, feats.shape[2])))
        full = np.full((out.shape[0], k), 1e-6, np.float64)
        full[:, model.classes_] = out
        full /= full.sum(axis=1, keepdims=True)
        probs[test] = full.reshape(len(test), h, w, k).transpose(0, 3, 1, 2)
    return probs


def _key(preset: Preset, seed: int) -> str:
    text = json.dumps([asdict(preset), seed, ERROR_TYPES, CLASSES, _VERSION], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Bump when scenes, errors or the model change: cached data is then rebuilt.
_VERSION = 2


def load(preset: Preset, seed: int, cache: Path = CACHE) -> Benchmark:
    """The benchmark for (preset, seed), from the cache when it is there."""
    folder = cache / f"{preset.name}-seed{seed}"
    path = folder / f"data-{_key(preset, seed)}.npz"
    if path.exists():
        with np.load(path) as stored:
            return Benchmark(
                stored["images"], stored["clean"], stored["noisy"], stored["probs"],
                stored["kinds"], json.loads(str(stored["seconds"])),
            )  # fmt: skip
    start = time.perf_counter()
    images, clean, noisy, kinds = make_data(preset, seed)
    made = time.perf_counter()
    probs = train_out_of_fold(preset, seed, images, noisy)
    trained = time.perf_counter()
    seconds = {"generate": made - start, "train": trained - made}
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("data-*.npz"):
        old.unlink()
    tmp = folder / "partial.npz"
    np.savez_compressed(
        tmp, images=images, clean=clean, noisy=noisy, probs=probs, kinds=kinds,
        seconds=json.dumps(seconds),
    )  # fmt: skip
    tmp.rename(path)
    return Benchmark(images, clean, noisy, probs, kinds, seconds)
