"""Image and mask loading from real files on disk, and the field-of-view circle."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from funduskit.core.errors import DataError
from funduskit.data import io as fio
from funduskit.data.io import (
    FieldOfView,
    find_fov,
    frame_fov,
    image_size,
    load_image,
    load_mask,
)


def _noise_image(height: int = 90, width: int = 120, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 smooth colour noise (survives JPEG well)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 10 + 1, width // 10 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------------------------
# Formats and conversions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_formats_round_trip_exactly(tmp_path: Path, suffix: str) -> None:
    rgb = _noise_image()
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (90, 120, 3)
    np.testing.assert_array_equal(loaded, rgb)


def test_jpeg_is_rgb_not_bgr(tmp_path: Path) -> None:
    rgb = np.zeros((80, 100, 3), np.uint8)
    rgb[..., 0] = 220  # pure red photograph
    path = tmp_path / "red.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    loaded = load_image(path)
    assert loaded.shape == (80, 100, 3)
    assert loaded[..., 0].mean() > 200 and loaded[..., 2].mean() < 20


def test_jpeg_close_to_source(tmp_path: Path) -> None:
    rgb = _noise_image()
    path = tmp_path / "photo.JPEG"
    Image.fromarray(rgb).save(path, format="JPEG", quality=98)
    assert np.abs(load_image(path).astype(int) - rgb).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_honoured(tmp_path: Path, orientation: int) -> None:
    stored = Image.fromarray(_noise_image(70, 100))
    exif = stored.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, exif=exif, quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded, expected)
    rotated = orientation >= 5
    assert loaded.shape[:2] == ((100, 70) if rotated else (70, 100))
    assert image_size(path) == (loaded.shape[1], loaded.shape[0])


def test_grey_becomes_three_equal_channels(tmp_path: Path) -> None:
    grey = _noise_image()[..., 1]
    for name in ("grey.png", "grey.jpg"):
        Image.fromarray(grey).save(tmp_path / name)
        loaded = load_image(tmp_path / name)
        assert loaded.shape == (90, 120, 3)
        assert (loaded == loaded[..., :1]).all()
    np.testing.assert_array_equal(load_image(tmp_path / "grey.png")[..., 0], grey)


def test_16_bit_grey_and_colour_scale_to_8_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 65536, (70, 80), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "grey16.png"), grey16)
    loaded = load_image(tmp_path / "grey16.png")
    np.testing.assert_array_equal(loaded[..., 0], (grey16 >> 8).astype(np.uint8))

    rgb16 = rng.integers(0, 65536, (70, 80, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / "rgb16.tif"), rgb16[..., ::-1])
    for name in ("rgb16.png", "rgb16.tif"):
        np.testing.assert_array_equal(load_image(tmp_path / name), (rgb16 >> 8).astype(np.uint8))


def test_alpha_is_composited_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((64, 96, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, :32, 3] = 0
    rgba[:, 32:64, 3] = 255
    rgba[:, 64:, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    loaded = load_image(tmp_path / "alpha.png")
    assert loaded.shape == (64, 96, 3)
    assert (loaded[:, :32] == 0).all()
    assert (loaded[:, 32:64] == (200, 100, 50)).all()
    np.testing.assert_allclose(loaded[0, 80], np.array([200, 100, 50]) * 128 / 255, atol=1)

    grey_alpha = Image.fromarray(rgba[..., [0, 3]], "LA")
    grey_alpha.save(tmp_path / "la.png")
    assert (load_image(tmp_path / "la.png")[:, :32] == 0).all()


def test_palette_and_one_bit_images_expand_to_rgb(tmp_path: Path) -> None:
    indices = np.zeros((64, 64), np.uint8)
    indices[:, 32:] = 1
    palette = Image.fromarray(indices, "L").convert("P")
    palette.putpalette([10, 20, 30, 250, 0, 0] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    loaded = load_image(tmp_path / "palette.png")
    assert (loaded[:, :32] == (10, 20, 30)).all() and (loaded[:, 32:] == (250, 0, 0)).all()

    Image.fromarray(indices.astype(bool)).save(tmp_path / "bits.png")
    bits = load_image(tmp_path / "bits.png")
    assert set(np.unique(bits).tolist()) == {0, 255}


# --------------------------------------------------------------------------------------------
# Refusals: every message names the file and what to do
# --------------------------------------------------------------------------------------------


def _refusal(path: Path) -> str:
    with pytest.raises(DataError) as caught:
        load_image(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.jpg"
    Image.fromarray(_noise_image(300, 400)).save(whole, quality=95)
    data = whole.read_bytes()
    for fraction in (0.5, 0.98):
        cut = tmp_path / f"cut{fraction}.jpg"
        cut.write_bytes(data[: int(len(data) * fraction)])
        message = _refusal(cut)
        assert "truncated" in message and "copy" in message
    assert image_size(tmp_path / "cut0.5.jpg") == (400, 300)  # the header alone is intact


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    Image.fromarray(_noise_image(300, 400)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:-2000])
    assert "corrupt or truncated" in _refusal(cut)


def test_text_file_named_jpg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("patient list, not a photograph\n" * 20)
    message = _refusal(path)
    assert "not an image" in message and "JPEG or PNG" in message
    with pytest.raises(DataError, match="not an image"):
        image_size(path)
    with pytest.raises(DataError, match="not an image"):
        load_mask(path)


def test_empty_missing_and_folder_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty file" in _refusal(empty)
    assert "does not exist" in _refusal(tmp_path / "missing.jpg")
    assert "folder" in _refusal(tmp_path)


def test_tiny_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "icon.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(path)
    message = _refusal(path)
    assert "10x10" in message and f"{fio.MIN_SIDE} pixels" in message
    with pytest.raises(DataError, match="10x10"):
        image_size(path)


def test_huge_image_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(path)
    monkeypatch.setattr(fio, "MAX_PIXELS", 200 * 299)
    message = _refusal(path)
    assert "300x200" in message and "megapixel limit" in message and "MAX_PIXELS" in message


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def _refuge_mask() -> np.ndarray:
    mask = np.full((80, 100), 255, np.uint8)
    cv2.ellipse(mask, (50, 40), (20, 25), 0, 0, 360, 128, -1)
    cv2.ellipse(mask, (50, 40), (8, 11), 0, 0, 360, 0, -1)
    return mask


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_grey_mask_values_are_kept(tmp_path: Path, suffix: str) -> None:
    mask = _refuge_mask()
    path = tmp_path / f"mask{suffix}"
    Image.fromarray(mask).save(path)
    loaded = load_mask(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (80, 100)
    np.testing.assert_array_equal(loaded, mask)


def test_palette_and_rgb_masks_collapse_when_channels_agree(tmp_path: Path) -> None:
    mask = _refuge_mask()
    Image.fromarray(mask).convert("P").save(tmp_path / "palette.bmp")  # grey palette, as REFUGE's BMPs
    np.testing.assert_array_equal(load_mask(tmp_path / "palette.bmp"), mask)
    Image.fromarray(np.repeat(mask[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "rgb.png"), mask)


def test_colour_mask_is_refused_unless_a_channel_is_named(tmp_path: Path) -> None:
    red = np.zeros((80, 100, 3), np.uint8)
    red[20:40, 30:60, 0] = 255
    path = tmp_path / "red_mask.tif"
    Image.fromarray(red).save(path)
    with pytest.raises(DataError) as caught:
        load_mask(path)
    message = str(caught.value)
    assert str(path) in message and "x=30, y=20" in message and "channel=" in message
    np.testing.assert_array_equal(load_mask(path, channel=0), red[..., 0])


def test_16_bit_label_mask_keeps_small_values(tmp_path: Path) -> None:
    labels = np.zeros((70, 70), np.uint16)
    labels[10:30, 10:30] = 1
    labels[40:60, 40:60] = 2
    cv2.imwrite(str(tmp_path / "labels16.png"), labels)
    np.testing.assert_array_equal(load_mask(tmp_path / "labels16.png"), labels.astype(np.uint8))


# --------------------------------------------------------------------------------------------
# Header-only size
# --------------------------------------------------------------------------------------------


def test_image_size_matches_load_image(tmp_path: Path) -> None:
    for suffix in (".jpg", ".png", ".bmp", ".tif"):
        path = tmp_path / f"p{suffix}"
        Image.fromarray(_noise_image(75, 130)).save(path)
        assert image_size(path) == (130, 75)


# --------------------------------------------------------------------------------------------
# Field of view
# --------------------------------------------------------------------------------------------


def _fundus(height: int, width: int, cx: float, cy: float, radius: float, level: int = 150) -> np.ndarray:
    """(H, W, 3) black frame with a textured reddish disc; circle in continuous coordinates."""
    rows, columns = np.mgrid[:height, :width]
    inside = (columns + 0.5 - cx) ** 2 + (rows + 0.5 - cy) ** 2 <= radius**2
    texture = _noise_image(height, width, seed=3).astype(np.float32) / 255
    image = np.zeros((height, width, 3), np.float32)
    image[inside] = np.array([1.0, 0.45, 0.2]) * level * (0.7 + 0.3 * texture[inside])
    return image.astype(np.uint8)


def _assert_fov_close(found: FieldOfView, cx: float, cy: float, radius: float, tolerance: float) -> None:
    assert abs(found.cx - cx) <= tolerance, found
    assert abs(found.cy - cy) <= tolerance, found
    assert abs(found.radius - radius) <= tolerance, found


def test_fov_of_a_whole_circle() -> None:
    image = _fundus(400, 460, cx=240.0, cy=195.0, radius=170.0)
    found = find_fov(image)
    _assert_fov_close(found, 240.0, 195.0, 170.0, tolerance=1.0)
    mask = found.mask(image.shape)
    assert mask.shape == (400, 460) and mask.dtype == bool
    assert abs(mask.sum() - np.pi * 170.0**2) / (np.pi * 170.0**2) < 0.02


def test_fov_clipped_at_top_and_bottom_like_refuge() -> None:
    # REFUGE's Zeiss photographs (2124 x 2056) at a quarter size: the FOV circle is taller
    # than the frame, so only its left and right arcs are visible.
    image = _fundus(514, 531, cx=265.0, cy=257.0, radius=285.0)
    _assert_fov_close(find_fov(image), 265.0, 257.0, 285.0, tolerance=1.5)


def test_fov_of_a_large_image_is_found_at_full_scale() -> None:
    image = _fundus(1028, 1062, cx=540.0, cy=500.0, radius=480.0)
    _assert_fov_close(find_fov(image), 540.0, 500.0, 480.0, tolerance=2.0)


def test_fov_of_a_dark_photograph_with_a_notch() -> None:
    image = _fundus(400, 400, cx=200.0, cy=200.0, radius=180.0, level=45)
    image[15:60, 250:300] = 0  # a notch cut into the rim, as some cameras print
    _assert_fov_close(find_fov(image), 200.0, 200.0, 180.0, tolerance=2.0)


def test_fov_without_a_black_border_is_the_whole_frame() -> None:
    image = _noise_image(300, 400) // 2 + 60
    found = find_fov(image)
    assert found == frame_fov(image.shape)
    assert found.mask(image.shape).all()
    assert find_fov(np.zeros((100, 120, 3), np.uint8)).mask((100, 120)).all()


def test_fov_mask_of_a_scaled_circle() -> None:
    fov = FieldOfView(50.0, 40.0, 30.0)
    assert fov.scaled(2.0) == FieldOfView(100.0, 80.0, 60.0)
    assert fov.mask((80, 100))[40, 50] and not fov.mask((80, 100))[0, 0]


def test_fov_of_a_real_photograph() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    try:
        retina = skimage_data.retina()  # CC0, 1411 x 1411, bundled with scikit-image
    except Exception as error:  # pragma: no cover - depends on the scikit-image install
        pytest.skip(f"skimage.data.retina() unavailable: {error}")
    found = find_fov(retina)
    assert abs(found.cx - 705) < 15 and abs(found.cy - 705) < 15 and 650 < found.radius < 720


def test_fov_matches_drive_masks(shared_data: Path) -> None:
    images = sorted((shared_data / "drive" / "training" / "images").glob("*.png"))[:4]
    if not images:
        pytest.skip("DRIVE training images are absent")
    for image_path in images:
        mask_path = image_path.parent.parent / "mask" / image_path.name.replace(".png", "_mask.png")
        reference = load_mask(mask_path) > 0
        found = find_fov(load_image(image_path)).mask(reference.shape)
        assert (found & reference).sum() / (found | reference).sum() > 0.98, image_path.name
