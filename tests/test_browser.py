"""The real app in Debian's Chromium (Playwright): demo, every page, a slider, an upload,
the report download, two sessions.

The server runs ``streamlit run app.py`` on 127.0.0.1 with one-image demo batches
(``TEMPIPE_DEMO_IMAGES``, default 1 here). Screenshots of every step go to
``results/browser/`` (or ``$TEMPIPE_ARTIFACTS``); with ``TEMPIPE_DOCS_SCREENSHOTS=1`` the page
screenshots are also written, compressed, to ``docs/screenshots/`` for the README.
"""

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tempipe.io import save_micrograph
from tempipe.simulate import simulate_micrograph

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEMPIPE_ARTIFACTS", ROOT / "results" / "browser"))
DOCS = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
PAGES = ["Datasets", "Segmentation", "Shape inference", "Clusters", "Compare", "Report"]
HAS_MODEL = (ROOT / "models" / "shape_cnn.pt").is_file()
LONG_MS = 180_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"browser tests need Debian's Chromium at {CHROMIUM}")
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(os.environ)
    env.setdefault("TEMPIPE_DEMO_IMAGES", "1")
    env.pop("TEMPIPE_AUTOLOAD_DEMO", None)
    log = open(ARTIFACTS / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail(f"streamlit did not start; see {ARTIFACTS / 'server.log'}")
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_app(browser, url, height=1300):
    context = browser.new_context(viewport={"width": 1400, "height": height},
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(LONG_MS)
    page.goto(url)
    page.get_by_role("heading", name="Datasets", exact=True).wait_for()
    return page


def settle(page) -> None:
    """Wait until the script run finished (the running indicator is gone)."""
    time.sleep(0.4)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached")
    time.sleep(0.8)


def no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert "Traceback" not in page.content()


def shot(page, name: str, docs: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    if docs and os.environ.get("TEMPIPE_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        image.thumbnail((1100, 1100))
        image.quantize(colors=256).save(DOCS / f"{name}.png", optimize=True)


def particle_count(page) -> int:
    text = page.get_by_text("particles segmented", exact=False).first.inner_text()
    return int(re.search(r"(\d+) particles segmented", text).group(1))


def move_slider_and_wait(page, label: str, key: str) -> dict:
    """Move a segmentation slider by a key press and time the overlay's update.

    Asserts that both the overlay image and the particle count changed. Returns the
    seconds from key press to new overlay in the browser, and the server's own time
    (segmentation + rendering) from the caption.
    """
    image = page.locator("[data-testid='stPlotlyChart'] image").first
    image.wait_for()
    before, count = image.get_attribute("href"), particle_count(page)
    page.get_by_role("slider", name=label).focus()
    start = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(
        "old => { const i = document.querySelector(\"[data-testid='stPlotlyChart'] image\");"
        " return i && i.getAttribute('href') !== old; }", arg=before)
    seconds = time.perf_counter() - start
    settle(page)
    assert particle_count(page) != count
    caption = page.locator("[data-testid='stCaptionContainer']").filter(
        has_text="Updated in").first.inner_text()
    server = float(re.search(r"Updated in ([\d.]+) s", caption).group(1))
    return {"browser_seconds": round(seconds, 3), "server_seconds": server}


def go(page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name=name, exact=True).wait_for()
    settle(page)


@pytest.fixture(scope="module")
def demo_page(server, browser):
    page = open_app(browser, server, height=int(os.environ.get("TEMPIPE_SHOT_HEIGHT", 1300)))
    page.get_by_role("button", name="Load the demo batches").click()
    page.get_by_text("Loaded", exact=False).first.wait_for()
    settle(page)
    yield page
    page.context.close()


def test_demo_then_every_page(demo_page):
    page = demo_page
    no_exception(page)
    expect_plots = {"Segmentation": 1, "Shape inference": 2 if HAS_MODEL else 0,
                    "Clusters": 1, "Compare": 3, "Datasets": 0, "Report": 0}
    for i, name in enumerate(PAGES, start=1):
        go(page, name)
        if expect_plots[name]:
            page.locator(".js-plotly-plot .main-svg:visible").nth(expect_plots[name] - 1).wait_for()
        no_exception(page)
        shot(page, f"{i}-{name.split()[0].lower()}", docs=True)
    go(page, "Clusters")
    assert page.get_by_text("shape groups", exact=False).count() >= 1


def test_segmentation_slider_changes_overlay(demo_page):
    page = demo_page
    go(page, "Segmentation")
    timing = move_slider_and_wait(page, "min size", "End")    # 1.0: drops most particles
    shot(page, "segmentation-slider")
    (ARTIFACTS / "overlay_update_1024.json").write_text(json.dumps(timing))
    page.get_by_role("slider", name="min size").focus()
    page.keyboard.press("Home")
    settle(page)
    no_exception(page)


def test_report_download(demo_page, tmp_path):
    page = demo_page
    go(page, "Report")
    page.get_by_text("Report ready", exact=False).wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Report (HTML)").click()
    html = Path(info.value.path()).read_text()
    assert html.count("* plotly.js v") == 1
    assert "hot-injection (demo)" in html and "LARP (demo)" in html
    assert re.search(r"<td>[0-9a-f]{64}</td>", html)           # input files with sha256
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", html)  # date
    with page.expect_download() as info:
        page.get_by_role("button", name="Particles (CSV)").click()
    table = pd.read_csv(info.value.path())
    assert len(table) > 100 and "major_axis_length_nm" in table
    page.get_by_role("button", name="Prepare the ZIP (figures as PNG)").click()
    button = page.get_by_role("button", name="Everything (ZIP)")
    button.wait_for()
    with page.expect_download() as info:
        button.click()
    with zipfile.ZipFile(info.value.path()) as archive:
        names = archive.namelist()
        readme = archive.read("README.txt").decode()
    assert {"report.html", "particles.csv", "particles.parquet", "summary.json"} <= set(names)
    pngs = [n for n in names if n.endswith(".png")]
    assert pngs, readme
    shot(page, "report-ready")
    no_exception(page)


def test_upload_tiff_in_a_separate_session(server, browser, tmp_path):
    sim = simulate_micrograph((2048, 2048), n_particles=500, pixel_size_nm=0.3,
                              scale_bar=True, rng=5)
    tif = save_micrograph(tmp_path / "big-field.tif", sim.image, 0.3)
    page = open_app(browser, server)
    settle(page)
    assert page.get_by_text("None yet.").count() == 1   # this session sees no other data
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(tif))
    page.get_by_text("0.3 nm/px", exact=False).first.wait_for(state="attached")
    page.get_by_role("button", name="Create dataset").click()
    page.get_by_text("created with 1 image(s)", exact=False).wait_for()
    settle(page)
    shot(page, "upload-tiff")
    go(page, "Segmentation")
    timing = move_slider_and_wait(page, "split h", "End")     # 2.0: splits far less
    (ARTIFACTS / "overlay_update_2048.json").write_text(json.dumps(timing))
    assert page.get_by_text("at 1/2 resolution", exact=False).count() == 1
    shot(page, "upload-2048-segmentation")
    no_exception(page)
    page.context.close()
