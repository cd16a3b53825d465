"""The two fundus cameras of REFUGE, as the synthetic generator imitates them.

All lengths are in pixels of the camera's full-size frame; the renderer multiplies them by the
case's ``scale``. The geometry statistics come from the REFUGE fovea and disc annotations
(``shared/data/README.md``): the disc-to-fovea distance, how far the fovea lies below the disc,
and where the fovea sits in the frame. They are given for an eye whose disc lies left of the
fovea (a left eye); a right eye is the mirror image.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Camera:
    """One camera model: frame size, field of view, colour cast and REFUGE geometry statistics.

    Attributes:
        name: key in :data:`CAMERAS`, written to ``synth.json``.
        width, height: full-size frame in pixels.
        fov_radius: field-of-view circle radius as a fraction of ``min(width, height)``.
        has_notch: draws the small square orientation tab on the FOV edge that some cameras show.
        base_rgb: mean fundus colour (0-255 scale) at the FOV centre before vignetting.
        colour_gain: per-channel gain applied to the whole photo (the camera's cast).
        disc_fovea_distance: mean and standard deviation, as a fraction of ``width``.
        fovea_below_disc_deg: mean and standard deviation of the angle of the disc-to-fovea
            line below the horizontal, in degrees.
        fovea_x: mean fovea x as a fraction of ``width`` for a left eye (disc left of the fovea).
        fovea_y: mean fovea y as a fraction of ``height``.
        optical_blur: Gaussian sigma in full-size pixels of the lens blur.
    """

    name: str
    width: int
    height: int
    fov_radius: float
    has_notch: bool
    base_rgb: tuple[float, float, float]
    colour_gain: tuple[float, float, float]
    disc_fovea_distance: tuple[float, float]
    fovea_below_disc_deg: tuple[float, float]
    fovea_x: float
    fovea_y: float
    optical_blur: float


CAMERAS: dict[str, Camera] = {
    # Zeiss Visucam 500 (REFUGE training): wider than tall, the FOV circle almost touches the top
    # and bottom, darker photos with a yellow-green cast.
    "zeiss": Camera(
        name="zeiss",
        width=2124,
        height=2056,
        fov_radius=0.49,
        has_notch=False,
        base_rgb=(150.0, 70.0, 30.0),
        colour_gain=(0.92, 1.06, 0.90),
        disc_fovea_distance=(798 / 2124, 48 / 2124),
        fovea_below_disc_deg=(7.9, 4.2),
        fovea_x=0.54,
        fovea_y=0.51,
        optical_blur=1.1,
    ),
    # Canon CR-2 (REFUGE validation and test): square frame with a black margin all round, redder
    # and brighter photos.
    "canon": Camera(
        name="canon",
        width=1634,
        height=1634,
        fov_radius=0.455,
        has_notch=True,
        base_rgb=(200.0, 78.0, 48.0),
        colour_gain=(1.04, 0.97, 1.0),
        disc_fovea_distance=(626 / 1634, 46 / 1634),
        fovea_below_disc_deg=(5.1, 3.5),
        fovea_x=0.64,
        fovea_y=0.51,
        optical_blur=0.9,
    ),
}
