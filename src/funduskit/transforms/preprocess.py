"""The report's three preprocessings and the square network geometry with its inverse.

- :func:`normalize_255`: pixel values divided by 255 (glaucoma classifier, first model family).
- :func:`zero_local_mean`: ``4 * I - 4 * GaussianBlur(I) + 128`` with ``cv2.addWeighted``
  (glaucoma classifier, second model family).
- :func:`standardize`: per-image, per-channel ``(I - mu) / sigma`` (disc, cup, fovea, vessels).
- :func:`lite_normalize`: ``(I - 127) / 128``, the input the ImageNet EfficientNet-Lite weights
  were trained on (the ``real`` preset's pretrained encoders; beyond the report).
- :func:`clahe_standardize`: contrast-limited adaptive histogram equalisation of the lightness,
  then :func:`standardize` (the vessel segmenters of the DRIVE literature; beyond the report).

:data:`PREPROCESSINGS` maps each name to a function from an ``(H, W, 3)`` uint8 photograph to the
``(H, W, 3)`` float32 network input. :class:`Geometry` letterboxes a photograph into the
``S x S`` network input and maps points and probability maps back to the original pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from funduskit.data.io import FieldOfView

ZERO_LOCAL_MEAN_SIGMA_FRACTION = 1 / 60
"""Default Gaussian sigma of :func:`zero_local_mean` as a fraction of the shorter image side.

Ben Graham's Kaggle recipe (the origin of this preprocessing) blurs with sigma = radius / 30,
and a fundus field of view spans about the shorter side, so sigma = shorter side / 60
(17 px at the classifier's 1024 x 1024 input).
"""

_STD_FLOOR = 1e-6  # a channel whose standard deviation is below this is constant: divide by 1


def normalize_255(image: np.ndarray) -> np.ndarray:
    """Divide by 255.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, W, 3)`` float32 in ``[0, 1]``.
    """
    return image.astype(np.float32) * np.float32(1 / 255)


def zero_local_mean(
    image: np.ndarray, sigma: float | None = None, *, fov: FieldOfView | None = None
) -> np.ndarray:
    """Subtract the local mean: ``4 * I - 4 * GaussianBlur(I, sigma) + 128``, saturated to uint8.

    This is the cv2 form the report names (``addWeighted`` of the image and its
    ``GaussianBlur``); flat regions become 128, edges and lesions stand out.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        sigma: Gaussian standard deviation in pixels; default
            ``ZERO_LOCAL_MEAN_SIGMA_FRACTION * min(H, W)``.
        fov: when given, pixels outside the field of view are set to 128 (the zero level), which
            removes the bright ring the filter draws along the FOV edge.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if sigma is None:
        sigma = ZERO_LOCAL_MEAN_SIGMA_FRACTION * min(image.shape[:2])
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    result = cv2.addWeighted(image, 4, blurred, -4, 128)
    if fov is not None:
        result[~fov.mask(image.shape)] = 128
    return result


def standardize(image: np.ndarray, *, fov: FieldOfView | None = None) -> np.ndarray:
    """Per-image, per-channel standardisation ``(I_c - mu_c) / sigma_c`` (report, equation 1).

    Args:
        image: ``(H, W, 3)`` uint8 (or float) RGB.
        fov: when given, ``mu`` and ``sigma`` are computed over the pixels inside the field of
            view only (the black border otherwise pulls the mean down); the whole image is still
            transformed. The default, ``None``, uses every pixel, as the report does.

    Returns:
        ``(H, W, 3)`` float32; a constant channel becomes 0.
    """
    mask = None
    if fov is not None:
        mask = fov.mask(image.shape).astype(np.uint8)
        if not mask.any():
            mask = None
    mean, std = cv2.meanStdDev(image, mask=mask)  # float64, (C, 1); 5x faster than numpy
    std = np.where(std < _STD_FLOOR, 1.0, std)
    pixels = image.astype(np.float32)
    pixels -= mean.ravel().astype(np.float32)
    pixels *= (1.0 / std.ravel()).astype(np.float32)
    return pixels


def lite_normalize(image: np.ndarray) -> np.ndarray:
    """``(I - 127) / 128``: the EfficientNet-Lite originals' input (``funduskit.models.pretrained``).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, W, 3)`` float32 in about ``[-1, 1]``.
    """
    return (image.astype(np.float32) - np.float32(127.0)) * np.float32(1 / 128)


#: CLAHE's contrast limit and tile grid (OpenCV's defaults for the limit; 8 x 8 tiles of the
#: network input: 72 px tiles at the real preset's 576 px vessel input, a few vessel widths wide).
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = 8


def clahe_standardize(image: np.ndarray) -> np.ndarray:
    """CLAHE on the L channel of CIE Lab (colours kept), then per-channel :func:`standardize`.

    Equalising the lightness tile by tile brings thin, faint vessels and photographs of dim or
    hazy cameras to a common local contrast; the contrast limit keeps noise from being amplified.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, W, 3)`` float32, each channel of mean 0 and standard deviation 1.
    """
    lab = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2LAB)
    equaliser = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=(CLAHE_TILES, CLAHE_TILES))
    lab[..., 0] = equaliser.apply(np.ascontiguousarray(lab[..., 0]))
    return standardize(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


def _zero_local_mean_input(image: np.ndarray) -> np.ndarray:
    """:func:`zero_local_mean` scaled like :func:`normalize_255`: float32 in [0, 1], flat = 0.5."""
    return normalize_255(zero_local_mean(image))


PREPROCESSINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "normalize": normalize_255,
    "zero_local_mean": _zero_local_mean_input,
    "standardize": standardize,
    "lite": lite_normalize,
    "clahe": clahe_standardize,
}
"""Network-input preprocessings by name: ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` float32."""


