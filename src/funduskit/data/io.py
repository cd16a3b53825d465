"""Image and mask loading a user can trust, and the field-of-view (FOV) circle.

Every photograph enters funduskit through :func:`load_image`, which returns an ``(H, W, 3)`` uint8
RGB array whatever the file holds (JPEG, PNG, BMP, TIFF; grey, 16-bit, alpha, palette), honours
the EXIF orientation tag, and refuses files that cannot be used with a :class:`DataError` that
names the file and the fix. Masks enter through :func:`load_mask` (``(H, W)`` uint8, values as
stored). :func:`find_fov` finds the circular field of view of a fundus photograph.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from funduskit.core.errors import DataError

#: Suffixes (lower case) of the photographs funduskit predicts on, taken from a folder given as input.
PHOTO_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
#: Suffixes of every image file a data set layout may hold: photographs, and masks (DRIVE's are GIF).
#: The same set as :data:`PHOTO_SUFFIXES` now that GIF and WebP photographs are read too.
IMAGE_SUFFIXES: frozenset[str] = frozenset(PHOTO_SUFFIXES)

#: The first bytes of each image format that :func:`load_image` reads -> its name.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)


def image_format(path: str | Path) -> str | None:
    """The image format of a file by its first bytes (``"JPEG"``, ``"PNG"``, ``"WebP"``, ``"GIF"``,
    ``"BMP"``, ``"TIFF"``), whatever its name says; None for anything else or an unreadable file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)

MIN_SIDE = 64
"""Smallest accepted width or height in pixels; smaller files are thumbnails or icons."""

MAX_PIXELS = 100_000_000
"""Largest accepted image area (100 megapixels); larger files are refused before decoding."""

_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
_FIX_REEXPORT = "re-export it as JPEG or PNG"
_FIX_RECOPY = "copy or download the file again; if it is damaged at the source, leave it out"


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _open(path: Path) -> Image.Image | None:
    """Open ``path`` lazily with PIL (header only); ``None`` when PIL does not know the format."""
    if not path.is_file():
        problem = "is a folder, not an image file" if path.is_dir() else "does not exist"
        raise DataError(path, problem, fix="check the path")
    if path.stat().st_size == 0:
        raise DataError(path, "is an empty file (0 bytes)", fix=_FIX_RECOPY)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as error:
        raise DataError(
            path,
            f"is too large to decode safely ({error})",
            fix=f"downscale it below {MAX_PIXELS / 1e6:.0f} megapixels",
        ) from error
    except UnidentifiedImageError:
        return None
    except OSError as error:
        raise DataError(path, f"cannot be read ({error})", fix=_FIX_RECOPY) from error


_EXIF_FORMATS = frozenset({"JPEG", "MPO", "TIFF", "WEBP"})


def _exif_orientation(image: Image.Image) -> int:
    # Only JPEG/TIFF/MPO/WebP carry EXIF before the pixels; asking a PNG for EXIF makes PIL
    # decode the whole file (44 ms for a 1634x1634 mask instead of 0.05 ms for the header).
    if image.format not in _EXIF_FORMATS:
        return 1
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a malformed EXIF block must not make a good photograph unreadable
        return 1


def _check_size(path: Path, width: int, height: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise DataError(
            path,
            f"is {width}x{height} pixels; at least {MIN_SIDE} pixels on each side are needed",
            fix="use the full-resolution photograph, not a thumbnail",
        )
    if width * height > MAX_PIXELS:
        raise DataError(
            path,
            f"is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), above the "
            f"{MAX_PIXELS / 1e6:.0f} megapixel limit",
            fix="downscale it, or raise funduskit.data.io.MAX_PIXELS if this size is intended",
        )


def _decode_pil(path: Path, image: Image.Image, orientation: int) -> np.ndarray:
    """Decode an opened PIL image into a numpy array (any dtype, 2-D or 3-D), EXIF applied."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(path, f"is corrupt or truncated ({error})", fix=_FIX_RECOPY) from error
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode in {"CMYK", "YCbCr", "LAB", "HSV"}:
        image = image.convert("RGB")
    return _apply_orientation(np.asarray(image), orientation)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``(H, W, ...)`` stored pixels into displayed pixels for an EXIF orientation (1-8)."""
    if orientation in (5, 6, 7, 8):
        array = np.swapaxes(array, 0, 1)  # transpose; 6 and 8 then flip to rotate
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    return np.ascontiguousarray(array)


def _imdecode(path: Path, flags: int) -> np.ndarray | None:
    """OpenCV decode of the file (about twice as fast as PIL for JPEG); None when it fails."""
    return cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)


