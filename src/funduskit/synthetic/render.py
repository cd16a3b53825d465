"""Rendering of one synthetic case: a pure function of its :class:`CaseParams`.

1. Smooth fields (illumination fall-off, fundus colour, choroidal mottling, tessellation,
   nerve-fibre streaks, peripapillary glow, macula and fovea) in float32 at a quarter of the
   output size, then uint8 and resized up.
2. The optic disc (rim, pale cup, scleral ring, optional atrophy crescent) painted at the output
   size in a window around the disc, from the same polygons as the mask.
3. Vessels drawn anti-aliased at the output size as bands of varying width; each channel is
   multiplied by the vessels' transmission (veins absorb more than arteries, large arteries keep
   a light streak). Over the disc a vessel hides the bright tissue instead: its colour there is
   the retina's behind it, times that transmission.
4. Lens blur, the field-of-view stop and sensor grain.

Full-size work after step 1 is done in uint8 with OpenCV, which keeps a 2124 x 2056 photo
well under a second on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from funduskit.scoring.metrics import BACKGROUND_VALUE, CUP_VALUE, RIM_VALUE
from funduskit.synthetic.case import Anatomy, Appearance, CaseParams, Vessel

WORK_FACTOR = 4  # smooth fields are computed at 1/WORK_FACTOR of the output size
SUBPIXEL_BITS = 4  # cv2 drawing precision: coordinates in 1/16 pixel
_SHIFT = float(1 << SUBPIXEL_BITS)
AA_WIDENING = 1.4  # cv2 anti-aliased fills come out about 1.4 px wider than the polygon
THIN_IN_MASK = 0.8  # sub-pixel vessels at least this wide (output px) belong to the vessel mask

# Fraction of light absorbed per channel (R, G, B) at full vessel coverage.
VEIN_ABSORPTION = np.array([0.3, 0.72, 0.55], dtype=np.float32)
ARTERY_ABSORPTION = np.array([0.13, 0.45, 0.28], dtype=np.float32)


@dataclass
class _Window:
    """A rectangle of the photo painted in float: the retina under it and the painted result."""

    rows: slice
    cols: slice
    underlay: np.ndarray  # (h, w, 3) float32, the retina before painting
    painted: np.ndarray  # (h, w, 3) float32


def render_case(params: CaseParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one photo and its masks.

    Returns:
        image: ``(H, W, 3)`` uint8 RGB photo.
        disc_cup_mask: ``(H, W)`` uint8, REFUGE values (0 = cup, 128 = rim, 255 = background).
        vessel_mask: ``(H, W)`` bool, the drawn vessels: anti-aliased coverage >= 50 %, and the
            one-pixel lines of vessels 0.8-1.7 px wide (drawn fainter in the photo).
    """
    width, height = params.output_size
    camera = params.camera_model
    scale = np.array([width / camera.width, height / camera.height])
    anatomy, look = params.anatomy, params.appearance
    gain = np.asarray(camera.colour_gain, dtype=np.float32)

    smooth, illumination = _smooth_fields(params, (height, width))
    image = cv2.resize(cv2.convertScaleAbs(smooth), (width, height), interpolation=cv2.INTER_LINEAR)
    disc_cup_mask = rasterise_disc_cup(anatomy, (height, width), scale)
    disc_window = _paint_disc(image, disc_cup_mask, anatomy, look, gain, illumination, scale)
    _paint_foveal_reflex(image, anatomy, look, scale)

    vessel_maps = _draw_vessels(params.vessels, (height, width), scale)
    vessel_mask = vessel_maps.mask()
    image = _apply_vessels(image, vessel_maps, look.artery_reflex, disc_window)

    blur = look.optical_blur * float(scale.mean())
    if blur >= 0.3:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    stop = _fov_stop((height, width), anatomy, camera.has_notch, scale)
    image = cv2.multiply(image, cv2.merge([stop, stop, stop]), scale=1 / 255)
    image = _add_grain(image, look.noise_sigma, np.random.default_rng([look.texture_seed, 1]))
    return image, disc_cup_mask, vessel_mask


