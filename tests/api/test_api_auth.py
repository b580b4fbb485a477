"""The API key: every route but /healthz needs it once the server has one configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import API, NothingChanges, make_settings, png_bytes, serve

from pid.api.app import create_app
from pid.settings import Settings

KEY = "k3y-for-tests"


@pytest.fixture(scope="module")
def keyed_url(settings: Settings) -> Iterator[str]:
    """A server with an API key, on the session's database and data folder."""
    keyed = make_settings(settings.database_url, Path(settings.data_dir), api_key=KEY)
    with serve(create_app(keyed)) as url:
        yield url


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": KEY + "x"}]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/readyz"),
        ("GET", f"{API}/diagrams"),
        ("GET", f"{API}/diagrams/00000000-0000-0000-0000-000000000000"),
        ("GET", f"{API}/tasks/some-task"),
    ],
)
def test_a_missing_or_wrong_key_is_refused(
    keyed_url: str, method: str, path: str, headers: dict[str, str]
) -> None:
    response = httpx.request(method, keyed_url + path, headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "missing or wrong API key (send it in the X-API-Key header)"
    }


def test_the_right_key_is_let_through(keyed_url: str) -> None:
    headers = {"X-API-Key": KEY}

    assert httpx.get(f"{keyed_url}/readyz", headers=headers).status_code == 200
    listed = httpx.get(f"{keyed_url}{API}/diagrams", headers=headers)
    assert listed.status_code == 200
    assert "total" in listed.json()


def test_healthz_needs_no_key(keyed_url: str) -> None:
    assert httpx.get(f"{keyed_url}/healthz").status_code == 200


def test_an_upload_without_the_key_stores_nothing(
    keyed_url: str, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = httpx.post(
            f"{keyed_url}{API}/diagrams", files={"file": ("sheet.png", png_bytes())}
        )

    assert response.status_code == 401


def test_the_schema_declares_the_key(keyed_url: str) -> None:
    schema = httpx.get(f"{keyed_url}/openapi.json").json()

    assert schema["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": (
            "Required on every route except /healthz when the server has PID_API_KEY set."
        ),
    }


def test_a_key_beyond_ascii_is_compared_as_utf8(settings: Settings) -> None:
    key = "clé-🔑"
    keyed = make_settings(settings.database_url, Path(settings.data_dir), api_key=key)

    with serve(create_app(keyed)) as url:
        right = httpx.get(f"{url}/readyz", headers={b"X-API-Key": key.encode()})
        wrong = httpx.get(f"{url}/readyz", headers={b"X-API-Key": "clé-🔒".encode()})

    assert right.status_code == 200
    assert wrong.status_code == 401
