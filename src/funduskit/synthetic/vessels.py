"""The retinal vessel tree of a synthetic case (parameters only; drawing is in ``render``).

The tree is laid out in a frame tied to the eye: ``a`` runs from the disc centre towards the
fovea (the temporal direction) and ``b`` runs inferiorly, both in units of the disc-to-fovea
distance. Main vessels (an artery and a vein for each arcade and each nasal quadrant, plus thin
macular and nasal twigs) follow jittered templates; each leaves the central trunk inside the cup,
bends where it climbs out of the cup (the cup edge), crosses the rim and then follows its
template. Side branches grow recursively as persistent random walks, narrower than their parent,
and stop at the edge of the field of view, near the fovea (the avascular zone) or at the disc.
"""

from __future__ import annotations

import math

import numpy as np

from funduskit.synthetic import geometry
from funduskit.synthetic.case import Anatomy, Vessel, VesselKind

# (a, b) templates for the superior side (b < 0); the inferior side flips b.
TEMPORAL_ARCADE = np.array([(0.04, -0.3), (0.16, -0.55), (0.42, -0.7), (0.82, -0.75), (1.22, -0.69),
                            (1.62, -0.58), (2.02, -0.45), (2.45, -0.32)])
NASAL = np.array([(-0.1, -0.3), (-0.3, -0.5), (-0.58, -0.66), (-0.95, -0.8), (-1.4, -0.9)])
NASAL_TWIG = np.array([(-0.3, -0.06), (-0.65, -0.1), (-1.05, -0.17), (-1.5, -0.22)])
MACULAR_TWIG = np.array([(0.3, -0.1), (0.5, -0.14), (0.68, -0.17)])

MINIMUM_WIDTH = 1.3  # full-size pixels; thinner branches are not grown
FOVEA_CLEARANCE = 0.14  # vessel-free radius around the fovea, in disc-to-fovea distances
_CHILD_RATIO = (0.45, 0.75)  # branch width / parent width at the fork
_SMOOTHING = np.hanning(9) / np.sqrt((np.hanning(9) ** 2).sum())  # low-pass of branch turning, unit variance


class _Frame:
    """Maps ``(a, b)`` eye-frame coordinates to image pixels."""

    def __init__(self, anatomy: Anatomy):
        self.origin = np.asarray(anatomy.disc_center, dtype=np.float64)
        towards_fovea = np.asarray(anatomy.fovea) - self.origin
        self.unit = float(np.hypot(*towards_fovea))
        self.a_axis = towards_fovea / self.unit
        b_axis = np.array([-self.a_axis[1], self.a_axis[0]])
        self.b_axis = b_axis if b_axis[1] > 0 else -b_axis  # inferior = down in the image

    def to_image(self, ab: np.ndarray) -> np.ndarray:
        return self.origin + self.unit * (ab[:, :1] * self.a_axis + ab[:, 1:2] * self.b_axis)


def grow_vessel_tree(rng: np.random.Generator, anatomy: Anatomy) -> tuple[Vessel, ...]:
    """All vessel segments of one eye, main vessels first, full-size pixel coordinates."""
    frame = _Frame(anatomy)
    disc_diameter = anatomy.disc_diameter
    tortuosity = rng.uniform(0.5, 1.3)
    vein_width = disc_diameter * rng.uniform(0.062, 0.078)
    artery_ratio = rng.uniform(0.68, 0.8)
    # Central trunk slightly nasal of the cup centre, split into a superior and an inferior
    # stem; the artery emerges nasal of the vein.
    nasal = -anatomy.temporal_sign * frame.a_axis
    cup_center = np.asarray(anatomy.cup_center)
    cup_size = geometry.vertical_extent(anatomy.cup_contour)

    vessels: list[Vessel] = []
    for side in (-1.0, 1.0):  # superior, inferior
        for kind in ("vein", "artery"):
            trunk = (cup_center + nasal * (0.1 if kind == "vein" else 0.22) * cup_size
                     + frame.b_axis * side * rng.uniform(0.05, 0.18) * cup_size)
            width = vein_width if kind == "vein" else vein_width * artery_ratio
            arcade = _main_vessel(rng, anatomy, frame, _jitter_template(rng, TEMPORAL_ARCADE, side), trunk,
                                  width, kind, tortuosity)
            vessels.extend(arcade)
            # The nasal vessel leaves the trunk itself or forks off the arcade vessel near the margin.
            nasal_control = _jitter_template(rng, NASAL, side)
            fork = _point_near_margin(arcade[0], anatomy) if arcade and rng.random() < 0.5 else None
            vessels.extend(_main_vessel(rng, anatomy, frame, nasal_control, trunk if fork is None else fork,
                                        width * 0.75, kind, tortuosity))
            for template, relative_width, chance in ((NASAL_TWIG, 0.4, 0.8), (MACULAR_TWIG, 0.35, 0.7)):
                if rng.random() < chance:
                    vessels.extend(_main_vessel(rng, anatomy, frame, _jitter_template(rng, template, side), trunk,
                                                width * relative_width, kind, tortuosity))
    return tuple(vessels)


