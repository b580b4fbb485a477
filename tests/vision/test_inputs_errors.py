"""pid.vision.inputs refuses bad files with one line naming the file and the problem."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from pid.core.errors import PidInputError
from pid.vision.inputs import load_page_bytes, load_pages


def _png_bytes(width: int = 64, height: int = 48) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG whose header claims another size (a decompression bomb's header)."""
    # Signature (8), IHDR length (4), then "IHDR" + 13 data bytes, then their CRC.
    assert png[12:16] == b"IHDR"
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def _message(excinfo: pytest.ExceptionInfo[PidInputError]) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def test_bomb_header_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_with_ihdr_size(_png_bytes(), 50_000, 50_000))
    pillow_limit = Image.MAX_IMAGE_PIXELS

    start = time.perf_counter()
    with pytest.raises(PidInputError) as caught:
        load_pages(path)

    # Decoding 2.5 Gpx would take seconds and gigabytes; the header check takes microseconds.
    assert time.perf_counter() - start < 1.0
    assert _message(caught) == f"{path}: 50000x50000 px is more than the limit of 200000000 px"
    assert pillow_limit == Image.MAX_IMAGE_PIXELS  # Pillow's setting is put back


def test_pixel_limit_is_the_callers(tmp_path: Path) -> None:
    path = tmp_path / "sheet.png"
    path.write_bytes(_png_bytes(64, 48))

    assert load_pages(path, max_pixels=64 * 48)[0].image.shape == (48, 64)
    with pytest.raises(PidInputError, match="64x48 px is more than the limit of 3071 px"):
        load_pages(path, max_pixels=64 * 48 - 1)


def test_pillow_limit_below_ours_does_not_preempt_our_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pillow raises its own DecompressionBombError past 2 * MAX_IMAGE_PIXELS.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    data = _png_bytes(64, 48)

    assert load_page_bytes(data, "ok.png")[0].image.shape == (48, 64)
    with pytest.raises(PidInputError, match=r"^big\.png: 64x48 px is more than the limit of 1000"):
        load_page_bytes(data, "big.png", max_pixels=1000)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_tiff_page_over_the_limit_is_named(tmp_path: Path) -> None:
    small = Image.fromarray(np.zeros((10, 10), dtype=np.uint8))
    large = Image.fromarray(np.zeros((40, 40), dtype=np.uint8))
    path = tmp_path / "pages.tif"
    small.save(path, save_all=True, append_images=[large])

    with pytest.raises(PidInputError) as caught:
        load_pages(path, max_pixels=1000)

    assert _message(caught) == f"{path}: page 2: 40x40 px is more than the limit of 1000 px"


def test_tiff_with_too_many_pages(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((4, 4), i, dtype=np.uint8)) for i in range(4)]
    path = tmp_path / "pages.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])

    with pytest.raises(PidInputError) as caught:
        load_pages(path, max_pages=3)

    assert _message(caught) == f"{path}: the TIFF has more than the limit of 3 pages"
    assert len(load_pages(path, max_pages=4)) == 4


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")

    with pytest.raises(PidInputError) as caught:
        load_pages(path)

    assert _message(caught) == f"{path}: empty file"


def test_empty_upload() -> None:
    with pytest.raises(PidInputError, match=r"^upload\.pdf: empty file$"):
        load_page_bytes(b"", "upload.pdf")


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just some notes, not a drawing\n")

    with pytest.raises(PidInputError) as caught:
        load_pages(path)

    assert _message(caught) == (
        f"{path}: not a PNG, JPEG, TIFF or PDF file (unknown file signature)"
    )


def test_other_image_format_is_refused_by_signature(tmp_path: Path) -> None:
    path = tmp_path / "sheet.png"  # a BMP, whatever its name says
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path, format="BMP")

    with pytest.raises(PidInputError, match="unknown file signature"):
        load_pages(path)


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg"), ("TIFF", ".tif")])
def test_truncated_image(tmp_path: Path, fmt: str, suffix: str) -> None:
    full = tmp_path / f"full{suffix}"
    pixels = np.random.default_rng(2).integers(0, 256, (200, 300), dtype=np.uint8)
    Image.fromarray(pixels).save(full, format=fmt)
    data = full.read_bytes()
    path = tmp_path / f"half{suffix}"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(PidInputError) as caught:
        load_pages(path)

    message = _message(caught)
    assert message.startswith(f"{path}: ")
    assert "corrupt" in message or "truncated" in message


def test_truncated_image_is_refused_even_if_pillow_tolerates_truncation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _png_bytes(300, 200)

    with pytest.raises(PidInputError, match="truncated"):
        load_page_bytes(data[: len(data) // 2], "half.png")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_png_with_a_bad_chunk_crc(tmp_path: Path) -> None:
    data = bytearray(_png_bytes())
    data[29] ^= 0xFF  # the IHDR CRC

    with pytest.raises(PidInputError, match=r"^bad\.png: corrupt PNG file"):
        load_page_bytes(bytes(data), "bad.png")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.png"

    with pytest.raises(PidInputError, match=r"nowhere\.png: file not found$"):
        load_pages(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(PidInputError, match="is a directory"):
        load_pages(tmp_path)


def test_bad_limits_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="pdf_dpi"):
        load_page_bytes(_png_bytes(), "a.png", pdf_dpi=0.0)
    with pytest.raises(ValueError, match="max_pixels"):
        load_page_bytes(_png_bytes(), "a.png", max_pixels=0)
