"""Is a photograph a whole fundus photograph or a crop centred on the optic disc?

Public glaucoma sets (RIM-ONE, ACRIMA, ORIGA crops) and many hospital exports are crops around
the disc; the networks for whole photographs do not work on them. A whole photograph shows the
camera's circular field of view on black: its four corners are dark. A disc crop is retina to
its corners. :func:`detect_view` measures the share of dark pixels in the four corner squares
(each 1/10 of the side, at a 256-pixel working size; dark = below a tenth of the image's bright
level, at least 8): 0.5 or more is a whole photograph.

Measured on the real sets beside the repository (every third photograph): RIM-ONE DL crops
0.00-0.02; Drishti-GS1, DRIVE and CHASE_DB1 whole photographs 1.00 (all), ``skimage.data.retina()``
1.00. A whole photograph whose retina fills the frame (no dark corners) reads as a crop. Not yet
used by ``funduskit predict`` (no crop-trained starter models yet; issue 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from funduskit.data.sample import View

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
