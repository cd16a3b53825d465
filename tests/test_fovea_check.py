"""Anatomy's check on the fovea networks' answer: kept at about 2.5 disc diameters from the disc,
withheld next to it or far beyond it."""

from __future__ import annotations

import numpy as np

from funduskit.inference.fovea_check import check_fovea


def _disc(diameter: int = 100, centre: tuple[int, int] = (300, 400)) -> np.ndarray:
    rows, cols = np.ogrid[:800, :1000]
    return (cols + 0.5 - centre[0]) ** 2 + (rows + 0.5 - centre[1]) ** 2 <= (diameter / 2) ** 2


def test_a_fovea_two_and_a_half_disc_diameters_away_is_kept() -> None:
    checked = check_fovea(_disc(), (550.0, 420.0))
    assert checked.position == (550.0, 420.0) and not checked.withheld
    assert abs(checked.distance_disc_diameters - np.hypot(250, 20) / 100) < 0.02


def test_a_fovea_next_to_the_disc_or_far_beyond_it_is_withheld() -> None:
    for fovea in ((360.0, 400.0), (800.0, 400.0)):  # 0.6 and 5 disc diameters
        checked = check_fovea(_disc(), fovea)
        assert checked.position is None and checked.withheld


def test_without_a_disc_or_an_answer_nothing_is_checked() -> None:
    assert check_fovea(np.zeros((80, 80), bool), (10.0, 10.0)).position == (10.0, 10.0)
    assert check_fovea(_disc(), None).position is None and not check_fovea(_disc(), None).withheld
