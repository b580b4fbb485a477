"""Loading a user's drawing: PNG, JPEG, TIFF (multi-page) or PDF, as 8-bit grayscale pages.

Every problem with the input raises `PidInputError` with one line that names the file (or the
uploaded file name) and the problem, e.g. ``plan.png: 30000x30000 px is more than the limit of
200000000 px``. The format is told by the file's first bytes, never by its extension.

Decompression bombs: the pixel size of every page is read from the headers (for PDF, the page
size in points times the dpi) and checked against `max_pixels` before any page is decoded.
"""

from __future__ import annotations

import io
import math
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pypdfium2 as pdfium
from numpy.typing import NDArray
from PIL import ExifTags, Image, ImageFile, ImageOps, ImageSequence

from pid.core.errors import PidInputError
from pid.core.files import replace_atomically
from pid.core.formats.boxes import BoxSet, load_boxes

__all__ = ["Page", "load_page_bytes", "load_pages", "load_symbols", "save_original"]

#: Formats told by their signature: (leading bytes, format name). PDF is handled on its own.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
_PDF_SIGNATURE = b"%PDF-"
#: PDF readers (and PDFium) accept junk before the header within the first KiB.
_PDF_HEADER_WINDOW = 1024
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}
#: Formats whose extra frames are pages; APNG frames and MPO views are not.
_MULTI_PAGE_FORMATS = frozenset({"tiff"})

#: What Pillow raises on a corrupt or truncated file (its decoders are not consistent).
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
)

