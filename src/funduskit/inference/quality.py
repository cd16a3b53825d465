"""Is this photograph gradable? Measures of image quality and the grade they give.

Every ``funduskit predict`` result carries a grade, ``good``, ``usable`` or ``reject``, with the
reasons and the measures behind it (:class:`QualityMeasures`):

- ``fov_coverage``: the share of the frame inside the field of view (whole photographs; a disc
  crop is retina to its edges, 1);
- ``sharpness``: focus: the fine detail of the green channel over its coarse structure, the field
  of view brought to :data:`ANALYSIS_SIDE` pixels first (so that cameras of any resolution
  compare): the standard deviation of a band-pass of fine scales (Gaussian sigma 1 minus sigma 2
  pixels) over that of coarse scales (sigma 4 minus 8), :func:`focus_ratio`. A ratio of two
  bands does not move with contrast or brightness, and the fine band starts above the pixel
  scale, so that the 8-bit rounding noise left on a blurred photograph does not pass for detail;
- ``brightness``: the mean luminance inside the field of view, 0..1;
- ``contrast``: the standard deviation of the green channel inside the field of view, 0..1;
- ``glare``: the share of field-of-view pixels with every channel over :data:`GLARE_LEVEL`;
- ``blue_share``: the mean blue channel over the mean of all three inside the field of view
  (fundus photographs are red-orange: little blue; grey or blue-ish pictures are not fundus
  photographs);
- ``aspect``: the longer side over the shorter;
- ``fundus_likeness``: does it look like a fundus photograph at all: the probability ImageNet's
  EfficientNet-Lite0 puts on the classes under which it files fundus photographs
  (:mod:`funduskit.inference.fundus_content`; None where not measured);
- ``disc_confidence``: after prediction, the mean disc probability inside the predicted disc (0
  when no disc was found).

The grade is the worst of the measures' verdicts against :data:`QUALITY_THRESHOLDS`, which were
calibrated by ``benchmarks/quality.py`` on the shared real photographs and their controlled
degradations (figures in docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Literal

import cv2
import numpy as np

from funduskit.data.io import FieldOfView

#: Changes when the measures or their limits change, so that earlier records are graded again.
QUALITY_VERSION = 2
Grade = Literal["good", "usable", "reject"]
GRADES: tuple[Grade, ...] = ("good", "usable", "reject")
#: Side (pixels) the field of view is brought to before the focus measure.
ANALYSIS_SIDE = 512
#: A channel value (0..1) above which a pixel counts as saturated glare.
GLARE_LEVEL = 0.96
#: A green value (0..1) at which it counts as clipped: over-exposure (red clips in many good
#: photographs, green only at the disc).
SATURATED_LEVEL = 0.98


@dataclass(frozen=True)
class QualityMeasures:
    """The measures of one photograph (see the module doc); ``disc_confidence`` is None until the
    disc has been predicted."""

    fov_coverage: float
    sharpness: float
    brightness: float
    contrast: float
    glare: float
    saturated: float
    blue_share: float
    aspect: float
    fov_inside: float = 1.0
    red_share: float = 0.0
    fundus_likeness: float | None = None
    disc_confidence: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {name: (None if value is None else round(float(value), 4)) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Bound:
    """One measure's limits: below ``reject_below`` (or above ``reject_above``) rejects, below
    ``usable_below`` (or above ``usable_above``) makes a photograph usable, not good; ``reason``
    names the fault for each direction (low, high)."""

    reason_low: str = ""
    reason_high: str = ""
    reject_below: float | None = None
    usable_below: float | None = None
    usable_above: float | None = None
    reject_above: float | None = None

    def verdict(self, value: float) -> tuple[Grade, str]:
        """The grade this measure alone gives ``value``, with the reason ("" when good)."""
        if self.reject_below is not None and value < self.reject_below:
            return "reject", self.reason_low
        if self.reject_above is not None and value > self.reject_above:
            return "reject", self.reason_high
        if self.usable_below is not None and value < self.usable_below:
            return "usable", self.reason_low
        if self.usable_above is not None and value > self.usable_above:
            return "usable", self.reason_high
        return "good", ""


NOT_FUNDUS = "not a fundus photograph"
#: The limits of each measure on whole photographs (calibrated by benchmarks/quality.py on the
#: shared real sets and their degradations; docs/quality.md has the table and the percentiles).
QUALITY_THRESHOLDS: dict[str, Bound] = {
    "aspect": Bound(reason_high=f"{NOT_FUNDUS} (aspect ratio)", usable_above=1.8, reject_above=2.5),
    "fov_coverage": Bound(reason_low="no field of view found", reject_below=0.1, usable_below=0.25),
    "fov_inside": Bound(reason_low="field of view off the frame (mis-centred)", reject_below=0.45, usable_below=0.8),
    "red_share": Bound(reason_low="washed out (haze) or not fundus colour", reject_below=0.40, usable_below=0.44),
    "blue_share": Bound(reason_high="washed out (haze) or not fundus colour", usable_above=0.25, reject_above=0.27),
    "brightness": Bound(reason_low="too dark", reason_high="over-exposed", reject_below=0.07, usable_below=0.1,
                        usable_above=0.6, reject_above=0.65),
    "saturated": Bound(reason_high="over-exposed (clipped)", usable_above=0.015, reject_above=0.04),
    "contrast": Bound(reason_low="no contrast", reason_high=f"{NOT_FUNDUS} (contrast)", reject_below=0.015,
                      usable_below=0.025, usable_above=0.22, reject_above=0.26),
    "glare": Bound(reason_high="glare", usable_above=0.01, reject_above=0.15),
    "sharpness": Bound(reason_low="out of focus", reason_high=f"{NOT_FUNDUS} (noise)", reject_below=0.2,
                       usable_below=0.33, usable_above=1.2, reject_above=1.6),
    "fundus_likeness": Bound(reason_low=f"{NOT_FUNDUS} (content)", reject_below=0.02, usable_below=0.04),
    "disc_confidence": Bound(reason_low="optic disc not visible", reject_below=0.5, usable_below=0.7),
}
#: Disc crops differ in focus only: they are smaller and softer than whole photographs.
CROP_THRESHOLDS: dict[str, Bound] = {
    **QUALITY_THRESHOLDS,
    "sharpness": Bound(reason_low="out of focus", reason_high=f"{NOT_FUNDUS} (noise)", reject_below=0.185,
                       usable_below=0.2, usable_above=1.2, reject_above=1.6),
}


@dataclass(frozen=True)
class QualityGrade:
    """A photograph's grade, the reasons (worst first) and the measures behind it."""

    grade: Grade
    reasons: tuple[str, ...]
    measures: QualityMeasures