def _point_near_margin(vessel: Vessel, anatomy: Anatomy) -> np.ndarray | None:
    """The first point of a main vessel's centre line outside the disc margin, if it crosses it."""
    distance = np.hypot(*(vessel.points - np.asarray(anatomy.disc_center)).T)
    outside = np.flatnonzero(distance > anatomy.disc_diameter * 0.5)
    return None if len(outside) == 0 else vessel.points[outside[0]]


def _jitter_template(rng: np.random.Generator, template: np.ndarray, side: float) -> np.ndarray:
    """The template, stretched and jittered for one vessel, on the superior or inferior side."""
    stretch = np.array([rng.uniform(0.88, 1.12), rng.uniform(0.82, 1.15)])
    ab = template * stretch + rng.normal(0.0, 0.025, template.shape)
    ab[:, 1] = side * np.abs(ab[:, 1])  # side -1: superior (b < 0), +1: inferior
    return ab


def _main_vessel(
    rng: np.random.Generator,
    anatomy: Anatomy,
    frame: _Frame,
    control_ab: np.ndarray,
    trunk: np.ndarray,
    width: float,
    kind: VesselKind,
    tortuosity: float,
) -> list[Vessel]:
    """A vessel from ``trunk`` to its template's end, and its side branches.

    From a trunk inside the cup it runs straight to the cup edge (drawn fainter: the cup wall
    hides it), kinks sideways where it climbs out of the cup, crosses the rim and follows the
    template. From a trunk outside the cup (a fork at the margin) it follows the template at once.
    """
    control = frame.to_image(control_ab)
    cup_center = np.asarray(anatomy.cup_center)
    exit_direction = control[0] - cup_center
    exit_angle = float(np.arctan2(exit_direction[1], exit_direction[0]))
    exit_unit = np.array([np.cos(exit_angle), np.sin(exit_angle)])
    tangent = np.array([-exit_unit[1], exit_unit[0]])
    angle = np.array([exit_angle])
    cup_radius = float(geometry.radius_towards(anatomy.cup_contour, anatomy.cup_center, angle)[0])
    disc_radius = float(geometry.radius_towards(anatomy.disc_contour, anatomy.cup_center, angle)[0])
    disc_diameter = anatomy.disc_diameter
    step = float(np.clip(width * 0.8, 3.0, 10.0))
    pieces: list[Vessel] = []

    if np.hypot(*(trunk - cup_center)) < cup_radius * 0.9:
        cup_edge = cup_center + exit_unit * cup_radius * 0.97
        inside = geometry.resample_polyline(np.stack([trunk, cup_edge]), step=4.0)
        pieces.append(Vessel(kind, inside, np.full(len(inside), width * 0.85), opacity=0.75))
        jog = tangent * rng.uniform(-1.0, 1.0) * 0.03 * disc_diameter
        climb = min(0.04 * disc_diameter, 0.5 * max(disc_radius - cup_radius, 0.0))  # stay inside the disc
        over_edge = cup_center + exit_unit * (cup_radius + climb) + jog
        at_margin = cup_center + exit_unit * disc_radius + jog * 1.2
        head = geometry.resample_polyline(np.stack([cup_edge, over_edge]), step=2.0)[:-1]
        outer = geometry.smooth_curve(np.vstack([over_edge, at_margin, control]), step)
    else:
        head = trunk[None, :]
        outer = geometry.smooth_curve(np.vstack([trunk, control]), step)[1:]
    outer = _add_tortuosity(rng, outer, frame.unit * 0.008 * tortuosity, start=disc_radius)
    centre_line = _inside_fov(np.vstack([head, outer]), anatomy)
    if len(centre_line) < 2:
        return pieces
    arc = geometry.arc_length(centre_line)
    widths = width * (1.0 - 0.4 * arc / max(arc[-1], 1.0))
    branches: list[Vessel] = []
    _grow_branches(rng, anatomy, centre_line, widths, kind, tortuosity, branches,
                   skip=disc_radius + 0.3 * disc_diameter)
    return [Vessel(kind, centre_line, widths), *pieces, *branches]


def _add_tortuosity(rng: np.random.Generator, line: np.ndarray, amplitude: float, start: float) -> np.ndarray:
    """Sideways sinusoidal wiggles, growing in from zero over the first ``start`` pixels."""
    if len(line) < 3:
        return line
    arc = geometry.arc_length(line)
    offset = np.zeros(len(line))
    for _ in range(3):
        wavelength = rng.uniform(60.0, 260.0) * amplitude / 4.0 + rng.uniform(80.0, 200.0)
        offset += rng.normal(0.0, amplitude) * np.sin(2 * np.pi * arc / wavelength + rng.uniform(0, 2 * np.pi))
    offset *= np.clip(arc / max(start, 1.0), 0.0, 1.0)
    return line + geometry.unit_normals(line) * offset[:, None]


