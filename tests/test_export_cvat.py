"""The CVAT export read back by CVAT's own dataset library, datumaro.

CVAT imports "Segmentation mask 1.1" with datumaro's VOC segmentation importer; here
datumaro imports the archive segaudit wrote, and each image's masks, put together by label
name, must be the run's mask pixel for pixel (ignored pixels: no mask, i.e. CVAT's background).

datumaro pins numpy below what the test extra installs, so it lives in the extra
``export-check`` and ``.ci/run`` runs this file in a venv of its own. Without datumaro the
test is skipped, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import Example

from segaudit.commands.export import ExportRequest, _decoder, export_run
from segaudit.commands.score import ScoreOptions, score
from segaudit.export import ExportFormat
from segaudit.export.cvat import ARCHIVE
from segaudit.io.inputs import InputSpec
from segaudit.io.masks import read_mask
from segaudit.rundir import read_run

try:
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(
        "datumaro is not installed: pip install -e '.[export-check]' in a venv of its own",
        allow_module_level=True,
    )


def test_cvat_archive_imports_into_datumaro(example_dir: Example, tmp_path: Path) -> None:
    ex = example_dir.root
    run_dir = tmp_path / "run"
    spec = InputSpec(labels=ex / "masks", probs=ex / "probs.zarr", classes=ex / "classes.yaml")
    score(ScoreOptions(spec, out=run_dir, top=0, save_masks=True))
    out = tmp_path / "cvat"
    outcome = export_run(ExportRequest(run_dir, ExportFormat.CVAT, out))
    assert outcome.images > 0
    tree = tmp_path / "tree"
    with zipfile.ZipFile(out / ARCHIVE) as archive:
        archive.extractall(tree)

    # CVAT's fork of datumaro imports this layout as "voc"; the PyPI datumaro names the
    # same reader (VOC segmentation: labelmap, class and object PNGs) voc_segmentation.
    dataset = Dataset.import_from(str(tree), "voc_segmentation")
    labels = dataset.categories()[AnnotationType.label]
    run = read_run(run_dir)
    decoder = _decoder(run)
    seen = set()
    for item in dataset:
        seen.add(item.id)
        given = read_mask(item.id, ex / "masks" / f"{item.id}.png", decoder)
        rebuilt = np.full(given.shape, 255, dtype=np.int64)
        for annotation in item.annotations:
            if annotation.type != AnnotationType.mask:
                continue
            name = labels.items[annotation.label].name
            pixels = annotation.image.astype(bool)
            if name == "background":
                continue
            assert not (rebuilt[pixels] != 255).any(), "masks overlap"
            rebuilt[pixels] = run.class_names.index(name)
        assert np.array_equal(rebuilt, given), item.id
    flagged = {r.image_id for r in run.ranking if r.flagged_pixels > 0}
    assert seen == flagged
