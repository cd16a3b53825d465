"""A contact sheet of synthetic cases beside a real photograph, to judge realism by eye.

``python -m funduskit.synthetic.contact_sheet docs/synthetic-contact-sheet.png`` writes the sheet
shown in ``docs/synthetic-data.md``: row 1 the photos, row 2 their vessel masks with the disc
(green) and cup (blue) outlines and the fovea (cross), row 3 close-ups of the disc; the last
column is the real ``skimage.data.retina()`` photograph (CC0, no labels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from funduskit.synthetic.case import CaseParams
from funduskit.synthetic.dataset import case_rng
from funduskit.synthetic.params import draw_case_params
from funduskit.synthetic.render import render_case

# (camera, eye, label) of the columns, one synthetic case each.
SHOWCASE: tuple[tuple[str, str, int], ...] = (
    ("zeiss", "left", 0),
    ("zeiss", "right", 1),
    ("canon", "left", 0),
    ("canon", "right", 1),
    ("zeiss", "right", 0),
    ("canon", "left", 1),
)
TILE = 230
CAPTION = 34
DISC_COLOUR, CUP_COLOUR, FOVEA_COLOUR = (0, 230, 0), (60, 120, 255), (255, 255, 0)

# Where the disc of skimage's retina photograph is, as fractions of its width and height.
_RETINA_DISC = (0.155, 0.445)
_RETINA_DISC_DIAMETER = 0.15


def make_contact_sheet(seed: int = 2024, scale: float = 0.5) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB sheet: photos, masks and disc close-ups of :data:`SHOWCASE`, then a real photo."""
    columns = []
    for index, (camera, eye, label) in enumerate(SHOWCASE):
        params = draw_case_params(case_rng(seed, index), label=label, scale=scale, camera=camera, eye=eye)
        columns.append(_case_column(params))
    columns.append(_real_column())
    return np.hstack([np.pad(column, ((0, 0), (0, 4), (0, 0))) for column in columns])[:, :-4]


def _case_column(params: CaseParams) -> np.ndarray:
    image, disc_cup_mask, vessel_mask = render_case(params)
    height, width = disc_cup_mask.shape
    vcdr = _vcdr(disc_cup_mask)
    overlay = np.repeat((vessel_mask * 150).astype(np.uint8)[..., None], 3, axis=2)
    thickness = max(1, round(width / 300))
    for region, colour in ((disc_cup_mask < 255, DISC_COLOUR), (disc_cup_mask == 0, CUP_COLOUR)):
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(overlay, contours, -1, colour, thickness)
    scale = width / params.camera_model.width
    fovea = (round(params.anatomy.fovea[0] * scale), round(params.anatomy.fovea[1] * scale))
    cv2.drawMarker(overlay, fovea, FOVEA_COLOUR, cv2.MARKER_CROSS, max(8, width // 25), thickness)

    disc_x, disc_y = (np.asarray(params.anatomy.disc_center) * scale).astype(int)
    half = int(params.anatomy.disc_diameter * scale * 0.9)
    close_up = image[max(0, disc_y - half):disc_y + half, max(0, disc_x - half):disc_x + half].copy()
    cup_outline = (disc_cup_mask == 0)[max(0, disc_y - half):disc_y + half, max(0, disc_x - half):disc_x + half]
    contours, _ = cv2.findContours(cup_outline.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(close_up, contours, -1, CUP_COLOUR, 1)

    title = f"{params.camera} {params.eye}" + (" GLAUCOMA" if params.label else " normal")
    return np.vstack([
        _captioned(image, title, f"{width}x{height}"),
        _captioned(overlay, "vessel mask, disc, cup, fovea", f"vCDR {vcdr:.2f}"),
        _captioned(close_up, "disc close-up, cup outline", f"vCDR {vcdr:.2f}"),
    ])


def _real_column() -> np.ndarray:
    from skimage.data import retina

    photo = retina()
    height, width = photo.shape[:2]
    x, y = int(_RETINA_DISC[0] * width), int(_RETINA_DISC[1] * height)
    half = int(_RETINA_DISC_DIAMETER * width * 0.9)
    close_up = photo[max(0, y - half):y + half, max(0, x - half):x + half]
    blank = np.zeros((TILE, TILE, 3), np.uint8)
    return np.vstack([
        _captioned(photo, "REAL: skimage retina()", f"{width}x{height}, CC0"),
        _captioned(blank, "real photo: no labels", ""),
        _captioned(close_up, "REAL disc close-up", ""),
    ])


def _vcdr(disc_cup_mask: np.ndarray) -> float:
    from funduskit.scoring.metrics import vertical_cdr

    return vertical_cdr(disc_cup_mask)


def _captioned(image: np.ndarray, line1: str, line2: str) -> np.ndarray:
    """The image fitted into a ``TILE`` square (aspect kept) above a two-line caption."""
    height, width = image.shape[:2]
    factor = TILE / max(height, width)
    resized = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                         interpolation=cv2.INTER_AREA)
    tile = np.zeros((TILE + CAPTION, TILE, 3), np.uint8)
    top, left = (TILE - resized.shape[0]) // 2, (TILE - resized.shape[1]) // 2
    tile[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    for row, text in enumerate((line1, line2)):
        cv2.putText(tile, text, (4, TILE + 13 + 15 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (235, 235, 235), 1,
                    cv2.LINE_AA)
    return tile


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic-data contact sheet (PNG).")
    parser.add_argument("out", type=Path, help="PNG path, e.g. docs/synthetic-contact-sheet.png")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--scale", type=float, default=0.5, help="render scale of the cases (default 0.5)")
    args = parser.parse_args()
    sheet = make_contact_sheet(args.seed, args.scale)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise SystemExit(f"{args.out}: could not encode the PNG")
    args.out.write_bytes(encoded.tobytes())
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}, {len(encoded) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
