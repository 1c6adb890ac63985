"""Classes configs: the bundled ones load and agree with their datasets' own tables; the
schema is validated with errors that name the key path; `segaudit validate-config`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.commands.validate import validate_config_file
from segaudit.config.classes import load_classes
from segaudit.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CLASS_CONFIGS = ["cityscapes.yaml", "cityscapes-labelids.yaml", "voc.yaml", "ade20k.yaml"]
runner = CliRunner()

#: cityscapesscripts/helpers/labels.py: (labelId, trainId) of the 19 evaluated classes.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def voc_colormap(n: int) -> list[tuple[int, int, int]]:
    """VOCdevkit's VOClabelcolormap.m: the bits of the index spread over r, g, b."""
    colors = []
    for index in range(n):
        r = g = b = 0
        c = index
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


@pytest.mark.parametrize("name", CLASS_CONFIGS)
def test_bundled_configs_load_and_say_where_they_came_from(name: str) -> None:
    path = CONFIGS / name
    config = load_classes(path)
    assert len(set(config.colors)) == config.num_classes  # colour masks are unambiguous
    header = path.read_text().split("version:")[0]
    assert header.startswith("#") and ("labels.py" in header or ".m" in header or "mmseg" in header)
    result = runner.invoke(app, ["validate-config", str(path)])
    assert result.exit_code == 0 and result.output.startswith("OK ")


def test_cityscapes_configs_agree() -> None:
    train = load_classes(CONFIGS / "cityscapes.yaml")
    raw = load_classes(CONFIGS / "cityscapes-labelids.yaml")
    assert train.num_classes == raw.num_classes == 19
    assert train.names == raw.names and train.colors == raw.colors
    assert train.ignore == raw.ignore == frozenset({255}) and not train.remap
    for label_id in range(-1, 34):
        assert raw.remap[label_id] == CITYSCAPES_TRAIN_IDS.get(label_id, 255)


def test_voc_config_is_the_voc_palette() -> None:
    voc = load_classes(CONFIGS / "voc.yaml")
    assert voc.num_classes == 21 and voc.names[0] == "background"
    assert list(voc.colors) == voc_colormap(21)
    assert voc.ignore == frozenset({255})


def test_ade20k_reduces_the_zero_label() -> None:
    ade = load_classes(CONFIGS / "ade20k.yaml")
    assert ade.num_classes == 150
    assert ade.remap[0] in ade.ignore
    assert all(ade.remap[v] == v - 1 for v in range(1, 151))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


BASE = "version: 1\nclasses:\n  - {name: a, color: [1, 2, 3]}\n  - {name: b, color: [4, 5, 6]}\n"


def test_remap_with_negative_keys_and_several_ignore_values(tmp_path: Path) -> None:
    config = load_classes(write(tmp_path, BASE + "ignore: [0, 255]\nremap: {-1: 255, 3: 1}\n"))
    assert config.ignore == frozenset({0, 255})
    assert config.remap == {-1: 255, 3: 1}


def test_ignore_colors(tmp_path: Path) -> None:
    config = load_classes(write(tmp_path, BASE + "ignore_colors: [[224, 224, 192]]\n"))
    assert config.ignore_colors == ((224, 224, 192),)
    with pytest.raises(ConfigError, match=r"ignore_colors\[0\]"):
        load_classes(write(tmp_path, BASE + "ignore_colors: [[1, 2]]\n"))
    with pytest.raises(ConfigError, match="ignore_colors"):
        load_classes(write(tmp_path, BASE + "ignore: []\nignore_colors: [[1, 2, 9]]\n"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("version: 2\nclasses: [{name: a, color: [0, 0, 0]}]\n", "version"),
        ("version: 1\nclasses: []\n", "classes"),
        (BASE.replace("name: b", "name: a"), "classes[1].name"),
        (BASE.replace("[4, 5, 6]", "[4, 5, 600]"), "classes[1].color[2]"),
        (BASE.replace("name: b", "name: 7"), "classes[1].name"),
        (BASE + "remap: {5: 7}\n", "remap.5"),
        (BASE + "remap: [1, 2]\n", "remap"),
        (BASE + "ignore: [true]\n", "ignore[0]"),
        (BASE + "name: [x]\n", "name"),
        (BASE + "palette: []\n", "palette"),
    ],
)
def test_schema_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_classes(path)
    assert str(caught.value).startswith(f"{path}: {key}:")
    result = runner.invoke(app, ["validate-config", str(path)])
    assert result.exit_code == 2 and f"{key}:" in result.output


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_classes(write(tmp_path, "- 1\n- 2\n"))
    result = runner.invoke(app, ["validate-config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "missing.yaml: not found" in result.output


def test_a_file_with_rules_is_checked_as_a_gate_policy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate-config", str(write(tmp_path, "rules: 5\n"))])
    assert result.exit_code == 2
    assert "classes" not in result.output  # not read as a classes config


def test_the_bundled_gate_policy_if_present() -> None:
    policy = CONFIGS / "gate.yaml"
    if not policy.is_file():
        pytest.skip("no bundled gate policy")
    assert "gate policy" in validate_config_file(policy)
