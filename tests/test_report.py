"""Overlays and the HTML report: drawing, page structure, and sorting in a real (headless) browser."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser_helpers import CHROMIUM, CHROMIUM_FLAGS, needs_chromium

from funduskit.inference.report import (
    CUP_COLOUR,
    DISC_COLOUR,
    FOVEA_COLOUR,
    render_overlay,
    risk_order,
    write_overlay,
    write_report,
)
from funduskit.inference.results import ImageResult, write_tables


def _photo_and_mask() -> tuple[np.ndarray, np.ndarray]:
    """A 300 x 400 reddish photo and a REFUGE mask: disc radius 40 at (300, 150), cup radius 20."""
    image = np.zeros((300, 400, 3), np.uint8)
    image[:] = (150, 60, 30)
    mask = np.full((300, 400), 255, np.uint8)
    cv2.circle(mask, (300, 150), 40, 128, -1)
    cv2.circle(mask, (300, 150), 20, 0, -1)
    return image, mask


def _has_colour(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return (np.abs(image.astype(int) - colour).max(axis=-1) <= tolerance)


def test_overlay_draws_outlines_fovea_and_close_up() -> None:
    image, mask = _photo_and_mask()
    overlay = render_overlay(image, mask, fovea=(100.0, 160.0), height=240)
    assert overlay.shape == (240, 320 + 240, 3) and overlay.dtype == np.uint8
    whole, close_up = overlay[:, :320], overlay[:, 320:]
    # Outlines of the disc (centre (240, 120), radius 32 at this scale) and of the cup (radius 16).
    disc_ys, disc_xs = np.nonzero(_has_colour(whole, DISC_COLOUR))
    cup_ys, cup_xs = np.nonzero(_has_colour(whole, CUP_COLOUR))
    assert np.abs(np.hypot(disc_xs - 240, disc_ys - 120) - 32).max() < 4
    assert np.abs(np.hypot(cup_xs - 240, cup_ys - 120) - 16).max() < 4
    # The fovea cross is white at (80, 128) on the whole view and absent from the close-up.
    assert _has_colour(whole[120:137, 72:89], FOVEA_COLOUR).sum() > 10
    assert _has_colour(close_up, FOVEA_COLOUR).sum() == 0
    # The close-up is centred on the disc and shows it larger: outline radius ~ 240 / 2.5 / 2.
    ys, xs = np.nonzero(_has_colour(close_up, DISC_COLOUR))
    assert abs(xs.mean() - 120) < 3 and abs(ys.mean() - 120) < 3
    assert np.abs(np.hypot(xs - 120, ys - 120) - 48).max() < 5


def test_overlay_tints_vessels_and_survives_missing_parts() -> None:
    image, _ = _photo_and_mask()
    vessels = np.zeros((30, 40), np.float32)  # any size: it covers the whole photo
    vessels[:, 10] = 1.0  # a vertical vessel at original x 100..110
    overlay = render_overlay(image, None, None, vessels, height=300)
    assert overlay.shape == (300, 700, 3)
    assert overlay[150, 105, 1] > 150 and overlay[150, 200, 1] == 60  # tinted only on the vessel
    assert (overlay[:, 400:] == overlay[0, 450]).mean() > 0.9  # grey "no disc found" panel


def test_write_overlay_is_a_png_of_the_right_colours(tmp_path: Path) -> None:
    image, mask = _photo_and_mask()
    overlay = render_overlay(image, mask, (50.0, 50.0))
    path = write_overlay(tmp_path / "overlays" / "x.png", overlay)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, overlay)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temporary file left


# --------------------------------------------------------------------------------------------
# The HTML page
# --------------------------------------------------------------------------------------------

RESULTS = [
    ImageResult("low.jpg", "in/low.jpg", glaucoma_probability=0.10, glaucoma_spread=0.01, vcdr=0.30, hcdr=0.31,
                disc_area=5000, cup_area=900, fovea_x=10.0, fovea_y=20.0, fovea_spread=1.5, eye="left",
                mask_file="segmentation/low.png", overlay_file="overlays/low.png"),
    ImageResult("<b>bad</b>.jpg", "in/bad.jpg", status="error", error="cannot decode <this> & that"),
    ImageResult("high one.jpg", "in/high one.jpg", glaucoma_probability=0.90, glaucoma_spread=0.05, vcdr=0.70,
                hcdr=0.60, disc_area=6000, cup_area=3000, fovea_x=12.0, fovea_y=21.0, eye="right",
                mask_file="segmentation/high one.png", overlay_file="overlays/high one.png"),
    ImageResult("mid.jpg", "in/mid.jpg", glaucoma_probability=0.50, glaucoma_spread=0.20, vcdr=0.20, hcdr=0.25,
                disc_area=5500, cup_area=500, fovea_x=11.0, fovea_y=19.0, eye=None,
                mask_file="segmentation/mid.png", overlay_file="overlays/mid.png"),
]
RISK_ORDER = ["high one.jpg", "mid.jpg", "low.jpg", "<b>bad</b>.jpg"]


class _Rows(HTMLParser):
    """Collects the page's table rows (data-image), header keys, and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.keys: list[str] = []
        self.references: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag == "tr" and "data-image" in attributes:
            self.rows.append(attributes["data-image"] or "")
        if tag == "th" and attributes.get("data-key"):
            self.keys.append(attributes["data-key"] or "")
        for name in ("src", "href"):
            if attributes.get(name):
                self.references.append(attributes[name] or "")


