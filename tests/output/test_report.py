"""`segaudit report`: the page's content, --class, --top, --out, escaping, errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from segaudit.cli import app
from segaudit.commands.report import ReportRequest, build_report, collect
from segaudit.commands.score import ScoreOptions, score
from segaudit.errors import SegauditError
from segaudit.io.inputs import InputSpec
from segaudit.output.html import issue_sentence

ROOT = Path(__file__).resolve().parents[2]
#: An image id that is also HTML: it must reach the page as text.
EVIL_ID = "a<script>alert(1)</script>"


def _example_module() -> ModuleType:
    name = "segaudit_make_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "make_example.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class Run:
    folder: Path
    ids: list[str]
    corrupted: dict[str, str]


def make_run(tmp_path: Path, num_images: int = 9, top: int = 9) -> Run:
    """A scored example whose first corrupted image is renamed to EVIL_ID (a mask file name
    may hold '<' and '>' on Linux; its '/' makes a subfolder, which ids allow)."""
    ex = tmp_path / "ex"
    truth = _example_module().make_example(ex, num_images=num_images, height=48, width=64, seed=5)
    corrupted = dict(truth["corrupted"])
    victim = sorted(corrupted)[0]
    ids = [f"img_{i:03d}" for i in range(num_images)]
    for folder in ("masks", "images"):
        target = ex / folder / f"{EVIL_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(ex / folder / f"{victim}.png", target)
    corrupted[EVIL_ID] = corrupted.pop(victim)
    ids[ids.index(victim)] = EVIL_ID
    (ex / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    score(
        ScoreOptions(
            InputSpec(
                labels=ex / "masks",
                probs=ex / "probs.npy",
                images=ex / "images",
                ids=ex / "ids.txt",
                classes=ex / "classes.yaml",
            ),
            out=run,
            top=top,
            workers=2,
        )
    )
    return Run(run, ids, corrupted)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class Page(HTMLParser):
    """The parts of the page the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.rows: list[dict[str, str]] = []
        self.images: list[str] = []
        self.scripts = 0
        self.urls: list[str] = []
        self.data: dict[str, Any] = {}
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "article":
            self.cards.append(found)
        elif tag == "img" and "src" in found:
            self.images.append(found["src"])
        elif tag == "script":
            self.scripts += 1
            self._in_data = found.get("id") == "report-data"
        for key in ("src", "href"):
            if key in found:
                self.urls.append(found[key])

    def handle_data(self, data: str) -> None:
        if self._in_data:  # the all-images table's rows, which the page renders in pages
            self.data = json.loads(data)
            self.rows = [
                {"data-rank": str(i[0]), "data-id": i[1], "data-flagged": str(i[3])}
                for i in self.data["images"]
            ]
            self._in_data = False


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return make_run(tmp_path_factory.mktemp("report"))


def test_report_page_content(run: Run) -> None:
    outcome = build_report(ReportRequest(run.folder))
    assert outcome.path == run.folder / "report.html"
    html = outcome.path.read_text(encoding="utf-8")
    page = parse(outcome.path)
    ranking = read_csv(run.folder / "ranking.csv")
    suspects = [r for r in ranking if int(r["flagged_pixels"]) > 0]
    assert [c["data-image-id"] for c in page.cards] == [r["image_id"] for r in suspects]
    assert page.cards[0]["data-image-id"] == ranking[0]["image_id"]
    assert len(page.rows) == len(ranking) == len(run.ids)
    assert [r["data-id"] for r in page.rows] == [r["image_id"] for r in ranking]
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(u.startswith(("data:", "#")) for u in page.urls)  # nothing from the network
    assert "default-src 'none'" in html
    assert EVIL_ID not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.scripts == 3  # the page's own three (one is its data); the id added none
    summary = json.loads((run.folder / "summary.json").read_text(encoding="utf-8"))
    top = summary["common_label_issues"][0]
    assert top["given"] in html and f"{top['pixels']:,}" in html
    assert outcome.flagged_pixels == summary["flagged_pixels"]


def test_histogram_counts_every_scored_image(run: Run) -> None:
    data = collect(ReportRequest(run.folder))
    histogram = data.histogram()
    assert sum(bar["count"] for bar in histogram["bars"]) == histogram["scored"] == len(run.ids)


