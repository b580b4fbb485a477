"""Files in and out of the API: upload names, image bodies, artifact downloads."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import PurePosixPath

from fastapi import Request
from starlette.datastructures import UploadFile

from pid.core.errors import PidInputError

#: Longest `original_name` kept, in characters; the extension survives the cut.
MAX_FILENAME_LENGTH = 255
#: Name given to an upload whose name is empty once cleaned.
DEFAULT_FILENAME = "upload"
#: Longest extension kept whole when a long name is cut.
_MAX_EXTENSION_LENGTH = 16
_SEPARATORS = re.compile(r"[/\\]")

#: Media types of the artifacts, by their last extension.
MEDIA_TYPES = {
    ".png": "image/png",
    ".json": "application/json",
    ".xml": "application/xml",
    ".fxml": "application/xml",
    ".graphml": "application/graphml+xml",
    ".txt": "text/plain; charset=utf-8",
}
DEFAULT_MEDIA_TYPE = "application/octet-stream"


def safe_filename(name: str | None) -> str:
    """The name an upload is recorded under: its base name, without control or format
    characters, at most `MAX_FILENAME_LENGTH` characters.

    The name is only ever shown (storage keys never use it), but it is echoed in lists, logs
    and error messages, where a path, a newline or a right-to-left override would mislead.
    """
    # Either separator: a browser on Windows may send the client's whole path.
    base = _SEPARATORS.split(name or "")[-1]
    # Category C: control (Cc), format (Cf: bidirectional overrides, zero-width), surrogates.
    cleaned = "".join(c for c in unicodedata.normalize("NFC", base) if not _hidden(c))
    cleaned = cleaned.strip()
    if cleaned in ("", ".", ".."):
        return DEFAULT_FILENAME
    return _shorten(cleaned)


def _hidden(char: str) -> bool:
    return unicodedata.category(char).startswith("C")


def _shorten(name: str) -> str:
    if len(name) <= MAX_FILENAME_LENGTH:
        return name
    suffix = PurePosixPath(name).suffix
    if len(suffix) > _MAX_EXTENSION_LENGTH:
        suffix = ""
    return name[: MAX_FILENAME_LENGTH - len(suffix)] + suffix


async def image_body(request: Request, what: str) -> bytes:
    """The image a client sent as the raw body, or as the ``file`` part of a multipart body.

    The body limit middleware has already bounded its size; an empty body is refused here
    because no decoder gives a useful message for it.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=0) as form:
            part = form.get("file")
            if not isinstance(part, UploadFile):
                raise PidInputError(f"{what}: the multipart body has no 'file' part")
            data = await part.read()
    else:
        data = await request.body()
    if not data:
        raise PidInputError(f"{what}: empty body")
    return data


def media_type(name: str) -> str:
    """The Content-Type of artifact `name`, from its last extension."""
    return MEDIA_TYPES.get(PurePosixPath(name).suffix, DEFAULT_MEDIA_TYPE)


async def opened(chunks: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk already read, so that a missing object raises here,
    while an error answer can still be sent, rather than after the 200 headers.

    The returned iterator closes `chunks` when it ends or is abandoned (a client that goes
    away mid-download), releasing the file or the S3 connection at once.
    """
    try:
        first = await anext(chunks, b"")
    except BaseException:
        await chunks.aclose()
        raise
    return _prepend(first, chunks)


async def _prepend(first: bytes, chunks: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(chunks):
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