#: Pixels per metre (PNG pHYs) quantise dpi to 0.0254; snap values this close to an integer.
_DPI_SNAP = 0.013
_POINTS_PER_INCH = 72.0
#: PDFium keeps page boxes as float32 and the renderer rounds pixel sizes up, so a 10 inch page
#: at 11 dpi would come out 111 px wide. Shrinking the scale by this fraction (0.04 px on a
#: 40000 px page) absorbs that noise and a true fraction of a pixel still rounds up.
_PDF_SCALE_SLACK = 1e-6


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a drawing.

    Attributes
    ----------
    image
        (height, width) uint8 grayscale, C-contiguous; 0 is black, 255 is white paper.
    dpi
        Dots per inch from the file's metadata (the render dpi for PDF), None when unknown.
    index
        0-based page number within the file.
    source_format
        ``"png"``, ``"jpeg"``, ``"tiff"`` or ``"pdf"``.
    """

    image: NDArray[np.uint8]
    dpi: float | None
    index: int
    source_format: str

    def __post_init__(self) -> None:
        image = self.image
        if image.ndim != 2 or image.dtype != np.uint8 or not image.flags.c_contiguous:
            raise ValueError(
                f"Page.image must be a 2-D C-contiguous uint8 array, got {image.ndim}-D "
                f"{image.dtype}"
            )


# --- public API --------------------------------------------------------------------------------


def load_pages(
    path: Path, *, pdf_dpi: float = 200.0, max_pixels: int = 200_000_000, max_pages: int = 50
) -> list[Page]:
    """Load every page of a drawing file as 8-bit grayscale.

    Parameters
    ----------
    path : Path
        A PNG, JPEG, TIFF (one page per TIFF frame) or PDF file; the format is read from its
        first bytes.
    pdf_dpi : float
        Resolution PDF pages are rasterised at, in dots per inch.
    max_pixels : int
        Largest width * height accepted for any one page, checked before decoding.
    max_pages : int
        Most pages accepted (PDF pages or TIFF frames).

    Returns
    -------
    list[Page]
        The pages in file order, each a (height, width) uint8 array. Colour is converted to
        luma, transparency is composited on white, 16-bit and float data are scaled to 0..255.

    Raises
    ------
    PidInputError
        When the file is missing, empty, not one of the formats, corrupt or truncated, an
        encrypted PDF, has no pages, too many pages, or a page of more than `max_pixels`.
    """
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _fail(name, "file not found")
    except IsADirectoryError:
        _fail(name, "is a directory, not a file")
    except OSError as exc:
        _fail(name, f"cannot read: {exc.strerror or exc}")
    return load_page_bytes(data, name, pdf_dpi=pdf_dpi, max_pixels=max_pixels, max_pages=max_pages)


def load_page_bytes(
    data: bytes,
    filename: str,
    *,
    pdf_dpi: float = 200.0,
    max_pixels: int = 200_000_000,
    max_pages: int = 50,
) -> list[Page]:
    """Load every page of an in-memory drawing (an upload) as 8-bit grayscale.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Name used in error messages only; the format is read from `data`.
    pdf_dpi, max_pixels, max_pages
        As for `load_pages`.

    Returns
    -------
    list[Page]
        As for `load_pages`.

    Raises
    ------
    PidInputError
        As for `load_pages`.
    """
    _check_limits(pdf_dpi, max_pixels, max_pages)
    if not data:
        _fail(filename, "empty file")
    fmt = _sniff_format(data, filename)
    if fmt == "pdf":
        return _pdf_pages(data, filename, dpi=pdf_dpi, max_pixels=max_pixels, max_pages=max_pages)
    return _raster_pages(data, filename, fmt, max_pixels=max_pixels, max_pages=max_pages)


def save_original(page: Page, path: Path) -> None:
    """Write a page as an 8-bit grayscale PNG (original.png), atomically.

    Parameters
    ----------
    page : Page
        The page; its (height, width) uint8 image is written as is.
    path : Path
        Destination. A temporary file in the same folder is written, flushed to disk and then
        renamed over `path`, so readers see either the old file or the whole new one.

    Notes
    -----
    The dpi, when known, is stored in the PNG pHYs chunk (as pixels per metre, so it reads back
    within 0.013 dpi; `load_pages` snaps it back to the integer).
    """
    image = Image.fromarray(page.image)
    options: dict[str, Any] = {} if page.dpi is None else {"dpi": (page.dpi, page.dpi)}
    replace_atomically(path, lambda tmp: image.save(tmp, format="PNG", **options))


def load_symbols(path: Path, image_size: tuple[int, int]) -> BoxSet:
    """Load a user's symbol boxes (the ``--symbols`` input, COCO JSON) for a drawing.

    Parameters
    ----------
    path : Path
        COCO JSON as in docs/formats.md.
    image_size : tuple[int, int]
        (width, height) of the drawing in pixels; every box must lie inside it (0.5 px slack).

    Returns
    -------
    BoxSet
        Boxes with their category *name* (classes outside the class table are kept as named),
        (x, y, w, h) in pixels and score; `image_size` is the given size.

    Raises
    ------
    PidInputError
        On invalid JSON, a box outside the image, a width or height <= 0, a category_id missing
        from the file's categories, or an ``images`` size that differs from `image_size`.
    """
    return load_boxes(path, image_size=image_size)


# --- format and limits ------------------------------------------------------------------------


def _fail(name: str, problem: str) -> NoReturn:
    raise PidInputError(f"{name}: {problem}")


def _check_limits(pdf_dpi: float, max_pixels: int, max_pages: int) -> None:
    # Programming errors, not bad input: plain ValueError.
    if not (math.isfinite(pdf_dpi) and pdf_dpi > 0):
        raise ValueError(f"pdf_dpi must be a number > 0, got {pdf_dpi!r}")
    if max_pixels < 1 or max_pages < 1:
        raise ValueError(f"max_pixels and max_pages must be >= 1, got {max_pixels}, {max_pages}")


def _sniff_format(data: bytes, name: str) -> str:
    """Return ``png``, ``jpeg``, ``tiff`` or ``pdf`` from the file's signature."""
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature):
            return fmt
    if _PDF_SIGNATURE in data[:_PDF_HEADER_WINDOW]:
        return "pdf"
    _fail(name, "not a PNG, JPEG, TIFF or PDF file (unknown file signature)")


