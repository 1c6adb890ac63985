"""The CI gate: policy validation, checks on real runs of the bundled example, baselines,
CI outputs and exit codes (0 pass, 1 fail, 2 bad input).

The example's injected errors give the "done means" story: the clean part passes
configs/gate.yaml, the whole example fails it naming the corrupted images, a baseline then
passes until one more mask is corrupted.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.commands.score import ScoreOptions, score
from segaudit.config.policy import load_policy
from segaudit.errors import ConfigError
from segaudit.io.inputs import InputSpec

REPO = Path(__file__).resolve().parents[2]
GATE_YAML = REPO / "configs" / "gate.yaml"
SKY, BUILDING = 3, 2


def invoke(*args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    base = {"GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    result = CliRunner().invoke(app, [str(a) for a in args], env={**base, **(env or {})})
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def copy_example(src: Path, dst: Path, keep: Sequence[str] | None = None) -> Path:
    """The example's masks, probs.npy (rows of the kept ids) and classes.yaml under dst."""
    ids = sorted(p.stem for p in (src / "masks").glob("*.png"))
    rows = [i for i, image_id in enumerate(ids) if keep is None or image_id in keep]
    (dst / "masks").mkdir(parents=True)
    for i in rows:
        shutil.copy(src / "masks" / f"{ids[i]}.png", dst / "masks" / f"{ids[i]}.png")
    np.save(dst / "probs.npy", np.load(src / "probs.npy")[rows])
    shutil.copy(src / "classes.yaml", dst / "classes.yaml")
    return dst


def score_folder(data: Path, out: Path) -> Path:
    score(
        ScoreOptions(
            InputSpec(
                labels=data / "masks", probs=data / "probs.npy", classes=data / "classes.yaml"
            ),
            out=out,
            top=0,
        )
    )
    return out


def drop_sky(mask_path: Path) -> None:
    """Inject a new error: every sky pixel labelled building."""
    mask = np.array(Image.open(mask_path))
    assert (mask == SKY).any()
    mask[mask == SKY] = BUILDING
    Image.fromarray(mask).save(mask_path)


def write_policy(path: Path, rules: dict[str, object], name: str = "test") -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "name": name, "rules": rules}))
    return path


@dataclass(frozen=True)
class Runs:
    example: Path
    corrupted: dict[str, str]
    clean_ids: list[str]
    full: Path  # data folders
    clean: Path
    full_run: Path  # run folders
    clean_run: Path


@pytest.fixture(scope="module")
def runs(example_dir: object, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = example_dir.root  # type: ignore[attr-defined]
    corrupted: dict[str, str] = example_dir.corrupted  # type: ignore[attr-defined]
    base = tmp_path_factory.mktemp("gate")
    ids = sorted(p.stem for p in (root / "masks").glob("*.png"))
    clean_ids = [i for i in ids if i not in corrupted]
    full = copy_example(root, base / "full")
    clean = copy_example(root, base / "clean", clean_ids)
    return Runs(
        root,
        corrupted,
        clean_ids,
        full,
        clean,
        score_folder(full, base / "full-run"),
        score_folder(clean, base / "clean-run"),
    )


def ranking_scores(run: Path) -> dict[str, float]:
    with (run / "ranking.csv").open() as handle:
        return {
            row["image_id"]: float(row["label_quality"]) if row["label_quality"] else math.nan
            for row in csv.DictReader(handle)
        }


def gate_json(run: Path, policy: Path, tmp_path: Path, *extra: object) -> tuple[int, dict]:
    out = tmp_path / f"gate-{len(list(tmp_path.glob('gate-*')))}.json"
    code, _ = invoke("check", run, "--policy", policy, "--json", out, *extra)
    assert code in (0, 1)
    return code, json.loads(out.read_text())


def checks_by_name(report: dict) -> dict[str, dict]:
    return {c["check"]: c for c in report["checks"]}


# ---------------------------------------------------------------------------- the policy


def test_gate_yaml_example_loads_and_shows_every_rule() -> None:
    policy = load_policy(GATE_YAML)
    assert policy.low_score and policy.min_score is not None and policy.regions
    assert policy.max_flagged_fraction is not None and policy.class_flagged_fraction
    assert policy.class_thresholds is not None and policy.max_skipped is not None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("version: 2\nrules: {min_score: 0.1}", "version"),
        ("version: 1\nrule: {min_score: 0.1}", "rule"),
        ("version: 1\nrules: {min_scor: 0.1}", "rules.min_scor"),
        ("version: 1\nrules: {}", "rules"),
        ("version: 1\nrules: {low_score: {max_count: 1}}", "rules.low_score.below"),
        (
            "version: 1\nrules: {low_score: {below: 0.1, max_count: 1, max_share: 0.1}}",
            "rules.low_score",
        ),
        (
            "version: 1\nrules: {low_score: {below: 0.1, max_count: -1}}",
            "rules.low_score.max_count",
        ),
        ("version: 1\nrules: {min_score: yes}", "rules.min_score"),
        (
            "version: 1\nrules: {flagged_fraction: {per_class: {car: 1.5}}}",
            "rules.flagged_fraction.per_class.car",
        ),
        (
            "version: 1\nrules: {regions: [{given: a, max_area: 1}, {given: b, max_area: -3}]}",
            "rules.regions[1].max_area",
        ),
        (
            "version: 1\nrules: {regions: [{given: a, max_area: 1, colour: red}]}",
            "rules.regions[0].colour",
        ),
        ("version: 1\nrules: {class_thresholds: {classes: [car]}}", "rules.class_thresholds.min"),
        ("version: 1\nrules: {skipped: {max: 0}}", "rules.skipped.max"),
    ],
)
def test_policy_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_policy(path)
    assert f"{path}: {key}:" in str(raised.value)


