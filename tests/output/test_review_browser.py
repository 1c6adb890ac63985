"""Reviewing in the report, in headless Chromium: mark regions by mouse and keyboard,
download review.json, open the page again (decisions kept), and use the file.

Chromium is Debian's ``chromium``; this test does not install it. Without it the test is
skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import pytest

from segaudit.commands.report import ReportRequest, build_report, collect
from segaudit.config.review import check_review, load_review
from segaudit.output.html import REGION_VIEW_LIMIT, region_priority
from segaudit.rundir import read_run
from tests.output.test_report import Run, make_run
from tests.output.test_report_browser import CHROMIUM, browse, html_attributes


@pytest.fixture(scope="module")
def chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        message = f"headless Chromium is needed: install Debian's chromium ({CHROMIUM})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return make_run(tmp_path_factory.mktemp("review"))


#: Captures the download: the page's Blob goes through URL.createObjectURL.
CAPTURE = """
  var root = document.documentElement;
  URL.createObjectURL = function (blob) {
    blob.text().then(function (text) { root.setAttribute("data-t-json", text); });
    return "data:,";
  };
"""

MARK = """<script>
window.addEventListener("load", function () {
CAPTURE
  var first = document.querySelector("#gallery tr[data-key]");
  first.querySelector('button.dec[data-d="fix"]').click();
  var rows = document.querySelectorAll("#regions-table tbody tr[data-key]");
  function key(target, name) {
    target.dispatchEvent(new KeyboardEvent("keydown", { key: name, bubbles: true }));
  }
  rows[1].focus();
  key(rows[1], "k");
  key(rows[1], "ArrowDown");
  key(document.activeElement, "f");
  root.setAttribute("data-t-focus", String(document.activeElement === rows[2]));
  root.setAttribute("data-t-pressed",
    rows[2].querySelector('button.dec[data-d="fix"]').getAttribute("aria-pressed"));
  document.getElementById("review-download").click();
});
</script>"""

DOWNLOAD = """<script>
window.addEventListener("load", function () {
CAPTURE
  document.getElementById("review-download").click();
});
</script>"""


def _drive(chromium: str, report: Path, script: str, name: str, profile: Path) -> dict[str, str]:
    page = report.with_name(name)
    text = report.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", script.replace("CAPTURE", CAPTURE) + "</body>"))
    state = html_attributes(browse(chromium, page, profile, "--dump-dom").stdout)
    assert state.get("data-errors") == "0"
    return state


def test_mark_download_reload_apply(chromium: str, run: Run, tmp_path: Path) -> None:
    report = build_report(ReportRequest(run.folder, out=tmp_path / "report.html")).path
    data = collect(ReportRequest(run.folder))
    summary = read_run(run.folder).summary
    view = sorted(data.regions or [], key=region_priority)[:REGION_VIEW_LIMIT]
    gallery_first = data.gallery[0]["regions"][0]
    expected: dict[tuple[str, int], str] = {}
    for (image_id, region_id), decision in (
        ((gallery_first.image_id, gallery_first.region_id), "fix"),
        ((view[1].image_id, view[1].region_id), "keep"),
        ((view[2].image_id, view[2].region_id), "fix"),
    ):
        expected[(image_id, region_id)] = decision

    profile = tmp_path / "profile"  # one profile: localStorage carries over
    state = _drive(chromium, report, MARK, "marked.html", profile)
    assert state.get("data-t-focus") == "true"  # ArrowDown moved to the next row
    assert state.get("data-t-pressed") == "true"
    downloaded = json.loads(html.unescape(state["data-t-json"]))
    assert downloaded["version"] == 1 and downloaded["run"] == summary.run_id
    got = {(d["image_id"], d["region_id"]): d["decision"] for d in downloaded["decisions"]}
    assert got == expected

    again = _drive(chromium, report, DOWNLOAD, "marked.html", profile)
    assert json.loads(html.unescape(again["data-t-json"])) == downloaded  # kept on reload

    fresh = _drive(chromium, report, DOWNLOAD, "marked.html", tmp_path / "other-profile")
    assert json.loads(html.unescape(fresh["data-t-json"]))["decisions"] == []

    path = tmp_path / "review.json"
    path.write_text(html.unescape(state["data-t-json"]), encoding="utf-8")
    review = load_review(path)
    check_review(review, read_run(run.folder), read_run(run.folder).regions())
