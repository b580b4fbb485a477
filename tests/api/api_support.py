"""Helpers of the API tests: live servers, the test broker, snapshots of what a request changed,
small drawings and raw HTTP.

Nothing here is a pytest fixture, so conftest.py and the tests import it as they need it.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
import uvicorn
from celery import Celery
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from pid.api.deps import get_enqueue, get_revoke
from pid.core.statuses import DiagramStatus
from pid.db.engine import create_sessionmaker
from pid.db.repositories import ArtifactRepository, DiagramRepository
from pid.pipeline.ports import QUEUES
from pid.settings import Settings
from pid.storage import LocalStorage, artifact_key
from pid.tasks.enqueue import enqueue_to, revoke_with

# tests/db/pg.py is where throwaway databases are made; reuse it from its own folder.
_DB_TESTS = str(Path(__file__).resolve().parent.parent / "db")
if _DB_TESTS not in sys.path:
    sys.path.append(_DB_TESTS)
from pg import make_test_database  # noqa: E402

__all__ = ["make_test_database"]

#: The `nothing_changes` fixture: ``with nothing_changes(): ...`` asserts the block changed
#: nothing. The `upload` fixture: ``upload(data=..., filename=..., ...)`` posts a drawing.
NothingChanges = Callable[[], AbstractContextManager[None]]
Upload = Callable[..., httpx.Response]

#: A Redis database of its own, so test messages never reach a real worker's queues.
TEST_BROKER_URL = "redis://127.0.0.1:6379/7"
#: Small limits, so that refusing an oversized input needs only small files.
MAX_UPLOAD_BYTES = 256 * 1024
MAX_PIXELS = 1_000_000
MAX_PAGES = 3
TABLES = ("diagrams", "stage_runs", "artifacts")
API = "/api/v1"
#: Seconds a server may take to start or stop.
SERVER_TIMEOUT_S = 15.0


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test server: the throwaway database, a temporary data folder, the test
    broker and small limits; `overrides` replace any of them."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "storage_backend": "local",
        "data_dir": data_dir,
        "broker_url": TEST_BROKER_URL,
        "result_backend": TEST_BROKER_URL,
        "max_upload_bytes": MAX_UPLOAD_BYTES,
        "max_pixels": MAX_PIXELS,
        "max_pages": MAX_PAGES,
        "pdf_dpi": 72.0,
        "api_key": None,
        "gate_mask": False,
        "gate_graph": False,
    }
    # No .env file: the tests must not depend on the developer's local configuration.
    return Settings(_env_file=None, **(values | overrides))


def assert_error(response: httpx.Response, status: int, *phrases: str) -> None:
    """`response` is a JSON error of `status` whose detail contains every phrase."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for phrase in phrases:
        assert phrase in detail, detail


# ---- the broker --------------------------------------------------------------------------------


def make_celery() -> Celery:
    """A Celery app that sends to the test broker (no worker consumes it)."""
    app = Celery("pid-api-tests", broker=TEST_BROKER_URL, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    return app


def queued_task_ids(broker: redis.Redis) -> dict[str, list[str]]:
    """The task ids waiting in each queue of the test broker, oldest first."""
    waiting: dict[str, list[str]] = {}
    for queue in QUEUES:
        # Kombu pushes to the left and workers pop from the right.
        raw = broker.lrange(queue, 0, -1)
        waiting[queue] = [json.loads(m)["headers"]["id"] for m in reversed(raw)]
    return waiting


# ---- live servers ------------------------------------------------------------------------------


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1 in a thread; yield its base URL.

    The socket is bound before the server starts, so no other process can take the port in
    between. The app's lifespan runs on the server thread's loop, as in production.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_TIMEOUT_S)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server stopped during startup (see its log)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start within {SERVER_TIMEOUT_S} s")
        time.sleep(0.01)


