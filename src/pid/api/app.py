"""The FastAPI application: `create_app` builds it, `main` serves it with uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from pid.api.errors import install_error_handlers
from pid.api.limits import BodySizeLimitMiddleware
from pid.api.resources import open_resources
from pid.api.routes import api_router, health_router, metrics_router
from pid.pipeline.stages import code_version
from pid.settings import Settings, get_settings, settings_or_exit

TITLE = "pid"
DESCRIPTION = (
    "Turns raster P&ID drawings into a validated graph of equipment, valves, instruments and "
    "the pipes between them. Upload a drawing, follow its stages, review masks and graphs, and "
    "download the FXML, DEXPI and GraphML exports."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: the process's settings, read from PID_*)."""
    settings = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # Yielded state is copied into every request's `request.state`.
        async with open_resources(settings) as resources:
            yield {"resources": resources}

    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=code_version(),
        lifespan=lifespan,
        docs_url="/docs",
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(api_router)
    return app


def main() -> None:
    """Serve the API on settings.api_host:settings.api_port (``python -m pid.api``)."""
    settings = settings_or_exit()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)