def _decode_cv2(path: Path) -> np.ndarray:
    """Decode a format PIL does not know with OpenCV; BGR(A) reordered to RGB(A)."""
    array = _imdecode(path, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(
            path,
            "is not an image funduskit can read (JPEG, PNG, BMP or TIFF expected)",
            fix=_FIX_REEXPORT,
        )
    _check_size(path, array.shape[1], array.shape[0])
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[..., ::-1]
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(array)


_FAST_FORMATS = frozenset({"JPEG", "PNG", "BMP"})
_IMREAD_COLOR_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes to RGB directly
_IMREAD_COLOR = cv2.IMREAD_COLOR if _IMREAD_COLOR_RGB is None else _IMREAD_COLOR_RGB
_IMAGE_FAST_MODES = {"RGB": _IMREAD_COLOR, "L": _IMREAD_COLOR}
_MASK_FAST_MODES = {"L": cv2.IMREAD_GRAYSCALE}


def _decode(path: str | Path, fast_modes: dict[str, int]) -> tuple[Path, np.ndarray]:
    """Read ``path`` into an array: PIL reads the header and refuses bad files; plain 8-bit
    JPEG / PNG / BMP pixels are decoded by OpenCV (faster), anything else by PIL."""
    path = Path(path)
    image = _open(path)
    if image is None:
        return path, _decode_cv2(path)
    with image:
        _check_size(path, *image.size)
        orientation = _exif_orientation(image)
        flags = fast_modes.get(image.mode)
        if flags is not None and image.format in _FAST_FORMATS:
            array = _imdecode(path, flags | cv2.IMREAD_IGNORE_ORIENTATION)
            if array is not None:
                if array.ndim == 3 and flags == cv2.IMREAD_COLOR:
                    array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
                return path, _apply_orientation(array, orientation)
        return path, _decode_pil(path, image, orientation)  # also says why OpenCV failed


def _to_uint8(path: Path, array: np.ndarray) -> np.ndarray:
    """Scale any integer depth to uint8: 16-bit keeps its high byte (as PIL does for RGB)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if array.dtype.kind in "iu" and array.size and 0 <= array.min() and array.max() <= 65535:
        return (array.astype(np.uint16) >> 8).astype(np.uint8)
    raise DataError(
        path,
        f"has {array.dtype} pixels, which have no agreed 8-bit meaning",
        fix="save it as an 8- or 16-bit image",
    )


# --------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------


def load_image(path: str | Path) -> np.ndarray:
    """Load a photograph as RGB.

    Honours the EXIF orientation tag. Grey and 1-bit images are repeated into three channels,
    16-bit images keep their high byte, a palette is expanded, and an alpha channel is
    composited on black (the background of a fundus photograph).

    Args:
        path: a JPEG, PNG, BMP or TIFF file (any other format PIL or OpenCV decodes works too).

    Returns:
        ``(H, W, 3)`` uint8 RGB array, rows top to bottom as displayed.

    Raises:
        DataError: the file is missing, empty, not an image, corrupt or truncated, smaller than
            :data:`MIN_SIDE` pixels on a side, or larger than :data:`MAX_PIXELS`.
    """
    path, array = _decode(path, _IMAGE_FAST_MODES)
    array = _to_uint8(path, array)
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    channels = array.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    if channels == 2:  # grey + alpha
        grey = _composite_on_black(array[..., :1], array[..., 1])
        return np.ascontiguousarray(np.repeat(grey, 3, axis=2))
    if channels == 3:
        return np.ascontiguousarray(array)
    if channels == 4:
        return _composite_on_black(array[..., :3], array[..., 3])
    raise DataError(path, f"has {channels} channels; 1, 3 or 4 are expected", fix=_FIX_REEXPORT)


def _composite_on_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` uint8 colour times ``(H, W)`` uint8 alpha / 255, rounded."""
    if alpha.min() == 255:
        return np.ascontiguousarray(colour)
    weighted = colour.astype(np.uint16) * alpha[..., None].astype(np.uint16) + 127
    return (weighted // 255).astype(np.uint8)


def load_mask(path: str | Path, *, channel: int | None = None) -> np.ndarray:
    """Load a single-channel mask with its values as stored.

    Palette and RGB(A) masks are collapsed to one channel when all colour channels agree
    (a grey palette, a grey image saved as RGB); an alpha channel is ignored. 16-bit masks keep
    their values when they all fit in 8 bits (label images), else keep their high byte.

    Args:
        path: the mask file.
        channel: take this colour channel (0 = red) without checking that channels agree, for
            data sets that draw the mask in one colour (IDRiD's red masks, for example).

    Returns:
        ``(H, W)`` uint8 array.

    Raises:
        DataError: as :func:`load_image`, or the colour channels differ and ``channel`` is None.
    """
    path, array = _decode(path, _MASK_FAST_MODES)
    if array.dtype == np.uint16 and array.size and array.max() <= 255:
        array = array.astype(np.uint8)
    array = _to_uint8(path, array)
    if array.ndim == 2:
        return np.ascontiguousarray(array)
    if array.shape[2] <= 2:  # grey, grey + alpha
        return np.ascontiguousarray(array[..., 0])
    if channel is not None:
        if not 0 <= channel < array.shape[2]:
            raise DataError(path, f"has no channel {channel} (it has {array.shape[2]})")
        return np.ascontiguousarray(array[..., channel])
    colour = array[..., :3]
    first = colour[..., 0]
    if np.array_equal(first, colour[..., 1]) and np.array_equal(first, colour[..., 2]):
        return np.ascontiguousarray(first)
    differing = np.argwhere((colour != first[..., None]).any(axis=2))[0]
    row, column = (int(v) for v in differing)
    raise DataError(
        path,
        f"is a colour mask (pixel at x={column}, y={row} is RGB {tuple(colour[row, column].tolist())}); "
        "a single-channel mask is expected",
        fix="save the mask as a greyscale image, or pass channel= to pick the colour channel",
    )


def image_size(path: str | Path) -> tuple[int, int]:
    """The ``(width, height)`` :func:`load_image` will return, read from the file header.

    The EXIF orientation is taken into account (a rotated photograph reports its displayed
    size). Sizes outside :data:`MIN_SIDE` .. :data:`MAX_PIXELS` raise like :func:`load_image`.
    """
    path = Path(path)
    image = _open(path)
    if image is None:
        array = _decode_cv2(path)
        return int(array.shape[1]), int(array.shape[0])
    with image:
        width, height = image.size
        _check_size(path, width, height)
        if _exif_orientation(image) in _TRANSPOSED_ORIENTATIONS:
            width, height = height, width
    return int(width), int(height)


# --------------------------------------------------------------------------------------------
# Field of view
# --------------------------------------------------------------------------------------------

_FOV_WORK_SIDE = 512  # the FOV is found on every k-th pixel, k chosen so the longer side is <= this
_FOV_MIN_ARC_POINTS = 20  # fewer free boundary points than this: no usable circle edge


@dataclass(frozen=True)
class FieldOfView:
    """The circular field of view of a fundus photograph, in pixels of that photograph.

    Coordinates are continuous: pixel ``(row, column)`` covers ``[column, column + 1)`` x
    ``[row, row + 1)``, so the centre of the top-left pixel is ``(0.5, 0.5)``.

    Attributes:
        cx: centre x (column direction).
        cy: centre y (row direction).
        radius: radius in pixels.
    """

    cx: float
    cy: float
    radius: float

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """``(H, W)`` bool array, True at pixels whose centre lies inside the circle.

        Args:
            shape: ``(H, W)`` or ``(H, W, C)``; only the first two entries are used.
        """
        height, width = int(shape[0]), int(shape[1])
        rows, columns = np.ogrid[:height, :width]
        dy = rows + 0.5 - self.cy
        dx = columns + 0.5 - self.cx
        return (dx * dx + dy * dy) <= self.radius * self.radius

    def scaled(self, factor: float) -> FieldOfView:
        """The same circle after the image is resized by ``factor``."""
        return FieldOfView(self.cx * factor, self.cy * factor, self.radius * factor)


def frame_fov(shape: tuple[int, ...]) -> FieldOfView:
    """The circle through the four corners of an ``(H, W)`` frame: its mask is the whole frame.

    Used when a photograph has no visible FOV edge (the retina fills the frame), so that no
    retinal pixel is ever treated as background.
    """
    height, width = float(shape[0]), float(shape[1])
    return FieldOfView(width / 2, height / 2, float(np.hypot(width, height) / 2))


def _fit_circle(points: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through ``(N, 2)`` float points: ``(cx, cy, radius)``."""
    x, y = points[:, 0], points[:, 1]
    design = np.column_stack([x, y, np.ones_like(x)])
    solution, *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
    cx, cy = solution[0] / 2, solution[1] / 2
    radius = np.sqrt(max(solution[2] + cx * cx + cy * cy, 0.0))
    return float(cx), float(cy), float(radius)


def find_fov(image: np.ndarray) -> FieldOfView:
    """Find the circular field of view of a fundus photograph.

    The brightest channel is thresholded (a level relative to the image's bright pixels, so
    dark photographs work), the largest bright component is kept, and a circle is fitted by
    least squares to its boundary points that do not touch the image border, with one
    refit after discarding outliers (notches, text labels). Fitting only the free arc makes the
    result correct when the circle is clipped by the frame, as in REFUGE's Zeiss photographs
    whose FOV is cut off at the top and bottom. When no usable arc remains (the retina fills
    the frame, or the image is black), the circle through the frame's corners is returned, so
    that the mask covers the whole image (:func:`frame_fov`).

    Args:
        image: ``(H, W, 3)`` or ``(H, W)`` uint8 photograph.

    Returns:
        The circle in the pixel coordinates of ``image``.
    """
    height, width = image.shape[:2]
    step = max(1, -(-max(height, width) // _FOV_WORK_SIDE))  # ceil: every step-th pixel
    small = image[::step, ::step]
    brightness = small.max(axis=2) if small.ndim == 3 else small
    brightness = cv2.medianBlur(np.ascontiguousarray(brightness), 5)
    bright_level = float(np.percentile(brightness, 99))
    if bright_level < 16:  # black (or nearly black) image: no retina to find
        return frame_fov(image.shape)
    threshold = float(np.clip(0.1 * bright_level, 8.0, 40.0))
    foreground = (brightness > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count < 2:
        return frame_fov(image.shape)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    boundary = max(contours, key=len).reshape(-1, 2).astype(np.float64)
    small_h, small_w = component.shape
    free = (
        (boundary[:, 0] > 1)
        & (boundary[:, 0] < small_w - 2)
        & (boundary[:, 1] > 1)
        & (boundary[:, 1] < small_h - 2)
    )
    arc = boundary[free] + 0.5  # contour points are pixel indices; use pixel centres
    if len(arc) < _FOV_MIN_ARC_POINTS:
        return frame_fov(image.shape)
    cx, cy, radius = _fit_circle(arc)
    residual = np.abs(np.hypot(arc[:, 0] - cx, arc[:, 1] - cy) - radius)
    inliers = arc[residual <= max(2.0, 0.02 * radius)]
    if len(inliers) >= _FOV_MIN_ARC_POINTS:
        cx, cy, radius = _fit_circle(inliers)
    if not (np.isfinite([cx, cy, radius]).all() and radius >= 0.1 * min(small_h, small_w)):
        return frame_fov(image.shape)
    # small pixel i is original pixel i * step: continuous x_small = i + 0.5 <-> i * step + 0.5
    # boundary pixels lie inside the edge: their centres are half a pixel in, on average
    offset = 0.5 - 0.5 * step
    return FieldOfView(cx * step + offset, cy * step + offset, (radius + 0.5) * step)
