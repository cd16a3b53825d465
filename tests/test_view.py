"""Whole fundus photographs and crops centred on the optic disc are told apart."""

from __future__ import annotations

import numpy as np
from skimage import data as skimage_data

from funduskit.data.view import DARK_CORNERS_WHOLE, detect_view
from funduskit.synthetic.render import render_case
from funduskit.synthetic.params import draw_case_params


def test_a_real_whole_photograph_is_whole_and_its_disc_crop_is_a_disc_crop() -> None:
    retina = skimage_data.retina()  # CC0: a whole fundus photograph, field of view on black
    whole = detect_view(retina)
    assert whole.view == "whole" and whole.dark_corners > 0.9
    # its optic disc (the brightest blob, right of centre) with a margin, as the crop sets cut it
    brightness = retina.max(axis=2).astype(float)
    y, x = np.unravel_index(np.argmax(np.convolve(brightness.ravel(), np.ones(31) / 31, "same")), brightness.shape)
    half = retina.shape[0] // 6
    crop = retina[max(0, y - half): y + half, max(0, x - half): x + half]
    decision = detect_view(crop)
    assert decision.view == "disc" and decision.dark_corners < DARK_CORNERS_WHOLE


def test_synthetic_photographs_are_whole() -> None:
    rng = np.random.default_rng(0)
    image, _, _ = render_case(draw_case_params(rng, label=0, scale=0.2))
    assert detect_view(image).view == "whole"


def test_a_black_image_reads_as_whole_and_a_flat_grey_one_as_a_crop() -> None:
    """The measure itself: dark corners or not, nothing else is looked at."""
    assert detect_view(np.zeros((100, 120, 3), np.uint8)).view == "whole"
    assert detect_view(np.full((100, 120, 3), 128, np.uint8)).view == "disc"


def test_a_crop_box_cuts_pastes_and_letterboxes_like_the_network_geometry() -> None:
    from funduskit.data.view import DISC_CROP_SCALE, CropBox
    from funduskit.transforms.preprocess import Geometry

    image = np.zeros((7, 10, 3), np.uint8)  # odd difference: padding 1 above, 2 below
    whole = CropBox.whole(image)
    geometry = Geometry.for_image(image, 10)
    assert (whole.x0, whole.y0, whole.side) == (-geometry.pad_x, -geometry.pad_y, 10)
    np.testing.assert_array_equal(whole.cut(image), geometry.to_network(image))

    disc = np.zeros((100, 120), bool)
    disc[40:60, 98:118] = True  # 20 px, near the right edge: the crop reaches past it
    box = CropBox.around(disc)
    assert box.side == round(20 * DISC_CROP_SCALE) and box.x0 + box.side > 120
    cut = box.cut(disc)
    assert cut.shape == (box.side, box.side) and cut.sum() == disc.sum()
    np.testing.assert_array_equal(box.paste(cut.astype(np.float32), disc.shape) > 0.5, disc)
    assert CropBox.around(np.zeros((5, 5), bool)) is None
