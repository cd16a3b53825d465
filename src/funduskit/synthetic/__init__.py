"""Synthetic REFUGE2-layout fundus data: the embedded default data of funduskit.

Photos of two cameras (Zeiss-like 2124 x 2056, Canon-like 1634 x 1634), left and right eyes,
with disc/cup masks, vessel masks, fovea positions and glaucoma labels carried by the optic
nerve head anatomy only. ``docs/synthetic-data.md`` describes the model and its limits.

Example:
    >>> import numpy as np
    >>> from funduskit.synthetic import draw_case_params, render_case
    >>> params = draw_case_params(np.random.default_rng(0), label=1, scale=0.1)
    >>> image, disc_cup_mask, vessel_mask = render_case(params)
    >>> image.shape[2], sorted(set(np.unique(disc_cup_mask)) - {0, 128, 255})
    (3, [])
"""

from __future__ import annotations

from funduskit.synthetic.cameras import CAMERAS, Camera
from funduskit.synthetic.case import Anatomy, Appearance, CaseParams, Vessel
from funduskit.synthetic.dataset import (
    SyntheticCase,
    case_rng,
    draw_labels,
    generate_case,
    generate_dataset,
)
from funduskit.synthetic.params import draw_case_params
from funduskit.synthetic.render import render_case

__all__ = [
    "CAMERAS",
    "Anatomy",
    "Appearance",
    "Camera",
    "CaseParams",
    "SyntheticCase",
    "Vessel",
    "case_rng",
    "draw_case_params",
    "draw_labels",
    "generate_case",
    "generate_dataset",
    "render_case",
]
