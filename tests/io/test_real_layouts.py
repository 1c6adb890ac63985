"""The official dataset trees as they ship (replicas built by tests/replicas.py): the
README's dataset commands run verbatim, and wrong pairings stop with a line naming the cause."""

from __future__ import annotations

import csv
import filecmp
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.config.builtin import BUILTIN_DIR, builtin_configs, resolve_classes
from segaudit.config.classes import load_classes
from segaudit.errors import ConfigError
from tests.io import replicas

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def readme_commands() -> dict[str, str]:
    """The score commands of the README's dataset section, keyed by the dataset they read."""
    text = (REPO / "README.md").read_text()
    section = text.split("## On a real dataset", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    commands = [
        line for block in blocks for line in block.splitlines() if line.startswith("segaudit ")
    ]
    keys = {"gtFine": "cityscapes", "VOC2012": "voc", "ADEChallengeData2016": "ade20k"}
    found = {}
    for command in commands:
        labels = shlex.split(command)[shlex.split(command).index("--labels") + 1]
        found[keys[labels.split("/")[0]]] = command
    return found


BUILDERS: dict[str, Callable[[Path], replicas.Replica]] = {
    "cityscapes": replicas.cityscapes,
    "voc": replicas.voc,
    "ade20k": replicas.ade20k,
}


def ranking(folder: Path) -> list[dict[str, str]]:
    with (folder / "ranking.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_readme_has_the_three_dataset_commands() -> None:
    assert sorted(readme_commands()) == ["ade20k", "cityscapes", "voc"]


@pytest.mark.parametrize("classes", ["builtin", "file"])
@pytest.mark.parametrize("dataset", ["cityscapes", "voc", "ade20k"])
def test_readme_command_on_the_official_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str, classes: str
) -> None:
    """Exit 0, one row per image, the injected error first, every RGB image paired; with
    the built-in name (README) and with configs/<name>.yaml (a clone, the issue's form)."""
    replica = BUILDERS[dataset](tmp_path)
    command = readme_commands()[dataset]
    if classes == "file":
        shutil.copytree(REPO / "configs", tmp_path / "configs")
        command = re.sub(r"--classes (\S+)", r"--classes configs/\1.yaml", command)
    monkeypatch.chdir(tmp_path)
    args = shlex.split(command)[1:]
    result = run(*args)
    assert result.exit_code == 0, result.output
    rows = ranking(tmp_path / "run")
    assert sorted(r["image_id"] for r in rows) == sorted(replica.ids)
    assert rows[0]["image_id"] == replica.injected
    assert not any(r["skipped"] for r in rows)
    agreement = {r["image_id"]: float(r["agreement"]) for r in rows}
    assert min(agreement, key=agreement.__getitem__) == replica.injected
    inspect = [a for a in args[1:] if a not in ("--out", "run/")]
    looked = run("inspect", *inspect)
    assert looked.exit_code == 0, looked.output
    n = len(replica.ids)
    assert f"{n} of {n} found" in looked.output and "pairing check" in looked.output


def test_cityscapes_labelids_config_reads_the_labelids_masks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica = replicas.cityscapes(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = run(
        "score", "--labels", "gtFine/val", "--probs", "val_probs.zarr",
        "--classes", "cityscapes-labelids", "--out", "run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = ranking(tmp_path / "run")
    assert len(rows) == len(replica.ids) and rows[0]["image_id"] == replica.injected


def test_cityscapes_without_a_config_needs_the_mask_pattern(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the config every PNG would be a mask; --mask-pattern picks the trainIds."""
    replica = replicas.cityscapes(tmp_path)
    monkeypatch.chdir(tmp_path)
    plain = run("score", "--labels", "gtFine/val", "--probs", "val_probs.zarr", "--out", "run")
    assert plain.exit_code == 2 and "--mask-pattern" in plain.output
    assert "'*_gtFine_labelTrainIds.png'" in plain.output
    result = run(
        "score", "--labels", "gtFine/val", "--probs", "val_probs.zarr", "--out", "run",
        "--mask-pattern", "*_gtFine_labelTrainIds.png", "--images", "leftImg8bit/val",
        "--image-pattern", "{id}_leftImg8bit.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(ranking(tmp_path / "run")) == len(replica.ids)


def test_coco_stuff_stuffthingmaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """182 planes, labels 0..181 and 255: no config needed (numbered classes)."""
    replica = replicas.coco_stuff(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = run(
        "score", "--labels", "stuffthingmaps_trainval2017/val2017", "--probs", "coco_probs.zarr",
        "--images", "val2017", "--out", "run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = ranking(tmp_path / "run")
    assert sorted(r["image_id"] for r in rows) == replica.ids
    assert rows[0]["image_id"] == replica.injected


# ------------------------------------------------------------------------- wrong pairings


def _refused(result: Any, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


@pytest.mark.parametrize("command", ["score", "inspect"])
def test_cityscapes_rows_in_reverse_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    replicas.cityscapes(tmp_path, mispaired=True)
    monkeypatch.chdir(tmp_path)
    args = shlex.split(readme_commands()["cityscapes"])[2:]
    if command == "inspect":
        args = [a for a in args if a not in ("--out", "run/")]
    _refused(run(command, *args), "reverse order", "--no-pairing-check")
    assert not (tmp_path / "run").exists()
    if command == "score":  # the override scores the data as given
        assert run(command, *args, "--no-pairing-check").exit_code == 0


def test_coco_stuff_rows_shifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replicas.coco_stuff(tmp_path, mispaired=True)
    monkeypatch.chdir(tmp_path)
    result = run(
        "score", "--labels", "stuffthingmaps_trainval2017/val2017", "--probs", "coco_probs.zarr",
        "--out", "run",
    )  # fmt: skip
    _refused(result, "shifted by one", "--no-pairing-check")


def test_ade20k_without_its_config_is_the_reduce_zero_label_slip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replicas.ade20k(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["--labels", "ADEChallengeData2016/annotations/validation", "--probs", "ade_probs/"]
    _refused(run("score", *args, "--out", "run"), "one class above", "ade20k")
    _refused(run("inspect", *args), "one class above", "--no-pairing-check")


def test_voc_files_of_other_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other images' files differ in size (exit 2 on the sizes); resized to fit, the
    pairing check still sees they are not the masks' images."""
    replicas.voc(tmp_path, mispaired=True)
    monkeypatch.chdir(tmp_path)
    args = shlex.split(readme_commands()["voc"])[2:]
    _refused(run("score", *args), "probabilities are")
    _refused(
        run("score", *args, "--resize", "probs"), "do not seem to belong", "--no-pairing-check"
    )


def test_voc_labels_lowered_by_a_remap_they_do_not_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VOC masks read with a reduce-zero-label remap: labels one below the planes."""
    replicas.voc(tmp_path)
    config = load_classes(BUILTIN_DIR / "voc.yaml")
    remap = "".join(f"  {v}: {v - 1}\n" for v in range(1, 21)) + "  0: 255\n"
    classes = "".join(f"  - {{name: {n!r}}}\n" for n in config.names)
    (tmp_path / "reduced.yaml").write_text(f"version: 1\nremap:\n{remap}classes:\n{classes}")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(readme_commands()["voc"])[2:]
    args[args.index("--classes") + 1] = "reduced.yaml"
    _refused(run("score", *args), "one class below", "--no-pairing-check")


def test_a_few_swapped_images_pass_the_check_but_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zarr

    replica = replicas.cityscapes(tmp_path)
    array = zarr.open_array(str(tmp_path / "val_probs.zarr"), mode="r+")
    first, second = np.array(array[0]), np.array(array[5])
    array[0], array[5] = second, first
    monkeypatch.chdir(tmp_path)
    result = run(*shlex.split(readme_commands()["cityscapes"])[1:])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("warning:"))
    assert replica.ids[0] in warning and replica.ids[5] in warning
    assert "agreement" in warning


# ----------------------------------------------------------------------------- --ids


def test_ids_select_and_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segaudit.io.inputs import InputSpec, open_inputs

    replica = replicas.voc(tmp_path)
    chosen = [replica.ids[3], replica.ids[0], replica.ids[2]]
    (tmp_path / "some.txt").write_text("\n".join(chosen) + "\n")
    spec = InputSpec(
        labels=tmp_path / "VOC2012/SegmentationClass",
        probs=tmp_path / "voc_probs",
        ids=tmp_path / "some.txt",
        classes=Path("voc"),
    )
    assert open_inputs(spec).dataset.ids == chosen  # train masks and other files ignored
    (tmp_path / "some.txt").write_text("\n".join([*chosen, "2009_999999"]) + "\n")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(readme_commands()["voc"])[2:]
    args[args.index("--ids") + 1] = "some.txt"
    _refused(run("score", *args), "2009_999999", "no mask")


def test_ids_select_rows_of_an_array_by_its_image_ids(tmp_path: Path) -> None:
    from segaudit.io.inputs import InputSpec, open_inputs

    replica = replicas.cityscapes(tmp_path)
    chosen = [replica.ids[4], replica.ids[1]]
    (tmp_path / "ids.txt").write_text("\n".join(chosen))
    spec = InputSpec(
        labels=tmp_path / "gtFine/val",
        probs=tmp_path / "val_probs.zarr",
        ids=tmp_path / "ids.txt",
        classes=Path("cityscapes"),
    )
    dataset = open_inputs(spec).dataset
    assert dataset.ids == chosen
    loaded = [image for block in dataset.blocks() for image in dataset.load(block)]
    assert [image.image_id for image in loaded] == chosen
    (tmp_path / "ids.txt").write_text("lindau/lindau_000009_000009\n")
    with pytest.raises(ValueError, match="lindau_000009_000009"):
        open_inputs(spec)


# ------------------------------------------------------------------- built-in configs


def test_builtin_configs_are_the_repository_configs() -> None:
    shipped = sorted(p.name for p in BUILTIN_DIR.glob("*.yaml"))
    repo = sorted(p.name for p in (REPO / "configs").glob("*.yaml") if p.name != "gate.yaml")
    assert shipped == repo and len(shipped) >= 4
    for name in shipped:
        assert filecmp.cmp(BUILTIN_DIR / name, REPO / "configs" / name, shallow=False), name


def test_builtin_names_resolve_and_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_classes(Path("cityscapes")) == BUILTIN_DIR / "cityscapes.yaml"
    assert resolve_classes(Path("voc.yaml")) == BUILTIN_DIR / "voc.yaml"
    with pytest.raises(ConfigError, match="built-in: ade20k, cityscapes"):
        resolve_classes(Path("citiscapes"))
    listed = run("configs")
    assert listed.exit_code == 0
    for config in builtin_configs():
        assert config.name in listed.output
    assert "*_gtFine_labelTrainIds.png" in listed.output


def test_files_section_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nclasses: [{name: a}]\nfiles: {masks: 'x.png'}\n")
    with pytest.raises(ConfigError, match=r"files\.masks.*no '\*'"):
        load_classes(path)
    path.write_text("version: 1\nclasses: [{name: a}]\nfiles: {images: '{name}.jpg'}\n")
    with pytest.raises(ConfigError, match=r"files\.images"):
        load_classes(path)
    path.write_text("version: 1\nclasses: [{name: a}]\nfiles: {mask: '*.png'}\n")
    with pytest.raises(ConfigError, match=r"files\.mask.*unknown key"):
        load_classes(path)


# ------------------------------------------------------------------ options and help


def test_probs_key_names_the_npz_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replica = replicas.voc(tmp_path)
    for image_id in replica.ids:
        probs = np.load(tmp_path / "voc_probs" / f"{image_id}.npy")
        np.savez(tmp_path / "voc_probs" / f"{image_id}.npz", seg=probs, aux=probs[:2])
        (tmp_path / "voc_probs" / f"{image_id}.npy").unlink()
    monkeypatch.chdir(tmp_path)
    args = shlex.split(readme_commands()["voc"])[2:]
    _refused(run("score", *args), "holds seg, aux", "--probs-key")
    assert run("score", *args, "--probs-key", "seg").exit_code == 0


def test_inspect_with_nothing_to_inspect_is_a_usage_error() -> None:
    result = run("inspect")
    assert result.exit_code == 2 and "--labels" in result.output


def test_inspect_refuses_a_size_mismatch_as_score_does(tmp_path: Path) -> None:
    replicas.voc(tmp_path, mispaired=True)
    args = [
        "--labels", tmp_path / "VOC2012/SegmentationClass", "--probs", tmp_path / "voc_probs",
        "--ids", tmp_path / "VOC2012/ImageSets/Segmentation/val.txt", "--classes", "voc",
    ]  # fmt: skip
    looked, scored = run("inspect", *args), run("score", *args, "--out", tmp_path / "run")
    assert looked.exit_code == scored.exit_code == 2
    assert looked.output.splitlines()[-1] == scored.output.splitlines()[-1]


def test_help_shows_flags_as_flags() -> None:
    text = run("score", "--help").output
    assert "--logits" in text and "--no-logits" in text and "--no-pairing-check" in text
    assert all("--help" in line for line in text.splitlines() if "<bool>" in line)
    assert "segaudit[dask]" in text
    assert "--scheduler" not in run("calibrate", "--help").output
