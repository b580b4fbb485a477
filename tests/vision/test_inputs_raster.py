"""pid.vision.inputs on PNG, JPEG and TIFF: pixels, pages, colour conversions and dpi."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from pid.vision.inputs import Page, load_page_bytes, load_pages


def _noise(height: int = 48, width: int = 64, seed: int = 0) -> NDArray[np.uint8]:
    """Random gray levels: any shift, flip or rescale of the pixels changes many of them."""
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def _drawing(height: int = 120, width: int = 160) -> NDArray[np.uint8]:
    """A JPEG-friendly drawing: white paper, thick black lines, one mid-gray block."""
    image = np.full((height, width), 255, dtype=np.uint8)
    cv2.line(image, (10, 20), (150, 20), 0, 6)
    cv2.line(image, (40, 10), (40, 110), 0, 6)
    cv2.rectangle(image, (80, 50), (130, 100), 128, -1)
    return image


def _only(pages: list[Page]) -> Page:
    assert len(pages) == 1
    return pages[0]


def _check_layout(page: Page) -> None:
    assert page.image.dtype == np.uint8
    assert page.image.ndim == 2
    assert page.image.flags.c_contiguous


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_lossless_gray_loads_the_same_pixels(tmp_path: Path, suffix: str) -> None:
    pixels = _noise()
    path = tmp_path / f"sheet{suffix}"
    Image.fromarray(pixels).save(path)

    page = _only(load_pages(path))

    _check_layout(page)
    np.testing.assert_array_equal(page.image, pixels)
    assert page.index == 0
    assert page.source_format == {".png": "png", ".tif": "tiff"}[suffix]


def test_jpeg_loads_close_to_the_drawing(tmp_path: Path) -> None:
    pixels = _drawing()
    path = tmp_path / "sheet.jpg"
    Image.fromarray(pixels).save(path, quality=95, dpi=(300, 300))

    page = _only(load_pages(path))

    _check_layout(page)
    assert page.image.shape == pixels.shape
    assert page.source_format == "jpeg"
    assert page.dpi == 300.0
    assert np.abs(page.image.astype(int) - pixels.astype(int)).mean() < 3.0
    assert page.image[20, 100] < 40  # the horizontal line
    assert 110 < page.image[75, 105] < 146  # the gray block
    assert page.image[100, 10] > 220  # paper


def test_rgb_becomes_luma(tmp_path: Path) -> None:
    rgb = np.zeros((4, 3, 3), dtype=np.uint8)
    rgb[:, 0] = (255, 0, 0)
    rgb[:, 1] = (0, 255, 0)
    rgb[:, 2] = (255, 255, 255)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)

    image = _only(load_pages(path)).image

    # ITU-R 601: 0.299 R + 0.587 G + 0.114 B.
    np.testing.assert_array_equal(image[0], [76, 150, 255])


def test_cmyk_jpeg_becomes_gray(tmp_path: Path) -> None:
    cmyk = np.zeros((16, 16, 4), dtype=np.uint8)
    cmyk[:8, :, 3] = 255  # top half: full black ink; bottom half: no ink (white paper)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=95)

    image = _only(load_pages(path)).image

    assert image.shape == (16, 16)
    assert image[:6].max() < 30
    assert image[10:].min() > 225


def test_multi_page_tiff_gives_pages_in_order(tmp_path: Path) -> None:
    levels = [10, 120, 230]
    frames = [
        Image.fromarray(np.full((20 + 10 * i, 30), level, dtype=np.uint8))
        for i, level in enumerate(levels)
    ]
    path = tmp_path / "book.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:], dpi=(150, 150))

    pages = load_pages(path)

    assert [p.index for p in pages] == [0, 1, 2]
    assert [p.image.shape for p in pages] == [(20, 30), (30, 30), (40, 30)]
    assert [int(p.image[0, 0]) for p in pages] == levels
    assert all(p.source_format == "tiff" for p in pages)
    assert pages[0].dpi == 150.0


def test_transparent_background_loads_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)  # transparent *black*: must not show
    rgba[5:10, 5:10] = (0, 0, 0, 255)  # an opaque black square
    rgba[15, 15] = (0, 0, 0, 128)  # half-transparent black: half gray on white
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)

    image = _only(load_pages(path)).image

    assert image[0, 0] == 255
    assert image[12, 2] == 255
    assert image[5:10, 5:10].max() == 0
    assert abs(int(image[15, 15]) - 127) <= 1


def test_gray_with_alpha_loads_white(tmp_path: Path) -> None:
    la = np.zeros((6, 6, 2), dtype=np.uint8)
    la[3:, :, 1] = 255  # bottom half opaque black, top half transparent black
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)

    image = _only(load_pages(path)).image

    assert image[:3].min() == 255
    assert image[3:].max() == 0


def test_palette_image_with_transparent_index(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2, 3]], dtype=np.uint8).repeat(3, axis=0)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0, 255, 255, 255, 128, 128, 128, 0, 0, 255] + [0] * 756)
    path = tmp_path / "palette.png"
    palette.save(path, transparency=3)  # index 3 is blue, but transparent

    image = _only(load_pages(path)).image

    np.testing.assert_array_equal(image[0], [0, 255, 128, 255])


def test_one_bit_image_is_0_or_255(tmp_path: Path) -> None:
    bits = _noise(seed=3) > 127
    path = tmp_path / "bits.png"
    Image.fromarray(bits).convert("1").save(path)

    image = _only(load_pages(path)).image

    np.testing.assert_array_equal(image, np.where(bits, 255, 0))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_full_range_16_bit_divides_by_257(tmp_path: Path, suffix: str) -> None:
    pixels = _noise()
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(pixels.astype(np.uint16) * 257).save(path)

    page = _only(load_pages(path))

    _check_layout(page)
    np.testing.assert_array_equal(page.image, pixels)


def test_12_bit_range_is_stretched_to_8_bits(tmp_path: Path) -> None:
    values = np.array([[0, 1365, 2730, 4095]], dtype=np.uint16)
    path = tmp_path / "scan12.png"
    Image.fromarray(values).save(path)

    image = _only(load_pages(path)).image

    np.testing.assert_array_equal(image[0], [0, 85, 170, 255])


def test_16_bit_holding_8_bit_values_is_kept(tmp_path: Path) -> None:
    values = np.array([[0, 17, 200, 255]], dtype=np.uint16)
    path = tmp_path / "small16.png"
    Image.fromarray(values).save(path)

    np.testing.assert_array_equal(_only(load_pages(path)).image[0], [0, 17, 200, 255])


def test_float_tiff_in_unit_range(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.25, 0.5, 1.0, np.nan, -0.5]], dtype=np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)

    image = _only(load_pages(path)).image

    np.testing.assert_array_equal(image[0], [0, 64, 128, 255, 0, 0])


def test_float_tiff_beyond_255_is_scaled_by_its_maximum(tmp_path: Path) -> None:
    values = np.array([[0.0, 500.0, 1000.0]], dtype=np.float32)
    path = tmp_path / "float_wide.tif"
    Image.fromarray(values).save(path)

    np.testing.assert_array_equal(_only(load_pages(path)).image[0], [0, 128, 255])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = _drawing()  # 160 wide, 120 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the viewer turns the stored image 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif)

    image = _only(load_pages(path)).image

    upright = np.rot90(pixels, k=-1)
    assert image.shape == upright.shape == (160, 120)
    assert np.abs(image.astype(int) - upright.astype(int)).mean() < 3.0


def test_png_dpi_is_read_and_snapped(tmp_path: Path) -> None:
    with_dpi, without = tmp_path / "dpi.png", tmp_path / "nodpi.png"
    Image.fromarray(_noise()).save(with_dpi, dpi=(200, 200))  # pHYs: 7874 px/m = 199.9996 dpi
    Image.fromarray(_noise()).save(without)

    assert _only(load_pages(with_dpi)).dpi == 200.0
    assert _only(load_pages(without)).dpi is None


def test_format_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    pixels = _noise()
    path = tmp_path / "really_a_png.jpg"
    Image.fromarray(pixels).save(path, format="PNG")

    page = _only(load_pages(path))

    assert page.source_format == "png"
    np.testing.assert_array_equal(page.image, pixels)


def test_bytes_and_path_give_the_same_pages(tmp_path: Path) -> None:
    path = tmp_path / "sheet.png"
    Image.fromarray(_noise()).save(path, dpi=(300, 300))

    from_bytes = _only(load_page_bytes(path.read_bytes(), "upload.png"))
    from_path = _only(load_pages(path))

    np.testing.assert_array_equal(from_bytes.image, from_path.image)
    assert from_bytes.dpi == from_path.dpi == 300.0


def test_page_refuses_a_non_gray_array() -> None:
    with pytest.raises(ValueError, match="2-D C-contiguous uint8"):
        Page(image=np.zeros((4, 4, 3), dtype=np.uint8), dpi=None, index=0, source_format="png")
    with pytest.raises(ValueError, match="2-D C-contiguous uint8"):
        Page(image=np.zeros((4, 4), dtype=np.uint16), dpi=None, index=0, source_format="png")
