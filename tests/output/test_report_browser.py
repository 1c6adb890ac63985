"""The report in a real browser: headless Chromium loads it, runs its script, draws it.

Chromium is Debian's ``chromium`` package. When it is missing the test installs it with
apt-get (CI runs as root); under CI=true the test must run, so a failed install fails it.
The page's own script records script errors, broken pictures and readiness as attributes
on <html>, which ``--dump-dom`` shows after the scripts ran; console messages come from
``--enable-logging=stderr``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from segaudit.commands.report import ReportRequest, build_report
from tests.output.test_report import EVIL_ID, Run, make_run, parse, read_csv

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",  # let load handlers run before the DOM is dumped
)
CONSOLE = re.compile(r":CONSOLE[:(].*source: file://")


def _install() -> str | None:
    """apt-get install chromium; the reason it failed, or None."""
    if os.geteuid() != 0:
        return "not root, cannot apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:  # no apt-get, or it hung
            return f"{' '.join(command)} failed: {error}"
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr[-500:]}"
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        problem = _install()
        found = CHROMIUM if Path(CHROMIUM).exists() else None
        if found is None:
            message = (
                f"headless Chromium is needed: {problem or 'chromium not found after install'}"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    return found


def browse(
    chromium: str, page: Path, profile: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def html_attributes(dom: str) -> dict[str, str]:
    tag = re.search(r"<html([^>]*)>", dom)
    assert tag is not None, dom[:300]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(1)))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return make_run(tmp_path_factory.mktemp("browser"))


def test_report_in_headless_chromium(chromium: str, run: Run, tmp_path: Path) -> None:
    report = build_report(ReportRequest(run.folder)).path
    loaded = browse(chromium, report, tmp_path / "profile", "--dump-dom")
    dom = loaded.stdout
    state = html_attributes(dom)
    assert state.get("data-ready") == "1", "the page's script did not finish"
    assert state.get("data-errors") == "0", "script errors on the page"
    assert state.get("data-broken-images") == "0"
    assert int(state["data-images"]) == len(parse(report).images) > 0
    messages = [line for line in loaded.stderr.splitlines() if CONSOLE.search(line)]
    assert messages == [], messages

    gallery = re.findall(r'<article class="card" data-image-id="([^"]*)"', dom)
    ranking = read_csv(run.folder / "ranking.csv")
    assert gallery[0] == ranking[0]["image_id"], "the worst image must come first"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text...
    assert len(re.findall(r"<script\b", dom)) == 3  # ...and no new element
    assert EVIL_ID in run.ids and f"showing {len(run.ids)} of {len(run.ids)}" in dom

    shot = tmp_path / "shot.png"
    browse(
        chromium, report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000"
    )
    with Image.open(shot) as picture:
        assert picture.size == (1280, 2000)
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # drawn, not blank


def test_the_checks_can_fail(chromium: str, run: Run, tmp_path: Path) -> None:
    """A page with a script error, a console message and a broken picture is caught."""
    report = build_report(ReportRequest(run.folder, out=tmp_path / "ok.html")).path
    bad = tmp_path / "bad.html"
    broken = '<img src="data:image/png;base64,AAAA"><script>console.error("x"); throw 1;</script>'
    bad.write_text(report.read_text(encoding="utf-8").replace("<main>", "<main>" + broken, 1))
    loaded = browse(chromium, bad, tmp_path / "profile", "--dump-dom")
    state = html_attributes(loaded.stdout)
    assert state.get("data-errors") == "1"
    assert state.get("data-broken-images") == "1"
    assert any(CONSOLE.search(line) for line in loaded.stderr.splitlines())


def test_sorting_filtering_and_zoom_work(chromium: str, run: Run, tmp_path: Path) -> None:
    """Click a picture, sort by score (descending), filter by class: read the results back."""
    report = build_report(ReportRequest(run.folder, out=tmp_path / "ok.html")).path
    regions = read_csv(run.folder / "regions.csv")
    name = regions[0]["given"]
    involved = {r["image_id"] for r in regions if name in (r["given"], r["predicted"])}
    driver = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  document.querySelector("img[data-zoom]").click();
  var open = document.getElementById("lightbox").classList.contains("open");
  root.setAttribute("data-t-zoom", String(open));
  var th = document.querySelector('#all-table th[data-sort="score"]');
  th.click(); th.click();
  root.setAttribute("data-t-first", document.querySelector("#all-table tbody tr").dataset.id);
  var select = document.getElementById("f-class");
  select.value = NAME;
  select.dispatchEvent(new Event("change"));
  root.setAttribute("data-t-count", document.getElementById("f-count").textContent);
});
</script>""".replace("NAME", json.dumps(name))
    driven = tmp_path / "driven.html"
    driven.write_text(report.read_text(encoding="utf-8").replace("</body>", driver + "</body>"))
    state = html_attributes(browse(chromium, driven, tmp_path / "profile", "--dump-dom").stdout)
    assert state.get("data-errors") == "0"
    assert state.get("data-t-zoom") == "true"
    ranking = [r for r in read_csv(run.folder / "ranking.csv") if r["label_quality"]]
    highest = max(ranking, key=lambda r: float(r["label_quality"]))
    assert state.get("data-t-first") == highest["image_id"]
    assert state.get("data-t-count") == f"showing {len(involved)} of {len(run.ids)}"
