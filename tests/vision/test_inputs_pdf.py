"""pid.vision.inputs on PDF: rasterised pages, their size at the dpi, and refused documents."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from pid.core.errors import PidInputError
from pid.vision.inputs import load_page_bytes, load_pages

#: Each page of the test PDF: 288 x 144 px at 144 dpi, i.e. 2 x 1 inch (144 x 72 pt).
PAGE_PX = (288, 144)
PAGE_DPI = 144.0
#: Where each page's black square sits (x, y), in page pixels at 144 dpi: tells pages apart.
SQUARES = [(20, 20), (140, 60), (220, 90)]
SQUARE_PX = 40


def _sheet_pdf(path: Path) -> None:
    frames = []
    for x, y in SQUARES:
        page = np.full(PAGE_PX[::-1], 255, dtype=np.uint8)
        page[y : y + SQUARE_PX, x : x + SQUARE_PX] = 0
        frames.append(Image.fromarray(page))
    frames[0].save(path, "PDF", resolution=PAGE_DPI, save_all=True, append_images=frames[1:])


def _blank_pdf(page_sizes_pt: list[tuple[float, float]]) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for width, height in page_sizes_pt:
        pdf.new_page(width, height)
    buffer = io.BytesIO()
    pdf.save(buffer)
    pdf.close()
    return buffer.getvalue()


def _by_hand(objects: list[bytes], trailer: str = "") -> bytes:
    """A PDF written object by object with a correct xref table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R {trailer} >>\n".encode()
    return out + f"startxref\n{xref}\n%%EOF\n".encode()


def _dark_fraction(image: np.ndarray, x: int, y: int, size: int) -> float:
    return float((image[y : y + size, x : x + size] < 64).mean())


@pytest.mark.parametrize("dpi", [PAGE_DPI, 2 * PAGE_DPI])
def test_pdf_pages_are_rasterised_at_the_dpi(tmp_path: Path, dpi: float) -> None:
    path = tmp_path / "sheet.pdf"
    _sheet_pdf(path)

    pages = load_pages(path, pdf_dpi=dpi)

    assert [p.index for p in pages] == [0, 1, 2]
    factor = dpi / PAGE_DPI
    for page, (x, y) in zip(pages, SQUARES, strict=True):
        assert page.source_format == "pdf"
        assert page.dpi == dpi
        assert page.image.dtype == np.uint8 and page.image.flags.c_contiguous
        assert page.image.shape == (PAGE_PX[1] * factor, PAGE_PX[0] * factor)
        # This page's square is black, the other pages' squares are paper.
        inner = int(SQUARE_PX * factor) - 4
        assert _dark_fraction(page.image, int(x * factor) + 2, int(y * factor) + 2, inner) > 0.99
        for ox, oy in SQUARES:
            if (ox, oy) != (x, y):
                probe = page.image[int(oy * factor) + 2 : int((oy + SQUARE_PX) * factor) - 2]
                probe = probe[:, int(ox * factor) + 2 : int((ox + SQUARE_PX) * factor) - 2]
                assert probe.min() > 200


def test_pdf_bytes_upload(tmp_path: Path) -> None:
    path = tmp_path / "sheet.pdf"
    _sheet_pdf(path)

    pages = load_page_bytes(path.read_bytes(), "upload.pdf", pdf_dpi=72.0)

    assert len(pages) == 3
    assert pages[0].image.shape == (72, 144)


def test_rotated_pdf_page_is_rendered_upright_size(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(144, 72).set_rotation(90)
    path = tmp_path / "rotated.pdf"
    pdf.save(path)
    pdf.close()

    page = load_pages(path, pdf_dpi=72.0)[0]

    assert page.image.shape == (144, 72)


def test_pdf_with_no_pages(tmp_path: Path) -> None:
    path = tmp_path / "empty_doc.pdf"
    path.write_bytes(_blank_pdf([]))

    with pytest.raises(PidInputError, match=r"^.*empty_doc\.pdf: the PDF has no pages$"):
        load_pages(path)


def test_pdf_with_too_many_pages(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(_blank_pdf([(72, 72)] * 4))

    with pytest.raises(PidInputError, match="the PDF has 4 pages, more than the limit of 3"):
        load_pages(path, max_pages=3)
    assert len(load_pages(path, max_pages=4)) == 4


def test_huge_pdf_page_is_refused_before_rendering() -> None:
    # 200 x 200 inches at 200 dpi: 40000 x 40000 px, 1.6 GB if it were rendered.
    data = _blank_pdf([(72, 72), (14400, 14400)])

    start = time.perf_counter()
    with pytest.raises(PidInputError) as caught:
        load_page_bytes(data, "poster.pdf", pdf_dpi=200.0)

    assert time.perf_counter() - start < 2.0
    assert str(caught.value) == (
        "poster.pdf: page 2: 40000x40000 px is more than the limit of 200000000 px"
    )


def test_pdf_dpi_counts_in_the_pixel_limit() -> None:
    data = _blank_pdf([(720, 720)])  # 10 x 10 inches; 720 * 11 / 72 is 110.00000000000001

    assert load_page_bytes(data, "a.pdf", pdf_dpi=10.0, max_pixels=10_000)[0].image.shape == (
        100,
        100,
    )
    with pytest.raises(
        PidInputError, match=r"^a\.pdf: 110x110 px is more than the limit of 10000 px$"
    ):
        load_page_bytes(data, "a.pdf", pdf_dpi=11.0, max_pixels=10_000)
    assert load_page_bytes(data, "a.pdf", pdf_dpi=11.0)[0].image.shape == (110, 110)
    # A true fraction of a pixel still rounds up: 10 inches at 10.05 dpi is 100.5 px.
    assert load_page_bytes(data, "a.pdf", pdf_dpi=10.05)[0].image.shape == (101, 101)


def test_encrypted_pdf_is_refused() -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >>"
    # Standard security handler whose /U does not match the empty password: a user password.
    encrypt = b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32
    encrypt += b"> /P -4 >>"
    file_id = "<00112233445566778899aabbccddeeff>"
    data = _by_hand([catalog, pages, page, encrypt], f"/Encrypt 4 0 R /ID [{file_id} {file_id}]")
    assert load_page_bytes(_by_hand([catalog, pages, page]), "plain.pdf")  # the same, unlocked

    with pytest.raises(PidInputError, match=r"^locked\.pdf: the PDF is encrypted"):
        load_page_bytes(data, "locked.pdf")


def test_corrupt_pdf_is_refused() -> None:
    with pytest.raises(PidInputError, match=r"^junk\.pdf: corrupt PDF: .*format error"):
        load_page_bytes(b"%PDF-1.7\nthis is not a PDF body\n", "junk.pdf")


def test_pdf_with_a_broken_page_names_the_page() -> None:
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    pages = b"<< /Type /Pages /Kids [9 0 R] /Count 1 >>"  # the page object does not exist

    with pytest.raises(PidInputError, match=r"^bad\.pdf: page 1: corrupt PDF"):
        load_page_bytes(_by_hand([catalog, pages]), "bad.pdf")
