"""The numpy path of map resizing and fovea decoding (prediction without torch) gives torch's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from funduskit.models.fovea import decode_fovea
from funduskit.models.maps import resize_maps


@pytest.mark.parametrize(("side", "size"), [(640, 576), (100, 37), (64, 32), (576, 640), (37, 100), (50, 50)])
def test_numpy_resize_gives_torchs_maps(side: int, size: int) -> None:
    maps = np.random.default_rng(side + size).random((2, 3, side, side), dtype=np.float32)
    expected = resize_maps(torch.from_numpy(maps), size).numpy()
    got = resize_maps(maps, size)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (2, 3, size, size)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def test_numpy_fovea_decoding_gives_torchs_points() -> None:
    maps = np.random.default_rng(0).random((4, 3, 20, 20), dtype=np.float32)
    from_array, from_tensor = decode_fovea(maps, 160), decode_fovea(torch.from_numpy(maps), 160)
    np.testing.assert_array_equal(from_array, from_tensor)
    row, col = np.unravel_index(maps[0, 0].argmax(), (20, 20))
    np.testing.assert_allclose(from_array[0], [(col + maps[0, 1, row, col]) * 8, (row + maps[0, 2, row, col]) * 8], rtol=1e-6)
    assert decode_fovea(maps[1], 160).shape == (2,)
