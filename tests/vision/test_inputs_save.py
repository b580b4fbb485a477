"""pid.vision.inputs.save_original: 8-bit gray PNG with the dpi, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pid.vision.inputs import Page, load_pages, save_original


def _page(dpi: float | None) -> Page:
    pixels = np.random.default_rng(5).integers(0, 256, (30, 50), dtype=np.uint8)
    return Page(image=pixels, dpi=dpi, index=0, source_format="tiff")


def test_round_trip_keeps_pixels_and_dpi(tmp_path: Path) -> None:
    page = _page(300.0)
    path = tmp_path / "original.png"

    save_original(page, path)

    with Image.open(path) as written:
        assert written.format == "PNG"
        assert written.mode == "L"
        assert written.info["dpi"] == pytest.approx((300.0, 300.0), abs=0.013)
        np.testing.assert_array_equal(np.asarray(written), page.image)
    reloaded = load_pages(path)[0]
    assert reloaded.dpi == 300.0
    np.testing.assert_array_equal(reloaded.image, page.image)


def test_unknown_dpi_writes_no_phys(tmp_path: Path) -> None:
    path = tmp_path / "original.png"

    save_original(_page(None), path)

    assert b"pHYs" not in path.read_bytes()
    assert load_pages(path)[0].dpi is None


def test_pdf_page_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "sheet.pdf"
    Image.fromarray(np.full((72, 144), 0, dtype=np.uint8)).save(source, "PDF", resolution=72.0)
    page = load_pages(source, pdf_dpi=150.0)[0]
    path = tmp_path / "original.png"

    save_original(page, path)

    reloaded = load_pages(path)[0]
    assert reloaded.dpi == 150.0
    assert reloaded.image.shape == (150, 300)
    np.testing.assert_array_equal(reloaded.image, page.image)


def test_replaces_an_existing_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "original.png"
    path.write_bytes(b"old content")

    save_original(_page(200.0), path)

    assert [p.name for p in tmp_path.iterdir()] == ["original.png"]
    np.testing.assert_array_equal(load_pages(path)[0].image, _page(None).image)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "original.png"
    path.write_bytes(b"old content")

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_original(_page(200.0), path)

    assert path.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["original.png"]