def app_with_test_broker(app: FastAPI, celery: Celery) -> FastAPI:
    """`app`, sending its chains to the test broker through `celery`."""
    app.dependency_overrides[get_enqueue] = lambda: enqueue_to(celery)
    app.dependency_overrides[get_revoke] = lambda: revoke_with(celery)
    return app


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- what a request changed ----------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything a request could change: rows, stored files, queued messages."""

    rows: dict[str, int]
    files: frozenset[str]
    queued: dict[str, list[str]]


def snapshot(settings: Settings, broker: redis.Redis) -> Snapshot:
    """The state of the database, the data folder and the test broker now."""
    root = Path(settings.data_dir)
    files = frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return Snapshot(row_counts(settings.database_url), files, queued_task_ids(broker))


def row_counts(database_url: str) -> dict[str, int]:
    """Rows of each table of the service."""

    async def count() -> dict[str, int]:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return {
                    table: int(await connection.scalar(text(f"SELECT count(*) FROM {table}")))
                    for table in TABLES
                }
        finally:
            await engine.dispose()

    return asyncio.run(count())


# ---- arranging a diagram's state -----------------------------------------------------------


def store_artifacts(settings: Settings, uid: str, artifacts: dict[str, bytes]) -> None:
    """Store `artifacts` of diagram `uid` as a stage would: the file, then its row."""

    async def store(session: AsyncSession) -> None:
        diagram = await DiagramRepository(session).get_by_uid(uuid.UUID(uid))
        assert diagram is not None
        storage = LocalStorage(Path(settings.data_dir))
        for name, data in artifacts.items():
            stored = await storage.put_bytes(artifact_key(diagram.uid, name), data)
            await ArtifactRepository(session).upsert(
                diagram.id, name, stored.key, stored.size, stored.sha256
            )

    _in_transaction(settings, store)


def set_status(settings: Settings, uid: str, status: DiagramStatus) -> None:
    """Put diagram `uid` in `status`, as a finished stage or a gate would."""

    async def update(session: AsyncSession) -> None:
        await DiagramRepository(session).set_status(uuid.UUID(uid), status)

    _in_transaction(settings, update)


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Run `work` in one committed transaction on the test database."""

    async def run() -> None:
        engine = create_async_engine(settings.database_url, poolclass=NullPool)
        try:
            async with create_sessionmaker(engine)() as session:
                await work(session)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())


# ---- drawings ----------------------------------------------------------------------------------


def drawing(width: int = 96, height: int = 64, shade: int = 0) -> Image.Image:
    """A small white sheet with one horizontal and one vertical black line."""
    pixels = np.full((height, width), 255, dtype=np.uint8)
    pixels[height // 2, 4:-4] = shade
    pixels[4:-4, width // 3] = shade
    return Image.fromarray(pixels)


def png_bytes(width: int = 96, height: int = 64) -> bytes:
    return _saved(drawing(width, height), "PNG")


def jpeg_bytes(width: int = 96, height: int = 64) -> bytes:
    return _saved(drawing(width, height), "JPEG")


def tiff_bytes(pages: int, width: int = 96, height: int = 64) -> bytes:
    """A multi-page TIFF, one drawing per frame."""
    frames = [drawing(width, height, shade=i) for i in range(pages)]
    return _saved(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def pdf_bytes(pages: int, width: int = 96, height: int = 64) -> bytes:
    """A PDF of `pages` pages, each a drawing at 72 dpi (one point per pixel)."""
    frames = [drawing(width, height, shade=i).convert("RGB") for i in range(pages)]
    return _saved(frames[0], "PDF", save_all=True, append_images=frames[1:], resolution=72.0)


def noisy_png(width: int, height: int) -> bytes:
    """An uncompressed-size PNG of random gray pixels: about width * height bytes."""
    pixels = np.random.default_rng(7).integers(0, 256, size=(height, width), dtype=np.uint8)
    return _saved(Image.fromarray(pixels), "PNG", compress_level=0)


def mask_bytes(width: int, height: int) -> bytes:
    """A 0/255 pipe mask PNG."""
    pixels = np.zeros((height, width), dtype=np.uint8)
    pixels[height // 2, 2:-2] = 255
    return _saved(Image.fromarray(pixels), "PNG")


def _saved(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def bomb_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` 8-bit gray pixels, with almost no data.

    Decoding it would allocate width * height bytes; a loader that checks the header first
    refuses it without decoding.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # One scanline's worth of compressed zeros: the rest of the image is "missing".
    data = zlib.compress(b"\x00" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def coco(width: int, height: int, boxes: Sequence[Sequence[float]]) -> bytes:
    """COCO JSON with one category and `boxes` ([x, y, w, h]) on a `width` x `height` sheet."""
    return json.dumps(
        {
            "images": [{"id": 1, "file_name": "original.png", "width": width, "height": height}],
            "categories": [{"id": 1, "name": "gate_valve"}],
            "annotations": [
                {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": list(box), "score": 1.0}
                for i, box in enumerate(boxes)
            ],
        }
    ).encode()


# ---- raw HTTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(
    base_url: str, head: bytes, body: Sequence[bytes] = (), timeout: float = 5.0
) -> RawResponse:
    """Send a request head and `body` pieces over a plain socket, then read the answer.

    For requests an ordinary client will not send: a body that never ends, or a
    Content-Length that is not followed by the body it announces. The socket's timeout makes
    a server that waits for the rest of the body fail the test instead of hanging it.
    """
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        for piece in body:
            sock.sendall(piece)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(data: bytes, size: int) -> list[bytes]:
    """`data` as HTTP/1.1 chunks of `size` bytes, without the final empty chunk."""
    return [
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (data[i : i + size] for i in range(0, len(data), size))
    ]


def multipart(
    parts: Sequence[tuple[str, str | None, bytes]], boundary: str = "pidtestboundary"
) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename or None, content) parts, byte for byte,
    and its Content-Type.

    Written by hand so that a test controls the exact bytes of a filename (HTTP clients
    escape control characters in it).
    """
    out = io.BytesIO()
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"
