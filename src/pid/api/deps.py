"""Dependencies of the routes: the shared resources, a session per request, the service, the
API key check.

The `...Dep` aliases are what route signatures use. `get_enqueue` and `get_revoke` are the seams
tests override to send to a broker of their own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncSession

from pid.api.resources import Resources
from pid.pipeline.ports import Enqueue, Revoke
from pid.pipeline.service import DiagramService
from pid.settings import Settings
from pid.storage import Storage
from pid.tasks.enqueue import service_enqueue, service_revoke

API_KEY_HEADER = "X-API-Key"

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    # Missing keys are answered by `require_api_key`, so that a server without a key configured
    # accepts requests without the header.
    auto_error=False,
    description="Required on every route except /healthz when the server has PID_API_KEY set.",
)


def get_resources(request: Request) -> Resources:
    """The process-wide resources the lifespan put in the request's state."""
    resources = request.state.resources
    if not isinstance(resources, Resources):
        raise TypeError("the app's lifespan did not provide pid.api.resources.Resources")
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(resources: ResourcesDep) -> Settings:
    """The settings the app was created with."""
    return resources.settings


def get_storage(resources: ResourcesDep) -> Storage:
    """The process's one storage object."""
    return resources.storage


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """A session for this request, closed (and any open transaction rolled back) when the
    route function returns.

    The service commits what it means to keep; whatever an error leaves uncommitted is rolled
    back here, which is what makes a refused request change nothing. `SessionDep` closes it
    before the response is sent, so a long download holds no database connection.
    """
    async with resources.sessions() as session:
        yield session


def get_enqueue() -> Enqueue:
    """How submitted chains reach the workers: the Celery app of `pid.tasks.app`."""
    return service_enqueue


def get_revoke() -> Revoke:
    """How a cancel or delete withdraws queued stages: the same Celery app."""
    return service_revoke


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
EnqueueDep = Annotated[Enqueue, Depends(get_enqueue)]
RevokeDep = Annotated[Revoke, Depends(get_revoke)]


def get_service(
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    enqueue: EnqueueDep,
    revoke: RevokeDep,
) -> DiagramService:
    """The service layer for this request's session."""
    return DiagramService(session, storage, settings, enqueue, revoke)


ServiceDep = Annotated[DiagramService, Depends(get_service)]


def require_api_key(
    settings: SettingsDep, given: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """Refuse the request with 401 unless it carries the configured key (when one is set)."""
    expected = settings.api_key
    if expected is None:
        return
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, and the server
    # decoded the header as latin-1, so encoding it back gives the bytes the client sent.
    # Constant time, so the answer's timing does not tell how much of a guess was right.
    if given is None or not secrets.compare_digest(
        given.encode("latin-1"), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or wrong API key (send it in the {API_KEY_HEADER} header)",
        )