def preprocess(image: np.ndarray, name: str) -> np.ndarray:
    """Apply the preprocessing ``name`` (a key of :data:`PREPROCESSINGS`).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        name: ``"normalize"``, ``"zero_local_mean"``, ``"standardize"``, ``"lite"`` or ``"clahe"``.

    Returns:
        ``(H, W, 3)`` float32.
    """
    try:
        function = PREPROCESSINGS[name]
    except KeyError:
        raise ValueError(f"unknown preprocessing {name!r}; choose one of {sorted(PREPROCESSINGS)}") from None
    return function(image)


@dataclass(frozen=True)
class Geometry:
    """Letterbox geometry between an original ``(H, W)`` photograph and an ``S x S`` input.

    The photograph is padded with black to a centred square of side ``max(H, W)`` and that
    square is resized to ``S x S``; one scale applies to both axes, so circles (the optic
    disc, the FOV) stay circles and vertical diameters keep their meaning.

    Coordinates are continuous: pixel ``(row, column)`` covers ``[column, column + 1)`` x
    ``[row, row + 1)`` (the convention of OpenCV's resize and albumentations' keypoints), so
    ``network = (original + pad) * scale`` exactly.

    Attributes:
        height: original height ``H``.
        width: original width ``W``.
        size: network side ``S``.
    """

    height: int
    width: int
    size: int

    def __post_init__(self) -> None:
        if min(self.height, self.width, self.size) <= 0:
            raise ValueError(f"sizes must be positive, got {self.height}x{self.width} -> {self.size}")

    @classmethod
    def for_image(cls, image: np.ndarray, size: int) -> Geometry:
        """The geometry of an ``(H, W, ...)`` array resized to ``size x size``."""
        return cls(int(image.shape[0]), int(image.shape[1]), int(size))

    @property
    def side(self) -> int:
        """Side of the padded square, ``max(H, W)``."""
        return max(self.height, self.width)

    @property
    def pad_x(self) -> int:
        """Columns of padding on the left (the right gets the rest)."""
        return (self.side - self.width) // 2

    @property
    def pad_y(self) -> int:
        """Rows of padding at the top (the bottom gets the rest)."""
        return (self.side - self.height) // 2

    @property
    def scale(self) -> float:
        """Network pixels per original pixel."""
        return self.size / self.side

    def _pad(self, array: np.ndarray, value: float) -> np.ndarray:
        top, left = self.pad_y, self.pad_x
        bottom, right = self.side - self.height - top, self.side - self.width - left
        if not (top or bottom or left or right):
            return array
        border_value = (value,) * 4
        return cv2.copyMakeBorder(array, top, bottom, left, right, cv2.BORDER_CONSTANT, value=border_value)

    def _check_shape(self, array: np.ndarray, expected: tuple[int, int], what: str) -> None:
        if tuple(array.shape[:2]) != expected:
            raise ValueError(f"{what} is {array.shape[:2]}, this geometry expects {expected}")

    def to_network(
        self, image: np.ndarray, *, interpolation: int | None = None, pad_value: float = 0
    ) -> np.ndarray:
        """Letterbox an original-size array into the network input.

        Args:
            image: ``(H, W)`` or ``(H, W, C)`` array of the original size.
            interpolation: OpenCV flag; default area averaging when shrinking, linear when
                enlarging. Use ``cv2.INTER_NEAREST`` for label masks.
            pad_value: value of the padding (e.g. 255 for a REFUGE disc/cup mask's background).

        Returns:
            ``(S, S)`` or ``(S, S, C)`` array of the same dtype.
        """
        self._check_shape(image, (self.height, self.width), "image")
        if interpolation is None:
            interpolation = cv2.INTER_AREA if self.size < self.side else cv2.INTER_LINEAR
        square = self._pad(image, pad_value)
        if self.size == self.side:
            return np.ascontiguousarray(square)
        resized = cv2.resize(square, (self.size, self.size), interpolation=interpolation)
        return resized.reshape((self.size, self.size) + image.shape[2:])

    def points_to_network(self, xy: np.ndarray | tuple[float, float]) -> np.ndarray:
        """Map original-pixel points to network pixels.

        Args:
            xy: ``(2,)`` or ``(N, 2)`` points ``(x, y)`` in original pixels.

        Returns:
            Float64 array of the same shape in network pixels.
        """
        points = np.asarray(xy, dtype=np.float64)
        return (points + (self.pad_x, self.pad_y)) * self.scale

    def points_to_original(self, xy: np.ndarray | tuple[float, float]) -> np.ndarray:
        """The inverse of :meth:`points_to_network`: network-pixel points (same shapes) to original pixels."""
        points = np.asarray(xy, dtype=np.float64)
        return points / self.scale - (self.pad_x, self.pad_y)

    def map_to_original(self, prob_map: np.ndarray, *, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Resize a network-size map back to the original photograph.

        Args:
            prob_map: ``(h, w)`` float map over the network input (``h == w``; any side, e.g.
                the 160 x 160 output of a decoder, is scaled to cover the same square).
            interpolation: OpenCV flag; linear keeps probabilities smooth for thresholding.

        Returns:
            ``(H, W)`` float32 map in original pixels (the padding cut away).
        """
        if prob_map.ndim != 2 or prob_map.shape[0] != prob_map.shape[1]:
            raise ValueError(f"expected a square (h, w) map, got shape {prob_map.shape}")
        square = cv2.resize(
            np.asarray(prob_map, dtype=np.float32), (self.side, self.side), interpolation=interpolation
        )
        top, left = self.pad_y, self.pad_x
        return np.ascontiguousarray(square[top : top + self.height, left : left + self.width])