def _check_size(name: str, where: str, width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        _fail(name, f"{where}empty page ({width}x{height} px)")
    if width * height > max_pixels:
        _fail(name, f"{where}{width}x{height} px is more than the limit of {max_pixels} px")


def _page_label(index: int, count: int) -> str:
    """Prefix naming the page in messages about multi-page files (1-based for people)."""
    return f"page {index + 1}: " if count > 1 else ""


def _clean_dpi(value: object) -> float | None:
    """Return a positive finite dpi, snapped to an integer when within pHYs rounding."""
    if isinstance(value, tuple | list) and value:
        # Non-square pixels are not expected in drawings; the horizontal dpi stands for both.
        value = value[0]
    try:
        dpi = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(dpi) or dpi <= 0:
        return None
    nearest = round(dpi)
    return float(nearest) if abs(dpi - nearest) <= _DPI_SNAP else dpi


# --- raster files (Pillow) --------------------------------------------------------------------

_pillow_guard_lock = threading.Lock()
_pillow_guard_users = 0
_pillow_saved: tuple[int | None, bool] = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


@contextmanager
def _own_pillow_limits() -> Iterator[None]:
    """Switch off Pillow's own bomb check and truncated-image tolerance while loading.

    Our size check runs on the header before any decode and gives the message users need;
    Pillow's would fire first (in `Image.open`) with its own text. LOAD_TRUNCATED_IMAGES is
    forced off so a truncated file is an error, not a half-grey page. These are process-wide
    settings: a counter restores them only when the last concurrent load ends.
    """
    global _pillow_guard_users, _pillow_saved
    with _pillow_guard_lock:
        if _pillow_guard_users == 0:
            _pillow_saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
            Image.MAX_IMAGE_PIXELS = None
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _pillow_guard_users += 1
    try:
        yield
    finally:
        with _pillow_guard_lock:
            _pillow_guard_users -= 1
            if _pillow_guard_users == 0:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = _pillow_saved


def _raster_pages(
    data: bytes, name: str, fmt: str, *, max_pixels: int, max_pages: int
) -> list[Page]:
    label = fmt.upper()
    with _own_pillow_limits():
        try:
            image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[fmt]])
        except _DECODE_ERRORS as exc:
            _fail(name, f"corrupt {label} file: {_reason(exc)}")
        with image:
            sizes = _frame_sizes(image, name, fmt, max_pages)
            for index, (width, height) in enumerate(sizes):
                _check_size(name, _page_label(index, len(sizes)), width, height, max_pixels)
            return [
                _decode_frame(image, index, name, fmt, len(sizes)) for index in range(len(sizes))
            ]


def _frame_sizes(image: Image.Image, name: str, fmt: str, max_pages: int) -> list[tuple[int, int]]:
    """Return (width, height) of each page from the headers only, stopping past `max_pages`."""
    if fmt not in _MULTI_PAGE_FORMATS:
        return [image.size]
    sizes: list[tuple[int, int]] = []
    try:
        # Seeking reads a frame's header (its IFD), not its pixels.
        for frame in ImageSequence.Iterator(image):
            sizes.append(frame.size)
            if len(sizes) > max_pages:
                break
    except _DECODE_ERRORS as exc:
        _fail(name, f"corrupt {fmt.upper()} file: page {len(sizes) + 1}: {_reason(exc)}")
    if len(sizes) > max_pages:
        _fail(name, f"the {fmt.upper()} has more than the limit of {max_pages} pages")
    return sizes


def _decode_frame(image: Image.Image, index: int, name: str, fmt: str, count: int) -> Page:
    try:
        image.seek(index)
        # A full decode here, so truncation shows up now and not in a later stage.
        image.load()
        gray = _to_gray(_upright(image))
    except _DECODE_ERRORS as exc:
        where = _page_label(index, count)
        _fail(name, f"{where}corrupt or truncated {fmt.upper()} file: {_reason(exc)}")
    return Page(image=gray, dpi=_clean_dpi(image.info.get("dpi")), index=index, source_format=fmt)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos, some scanners) as every image viewer does."""
    # Checked first: exif_transpose copies the whole image even when there is nothing to do.
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _reason(exc: BaseException) -> str:
    """One-line text of a decoder exception."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


#: Modes holding more than 8 bits per pixel, one channel: scaled by their range, not clipped.
_WIDE_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
#: Modes `Image.convert("L")` handles directly (the rest go through RGB).
_DIRECT_TO_L = frozenset({"1", "L", "P", "RGB"})


def _to_gray(image: Image.Image) -> NDArray[np.uint8]:
    """Return the decoded image as (height, width) C-contiguous uint8 luma."""
    if image.mode in _WIDE_MODES:
        return _wide_to_uint8(np.asarray(image))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        image = _on_white(image)
    if image.mode not in _DIRECT_TO_L:
        image = image.convert("RGB")
    if image.mode != "L":
        image = image.convert("L")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _on_white(image: Image.Image) -> Image.Image:
    """Composite on white paper: transparent pixels are background, not black."""
    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(paper, rgba).convert("RGB")


