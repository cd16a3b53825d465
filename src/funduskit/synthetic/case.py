"""The records of one synthetic case: what :func:`draw_case_params` draws and :func:`render_case` draws from.

Geometry is in pixels of the camera's full-size frame, whatever the output ``scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from funduskit.synthetic.cameras import CAMERAS, Camera

EyeSide = Literal["left", "right"]
VesselKind = Literal["artery", "vein"]


@dataclass(frozen=True, eq=False)
class Vessel:
    """One vessel segment, drawn as a band of varying width.

    Attributes:
        kind: ``"artery"`` (lighter, narrower) or ``"vein"`` (darker, wider).
        points: ``(N, 2)`` centre line, full-size pixels.
        widths: ``(N,)`` width at each point, full-size pixels.
        opacity: 0-1; the part of a vessel deep in the cup is drawn fainter.
    """

    kind: VesselKind
    points: np.ndarray
    widths: np.ndarray
    opacity: float = 1.0


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Where things are in the full-size frame.

    Attributes:
        fov_center, fov_radius: the circular field of view.
        fovea: fovea centre ``(x, y)``.
        disc_center: optic disc centre ``(x, y)``.
        disc_contour: ``(K, 2)`` disc boundary (a slightly vertical, slightly irregular ellipse).
        cup_center: centre of the cup, shifted from the disc centre (ISNT pattern).
        cup_contour: ``(K, 2)`` cup boundary, inside the disc with a minimum rim.
        vcdr_target: vertical cup-to-disc ratio the cup was drawn for.
        notch_angle: direction (radians) of a focal rim notch, or ``None``.
        temporal_sign: +1 when the fovea is right of the disc (a left eye), -1 otherwise.
    """

    fov_center: tuple[float, float]
    fov_radius: float
    fovea: tuple[float, float]
    disc_center: tuple[float, float]
    disc_contour: np.ndarray
    cup_center: tuple[float, float]
    cup_contour: np.ndarray
    vcdr_target: float
    notch_angle: float | None
    temporal_sign: int

    @cached_property
    def disc_diameter(self) -> float:
        """Mean disc diameter in full-size pixels."""
        offset = self.disc_contour - np.asarray(self.disc_center)
        return float(2.0 * np.hypot(offset[:, 0], offset[:, 1]).mean())

    @property
    def disc_fovea_distance(self) -> float:
        return float(np.hypot(self.fovea[0] - self.disc_center[0], self.fovea[1] - self.disc_center[1]))


@dataclass(frozen=True)
class Appearance:
    """How the photo looks; never depends on the label.

    Colours are on the 0-255 scale, before the camera's ``colour_gain``.

    Attributes:
        fundus_rgb: fundus colour at the FOV centre.
        vignetting: fractional fall-off of illumination at the FOV edge.
        vignetting_power: exponent of the radial fall-off (larger = flatter centre).
        illumination_tilt: ``(x, y)`` linear illumination gradient, fraction per FOV radius.
        mottling: amplitude of the low-frequency choroidal mottling.
        tessellation: amplitude of the choroidal vessel pattern (tessellated fundus).
        striation: amplitude of the nerve-fibre-layer streaks around the disc.
        peripapillary_glow: brightening of the retina around the disc (light scattered by it).
        macula_darkening: darkening at the macula centre (0-1).
        fovea_darkening: extra darkening in the foveal pit (0-1).
        foveal_reflex: brightness of the tiny foveal light reflex (0 = none).
        rim_rgb: colour of the neuroretinal rim.
        cup_rgb: colour of the pale cup.
        scleral_ring: brightness of the thin ring at the disc margin.
        atrophy: strength of a temporal peri-papillary atrophy crescent (0 = none).
        artery_reflex: brightness of the light streak along large arteries.
        noise_sigma: sensor noise standard deviation (0-255 scale).
        optical_blur: lens blur sigma in full-size pixels.
        texture_seed: seed of the noise fields of the texture.
    """

    fundus_rgb: tuple[float, float, float]
    vignetting: float
    vignetting_power: float
    illumination_tilt: tuple[float, float]
    mottling: float
    tessellation: float
    striation: float
    peripapillary_glow: float
    macula_darkening: float
    fovea_darkening: float
    foveal_reflex: float
    rim_rgb: tuple[float, float, float]
    cup_rgb: tuple[float, float, float]
    scleral_ring: float
    atrophy: float
    artery_reflex: float
    noise_sigma: float
    optical_blur: float
    texture_seed: int


@dataclass(frozen=True, eq=False)
class CaseParams:
    """Everything :func:`render_case` needs to draw one photo and its masks."""

    camera: str
    eye: EyeSide
    label: int
    scale: float
    anatomy: Anatomy
    appearance: Appearance
    vessels: tuple[Vessel, ...] = field(default=())

    @property
    def camera_model(self) -> Camera:
        return CAMERAS[self.camera]

    @property
    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the rendered photo."""
        camera = self.camera_model
        return max(1, round(camera.width * self.scale)), max(1, round(camera.height * self.scale))