def _add_grain(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor grain: Gaussian noise drawn at half size (demosaicing correlates neighbours), uint8."""
    height, width = image.shape[:2]
    half = rng.standard_normal(((height + 1) // 2, (width + 1) // 2), dtype=np.float32) * np.float32(sigma)
    grain = cv2.resize(np.rint(half).astype(np.int16), (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.add(image, cv2.merge([grain, grain, grain]), dtype=cv2.CV_8U)


def rasterise_disc_cup(anatomy: Anatomy, shape: tuple[int, int], scale: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 REFUGE mask of the disc and cup polygons; the cup is cut to the disc."""
    mask = np.full(shape, BACKGROUND_VALUE, dtype=np.uint8)
    disc = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(disc, [_fixed_point(anatomy.disc_contour * scale)], 1, cv2.LINE_8, SUBPIXEL_BITS)
    cup = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(cup, [_fixed_point(anatomy.cup_contour * scale)], 1, cv2.LINE_8, SUBPIXEL_BITS)
    mask[disc > 0] = RIM_VALUE
    mask[(cup > 0) & (disc > 0)] = CUP_VALUE
    return mask


def _fixed_point(points: np.ndarray) -> np.ndarray:
    return np.round(points * _SHIFT).astype(np.int32)


def _noise_field(rng: np.random.Generator, grid: int, shape: tuple[int, int]) -> np.ndarray:
    """Smooth unit-variance noise ``(h, w)`` float32 from a ``grid x grid`` lattice (any output size)."""
    lattice = rng.standard_normal((grid, grid)).astype(np.float32)
    field = cv2.resize(lattice, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    # Normalise with the lattice's own statistics so the texture does not depend on the output size.
    return (field - lattice.mean()) / (lattice.std() + 1e-6)


def _smooth_fields(params: CaseParams, output_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Low-frequency photo ``(h, w, 3)`` float32 at the work size, and its illumination ``(h, w)``."""
    anatomy, look, camera = params.anatomy, params.appearance, params.camera_model
    h = max(16, output_shape[0] // WORK_FACTOR)
    w = max(16, output_shape[1] // WORK_FACTOR)
    # Work-pixel centres in full-size frame coordinates: cv2.resize puts work pixel j at output
    # coordinate (j + 0.5) * output / work - 0.5, and output pixel i is frame coordinate i / scale.
    out_h, out_w = output_shape
    xs = (((np.arange(w, dtype=np.float32) + 0.5) * (out_w / w) - 0.5) * (camera.width / out_w))[None, :]
    ys = (((np.arange(h, dtype=np.float32) + 0.5) * (out_h / h) - 0.5) * (camera.height / out_h))[:, None]
    rng = np.random.default_rng([look.texture_seed, 0])

    cx, cy = anatomy.fov_center
    radius = anatomy.fov_radius
    dx, dy = (xs - cx) / radius, (ys - cy) / radius
    r = np.sqrt(dx**2 + dy**2)
    illumination = 1.0 - look.vignetting * np.minimum(r, 1.0) ** look.vignetting_power
    illumination += look.illumination_tilt[0] * dx + look.illumination_tilt[1] * dy
    illumination += 0.05 * _noise_field(rng, 5, (h, w))  # uneven flash
    illumination = np.maximum(illumination, 0.15).astype(np.float32)

    mottle = look.mottling * _noise_field(rng, 40, (h, w)) + 0.02 * _noise_field(rng, 140, (h, w))
    pigment = 0.06 * _noise_field(rng, 9, (h, w))
    # Tessellated fundus: dark pigmented gaps between the choroidal vessels, mostly peripheral.
    gaps = np.exp(-((_noise_field(rng, 22, (h, w)) / 0.5) ** 2))
    tessellation = -look.tessellation * (gaps - 0.45) * np.clip(r - 0.2, 0.0, 1.0)

    dfd = anatomy.disc_fovea_distance
    fx, fy = anatomy.fovea
    fovea_d2 = ((xs - fx) ** 2 + (ys - fy) ** 2) / dfd**2
    macula = look.macula_darkening * np.exp(-fovea_d2 / (2 * 0.2**2))
    pit = look.fovea_darkening * np.exp(-fovea_d2 / (2 * 0.045**2))
    striation = look.striation * _striations(rng, anatomy, xs, ys)
    disc_d2 = ((xs - anatomy.disc_center[0]) ** 2 + (ys - anatomy.disc_center[1]) ** 2) / anatomy.disc_diameter**2
    glow = look.peripapillary_glow * np.exp(-disc_d2 / 1.2)

    gain = np.asarray(camera.colour_gain, dtype=np.float32)
    channel_weights = {
        "mottle": (0.6, 1.0, 1.1),
        "pigment": (0.7, 1.0, 1.0),
        "tessellation": (1.0, 0.5, 0.3),
        "macula": (0.75, 1.0, 0.9),
        "pit": (0.8, 1.0, 1.0),
        "striation": (0.6, 1.0, 1.2),
        "glow": (0.5, 1.0, 1.0),
    }
    image = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):
        texture = (
            1.0
            + channel_weights["mottle"][c] * mottle
            + channel_weights["pigment"][c] * pigment
            + channel_weights["tessellation"][c] * tessellation
            + channel_weights["striation"][c] * striation
            + channel_weights["glow"][c] * glow
        )
        darkening = (1.0 - channel_weights["macula"][c] * macula) * (1.0 - channel_weights["pit"][c] * pit)
        image[..., c] = look.fundus_rgb[c] * gain[c] * illumination * texture * darkening
    return image, illumination


def _striations(
    rng: np.random.Generator, anatomy: Anatomy, xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    """Nerve-fibre-layer streaks radiating from the disc, strongest along the arcades, ``(h, w)``."""
    angular_samples = 720
    streaks = rng.standard_normal((16, angular_samples)).astype(np.float32)
    streaks = cv2.GaussianBlur(streaks, (0, 0), sigmaX=1.2, sigmaY=3.0, borderType=cv2.BORDER_REFLECT)
    dx, dy = xs - anatomy.disc_center[0], ys - anatomy.disc_center[1]
    rho = np.sqrt(dx**2 + dy**2) / anatomy.disc_diameter
    theta = np.arctan2(dy, dx)
    column = ((theta + np.pi) / (2 * np.pi) * angular_samples).astype(np.float32) % angular_samples
    row = np.clip(rho * 4.0, 0, 15).astype(np.float32)
    sampled = cv2.remap(streaks, np.broadcast_to(column, rho.shape).copy(),
                        np.broadcast_to(row, rho.shape).copy(), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    vertical = np.sin(theta) ** 2  # superior and inferior bundles
    envelope = np.exp(-(((rho - 0.9) / 0.7) ** 2)) * (0.3 + 0.7 * vertical) * (rho > 0.5)
    return (sampled * envelope).astype(np.float32)


def _paint_disc(
    image: np.ndarray,
    mask: np.ndarray,
    anatomy: Anatomy,
    look: Appearance,
    gain: np.ndarray,
    illumination: np.ndarray,
    scale: np.ndarray,
) -> _Window:
    """Paints rim, cup, scleral ring and atrophy crescent into ``image`` (uint8, in place)."""
    height, width = mask.shape
    diameter = anatomy.disc_diameter * float(scale.mean())
    cx, cy = anatomy.disc_center[0] * scale[0], anatomy.disc_center[1] * scale[1]
    half = int(np.ceil(diameter * 1.1)) + 4
    x0, x1 = max(0, int(cx) - half), min(width, int(cx) + half)
    y0, y1 = max(0, int(cy) - half), min(height, int(cy) + half)
    rows, cols = slice(y0, y1), slice(x0, x1)
    underlay = image[rows, cols].astype(np.float32)
    roi = underlay.copy()
    roi_mask = mask[rows, cols]

    work_h, work_w = illumination.shape
    light = float(illumination[min(work_h - 1, int(cy / height * work_h)), min(work_w - 1, int(cx / width * work_w))])
    light = 0.55 + 0.45 * light  # the bright disc saturates the sensor and shows less fall-off

    disc = cv2.GaussianBlur((roi_mask < 255).astype(np.float32), (0, 0), max(0.5, 0.012 * diameter))
    cup = cv2.GaussianBlur((roi_mask == 0).astype(np.float32), (0, 0), max(0.7, 0.035 * diameter))
    xx = np.arange(x0, x1, dtype=np.float32)[None, :]
    nasal = (-anatomy.temporal_sign * (xx - cx) / (diameter / 2)).clip(-1, 1)
    texture_rng = np.random.default_rng([look.texture_seed, 2])
    speckle = 0.04 * _noise_field(texture_rng, 24, roi_mask.shape)

    if look.atrophy > 0:
        crescent = _atrophy_crescent(anatomy, scale, (x0, y0), roi_mask.shape, diameter)
        crescent *= look.atrophy * (1.0 + 0.5 * _noise_field(texture_rng, 30, roi_mask.shape)).clip(0, 1.5)
    ring = look.scleral_ring * 4.0 * disc * (1.0 - disc)
    for c in range(3):
        rim = look.rim_rgb[c] * gain[c] * light * (1.0 + (0.05, -0.06, -0.08)[c] * nasal + speckle)
        pale = look.cup_rgb[c] * gain[c] * light * (1.0 + 0.5 * speckle)
        channel = roi[..., c]
        if look.atrophy > 0:
            atrophy_colour = (0.78, 0.95, 1.05)[c] * float(channel.mean()) * 1.35
            channel += (atrophy_colour - channel) * crescent
        channel += ring * (255.0 - channel) * 0.6
        channel += (rim - channel) * disc
        channel += (pale - channel) * cup
    image[rows, cols] = cv2.convertScaleAbs(roi)
    return _Window(rows, cols, underlay, roi)


def _atrophy_crescent(
    anatomy: Anatomy, scale: np.ndarray, origin: tuple[int, int], shape: tuple[int, int], diameter: float
) -> np.ndarray:
    """``(h, w)`` float32 0-1 weight of a temporal peri-papillary atrophy crescent in the window."""
    center = np.asarray(anatomy.disc_center)
    outline = center + (anatomy.disc_contour - center) * 1.28
    outline[:, 0] += anatomy.temporal_sign * 0.12 * anatomy.disc_diameter
    region = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(region, [_fixed_point(outline * scale - np.asarray(origin))], 1, cv2.LINE_8, SUBPIXEL_BITS)
    disc = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(disc, [_fixed_point(anatomy.disc_contour * scale - np.asarray(origin))], 1, cv2.LINE_8,
                 SUBPIXEL_BITS)
    crescent = (region > 0) & (disc == 0)
    return cv2.GaussianBlur(crescent.astype(np.float32), (0, 0), max(0.7, 0.025 * diameter))


def _paint_foveal_reflex(image: np.ndarray, anatomy: Anatomy, look: Appearance, scale: np.ndarray) -> None:
    """A tiny bright spot in the foveal pit (the foveal light reflex), in place."""
    if look.foveal_reflex <= 0:
        return
    sigma = max(0.6, 0.008 * anatomy.disc_fovea_distance * float(scale.mean()))
    fx, fy = anatomy.fovea[0] * scale[0], anatomy.fovea[1] * scale[1]
    half = int(np.ceil(4 * sigma)) + 1
    x0, y0 = max(0, int(fx) - half), max(0, int(fy) - half)
    x1, y1 = min(image.shape[1], int(fx) + half + 1), min(image.shape[0], int(fy) + half + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    spot = look.foveal_reflex * np.exp(-((xx - fx) ** 2 + (yy - fy) ** 2) / (2 * sigma**2))
    patch = image[y0:y1, x0:x1].astype(np.float32)
    patch += spot[..., None] * (255.0 - patch) * 0.35
    image[y0:y1, x0:x1] = cv2.convertScaleAbs(patch)


@dataclass
class _VesselMaps:
    """What the vessels put on the canvas, ``(H, W)`` uint8 each."""

    artery: np.ndarray  # coverage of arteries, 255 = opaque
    vein: np.ndarray  # coverage of veins
    streak: np.ndarray  # light streak along large arteries
    thin: np.ndarray  # sub-pixel vessels at full strength: faint in the photo, whole in the mask

    def mask(self) -> np.ndarray:
        """``(H, W)`` bool vessel mask: coverage of at least 50 %, or a drawn sub-pixel vessel."""
        return cv2.max(cv2.max(self.artery, self.vein), self.thin) >= 128


def _draw_vessels(vessels: tuple[Vessel, ...], shape: tuple[int, int], scale: np.ndarray) -> _VesselMaps:
    """Draws every vessel, in output pixels."""
    maps = _VesselMaps(*(np.zeros(shape, dtype=np.uint8) for _ in range(4)))
    s = float(scale.mean())
    for vessel in vessels:
        points = vessel.points * scale
        widths = vessel.widths * s
        target = maps.artery if vessel.kind == "artery" else maps.vein
        _draw_band(target, maps.thin, points, widths, vessel.opacity)
        if vessel.kind == "artery" and widths.max() >= 5.0 and vessel.opacity >= 1.0:
            thick = widths >= 5.0
            line = _fixed_point(points[thick])
            if len(line) > 1:
                cv2.polylines(maps.streak, [line], False, 255, 1 if widths.max() < 9 else 2, cv2.LINE_AA,
                              SUBPIXEL_BITS)
    return maps


def _draw_band(canvas: np.ndarray, thin: np.ndarray, points: np.ndarray, widths: np.ndarray, opacity: float) -> None:
    """Draws a centre line ``(N, 2)`` with widths ``(N,)`` (output pixels) as an anti-aliased band.

    Vessels thinner than cv2's anti-aliasing become a one-pixel line whose strength in ``canvas``
    follows the width; those at least ``THIN_IN_MASK`` wide are also drawn whole into ``thin``.
    """
    if len(points) < 2 or widths.max() < 0.35:
        return
    value = int(round(255 * opacity))
    if widths.mean() < AA_WIDENING + 0.3:
        line = [_fixed_point(points)]
        strength = float(np.clip(widths.mean() / AA_WIDENING, 0.0, 1.0))
        cv2.polylines(canvas, line, False, int(round(value * strength)), 1, cv2.LINE_AA, SUBPIXEL_BITS)
        if widths.mean() >= THIN_IN_MASK:
            cv2.polylines(thin, line, False, 255, 1, cv2.LINE_AA, SUBPIXEL_BITS)
        return
    half = (np.maximum(widths - AA_WIDENING, 0.2) / 2.0)[:, None]
    direction = np.diff(points, axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    quads = np.stack(
        [points[:-1] + normal * half[:-1], points[1:] + normal * half[1:],
         points[1:] - normal * half[1:], points[:-1] - normal * half[:-1]],
        axis=1,
    )
    for quad in _fixed_point(quads):
        cv2.fillConvexPoly(canvas, quad, value, cv2.LINE_AA, SUBPIXEL_BITS)
    if half.max() >= 1.0:  # round joints so bends show no wedge-shaped gaps
        centres = _fixed_point(points[1:-1])
        radii = np.round(half[1:-1, 0] * _SHIFT).astype(int)
        for (x, y), radius in zip(centres, radii):
            cv2.circle(canvas, (int(x), int(y)), int(radius), value, -1, cv2.LINE_AA, SUBPIXEL_BITS)


def _apply_vessels(image: np.ndarray, maps: _VesselMaps, reflex: float, window: _Window) -> np.ndarray:
    """The photo ``(H, W, 3)`` uint8 seen through the vessels."""
    artery, vein = maps.artery, maps.vein
    if reflex > 0 and maps.streak.any():
        artery = cv2.addWeighted(artery, 1.0, cv2.GaussianBlur(maps.streak, (0, 0), 0.8), -2.5 * reflex, 0.0)
    # Over the disc: paint the vessels with the colour of the retina behind it.
    rows, cols = window.rows, window.cols
    artery_cover = artery[rows, cols].astype(np.float32)[..., None] / 255.0
    vein_cover = vein[rows, cols].astype(np.float32)[..., None] / 255.0
    overlap = np.maximum(artery_cover + vein_cover, 1.0)
    artery_cover, vein_cover = artery_cover / overlap, vein_cover / overlap
    over_disc = window.painted * (1.0 - artery_cover - vein_cover) + window.underlay * (
        (1.0 - ARTERY_ABSORPTION) * artery_cover + (1.0 - VEIN_ABSORPTION) * vein_cover
    )
    # Elsewhere: multiply by the transmission, computed in uint8 (255 = clear).
    transmission = cv2.merge(
        [cv2.addWeighted(artery, -float(ARTERY_ABSORPTION[c]), vein, -float(VEIN_ABSORPTION[c]), 255.0)
         for c in range(3)]
    )
    result = cv2.multiply(image, transmission, scale=1 / 255)
    result[rows, cols] = cv2.convertScaleAbs(over_disc)
    return result


def _fov_stop(shape: tuple[int, int], anatomy: Anatomy, notch: bool, scale: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8 field-of-view stop (255 = open) with an anti-aliased edge (and the camera's notch)."""
    stop = np.zeros(shape, dtype=np.uint8)
    center = _fixed_point(np.asarray(anatomy.fov_center) * scale)
    radius = int(round(anatomy.fov_radius * float(scale.mean()) * _SHIFT))
    cv2.circle(stop, (int(center[0]), int(center[1])), radius, 255, -1, cv2.LINE_AA, SUBPIXEL_BITS)
    if notch:
        # A small square tab on the upper right of the circle, as on many Canon/Topcon photos.
        angle = np.deg2rad(-38.0)
        r = anatomy.fov_radius
        side = 0.045 * r
        tab_center = np.asarray(anatomy.fov_center) + (r + 0.2 * side) * np.array([np.cos(angle), np.sin(angle)])
        corners = tab_center + side * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) / 2
        cv2.fillConvexPoly(stop, _fixed_point(corners * scale), 255, cv2.LINE_AA, SUBPIXEL_BITS)
    return stop
