"""What a person looks at after ``funduskit predict``: overlay pictures and one HTML page.

* :func:`render_overlay` draws, on a photograph, the vessel map as a tint, the disc and cup
  outlines and the fovea marker; beside the whole photograph it puts a close-up of the disc.
* :func:`write_report` writes ``report.html``: one row per eye (overlay thumbnail, glaucoma
  probability and ensemble spread, vCDR, fovea, eye side, errors), sorted by risk, re-sortable by
  clicking a column header. The page is self-contained (inline CSS and JavaScript, no external
  assets) and links the overlays by relative paths, so the output folder can be moved or zipped.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from funduskit import __version__
from funduskit.core.files import atomic_write_bytes, atomic_write_text
from funduskit.inference.quality import GRADES
from funduskit.inference.results import ImageResult

REPORT_FILE = "report.html"
OVERLAY_HEIGHT = 480

# RGB colours of the overlay.
DISC_COLOUR = (60, 255, 60)
CUP_COLOUR = (40, 120, 255)
VESSEL_COLOUR = (0, 255, 255)
FOVEA_COLOUR = (255, 255, 255)
VESSEL_OPACITY = 0.55
#: The close-up shows a square of this many disc diameters around the disc centre.
CLOSE_UP_DIAMETERS = 2.5


# --------------------------------------------------------------------------------------------
# Overlays
# --------------------------------------------------------------------------------------------


def render_overlay(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    fovea: tuple[float, float] | None = None,
    vessels: np.ndarray | None = None,
    *,
    height: int = OVERLAY_HEIGHT,
) -> np.ndarray:
    """Draw the predictions on a photograph.

    Args:
        image: (H, W, 3) uint8 RGB photograph.
        mask: (H, W) uint8 REFUGE mask (0 = cup, 128 = rim, 255 = background), or None.
        fovea: (x, y) in original pixels, or None.
        vessels: (H', W') float vessel probability in [0, 1] over the whole photograph (any
            size: it is resized to the photograph's), or None.
        height: height of the picture returned.
    Returns:
        (height, w + height, 3) uint8 RGB: the whole photograph (scaled to ``height``), then a
        ``height`` x ``height`` close-up of the disc (a grey panel when there is no disc).
    """
    source_h, source_w = image.shape[:2]
    scale = height / source_h
    whole_size = (max(1, round(source_w * scale)), height)
    whole_matrix = np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]])
    whole = _panel(image, mask, fovea, vessels, whole_matrix, whole_size, downscale=True)

    disc_box = _disc_box(mask) if mask is not None else None
    if disc_box is None:
        close_up = np.full((height, height, 3), 64, dtype=np.uint8)
        cv2.putText(close_up, "no disc found", (12, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                    (230, 230, 230), 1, cv2.LINE_AA)
    else:
        centre_x, centre_y, side = disc_box
        zoom = height / side
        matrix = np.array([[zoom, 0.0, height / 2 - zoom * centre_x], [0.0, zoom, height / 2 - zoom * centre_y]])
        close_up = _panel(image, mask, fovea, vessels, matrix, (height, height), downscale=False)
    return np.concatenate([whole, close_up], axis=1)


def write_overlay(path: str | Path, overlay: np.ndarray) -> Path:
    """Save an RGB overlay as PNG, atomically."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB array
        raise RuntimeError(f"cannot encode the overlay for {path}")
    return atomic_write_bytes(path, encoded.tobytes())


def _disc_box(mask: np.ndarray) -> tuple[float, float, float] | None:
    """(centre x, centre y, side) of the close-up square around the disc, or None."""
    rows, cols = np.nonzero(mask < 255)
    if rows.size == 0:
        return None
    diameter = max(np.ptp(rows), np.ptp(cols)) + 1
    side = max(CLOSE_UP_DIAMETERS * diameter, 48.0)
    return float(cols.mean()), float(rows.mean()), float(side)


def _panel(
    image: np.ndarray,
    mask: np.ndarray | None,
    fovea: tuple[float, float] | None,
    vessels: np.ndarray | None,
    matrix: np.ndarray,
    size: tuple[int, int],
    *,
    downscale: bool,
) -> np.ndarray:
    """One view: ``matrix`` (2x3) maps original pixels to the view of ``size`` (w, h)."""
    panel = _warp(image, matrix, size, cv2.INTER_AREA if downscale else cv2.INTER_LINEAR, 0)
    if vessels is not None:
        source_h, source_w = image.shape[:2]
        to_original = np.diag([source_w / vessels.shape[1], source_h / vessels.shape[0], 1.0])
        vessel_matrix = matrix @ to_original
        alpha = _warp(vessels.astype(np.float32), vessel_matrix, size, cv2.INTER_LINEAR, 0)
        alpha = np.clip(alpha, 0.0, 1.0)[..., None] * VESSEL_OPACITY
        tint = np.asarray(VESSEL_COLOUR, dtype=np.float32)
        panel = (panel.astype(np.float32) * (1 - alpha) + tint * alpha).round().astype(np.uint8)
    panel = np.ascontiguousarray(panel)
    if mask is not None:
        view_mask = _warp(mask, matrix, size, cv2.INTER_NEAREST, 255)
        thickness = max(1, round(size[1] / 240))
        for region, colour in ((view_mask < 255, DISC_COLOUR), (view_mask == 0, CUP_COLOUR)):
            contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(panel, contours, -1, colour, thickness, cv2.LINE_AA)
    if fovea is not None and all(math.isfinite(v) for v in fovea):
        x, y = matrix @ np.array([fovea[0], fovea[1], 1.0])
        point = (round(float(x) - 0.5), round(float(y) - 0.5))  # the pixel holding the point
        marker = max(12, size[1] // 24)
        cv2.drawMarker(panel, point, (0, 0, 0), cv2.MARKER_CROSS, marker, 4, cv2.LINE_AA)
        cv2.drawMarker(panel, point, FOVEA_COLOUR, cv2.MARKER_CROSS, marker, 2, cv2.LINE_AA)
    return panel


def _warp(array: np.ndarray, matrix: np.ndarray, size: tuple[int, int], interpolation: int, border: float) -> np.ndarray:
    """``array`` seen through the affine ``matrix`` (2x3) at ``size`` (w, h).

    ``INTER_AREA`` means a plain down-scaling of the whole array (cv2.resize, no aliasing).
    """
    if interpolation == cv2.INTER_AREA:
        return cv2.resize(array, size, interpolation=interpolation)
    # ``matrix`` maps continuous coordinates (pixel i covers [i, i + 1)); OpenCV's pixel centres
    # sit at integers, so shift by half a pixel on both sides.
    centred = matrix.astype(np.float64).copy()
    centred[:, 2] += centred[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(array, centred, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


# --------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    key: str  # sort key, also the cell's data attribute; "" = not sortable
    label: str
    kind: str  # "number" or "text"
    value: Callable[[ImageResult], object]  # what sorting uses
    show: Callable[[ImageResult], str]  # HTML of the cell
    first: str = "desc"  # direction of the first click
    title: str = ""


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _risk_cell(result: ImageResult) -> str:
    probability = result.glaucoma_probability
    if probability is None:
        return ""
    level = "high" if probability >= 0.5 else "low"
    return (f'<span class="risk {level}">{probability:.3f}</span>'
            f'<span class="bar"><span class="{level}" style="width:{probability * 100:.1f}%"></span></span>')


def _overlay_cell(result: ImageResult) -> str:
    if not result.overlay_file:
        return '<span class="none">—</span>'
    href = html.escape(urllib.parse.quote(result.overlay_file), quote=True)
    alt = html.escape(f"overlay of {result.image_id}", quote=True)
    return f'<a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'


def _fovea_cell(result: ImageResult) -> str:
    if result.fovea_x is None or result.fovea_y is None:
        return ""
    spread = f' <span class="spread">±{result.fovea_spread:.1f}</span>' if result.fovea_spread is not None else ""
    return f"{result.fovea_x:.1f}, {result.fovea_y:.1f}{spread}"


def _quality_cell(result: ImageResult) -> str:
    if not result.quality:
        return ""
    reasons = f'<span class="reasons">{html.escape(result.quality_reasons)}</span>' if result.quality_reasons else ""
    return f'<span class="grade {html.escape(result.quality)}">{html.escape(result.quality)}</span>{reasons}'


COLUMNS: tuple[_Column, ...] = (
    _Column("image", "Image", "text", lambda r: r.image_id, lambda r: html.escape(r.image_id), "asc"),
    _Column("", "Overlay", "text", lambda r: "", _overlay_cell),
    _Column("probability", "Glaucoma risk", "number", lambda r: r.glaucoma_probability, _risk_cell,
            title="ensemble mean of the classifiers' probabilities"),
    _Column("spread", "Spread", "number", lambda r: r.glaucoma_spread,
            lambda r: _number(r.glaucoma_spread, 3), title="standard deviation across ensemble members"),
    _Column("vcdr", "vCDR", "number", lambda r: r.vcdr, lambda r: _number(r.vcdr, 3),
            title="vertical cup-to-disc ratio (REFUGE definition)"),
    _Column("hcdr", "hCDR", "number", lambda r: r.hcdr, lambda r: _number(r.hcdr, 3),
            title="horizontal cup-to-disc ratio"),
    _Column("disc_area", "Disc area", "number", lambda r: r.disc_area,
            lambda r: "" if r.disc_area is None else f"{r.disc_area:,}", title="pixels"),
    _Column("cup_area", "Cup area", "number", lambda r: r.cup_area,
            lambda r: "" if r.cup_area is None else f"{r.cup_area:,}", title="pixels"),
    _Column("", "Fovea (x, y)", "text", lambda r: "", _fovea_cell, title="original pixels; ± ensemble spread"),
    _Column("eye", "Eye", "text", lambda r: r.eye or "", lambda r: html.escape(r.eye or ""), "asc"),
    _Column("quality", "Quality", "text", lambda r: r.quality or "", _quality_cell, "desc",
            title="the quality gate's grade and why: good, usable or reject (no answers)"),
    _Column("error", "Error", "text", lambda r: r.error or "",
            lambda r: f'<span class="error">{html.escape(r.error)}</span>' if r.error else "", "desc"),
)


def risk_order(results: Sequence[ImageResult]) -> list[ImageResult]:
    """Highest glaucoma probability first; photographs without one (errors) last, by name."""
    return sorted(
        results,
        key=lambda r: (r.glaucoma_probability is None, -(r.glaucoma_probability or 0.0), r.image_id),
    )


def write_report(
    results: Sequence[ImageResult],
    out_dir: str | Path,
    *,
    title: str = "funduskit report",
    settings: Mapping[str, object] | None = None,
    passed_over: Sequence[tuple[str, str]] = (),
    notice: str = "",
) -> Path:
    """Write ``out_dir/report.html`` for ``results`` (overlay paths relative to ``out_dir``).

    Args:
        results: one record per photograph (any order; the page starts sorted by risk).
        out_dir: the prediction folder.
        title: page title.
        settings: shown as a key/value list under the title (models, thresholds, options).
        passed_over: ``(path, reason)`` of every file given or found that was not predicted.
        notice: a warning shown in the page's header (e.g. that starter models answered).
    Returns:
        The path of the page.
    """
    ordered = risk_order(results)
    header = "".join(_header_cell(column) for column in COLUMNS)
    rows = "\n".join(_row(result, index) for index, result in enumerate(ordered))
    errors = sum(not result.ok for result in results)
    flagged = sum((result.glaucoma_probability or 0.0) >= 0.5 for result in results)
    generated = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rejected = sum(result.ok and result.quality == "reject" for result in results)
    summary = (f"{len(results)} photograph{'s' if len(results) != 1 else ''}; {flagged} with glaucoma "
               f"probability ≥ 0.5; {rejected} rejected by the quality gate; {errors} could not be read"
               + (f"; {len(passed_over)} other file{'s' if len(passed_over) != 1 else ''} not predicted (listed below)."
                  if passed_over else "."))
    not_predicted = ""
    if passed_over:
        items = "".join(f"<li><code>{html.escape(path)}</code>: {html.escape(reason)}</li>" for path, reason in passed_over)
        not_predicted = f'<h2>Files not predicted</h2>\n<ul class="passed-over">{items}</ul>'
    details = "".join(
        f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(_setting(value))}</dd>"
        for key, value in (settings or {}).items()
    )
    page = _PAGE.format(
        title=html.escape(title),
        summary=html.escape(summary),
        notice=f'<p class="notice" role="note">{html.escape(notice)}</p>' if notice else "",
        filter=_filter(results),
        generated=html.escape(generated),
        version=html.escape(__version__),
        details=details,
        header=header,
        rows=rows,
        not_predicted=not_predicted,
        css=_CSS,
        script=_SCRIPT,
    )
    return atomic_write_text(Path(out_dir) / REPORT_FILE, page)


def _filter(results: Sequence[ImageResult]) -> str:
    """Check boxes showing or hiding the photographs of each quality grade (and the unreadable)."""
    counts = {grade: sum(r.ok and r.quality == grade for r in results) for grade in GRADES}
    counts["error"] = sum(not r.ok for r in results)
    boxes = "".join(f'<label><input type="checkbox" checked data-grade="{grade}"> {grade} ({count})</label>'
                    for grade, count in counts.items() if count)
    return f'<p class="filter">Show: {boxes}</p>' if boxes else ""


def _setting(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _header_cell(column: _Column) -> str:
    tip = f' title="{html.escape(column.title, quote=True)}"' if column.title else ""
    if not column.key:
        return f"<th{tip}>{html.escape(column.label)}</th>"
    return (f'<th data-key="{column.key}" data-type="{column.kind}" data-first="{column.first}"{tip}>'
            f'<button type="button">{html.escape(column.label)}</button></th>')


def _row(result: ImageResult, index: int) -> str:
    cells = []
    for column in COLUMNS:
        value = column.value(result)
        data = "" if value is None else str(value)
        attribute = f' data-value="{html.escape(data, quote=True)}"' if column.key else ""
        cells.append(f"<td{attribute}>{column.show(result)}</td>")
    status = "error" if not result.ok else "ok"
    name = html.escape(result.image_id, quote=True)
    grade = html.escape(result.quality or ("error" if not result.ok else ""), quote=True)
    return (f'<tr class="{status}" data-order="{index}" data-image="{name}" data-grade="{grade}">'
            f'{"".join(cells)}</tr>')


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
p.summary { margin: .2em 0 .8em; }
p.notice { background: #fff4d6; border-left: 4px solid #d99a00; padding: .5em .8em; margin: .4em 0; }
dl.settings { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; font-size: 12px;
  color: #555; margin: 0 0 1em; }
dl.settings dt { font-weight: 600; } dl.settings dd { margin: 0; font-family: ui-monospace, monospace; }
p.legend span { display: inline-block; width: 1.6em; height: .35em; vertical-align: middle; margin: 0 .3em 0 .8em; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px #0002; }
th, td { padding: .35em .6em; border-bottom: 1px solid #e4e4e4; text-align: right; vertical-align: middle; }
th { position: sticky; top: 0; background: #f0f0f3; z-index: 1; }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer; padding: 0; }
th[aria-sort="ascending"] button::after { content: " ▲"; }
th[aria-sort="descending"] button::after { content: " ▼"; }
td:first-child, th:first-child, td:last-child { text-align: left; }
td img { height: 120px; display: block; border-radius: 3px; }
tr.error { background: #fff4f4; }
.error { color: #b00020; }
.risk.high { color: #b00020; font-weight: 700; }
.bar { display: block; width: 6em; height: 5px; background: #eee; margin-top: 3px; margin-left: auto; }
.bar span { display: block; height: 100%; background: #3a7; } .bar span.high { background: #d33; }
.spread, .none { color: #888; }
.grade { font-weight: 600; } .grade.good { color: #2a7a3a; } .grade.usable { color: #a06800; }
.grade.reject { color: #b00020; } .reasons { display: block; font-size: 11px; color: #666; max-width: 14em; }
p.filter label { margin-right: 1em; }
footer { margin-top: 1em; color: #777; font-size: 12px; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("results");
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function cellValue(row, index, type) {
    var raw = row.cells[index].getAttribute("data-value") || "";
    if (raw === "") { return null; }
    return type === "number" ? parseFloat(raw) : raw.toLowerCase();
  }
  function sortBy(key, direction) {
    var index = headers.findIndex(function (h) { return h.getAttribute("data-key") === key; });
    if (index < 0) { return false; }
    var type = headers[index].getAttribute("data-type");
    var sign = direction === "asc" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type), y = cellValue(b, index, type);
      if (x === null || y === null) {  // missing values last, whichever the direction
        if (x !== y) { return x === null ? 1 : -1; }
      } else if (x !== y) {
        return x < y ? -sign : sign;
      }
      return a.getAttribute("data-order") - b.getAttribute("data-order");
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    headers[index].setAttribute("aria-sort", direction === "asc" ? "ascending" : "descending");
    table.setAttribute("data-sort", key + ":" + direction);
    return true;
  }
  headers.forEach(function (header) {
    var key = header.getAttribute("data-key");
    if (!key) { return; }
    header.addEventListener("click", function () {
      var current = (table.getAttribute("data-sort") || "").split(":");
      var direction = current[0] === key ? (current[1] === "asc" ? "desc" : "asc") : header.getAttribute("data-first");
      sortBy(key, direction);
      try { history.replaceState(null, "", "#sort=" + key + ":" + direction); } catch (e) { /* file:// */ }
    });
  });
  var boxes = Array.prototype.slice.call(document.querySelectorAll("p.filter input[data-grade]"));
  function filterRows() {
    var shown = {};
    boxes.forEach(function (box) { shown[box.getAttribute("data-grade")] = box.checked; });
    Array.prototype.slice.call(body.rows).forEach(function (row) {
      var grade = row.getAttribute("data-grade") || "";
      row.hidden = grade in shown && !shown[grade];
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", filterRows); });
  var asked = /^#sort=([a-z_]+):(asc|desc)$/.exec(window.location.hash);
  if (!(asked && sortBy(asked[1], asked[2]))) { sortBy("probability", "desc"); }
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{title}</h1>
{notice}
<p class="summary">{summary}</p>
<dl class="settings">{details}</dl>
<p class="legend">Overlays:<span style="background:#3cff3c"></span>optic disc<span style="background:#2878ff"></span>optic cup
<span style="background:#00e5e5"></span>vessels<span style="background:#fff;border:1px solid #000;height:.6em;width:.6em"></span>fovea (cross).
Click a column header to sort; click again to reverse.</p>
{filter}
<table id="results">
<thead><tr>{header}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
{not_predicted}
<footer>Generated {generated} by funduskit {version}. Not a diagnosis: research software.</footer>
<script>{script}</script>
</body>
</html>
"""