@pytest.fixture
def report(tmp_path: Path) -> Path:
    overlays = tmp_path / "overlays"
    overlays.mkdir()
    image, mask = _photo_and_mask()
    for result in RESULTS:
        if result.overlay_file:
            write_overlay(tmp_path / result.overlay_file, render_overlay(image, mask, (50.0, 60.0), height=120))
    return write_report(RESULTS, tmp_path, settings={"models": "disc x4", "thresholds": {"disc": 0.5}})


def test_report_structure_is_self_contained_and_sorted_by_risk(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    parser = _Rows()
    parser.feed(page)
    assert parser.rows == RISK_ORDER == [r.image_id for r in risk_order(RESULTS)]
    assert {"image", "probability", "spread", "vcdr", "eye", "error"} <= set(parser.keys)
    assert "link" not in parser.tags and "<script src" not in page  # inline CSS and JS only
    assert all(not ref.startswith(("http:", "https:", "//", "/")) for ref in parser.references)
    assert "overlays/high%20one.png" in parser.references
    for reference in parser.references:
        assert (report.parent / reference.replace("%20", " ")).is_file()
    assert "&lt;b&gt;bad&lt;/b&gt;.jpg" in page and "cannot decode &lt;this&gt; &amp; that" in page
    assert "<b>bad</b>" not in page
    assert "4 photographs; 2 with glaucoma probability ≥ 0.5; 0 rejected by the quality gate; 1 could not be read." in page
    assert "<dd>{&quot;disc&quot;: 0.5}</dd>" in page


def test_result_tables_round_trip(tmp_path: Path) -> None:
    csv_path, json_path = write_tables(tmp_path, RESULTS)
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("image_id,image_path,status,error,width,height")
    assert "settings_key" not in lines[0]
    records = json.loads(json_path.read_text())
    assert [ImageResult.from_dict(r) for r in records] == RESULTS


# --------------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------------

def _dump_dom(url: str, user_data_dir: Path) -> str:
    completed = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--virtual-time-budget=2000", "--dump-dom", url],
        capture_output=True, text=True, timeout=90,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@needs_chromium
def test_browser_renders_rows_and_applies_the_sort_in_the_address(report: Path, tmp_path: Path) -> None:
    url = report.as_uri()
    parser = _Rows()
    parser.feed(_dump_dom(url, tmp_path / "profile"))
    assert parser.rows == RISK_ORDER  # the script ran and kept the risk order
    parser = _Rows()
    parser.feed(_dump_dom(url + "#sort=vcdr:asc", tmp_path / "profile"))
    assert parser.rows == ["mid.jpg", "low.jpg", "high one.jpg", "<b>bad</b>.jpg"]  # missing values last


class _DevTools:
    """Chromium driven over ``--remote-debugging-pipe`` (the DevTools protocol on fds 3 and 4)."""

    def __init__(self, user_data_dir: Path):
        # The shell wires our stdin/stdout pipes to chromium's fds 3 (commands in) and 4 (replies out).
        self.process = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', CHROMIUM, *CHROMIUM_FLAGS,
             f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "--window-size=1200,800"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.next_id = 0
        self.buffer = b""
        self.session: str | None = None

    def call(self, method: str, timeout: float = 30.0, **params: object) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\0")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    assert "error" not in reply, reply
                    return reply["result"]
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError(f"no reply to {method}")
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        deadline = time.monotonic() + 30
        loaded = "document.readyState === 'complete' && location.protocol === 'file:'"
        while not self.evaluate(loaded):
            assert time.monotonic() < deadline, "page did not load"
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the element."""
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box  # type: ignore[misc]
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (TimeoutError, RuntimeError, BrokenPipeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@needs_chromium
def test_clicking_a_column_header_sorts_the_table(report: Path, tmp_path: Path) -> None:
    browser = _DevTools(tmp_path / "profile")
    try:
        browser.open(report.as_uri())
        rows = "Array.from(document.querySelectorAll('#results tbody tr')).map(r => r.dataset.image)"
        assert browser.evaluate(rows) == RISK_ORDER
        browser.click('th[data-key="vcdr"] button')
        assert browser.evaluate(rows) == ["high one.jpg", "low.jpg", "mid.jpg", "<b>bad</b>.jpg"]
        assert browser.evaluate("document.querySelector('th[data-key=\"vcdr\"]').getAttribute('aria-sort')") == "descending"
        browser.click('th[data-key="vcdr"] button')
        assert browser.evaluate(rows) == ["mid.jpg", "low.jpg", "high one.jpg", "<b>bad</b>.jpg"]
        browser.click('th[data-key="image"] button')  # text columns start ascending
        assert browser.evaluate(rows) == ["<b>bad</b>.jpg", "high one.jpg", "low.jpg", "mid.jpg"]
        browser.click('th[data-key="probability"] button')
        assert browser.evaluate(rows) == RISK_ORDER
        loaded = "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
        deadline = time.monotonic() + 15  # on two busy cores the thumbnails may still be decoding
        while (images := browser.evaluate(loaded)) != [True, True, True] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert images == [True, True, True]  # the overlay thumbnails load from relative paths
    finally:
        browser.close()


@needs_chromium
def test_the_quality_check_boxes_hide_and_show_each_grade(tmp_path: Path) -> None:
    graded = [
        ImageResult("good.jpg", "in/good.jpg", glaucoma_probability=0.2, quality="good", quality_reasons=""),
        ImageResult("soft.jpg", "in/soft.jpg", glaucoma_probability=0.4, quality="usable",
                    quality_reasons="out of focus"),
        ImageResult("strip.png", "in/strip.png", quality="reject",
                    quality_reasons="not a fundus photograph (aspect ratio)"),
        ImageResult("broken.jpg", "in/broken.jpg", status="error", error="cannot decode"),
    ]
    page = write_report(graded, tmp_path, notice="starter models answered: not a diagnosis")
    text = page.read_text()
    assert "1 rejected by the quality gate" in text and "not a fundus photograph (aspect ratio)" in text
    assert '<p class="notice" role="note">starter models answered: not a diagnosis</p>' in text
    browser = _DevTools(tmp_path / "profile")
    shown = ("Array.from(document.querySelectorAll('#results tbody tr')).filter(r => !r.hidden)"
             ".map(r => r.dataset.image)")
    try:
        browser.open(page.as_uri())
        assert sorted(browser.evaluate(shown)) == ["broken.jpg", "good.jpg", "soft.jpg", "strip.png"]
        browser.click('p.filter input[data-grade="reject"]')
        browser.click('p.filter input[data-grade="error"]')
        assert sorted(browser.evaluate(shown)) == ["good.jpg", "soft.jpg"]
        browser.click('p.filter input[data-grade="reject"]')
        assert sorted(browser.evaluate(shown)) == ["good.jpg", "soft.jpg", "strip.png"]
    finally:
        browser.close()
