"""The API's routers: `api_router` (everything under /api/v1), `health_router` and
`metrics_router` (both at the root)."""

from fastapi import APIRouter, Depends

from pid.api.deps import require_api_key
from pid.api.routes import diagrams, health, metrics, tasks

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_api_key)])
api_router.include_router(diagrams.router)
api_router.include_router(tasks.router)

health_router = health.router
metrics_router = metrics.router

__all__ = ["API_PREFIX", "api_router", "health_router", "metrics_router"]
