"""Random parameters of one synthetic case, drawn apart from rendering (albumentations style).

:func:`draw_case_params` turns a random generator into a :class:`CaseParams`; rendering
(:func:`funduskit.synthetic.render.render_case`) is then a pure function of those parameters.
Geometry is in pixels of the camera's full-size frame, whatever the output ``scale``.

Everything that does not describe the glaucoma anatomy (camera, eye, fundus colour, brightness,
illumination, texture, the field of view) is drawn first and never looks at the label, so no
shortcut other than the optic nerve head links the photo to its label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from funduskit.synthetic import geometry
from funduskit.synthetic.cameras import CAMERAS, Camera
from funduskit.synthetic.case import Anatomy, Appearance, CaseParams, EyeSide
from funduskit.synthetic.vessels import grow_vessel_tree

NORMAL_VCDR = (0.45, 0.09, 0.15, 0.72)  # mean, sd, low clip, high clip
GLAUCOMA_VCDR = (0.75, 0.08, 0.52, 0.92)


def draw_case_params(
    rng: np.random.Generator,
    *,
    label: int,
    scale: float = 1.0,
    camera: str | None = None,
    eye: EyeSide | None = None,
) -> CaseParams:
    """Draw the random parameters of one case.

    Args:
        rng: the case's own generator (``generate_dataset`` seeds it from ``(seed, index)``).
        label: 1 = glaucoma, 0 = normal; only the cup, rim and notch depend on it.
        scale: output size relative to the camera's full frame (geometry is unaffected).
        camera: ``"zeiss"`` or ``"canon"``; drawn 50/50 when ``None``.
        eye: ``"left"`` or ``"right"``; drawn 50/50 when ``None``.
    """
    # Label-independent draws first, in a fixed order.
    camera_name = camera if camera is not None else str(rng.choice(sorted(CAMERAS)))
    if camera_name not in CAMERAS:
        raise ValueError(f"unknown camera {camera_name!r}; expected one of {sorted(CAMERAS)}")
    eye_side: EyeSide = eye if eye is not None else ("left" if rng.random() < 0.5 else "right")
    model = CAMERAS[camera_name]
    appearance = _draw_appearance(rng, model)
    placement = _draw_placement(rng, model, eye_side)
    disc_center, disc_contour, disc_semi = _draw_disc(rng, placement)
    # The optic-nerve-head anatomy carries the label.
    anatomy = _draw_cup(rng, placement, disc_center, disc_contour, disc_semi, label)
    vessels = grow_vessel_tree(rng, anatomy)
    return CaseParams(
        camera=camera_name,
        eye=eye_side,
        label=int(label),
        scale=float(scale),
        anatomy=anatomy,
        appearance=appearance,
        vessels=vessels,
    )


def _clipped_normal(rng: np.random.Generator, mean: float, sd: float, low: float, high: float) -> float:
    return float(np.clip(rng.normal(mean, sd), low, high))


def _draw_appearance(rng: np.random.Generator, camera: Camera) -> Appearance:
    brightness = float(rng.uniform(0.78, 1.18))
    pigment = float(rng.uniform(-1.0, 1.0))  # darker, browner fundus at +1, paler orange at -1
    red, green, blue = camera.base_rgb
    fundus_rgb = (
        red * brightness * (1.0 - 0.08 * pigment),
        green * brightness * (1.0 - 0.18 * pigment) * rng.uniform(0.9, 1.1),
        blue * brightness * (1.0 - 0.2 * pigment) * rng.uniform(0.85, 1.15),
    )
    rim_rgb = (
        rng.uniform(225, 250) * min(1.15, brightness * 1.05),
        rng.uniform(110, 150) * brightness,
        rng.uniform(60, 95) * brightness,
    )
    cup_rgb = (
        255.0 * min(1.2, brightness * 1.1),
        rng.uniform(195, 230) * brightness,
        rng.uniform(130, 180) * brightness,
    )
    tilt_angle = rng.uniform(0, 2 * np.pi)
    tilt = rng.uniform(0.0, 0.18)
    return Appearance(
        fundus_rgb=tuple(float(c) for c in fundus_rgb),  # type: ignore[arg-type]
        vignetting=float(rng.uniform(0.35, 0.6)),
        vignetting_power=float(rng.uniform(2.0, 3.5)),
        illumination_tilt=(float(tilt * np.cos(tilt_angle)), float(tilt * np.sin(tilt_angle))),
        mottling=float(rng.uniform(0.015, 0.035)),
        tessellation=float(rng.uniform(0.0, 1.0) ** 3 * 0.16),
        striation=float(rng.uniform(0.02, 0.07)),
        peripapillary_glow=float(rng.uniform(0.04, 0.16)),
        macula_darkening=float(rng.uniform(0.18, 0.32)),
        fovea_darkening=float(rng.uniform(0.18, 0.32)),
        foveal_reflex=float(rng.uniform(0.1, 0.35) if rng.random() < 0.7 else 0.0),
        rim_rgb=tuple(float(c) for c in rim_rgb),  # type: ignore[arg-type]
        cup_rgb=tuple(float(c) for c in cup_rgb),  # type: ignore[arg-type]
        scleral_ring=float(rng.uniform(0.0, 0.12)),
        atrophy=float(rng.uniform(0.25, 0.7) if rng.random() < 0.3 else 0.0),
        artery_reflex=float(rng.uniform(0.05, 0.2)),
        noise_sigma=float(rng.uniform(1.0, 3.0)),
        optical_blur=float(camera.optical_blur * rng.uniform(0.8, 1.4)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


@dataclass(frozen=True)
class _Placement:
    camera: Camera
    eye: EyeSide
    temporal_sign: int
    fov_center: tuple[float, float]
    fov_radius: float
    fovea: tuple[float, float]
    disc_center: tuple[float, float]
    disc_fovea_distance: float


def _draw_placement(rng: np.random.Generator, camera: Camera, eye: EyeSide) -> _Placement:
    """Fovea and disc centres from the REFUGE statistics; a right eye mirrors a left one."""
    width, height = camera.width, camera.height
    fov_center = (width / 2.0 + rng.normal(0, 0.003) * width, height / 2.0 + rng.normal(0, 0.003) * height)
    fov_radius = camera.fov_radius * min(width, height)
    temporal_sign = 1 if eye == "left" else -1  # left eye: disc left of the fovea

    mean_distance, sd_distance = camera.disc_fovea_distance
    distance = _clipped_normal(rng, mean_distance, sd_distance, mean_distance - 2.5 * sd_distance,
                               mean_distance + 2.5 * sd_distance) * width
    mean_angle, sd_angle = camera.fovea_below_disc_deg
    angle = np.deg2rad(_clipped_normal(rng, mean_angle, sd_angle, -4.0, 18.0))
    fovea_x_left = _clipped_normal(rng, camera.fovea_x, 0.02, camera.fovea_x - 0.05, camera.fovea_x + 0.05)
    fovea_x = fovea_x_left * width if eye == "left" else (1.0 - fovea_x_left) * width
    fovea_y = _clipped_normal(rng, camera.fovea_y, 0.015, camera.fovea_y - 0.04, camera.fovea_y + 0.04) * height
    disc_x = fovea_x - temporal_sign * distance * np.cos(angle)
    disc_y = fovea_y - distance * np.sin(angle)

    # Keep the whole disc (about 0.45 x distance across) well inside the FOV.
    limit = fov_radius - 0.4 * distance
    reach = np.hypot(disc_x - fov_center[0], disc_y - fov_center[1])
    if reach > limit:
        shift = temporal_sign * (reach - limit)
        disc_x += shift
        fovea_x += shift
    return _Placement(
        camera=camera,
        eye=eye,
        temporal_sign=temporal_sign,
        fov_center=(float(fov_center[0]), float(fov_center[1])),
        fov_radius=float(fov_radius),
        fovea=(float(fovea_x), float(fovea_y)),
        disc_center=(float(disc_x), float(disc_y)),
        disc_fovea_distance=float(distance),
    )


def _harmonics(rng: np.random.Generator, angles: np.ndarray, amplitude: float, orders: range) -> np.ndarray:
    """``1 + sum of random low-order harmonics``: a gently irregular outline factor, ``(K,)``."""
    factor = np.ones_like(angles)
    for order in orders:
        factor += rng.normal(0.0, amplitude) * np.cos(order * angles + rng.uniform(0, 2 * np.pi))
    return factor


def _draw_disc(
    rng: np.random.Generator, placement: _Placement
) -> tuple[tuple[float, float], np.ndarray, tuple[float, float]]:
    """Disc centre, ``(K, 2)`` contour and ``(semi_x, semi_y)``: a slightly vertical ellipse."""
    horizontal = placement.disc_fovea_distance * _clipped_normal(rng, 0.385, 0.03, 0.31, 0.46)
    vertical = horizontal * rng.uniform(1.03, 1.14)
    tilt = np.deg2rad(rng.normal(0.0, 6.0))
    angles = geometry.polar_angles()
    radius = geometry.ellipse_radius(angles, horizontal / 2, vertical / 2, tilt)
    radius *= _harmonics(rng, angles, 0.012, range(2, 5))
    contour = geometry.polar_to_contour(placement.disc_center, radius, angles)
    return placement.disc_center, contour, (horizontal / 2, vertical / 2)


def _draw_cup(
    rng: np.random.Generator,
    placement: _Placement,
    disc_center: tuple[float, float],
    disc_contour: np.ndarray,
    disc_semi: tuple[float, float],
    label: int,
) -> Anatomy:
    """The cup: size from the label's vCDR distribution, ISNT-shaped rim, optional notch."""
    semi_x, semi_y = disc_semi
    sign = placement.temporal_sign
    if label:
        vcdr = _clipped_normal(rng, *GLAUCOMA_VCDR)
        width_ratio = rng.uniform(0.78, 0.98)  # glaucomatous cups grow vertically
        choice = rng.random()
        vertical_shift = (
            rng.uniform(0.03, 0.1) if choice < 0.6  # inferior rim thinnest: ISNT broken
            else -rng.uniform(0.03, 0.1) if choice < 0.85  # superior rim thinnest
            else rng.uniform(-0.02, 0.02)
        )
        notch = rng.random() < 0.4
        minimum_rim = 0.035
    else:
        vcdr = _clipped_normal(rng, *NORMAL_VCDR)
        width_ratio = rng.uniform(0.95, 1.15)  # normal cups are round or horizontally oval
        vertical_shift = -rng.uniform(0.0, 0.05)  # inferior rim thickest (ISNT)
        notch = rng.random() < 0.02
        minimum_rim = 0.08
    temporal_shift = rng.uniform(0.02, 0.1)  # temporal rim thinnest
    cup_center = (
        disc_center[0] + sign * temporal_shift * semi_x,
        disc_center[1] + vertical_shift * semi_y,
    )
    angles = geometry.polar_angles()
    tilt = np.deg2rad(rng.normal(0.0, 6.0))
    shape = _harmonics(rng, angles, 0.03, range(2, 6))
    notch_angle: float | None = None
    notch_weight = np.zeros_like(angles)
    if notch:
        # Inferotemporal (the most common) or superotemporal: from straight down (or up) turned
        # towards the temporal side by 15-40 degrees; image angles, y down.
        vertical = 1.0 if rng.random() < 0.7 else -1.0
        towards_temporal = rng.uniform(0.25, 0.7)
        notch_angle = float(np.arctan2(vertical * np.cos(towards_temporal), sign * np.sin(towards_temporal))
                            % (2 * np.pi))
        gap = np.angle(np.exp(1j * (angles - notch_angle)))
        notch_weight = rng.uniform(0.6, 0.95) * np.exp(-0.5 * (gap / rng.uniform(0.18, 0.3)) ** 2)

    disc_radius_from_cup = geometry.radius_towards(disc_contour, cup_center, angles)
    rim_floor = min(semi_x, semi_y) * (minimum_rim * (1 - notch_weight) + 0.02 * notch_weight)
    disc_height = geometry.vertical_extent(disc_contour)
    size = vcdr
    for _ in range(4):  # rescale until the cup's vertical extent gives the drawn vCDR
        raw = geometry.ellipse_radius(angles, size * semi_x * width_ratio, size * semi_y, tilt) * shape
        raw = raw + (disc_radius_from_cup - rim_floor - raw).clip(min=0) * notch_weight
        radius = np.minimum(raw, disc_radius_from_cup - rim_floor)
        cup_contour = geometry.polar_to_contour(cup_center, radius, angles)
        size *= vcdr / (geometry.vertical_extent(cup_contour) / disc_height)
    return Anatomy(
        fov_center=placement.fov_center,
        fov_radius=placement.fov_radius,
        fovea=placement.fovea,
        disc_center=disc_center,
        disc_contour=disc_contour,
        cup_center=(float(cup_center[0]), float(cup_center[1])),
        cup_contour=cup_contour,
        vcdr_target=float(vcdr),
        notch_angle=notch_angle,
        temporal_sign=sign,
    )