def _inside_fov(line: np.ndarray, anatomy: Anatomy) -> np.ndarray:
    """The leading part of ``line`` that stays inside the field of view (plus a small margin)."""
    distance = np.hypot(line[:, 0] - anatomy.fov_center[0], line[:, 1] - anatomy.fov_center[1])
    outside = np.flatnonzero(distance > anatomy.fov_radius * 1.01)
    return line if len(outside) == 0 else line[: outside[0] + 1]


def _grow_branches(
    rng: np.random.Generator,
    anatomy: Anatomy,
    line: np.ndarray,
    widths: np.ndarray,
    kind: VesselKind,
    tortuosity: float,
    out: list[Vessel],
    skip: float,
) -> None:
    """Adds side branches of ``line`` (recursively) to ``out``; narrows ``widths`` after each fork."""
    if widths.max() * _CHILD_RATIO[1] < MINIMUM_WIDTH:
        return  # every child would be too thin to grow
    arc = geometry.arc_length(line)
    disc_center = np.asarray(anatomy.disc_center)
    position = skip + rng.uniform(0.3, 1.0) * _branch_spacing(float(widths[0]))
    while position < arc[-1] - 20.0:
        index = int(np.searchsorted(arc, position))
        parent_width = float(widths[index])
        child_width = parent_width * rng.uniform(*_CHILD_RATIO)
        position += _branch_spacing(parent_width) * rng.uniform(0.6, 1.4)
        if child_width < MINIMUM_WIDTH:
            continue
        if np.hypot(*(line[index] - disc_center)) < anatomy.disc_diameter * 0.75:
            continue
        heading_vector = line[min(index + 1, len(line) - 1)] - line[max(index - 1, 0)]
        heading = float(np.arctan2(heading_vector[1], heading_vector[0]))
        heading += rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 1.15)
        child = _random_walk(rng, anatomy, line[index], heading, child_width, tortuosity)
        if len(child) < 3:
            continue
        child_arc = geometry.arc_length(child)
        child_widths = child_width * (1.0 - 0.45 * child_arc / max(child_arc[-1], 1.0))
        _grow_branches(rng, anatomy, child, child_widths, kind, tortuosity, out, skip=12.0)
        out.append(Vessel(kind, child, child_widths))
        widths[index:] *= rng.uniform(0.86, 0.95)


def _branch_spacing(width: float) -> float:
    """Mean distance between forks along a vessel of this width (full-size pixels)."""
    return 13.0 * width + 50.0


def _random_walk(
    rng: np.random.Generator,
    anatomy: Anatomy,
    start: np.ndarray,
    heading: float,
    width: float,
    tortuosity: float,
) -> np.ndarray:
    """``(N, 2)`` centre line of a branch: persistent random heading, cut at the FOV, fovea and disc."""
    length = width * rng.uniform(45.0, 90.0) + 40.0
    step = float(np.clip(width * 2.0, 5.0, 14.0))
    count = max(2, int(length / step))
    # Low-pass filtered turning (gentle curves, not a jittery walk), pulled softly away from the
    # disc (branches spread centrifugally) or, for branches that set off towards the macula,
    # towards the fovea (macular branches converge on it).
    turn_sd = 0.05 * np.sqrt(step / 8.0) * tortuosity
    turns = turn_sd * np.convolve(rng.normal(0.0, 1.0, count + 8), _SMOOTHING, mode="valid")[:count]
    pull = 0.025 * step / 8.0
    disc_x, disc_y = anatomy.disc_center
    fovea_x, fovea_y = anatomy.fovea
    x, y = float(start[0]), float(start[1])
    to_fovea = math.atan2(fovea_y - y, fovea_x - x)
    macular = math.cos(to_fovea - heading) > 0.5 and math.hypot(fovea_x - x, fovea_y - y) < anatomy.disc_fovea_distance
    xs, ys = [x], [y]
    for turn in turns.tolist():
        if macular:
            target = math.atan2(fovea_y - y, fovea_x - x)
        else:
            target = math.atan2(y - disc_y, x - disc_x)
        heading += turn + pull * math.sin(target - heading)
        x += step * math.cos(heading)
        y += step * math.sin(heading)
        xs.append(x)
        ys.append(y)
    line = np.column_stack([xs, ys])

    fovea = np.asarray(anatomy.fovea)
    disc = np.asarray(anatomy.disc_center)
    clearance = FOVEA_CLEARANCE * anatomy.disc_fovea_distance
    near_fovea = np.hypot(*(line - fovea).T) < clearance
    near_disc = np.hypot(*(line - disc).T) < anatomy.disc_diameter * 0.6
    near_disc[:3] = False
    stop = np.flatnonzero(near_fovea | near_disc)
    if len(stop):
        line = line[: stop[0]]
    return _inside_fov(line, anatomy)
