"""Liveness, readiness (each dependency down in turn), the OpenAPI page, unknown routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import closed_port, make_settings, serve

from pid.api.app import create_app
from pid.settings import Settings


def test_healthz_answers_ok(client: httpx.Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency_ok(client: httpx.Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {"redis": "ok", "database": "ok", "storage": "ok"},
    }


def _broken(dependency: str) -> dict[str, Any]:
    """Settings overrides that point `dependency` at a port nothing listens on."""
    port = closed_port()
    if dependency == "redis":
        return {"broker_url": f"redis://127.0.0.1:{port}/0"}
    if dependency == "database":
        return {"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/pid"}
    return {
        "storage_backend": "s3",
        "s3_endpoint_url": f"http://127.0.0.1:{port}",
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
    }


@pytest.fixture(params=["redis", "database", "storage"])
def broken_server(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """(the dependency that is down, the URL of a server configured that way)."""
    dependency: str = request.param
    values: dict[str, Any] = {"database_url": settings.database_url, "data_dir": tmp_path}
    broken = make_settings(**(values | _broken(dependency)))
    with serve(create_app(broken)) as url:
        yield dependency, url


def test_readyz_names_the_dependency_that_is_down(broken_server: tuple[str, str]) -> None:
    dependency, url = broken_server

    response = httpx.get(f"{url}/readyz", timeout=10.0)

    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == f"not ready: {dependency}"
    assert body["checks"][dependency] != "ok"
    assert all(state == "ok" for name, state in body["checks"].items() if name != dependency)
    # The process itself is alive: liveness does not depend on anything.
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_openapi_lists_the_routes(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()

    paths = set(schema["paths"])
    assert {
        "/healthz",
        "/readyz",
        "/api/v1/diagrams",
        "/api/v1/diagrams/{uid}",
        "/api/v1/diagrams/{uid}/run",
        "/api/v1/diagrams/{uid}/cancel",
        "/api/v1/diagrams/{uid}/artifacts/{name}",
        "/api/v1/diagrams/{uid}/pipe_mask",
        "/api/v1/diagrams/{uid}/graph",
        "/api/v1/diagrams/{uid}/review/accept",
        "/api/v1/tasks/{task_id}",
    } <= paths
    upload = schema["paths"]["/api/v1/diagrams"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert client.get("/docs").status_code == 200


def test_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