def test_top_and_out(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    result = CliRunner().invoke(app, ["report", str(run.folder), "--out", str(out), "--top", "2"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    assert len(parse(out).cards) == 2


def test_class_narrows_everything(run: Run, tmp_path: Path) -> None:
    regions = read_csv(run.folder / "regions.csv")
    counts = Counter(r["given"] for r in regions) + Counter(r["predicted"] for r in regions)
    name = counts.most_common()[-1][0]  # the rarest class that takes part in a region
    mine = [r for r in regions if name in (r["given"], r["predicted"])]
    expected = {r["image_id"] for r in mine}
    out = tmp_path / "class.html"
    result = CliRunner().invoke(
        app, ["report", str(run.folder), "--class", name, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = parse(out)
    assert {r["data-id"] for r in page.rows} == expected
    for row in page.rows:
        area = sum(int(r["area"]) for r in mine if r["image_id"] == row["data-id"])
        assert int(row["data-flagged"]) == area
    data = collect(ReportRequest(run.folder, class_name=name))
    assert all(name in (p.given, p.predicted) for p in data.issues())
    assert [row["name"] for row in data.class_rows()] == [name]


def test_unknown_class_lists_valid_names(run: Run) -> None:
    result = CliRunner().invoke(app, ["report", str(run.folder), "--class", "unicorn"])
    assert result.exit_code == 2
    assert "unicorn" in result.output and "sidewalk" in result.output
    assert "Traceback" not in result.output


def test_not_a_run_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a segaudit run folder" in result.output
    with pytest.raises(SegauditError, match="not found"):
        build_report(ReportRequest(tmp_path / "missing"))


def test_without_overlays_or_regions(run: Run, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in (".segaudit-run", "summary.json", "ranking.csv", "masks.json"):
        shutil.copy(run.folder / name, bare / name)
    outcome = build_report(ReportRequest(bare))
    page = parse(outcome.path)
    assert page.images == [] and page.cards
    assert "No overlay for this image" in outcome.path.read_text(encoding="utf-8")
    with pytest.raises(SegauditError, match=r"regions\.csv"):
        build_report(ReportRequest(bare, class_name="road"))


def test_unreadable_overlays_show_the_no_overlay_state(
    run: Run, tmp_path: Path, bomb_png: bytes
) -> None:
    """A damaged overlay file (a decompression bomb, truncated, garbage) is shown as missing."""
    copy = tmp_path / "run"
    shutil.copytree(run.folder, copy)
    before = parse(build_report(ReportRequest(copy)).path).images
    shown = [i["overlay"] for i in collect(ReportRequest(copy)).gallery if i.get("overlay")]
    assert len(shown) >= 3 and len(before) == len(shown)
    good = shown[1].read_bytes()
    shown[0].write_bytes(bomb_png)
    shown[1].write_bytes(good[: len(good) // 2])
    shown[2].write_bytes(b"not a picture")
    outcome = build_report(ReportRequest(copy))
    assert len(parse(outcome.path).images) == len(before) - 3
    missing = outcome.path.read_text(encoding="utf-8").count("No overlay for this image")
    assert missing == outcome.gallery - len(before) + 3


def test_regions_csv_without_a_column_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run.folder, copy)
    rows = read_csv(copy / "regions.csv")
    assert rows
    with (copy / "regions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, [c for c in rows[0] if c != "region_id"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "region_id"} for r in rows)
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 2 and "region_id" in result.output


def test_issue_sentences_are_worded_once(run: Run, tmp_path: Path) -> None:
    """The page's headline, its issue list and the command's output say each common issue
    in the same words: issue_sentence's, with 'class' once."""
    summary = json.loads((run.folder / "summary.json").read_text(encoding="utf-8"))
    pairs = summary["common_label_issues"]
    assert len(pairs) >= 3
    sentences = [issue_sentence(p["given"], p["predicted"], p["pixels"]) for p in pairs]
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(run.folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert all(s in text for s in sentences[:3]) and "class class" not in text
    html = out.read_text(encoding="utf-8")
    for k, sentence in enumerate(sentences[:5]):
        assert html.count(f"<li>{sentence}</li>") == (2 if k < 3 else 1)
    assert "class class" not in html
