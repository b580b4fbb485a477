"""/healthz (the process answers) and /readyz (its dependencies answer too)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pid.api.deps import ResourcesDep, require_api_key
from pid.api.resources import PROBE_TIMEOUT_S, Resources
from pid.api.schemas import HealthOut, NotReadyOut, ReadyOut

router = APIRouter(tags=["health"])

OK = "ok"


@router.get("/healthz")
async def healthz() -> HealthOut:
    """Liveness: answers while the process serves requests; touches nothing else."""
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    dependencies=[Depends(require_api_key)],
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": NotReadyOut}},
)
async def readyz(resources: ResourcesDep) -> ReadyOut | JSONResponse:
    """Readiness: Redis, PostgreSQL and storage each answer within a short timeout."""
    checks = await probe_all(resources)
    failing = [name for name, state in checks.items() if state != OK]
    if failing:
        body = NotReadyOut(detail=f"not ready: {', '.join(failing)}", checks=checks)
        return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return ReadyOut(checks=checks)


async def probe_all(resources: Resources) -> dict[str, str]:
    """Each dependency's state ("ok" or the reason it failed), probed concurrently."""
    probes: dict[str, Callable[[Resources], Awaitable[object]]] = {
        "redis": _ping_redis,
        "database": _select_one,
        "storage": _check_storage,
    }
    states = await asyncio.gather(*(_probe(probe, resources) for probe in probes.values()))
    return dict(zip(probes, states, strict=True))


async def _probe(probe: Callable[[Resources], Awaitable[object]], resources: Resources) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await probe(resources)
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    # Any failure means "not ready"; its first line tells the operator why.
    except Exception as exc:
        reason = next(iter(str(exc).splitlines()), "")
        return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    return OK


async def _ping_redis(resources: Resources) -> object:
    return await resources.redis.ping()


async def _select_one(resources: Resources) -> object:
    async with resources.engine.connect() as connection:
        return await connection.scalar(text("select 1"))


async def _check_storage(resources: Resources) -> object:
    await resources.storage.check()
    return None