def measure_image(image: np.ndarray, fov: FieldOfView, view: str = "whole") -> QualityMeasures:
    """The image measures of an (H, W, 3) uint8 RGB photograph (``disc_confidence`` left None).

    Args:
        image: the photograph.
        fov: its field of view (``funduskit.data.io.find_fov``; ``frame_fov`` for a disc crop).
        view: ``"whole"`` or ``"disc"``; a disc crop's coverage is 1.
    """
    height, width = image.shape[:2]
    aspect = max(height, width) / max(1, min(height, width))
    # down to ANALYSIS_SIDE, never up: an upsampled small crop would look out of focus
    scale = min(1.0, ANALYSIS_SIDE / max(1.0, 2 * fov.radius if view == "whole" else max(height, width)))
    small = cv2.resize(image, (max(8, round(width * scale)), max(8, round(height * scale))), interpolation=cv2.INTER_AREA)
    inside = fov.scaled(small.shape[1] / width).mask(small.shape)
    inside = cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)  # off the FOV's edge
    in_frame = fov.mask(image.shape)
    coverage = 1.0 if view != "whole" else float(in_frame.mean())
    fov_inside = 1.0 if view != "whole" else min(1.0, float(in_frame.sum()) / (np.pi * fov.radius**2 + 1e-9))
    if inside.sum() < 64:
        return QualityMeasures(fov_coverage=coverage if view == "whole" else 0.0, sharpness=0.0, brightness=0.0,
                               contrast=0.0, glare=0.0, saturated=0.0, blue_share=0.0, aspect=aspect,
                               fov_inside=fov_inside)
    pixels = small.astype(np.float32) / 255.0
    red, green, blue = (pixels[..., k][inside] for k in range(3))
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    green_std = float(green.std())
    total = float(red.mean() + green.mean() + blue.mean())
    return QualityMeasures(
        fov_coverage=coverage,
        sharpness=focus_ratio(pixels[..., 1], inside),
        brightness=float(luminance.mean()),
        contrast=green_std,
        glare=float(((red > GLARE_LEVEL) & (green > GLARE_LEVEL) & (blue > GLARE_LEVEL)).mean()),
        saturated=float((green >= SATURATED_LEVEL).mean()),
        fov_inside=fov_inside,
        blue_share=float(blue.mean() / total) if total > 1e-4 else 0.0,
        red_share=float(red.mean() / total) if total > 1e-4 else 0.0,
        aspect=aspect,
    )


