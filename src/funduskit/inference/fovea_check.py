"""Anatomy's check on the fovea: it lies about 2.5 disc diameters from the disc centre.

The fovea network learnt from synthetic photographs, which are macula-centred; on disc-centred
photographs (Drishti-GS1, CHASE_DB1, many glaucoma clinics) it was seen to answer next to the disc.
Real anatomy is narrow: the fovea lies 2.5 +/- 0.3 disc diameters from the disc centre (REFUGE's
annotated centres: 798 +/- 48 px apart at 2124 px width, with discs about 320 px across; the shared
data's README). A network answer outside :data:`PLAUSIBLE_DISC_DIAMETERS` of the predicted disc
is withheld (no fovea rather than a wrong one). A darkest-point search in the ring where anatomy
puts the fovea was tried as a fallback and found the vignetted edge of the field of view on
Drishti-GS1 and the wrong side of the disc on CHASE_DB1, so there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Disc-centre to fovea distances (in disc diameters) accepted from the network.
PLAUSIBLE_DISC_DIAMETERS = (1.8, 3.4)


@dataclass(frozen=True)
class FoveaCheck:
    """The fovea kept (original pixels) or None, and the network answer's distance from the disc
    centre in disc diameters (None without disc or answer)."""

    position: tuple[float, float] | None
    distance_disc_diameters: float | None

    @property
    def withheld(self) -> bool:
        return self.position is None and self.distance_disc_diameters is not None


def check_fovea(disc: np.ndarray, fovea: tuple[float, float] | None) -> FoveaCheck:
    """Keep the network's fovea when anatomy allows it (any answer when there is no disc to check
    it against).

    Args:
        disc: (H, W) bool predicted disc.
        fovea: the network's (x, y) in original pixels, or None.
    """
    if fovea is None or not disc.any():
        return FoveaCheck(fovea, None)
    rows, cols = np.nonzero(disc)
    centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
    diameter = 2.0 * np.sqrt(rows.size / np.pi)
    distance = float(np.hypot(*(np.asarray(fovea) - centre)) / diameter)
    low, high = PLAUSIBLE_DISC_DIAMETERS
    return FoveaCheck(fovea if low <= distance <= high else None, distance)