def test_policy_refuses_python_tags(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nrules: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(path)


def test_bad_policy_missing_run_and_unknown_class_exit_2(runs: Runs, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: {low_score: {below: 2}}\n")
    code, output = invoke("check", runs.full_run, "--policy", bad)
    assert code == 2 and "rules.low_score.below" in output
    code, output = invoke("check", tmp_path / "nowhere", "--policy", GATE_YAML)
    assert code == 2 and "nowhere" in output
    cars = write_policy(tmp_path / "cars.yaml", {"flagged_fraction": {"per_class": {"cars": 0.1}}})
    code, output = invoke("check", runs.full_run, "--policy", cars)
    assert code == 2 and "'cars'" in output


# ------------------------------------------------------------------------ pass and fail


def test_clean_part_passes_and_injected_errors_fail_naming_images_and_rules(
    runs: Runs, tmp_path: Path
) -> None:
    code, output = invoke("check", runs.clean_run, "--policy", GATE_YAML)
    assert code == 0, output
    code, output = invoke("check", runs.full_run, "--policy", GATE_YAML)
    assert code == 1
    failed = [line for line in output.splitlines() if line.startswith("FAIL")]
    assert failed
    for image_id in runs.corrupted:  # every injected error is named by some failed rule
        assert any(image_id in line for line in failed), image_id
    for image_id in runs.clean_ids:  # and no clean image is blamed by the image rules
        assert not any(f"{image_id} (score" in line for line in failed), image_id
    assert any(line.startswith("FAIL low_score:") for line in failed)


def test_observed_values_come_from_the_run_files(runs: Runs, tmp_path: Path) -> None:
    _, report = gate_json(runs.full_run, GATE_YAML, tmp_path)
    checks = checks_by_name(report)
    policy = load_policy(GATE_YAML)
    scores = ranking_scores(runs.full_run)
    summary = json.loads((runs.full_run / "summary.json").read_text())
    assert policy.low_score is not None
    below = {i for i, s in scores.items() if s < policy.low_score.below}
    assert checks["low_score"]["observed"] == len(below)
    assert {f["key"] for f in checks["low_score"]["findings"]} == below
    assert checks["min_score"]["observed"] == min(scores.values())
    assert checks["flagged_fraction"]["observed"] == pytest.approx(
        summary["flagged_pixels"] / summary["valid_pixels"]
    )
    labelled = [c["threshold"] for c in summary["classes"] if c["labelled_pixels"] > 0]
    assert checks["class_thresholds"]["observed"] == pytest.approx(min(labelled))
    with (runs.full_run / "regions.csv").open() as handle:
        regions = list(csv.DictReader(handle))
    for rule in policy.regions:
        areas = [
            int(r["area"])
            for r in regions
            if r["given"] == rule.given and r["predicted"] == rule.predicted
        ]
        assert checks[f"regions[{rule.label}]"]["observed"] == max(areas, default=0)


def test_each_rule_passes_at_its_observed_value_and_fails_just_beyond(
    runs: Runs, tmp_path: Path
) -> None:
    scores = ranking_scores(runs.full_run)
    summary = json.loads((runs.full_run / "summary.json").read_text())
    lowest = min(scores.values())
    median = float(np.median(list(scores.values())))
    count = sum(s < median for s in scores.values())
    fraction = summary["flagged_pixels"] / summary["valid_pixels"]
    person = next(c for c in summary["classes"] if c["class"] == "person")
    with (runs.full_run / "regions.csv").open() as handle:
        biggest = max(csv.DictReader(handle), key=lambda r: int(r["area"]))
    pair = {"given": biggest["given"], "predicted": biggest["predicted"]}
    area = int(biggest["area"])
    cases: list[tuple[dict[str, object], dict[str, object] | None]] = [
        (
            {"low_score": {"below": median, "max_count": count}},
            {"low_score": {"below": median, "max_count": count - 1}},
        ),
        (
            {"low_score": {"below": median, "max_share": count / len(scores)}},
            {"low_score": {"below": median, "max_share": (count - 0.5) / len(scores)}},
        ),
        ({"min_score": lowest}, {"min_score": min(1.0, lowest * 1.01)}),
        ({"flagged_fraction": {"max": fraction}}, {"flagged_fraction": {"max": fraction * 0.99}}),
        ({"regions": [{**pair, "max_area": area}]}, {"regions": [{**pair, "max_area": area - 1}]}),
        (
            {"class_thresholds": {"min": person["threshold"], "classes": ["person"]}},
            {"class_thresholds": {"min": person["threshold"] * 1.01, "classes": ["person"]}},
        ),
        ({"skipped": {"max_count": 0}}, None),
    ]
    for i, (passing, failing) in enumerate(cases):
        code, output = invoke(
            "check", runs.full_run, "--policy", write_policy(tmp_path / f"pass{i}.yaml", passing)
        )
        assert code == 0, (passing, output)
        if failing is not None:
            code, output = invoke(
                "check",
                runs.full_run,
                "--policy",
                write_policy(tmp_path / f"fail{i}.yaml", failing),
            )
            assert code == 1, (failing, output)


def test_region_rule_needs_regions_csv(runs: Runs, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs.full_run, run)
    (run / "regions.csv").unlink()
    code, output = invoke("check", run, "--policy", GATE_YAML)
    assert code == 2 and "no regions.csv" in output
    no_regions = write_policy(tmp_path / "p.yaml", {"min_score": 0.0})
    assert invoke("check", run, "--policy", no_regions)[0] == 0


def test_regions_csv_without_a_column_is_a_usage_error(runs: Runs, tmp_path: Path) -> None:
    """The gate reads regions.csv with the writer's column list: a missing one is named."""
    run = tmp_path / "run"
    shutil.copytree(runs.full_run, run)
    with (run / "regions.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    with (run / "regions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, [c for c in rows[0] if c != "mean_self_confidence"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "mean_self_confidence"} for r in rows)
    code, output = invoke("check", run, "--policy", GATE_YAML)
    assert code == 2 and "mean_self_confidence" in output


def test_skipped_images_are_counted(runs: Runs, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(runs.clean, data)
    victim = runs.clean_ids[-1]
    (data / "masks" / f"{victim}.png").write_bytes(b"not a png")
    run = score_folder(data, tmp_path / "run")
    strict = write_policy(tmp_path / "strict.yaml", {"skipped": {"max_count": 0}})
    code, output = invoke("check", run, "--policy", strict)
    assert code == 1 and "FAIL skipped" in output and victim in output
    lenient = write_policy(tmp_path / "lenient.yaml", {"skipped": {"max_count": 1}})
    assert invoke("check", run, "--policy", lenient)[0] == 0


# ----------------------------------------------------------------------------- baselines


def test_baseline_passes_until_a_new_error_is_added(runs: Runs, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(runs.full, data)
    known = tmp_path / "known.json"
    run1 = score_folder(data, tmp_path / "run1")
    assert invoke("check", run1, "--policy", GATE_YAML)[0] == 1
    code, output = invoke(
        "check", run1, "--policy", GATE_YAML, "--baseline", known, "--update-baseline"
    )
    assert code == 0 and known.is_file(), output
    assert {f["key"] for f in json.loads(known.read_text())["findings"]} >= set(runs.corrupted)
    assert invoke("check", run1, "--policy", GATE_YAML, "--baseline", known)[0] == 0

    new = runs.clean_ids[0]
    drop_sky(data / "masks" / f"{new}.png")
    run2 = score_folder(data, tmp_path / "run2")
    code, report = gate_json(run2, GATE_YAML, tmp_path, "--baseline", known)
    assert code == 1
    checks = checks_by_name(report)
    assert [f["key"] for f in checks["low_score"]["findings"]] == [new]
    assert {f["key"] for f in checks["low_score"]["known"]} == set(runs.corrupted)
    code, output = invoke("check", run2, "--policy", GATE_YAML, "--baseline", known)
    assert code == 1 and new in output


def test_reannotated_image_is_judged_again(runs: Runs, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(runs.full, data)
    known = tmp_path / "known.json"
    run1 = score_folder(data, tmp_path / "run1")
    invoke("check", run1, "--policy", GATE_YAML, "--baseline", known, "--update-baseline")
    image_id = sorted(runs.corrupted)[0]
    path = data / "masks" / f"{image_id}.png"
    Image.open(path).save(path, optimize=True)  # same labels, different bytes: a new hash
    run2 = score_folder(data, tmp_path / "run2")
    assert ranking_scores(run2)[image_id] == ranking_scores(run1)[image_id]
    code, report = gate_json(run2, GATE_YAML, tmp_path, "--baseline", known)
    assert code == 1
    assert [f["key"] for f in checks_by_name(report)["low_score"]["findings"]] == [image_id]


def test_baseline_usage_errors_exit_2(runs: Runs, tmp_path: Path) -> None:
    code, output = invoke("check", runs.full_run, "--policy", GATE_YAML, "--update-baseline")
    assert code == 2 and "--baseline" in output
    code, output = invoke(
        "check", runs.full_run, "--policy", GATE_YAML, "--baseline", tmp_path / "none.json"
    )
    assert code == 2 and "--update-baseline" in output
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "findings": [{"check": "low_score"}]}')
    code, output = invoke("check", runs.full_run, "--policy", GATE_YAML, "--baseline", broken)
    assert code == 2 and "findings[0]" in output


# ---------------------------------------------------------------------------- CI outputs


def test_junit_json_step_summary_and_annotations(runs: Runs, tmp_path: Path) -> None:
    junit, report_path = tmp_path / "junit.xml", tmp_path / "gate.json"
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    code, output = invoke(
        "check",
        runs.full_run,
        "--policy",
        GATE_YAML,
        "--junit",
        junit,
        "--json",
        report_path,
        env=env,
    )
    assert code == 1
    report = json.loads(report_path.read_text())
    failed = [c["check"] for c in report["checks"] if not c["passed"]]
    assert report["passed"] is False and failed

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c["check"] for c in report["checks"]]
    assert [c.get("name") for c in cases if c.find("failure") is not None] == failed
    assert suite.get("failures") == str(len(failed))

    text = summary.read_text()
    assert text.startswith("earlier step\n") and "segaudit gate FAILED" in text
    assert all(f"`{name}`" in text for name in failed)

    annotations = [line for line in output.splitlines() if line.startswith("::error ")]
    assert len(annotations) == len(failed)
    assert all("title=segaudit " in line and "::FAIL " in line for line in annotations)

    code, output = invoke("check", runs.full_run, "--policy", GATE_YAML)
    assert code == 1 and "::error" not in output


def test_score_with_policy_gates_in_one_command(runs: Runs, tmp_path: Path) -> None:
    def run_score(data: Path, out: Path, policy: Path) -> tuple[int, str]:
        return invoke(
            "score",
            "--labels",
            data / "masks",
            "--probs",
            data / "probs.npy",
            "--classes",
            data / "classes.yaml",
            "--out",
            out,
            "--top",
            "0",
            "--policy",
            policy,
            "--junit",
            tmp_path / f"{out.name}.xml",
        )

    assert run_score(runs.clean, tmp_path / "clean", GATE_YAML)[0] == 0
    code, output = run_score(runs.full, tmp_path / "full", GATE_YAML)
    assert code == 1 and "FAIL low_score" in output
    assert (tmp_path / "full.xml").is_file() and (tmp_path / "full" / "masks.json").is_file()

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: {min_score: 7}\n")
    code, output = run_score(runs.full, tmp_path / "never", bad)
    assert code == 2 and "rules.min_score" in output
    assert not (tmp_path / "never").exists()  # the policy is checked before scoring
    code, output = invoke(
        "score",
        "--labels",
        runs.full / "masks",
        "--probs",
        runs.full / "probs.npy",
        "--out",
        tmp_path / "x",
        "--junit",
        "j.xml",
    )
    assert code == 2 and "--policy" in output