#: The Gaussian sigmas (pixels at ANALYSIS_SIDE) of the fine and the coarse band of :func:`focus_ratio`.
FINE_BAND = (1.0, 2.0)
COARSE_BAND = (4.0, 8.0)


def focus_ratio(channel: np.ndarray, inside: np.ndarray) -> float:
    """Fine over coarse detail of an (H, W) float channel inside the (H, W) bool mask.

    The standard deviation of the difference of Gaussians of :data:`FINE_BAND` over that of
    :data:`COARSE_BAND`: about 0.2-0.7 for focused fundus photographs, under 0.17 once out of focus
    by a few pixels, well over 1 for noise. 0 for a flat channel.
    """
    blurred = {sigma: cv2.GaussianBlur(channel, (0, 0), sigma) for sigma in (*FINE_BAND, *COARSE_BAND)}
    fine = float((blurred[FINE_BAND[0]] - blurred[FINE_BAND[1]])[inside].std())
    coarse = float((blurred[COARSE_BAND[0]] - blurred[COARSE_BAND[1]])[inside].std())
    return fine / coarse if coarse > 1e-5 else 0.0


def disc_confidence(disc_probability: np.ndarray, disc: np.ndarray) -> float:
    """Mean disc probability inside the predicted (H, W) disc mask; 0 when it is empty."""
    return float(disc_probability[disc].mean()) if disc.any() else 0.0


def grade_measures(measures: QualityMeasures, view: str = "whole",
                   thresholds: Mapping[str, Bound] | None = None) -> QualityGrade:
    """The worst verdict of the measures, with every reason (rejections first).

    Args:
        measures: the photograph's measures.
        view: ``"whole"`` or ``"disc"`` (:data:`QUALITY_THRESHOLDS` or :data:`CROP_THRESHOLDS`).
        thresholds: other limits than the view's.
    """
    bounds = thresholds if thresholds is not None else (QUALITY_THRESHOLDS if view == "whole" else CROP_THRESHOLDS)
    verdicts = []
    for name, bound in bounds.items():
        value = getattr(measures, name)
        if value is not None:
            verdicts.append(bound.verdict(float(value)))
    worst: Grade = max((grade for grade, _ in verdicts), key=GRADES.index, default="good")
    reasons = tuple(dict.fromkeys(reason for grade in ("reject", "usable") for verdict, reason in verdicts
                                  if verdict == grade and reason))
    return QualityGrade(grade=worst, reasons=reasons, measures=measures)


def grade_photograph(image: np.ndarray, fov: FieldOfView, view: str,
                     disc_probability: np.ndarray | None = None, disc: np.ndarray | None = None,
                     fundus_likeness: float | None = None) -> QualityGrade:
    """Measure and grade one photograph; with its predicted disc (probability map and mask at the
    photograph's size) the disc confidence takes part, with its ``fundus_likeness``
    (:meth:`funduskit.inference.fundus_content.FundusContent.likeness`) the content."""
    measures = replace(measure_image(image, fov, view), fundus_likeness=fundus_likeness)
    if disc_probability is not None and disc is not None:
        measures = replace(measures, disc_confidence=disc_confidence(disc_probability, disc))
    return grade_measures(measures, view)
