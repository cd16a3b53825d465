"""Is a photograph a whole fundus photograph or a crop centred on the optic disc?

Public glaucoma sets (RIM-ONE, ACRIMA, ORIGA crops) and many hospital exports are crops around
the disc; the networks for whole photographs do not work on them. A whole photograph shows the
camera's circular field of view on black: its four corners are dark. A disc crop is retina to
its corners. :func:`detect_view` measures the share of dark pixels in the four corner squares
(each 1/10 of the side, at a 256-pixel working size; dark = below a tenth of the image's bright
level, at least 8): 0.5 or more is a whole photograph.

Measured on the real sets beside the repository (every third photograph): RIM-ONE DL crops
0.00-0.02; Drishti-GS1, DRIVE and CHASE_DB1 whole photographs 1.00 (all), ``skimage.data.retina()``
1.00. A whole photograph whose retina fills the frame (no dark corners) reads as a crop.

:class:`CropBox` is the square around the disc that the disc-view networks see: its side is
:data:`DISC_CROP_SCALE` times the disc's larger extent, centred on the disc. The scale copies
RIM-ONE DL's framing (disc height / crop side 0.74 +/- 0.05, measured on every sixth crop), so
that crops cut from whole photographs (training on Drishti-GS1, the two-stage prediction) look
like the public crop sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from funduskit.data.sample import View

#: Crop side / the disc's larger extent (RIM-ONE DL: disc height is 0.74 of the crop side).
DISC_CROP_SCALE = 1.35

#: Share of dark corner pixels at and above which a photograph is a whole fundus photograph.
DARK_CORNERS_WHOLE = 0.5
_WORK_SIDE = 256
_CORNER_SHARE = 0.1


@dataclass(frozen=True)
class ViewDecision:
    """What :func:`detect_view` decided and the measure behind it."""

    view: View
    dark_corners: float  # share of the four corner squares' pixels that are dark, in [0, 1]


def dark_corner_share(image: np.ndarray) -> float:
    """The share of dark pixels in the four corner squares of an ``(H, W, 3)`` or ``(H, W)`` uint8 image."""
    small = cv2.resize(image, (_WORK_SIDE, _WORK_SIDE), interpolation=cv2.INTER_AREA)
    brightness = small.max(axis=2) if small.ndim == 3 else small
    dark_level = max(8.0, 0.1 * float(np.percentile(brightness, 99)))
    side = int(_WORK_SIDE * _CORNER_SHARE)
    corners = np.concatenate([brightness[:side, :side].ravel(), brightness[:side, -side:].ravel(),
                              brightness[-side:, :side].ravel(), brightness[-side:, -side:].ravel()])
    return float((corners < dark_level).mean())


def detect_view(image: np.ndarray) -> ViewDecision:
    """``"whole"`` when the photograph's corners are dark (a field of view on black), else ``"disc"``."""
    share = dark_corner_share(image)
    return ViewDecision("whole" if share >= DARK_CORNERS_WHOLE else "disc", share)


@dataclass(frozen=True)
class CropBox:
    """A square of an image in its pixels: columns ``x0 .. x0 + side``, rows ``y0 .. y0 + side``
    (may reach past the image's edges; :meth:`cut` pads with black there)."""

    x0: int
    y0: int
    side: int

    @classmethod
    def whole(cls, image: np.ndarray) -> CropBox:
        """The square that letterboxes the whole image (a disc crop is its own crop)."""
        height, width = image.shape[:2]
        side = max(height, width)
        return cls(-((side - width) // 2), -((side - height) // 2), side)  # the letterbox's padding

    @classmethod
    def around(cls, disc: np.ndarray, scale: float = DISC_CROP_SCALE) -> CropBox | None:
        """The crop around the disc of an ``(H, W)`` bool mask; None when the mask is empty."""
        rows, cols = np.nonzero(disc)
        if rows.size == 0:
            return None
        extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        side = max(8, int(round(extent * scale)))
        centre_x, centre_y = (cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2
        return cls(int(round(centre_x - side / 2)), int(round(centre_y - side / 2)), side)

    def cut(self, array: np.ndarray) -> np.ndarray:
        """The ``(side, side, ...)`` part of an ``(H, W, ...)`` array, zero outside it."""
        out = np.zeros((self.side, self.side, *array.shape[2:]), dtype=array.dtype)
        height, width = array.shape[:2]
        top, left = max(0, self.y0), max(0, self.x0)
        bottom, right = min(height, self.y0 + self.side), min(width, self.x0 + self.side)
        if bottom > top and right > left:
            out[top - self.y0 : bottom - self.y0, left - self.x0 : right - self.x0] = array[top:bottom, left:right]
        return out

    def paste(self, crop: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """An ``(H, W)`` map of a crop's ``(s, s)`` map (any ``s``; resized to the side), zero outside."""
        if crop.shape[0] != self.side:
            crop = cv2.resize(crop, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
        out = np.zeros(shape, dtype=crop.dtype)
        height, width = shape
        top, left = max(0, self.y0), max(0, self.x0)
        bottom, right = min(height, self.y0 + self.side), min(width, self.x0 + self.side)
        if bottom > top and right > left:
            out[top:bottom, left:right] = crop[top - self.y0 : bottom - self.y0, left - self.x0 : right - self.x0]
        return out