def _wide_to_uint8(values: NDArray[Any]) -> NDArray[np.uint8]:
    """Scale 16/32-bit integer or float samples to 0..255 by their actual range.

    Notes
    -----
    Integers: values already within 0..255 are kept; otherwise 0..max maps to 0..255, which is
    a division by 257 for full-range 16-bit data and stretches 10/12-bit scans to full range.
    Floats: 0..1 data is multiplied by 255, 0..255 kept, larger ranges scaled by the maximum.
    Zero stays black so line darkness is not changed by the paper's brightness. Negative and
    non-finite samples become 0. float32 keeps memory at 4 bytes per pixel for large sheets.
    """
    samples = values.astype(np.float32)
    if values.dtype.kind == "f":
        samples[~np.isfinite(samples)] = 0.0
    np.maximum(samples, 0.0, out=samples)
    top = float(samples.max()) if samples.size else 0.0
    if values.dtype.kind == "f" and top <= 1.0:
        scale = 255.0
    elif top <= 255.0:
        scale = 1.0
    else:
        scale = 255.0 / top
    samples *= scale
    np.rint(samples, out=samples)
    np.clip(samples, 0.0, 255.0, out=samples)
    return np.ascontiguousarray(samples.astype(np.uint8))


# --- PDF (PDFium) -------------------------------------------------------------------------------

#: PDFium is not thread-safe; one document is worked on at a time in a process.
_pdfium_lock = threading.Lock()


def _pdf_pages(
    data: bytes, name: str, *, dpi: float, max_pixels: int, max_pages: int
) -> list[Page]:
    scale = dpi / _POINTS_PER_INCH * (1.0 - _PDF_SCALE_SLACK)
    with _pdfium_lock, _open_pdf(data, name) as pdf:
        count = len(pdf)
        if count == 0:
            _fail(name, "the PDF has no pages")
        if count > max_pages:
            _fail(name, f"the PDF has {count} pages, more than the limit of {max_pages}")
        for index in range(count):
            width, height = _pdf_pixel_size(pdf, index, scale, name)
            _check_size(name, _page_label(index, count), width, height, max_pixels)
        return [_render_pdf_page(pdf, index, scale, dpi, name, count) for index in range(count)]


def _open_pdf(data: bytes, name: str) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium.raw.FPDF_ERR_PASSWORD:
            _fail(name, "the PDF is encrypted (password protected)")
        # PDFium refuses a document without a page tree or pages, reporting no error code.
        if code == pdfium.raw.FPDF_ERR_SUCCESS:
            _fail(name, "the PDF has no pages")
        _fail(name, f"corrupt PDF: {_reason(exc)}")


def _pdf_pixel_size(
    pdf: pdfium.PdfDocument, index: int, scale: float, name: str
) -> tuple[int, int]:
    """Return the (width, height) in pixels PDFium will render page `index` at."""
    page = _pdf_page(pdf, index, name)
    try:
        # PDFium reports the size with the page's /Rotate applied, as it renders it.
        width_pt, height_pt = page.get_size()
    finally:
        page.close()
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        _fail(name, f"page {index + 1}: corrupt PDF: page size is not a number")
    # The rounding pypdfium2's renderer uses, so the check matches what would be allocated.
    return math.ceil(width_pt * scale), math.ceil(height_pt * scale)


def _pdf_page(pdf: pdfium.PdfDocument, index: int, name: str) -> pdfium.PdfPage:
    try:
        return pdf[index]
    except pdfium.PdfiumError as exc:
        _fail(name, f"page {index + 1}: corrupt PDF: {_reason(exc)}")


def _render_pdf_page(
    pdf: pdfium.PdfDocument, index: int, scale: float, dpi: float, name: str, count: int
) -> Page:
    page = _pdf_page(pdf, index, name)
    try:
        bitmap = page.render(scale=scale, grayscale=True)
    except (pdfium.PdfiumError, ValueError) as exc:
        _fail(name, f"{_page_label(index, count)}cannot render PDF page: {_reason(exc)}")
    finally:
        page.close()
    try:
        pixels = bitmap.to_numpy()
        # grayscale=True renders an 8-bit gray bitmap; keep a fallback for a colour one (BGR).
        gray = pixels if pixels.ndim == 2 else _bgr_to_gray(pixels)
        # Copy: the bitmap's buffer is freed on close and its rows may be padded.
        image = np.array(gray, dtype=np.uint8, order="C", copy=True)
    finally:
        bitmap.close()
    return Page(image=image, dpi=dpi, index=index, source_format="pdf")


def _bgr_to_gray(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """ITU-R 601 luma of a (height, width, 3 or 4) BGR(x) array, as Pillow's convert("L")."""
    b, g, r = (pixels[..., c].astype(np.float32) for c in range(3))
    luma: NDArray[np.uint8] = np.rint(0.299 * r + 0.587 * g + 0.114 * b).astype(np.uint8)
    return luma
