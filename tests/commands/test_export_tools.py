"""Exports read back by the tools' own libraries: CVAT's dataset library (datumaro) and
Label Studio's SDK (its brush RLE decoder). (COCO, with pycocotools, is in test_fixing.py.)

CVAT imports "Segmentation mask 1.1" with datumaro's VOC segmentation importer; here
datumaro imports the archive segaudit wrote, and each image's masks, put together by label
name, must be the run's mask pixel for pixel (ignored pixels: no mask, i.e. CVAT's
background). The Label Studio tasks' brush results, decoded, must be the mask's classes and
the run's regions.

Both libraries pull in opencv-python-headless, which pins numpy below what the test extra
gets (and the type checks are run against), so they live in the extra ``export-check`` and
``.ci/run`` runs this file in a venv of its own, with SEGAUDIT_EXPORT_CHECK=1: there they
must run. Elsewhere (``make test``) they are skipped without the libraries.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from segaudit.commands.export import ExportRequest, _decoder, export_run
from segaudit.commands.score import ScoreOptions, score
from segaudit.export import ExportFormat
from segaudit.export.cvat import ARCHIVE
from segaudit.io.inputs import InputSpec
from segaudit.io.masks import read_mask
from segaudit.rundir import read_run
from tests.commands.test_fixing import _given, _region_ids, invoke
from tests.conftest import Example

#: Set by .ci/run where the export-check venv must run these tests (`make test`, whose venv
#: has the test extra only, skips them).
REQUIRED = "SEGAUDIT_EXPORT_CHECK"

try:
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
    from label_studio_sdk.converter.brush import decode_rle
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get(REQUIRED) == "1":
        raise
    pytest.skip(
        "datumaro and label-studio-sdk are not installed: pip install -e '.[export-check]' "
        "in a venv of its own",
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


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, example_dir: Example) -> Path:
    ex = example_dir.root
    run = tmp_path_factory.mktemp("tools") / "run"
    spec = InputSpec(
        labels=ex / "masks",
        probs=ex / "probs.zarr",
        classes=ex / "classes.yaml",
        images=ex / "images",
    )
    score(ScoreOptions(spec, out=run, top=0, save_masks=True))
    return run


def test_label_studio_export_decodes_with_its_sdk(scored: Path, tmp_path: Path) -> None:
    out = tmp_path / "ls"
    done = invoke("export", scored, "--to", "label-studio", "--out", out, "--top", "3")
    assert done.exit_code == 0, done.output
    tasks = json.loads((out / "tasks.json").read_text())
    config = (out / "labeling_config.xml").read_text()
    run = read_run(scored)
    assert len(tasks) == 3
    for task in tasks:
        image_id = task["data"]["image_id"]
        assert task["data"]["image"] == f"{image_id}.png"  # relative to --images
        labels, valid = _given(scored, image_id)
        ids = _region_ids(scored, image_id)
        rebuilt = np.full(labels.shape, 255, dtype=np.int64)
        suspects = 0
        for result in task["predictions"][0]["result"]:
            h, w = result["original_height"], result["original_width"]
            pixels = np.reshape(decode_rle(result["value"]["rle"]), (h, w, 4))[:, :, 3] == 255
            label = result["value"]["brushlabels"][0]
            assert f'value="{label}"' in config and f'name="{result["from_name"]}"' in config
            if result["from_name"] == "suspect":
                region_id = int(result["id"].removeprefix("region"))
                assert np.array_equal(pixels, ids == region_id)
                suspects += 1
            else:
                assert not (rebuilt[pixels] != 255).any()  # classes do not overlap
                rebuilt[pixels] = run.class_names.index(label)
        assert np.array_equal(rebuilt[valid], labels[valid])
        assert (rebuilt[~valid] == 255).all()
        assert suspects == sum(1 for r in run.regions() if r.image_id == image_id)
