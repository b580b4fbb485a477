"""Both storage backends behind one fixture, and a real S3-compatible server for the S3 one.

The S3 backend talks real HTTP (aioboto3 through `endpoint_url`) to moto's server mode running
on a free port of 127.0.0.1 for the whole test session. Each test gets its own bucket, so tests
never see each other's objects.

Tests are plain functions: `Backend.run(body)` runs `body(storage)` in a fresh event loop with a
fresh storage object (the S3 client belongs to the loop that opened it) and closes it after.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from storage_support import Backend, make_s3, new_bucket

from pid.storage import LocalStorage


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1, started once for the session."""
    # werkzeug logs every request at INFO; keep failures readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "data"
    return Backend(name="local", make=lambda: LocalStorage(root), root=root)


@pytest.fixture
def s3_backend(s3_endpoint: str) -> Backend:
    bucket = new_bucket(s3_endpoint)
    return Backend(name="s3", make=lambda: make_s3(s3_endpoint, bucket), bucket=bucket)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn: the behaviour tests must pass on both."""
    chosen: Backend = request.getfixturevalue(f"{request.param}_backend")
    return chosen
