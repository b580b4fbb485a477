"""Image artifacts: masks (8-bit PNG, 255 where set), pictures, and an image's header.

A mask is read back as bool with > 127 set, and checked against the drawing's size when the
caller knows it. Writers replace their file atomically; PNGs use zlib level 1, which keeps
large masks fast to write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from pid.core.files import replace_atomically
from pid.core.formats._checks import fail


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What an image file's header says: (width, height) in pixels, and its DPI if stated."""

    width: int
    height: int
    dpi: float | None


def image_header(path: Path) -> ImageHeader:
    """Read the size (and stated DPI) of an image file without decoding its pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            stated = image.info.get("dpi")
    except FileNotFoundError:
        fail(path, "", "file not found")
    except (OSError, UnidentifiedImageError) as exc:
        fail(path, "", f"cannot read image: {exc}")
    return ImageHeader(width, height, _dpi(stated))


def _dpi(stated: object) -> float | None:
    if not isinstance(stated, tuple | list) or not stated:
        return None
    try:
        value = float(stated[0])  # TIFF gives an IFDRational, PNG a float, JPEG an int
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def image_size(path: Path) -> tuple[int, int]:
    """Return (width, height) of an image file without decoding its pixels."""
    header = image_header(path)
    return header.width, header.height


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> NDArray[np.bool_]:
    """A mask image as bool of shape (height, width), > 127 set.

    Parameters
    ----------
    path : Path
        An image file (PNG, usually 0/255 gray); colour is converted to gray.
    shape : tuple[int, int], optional
        The drawing's (height, width); a mask of another size is refused.
    """
    if not path.is_file():
        fail(path, "", "file not found")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        fail(path, "", "cannot read image")
    if shape is not None and image.shape != shape:
        fail(
            path,
            "",
            f"size {image.shape[1]}x{image.shape[0]} does not match the drawing's "
            f"{shape[1]}x{shape[0]}",
        )
    out: NDArray[np.bool_] = image > 127
    return out


def write_mask(path: Path, mask: NDArray[np.bool_]) -> None:
    """A bool mask as an 8-bit PNG, 255 where True."""
    write_image(path, mask.astype(np.uint8) * 255)


def write_image(path: Path, image: NDArray[np.uint8]) -> None:
    """An 8-bit gray or BGR picture as PNG."""

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"cannot write {path.name}")

    replace_atomically(path, write)
