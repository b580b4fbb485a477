"""/metrics: the service's figures in Prometheus text format, read when scraped."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from pid.api.deps import SessionDep, SettingsDep, require_api_key
from pid.api.monitoring import read_snapshot, render
from pid.api.schemas import ErrorOut

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require_api_key)],
    responses={
        status.HTTP_200_OK: {
            "content": {CONTENT_TYPE_LATEST: {}},
            "description": "Prometheus text format; see docs/api.md for each metric.",
        },
        status.HTTP_503_SERVICE_UNAVAILABLE: {"model": ErrorOut},
    },
)
async def metrics(session: SessionDep, settings: SettingsDep) -> Response:
    """Diagrams, stage runs, durations and queue lengths, from PostgreSQL and Redis.

    A database error is answered 503 by the app's error handlers; Redis down leaves the queue
    lengths out and reports ``pid_up{dependency="redis"} 0``.
    """
    snapshot = await read_snapshot(session, settings)
    return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)
