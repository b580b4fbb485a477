"""Every error answer is JSON ``{"detail": "<one line>"}``: the handlers that make it so.

The service raises `pid.core.errors` exceptions, each carrying its HTTP status; storage and
unexpected errors are translated here too, so no route catches anything itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pid.core.errors import ConflictError, NotFoundError, PidInputError
from pid.pipeline.ports import QueueUnavailableError
from pid.storage import ObjectNotFound, StorageUnavailable

logger = logging.getLogger(__name__)

#: Errors that mean a backing service is down rather than that the request is wrong, and the
#: service each names. A bare ConnectionError is what asyncpg raises when PostgreSQL refuses
#: the connection (the only raw socket a request opens; storage and the broker wrap theirs).
#: Celery's Redis result backend lets redis-py's own errors through.
UNAVAILABLE: dict[type[Exception], str] = {
    sqlalchemy.exc.OperationalError: "database",
    sqlalchemy.exc.InterfaceError: "database",
    sqlalchemy.exc.TimeoutError: "database",
    ConnectionError: "database",
    QueueUnavailableError: "task broker",
    redis.exceptions.RedisError: "result backend",
    StorageUnavailable: "storage",
}

#: What a validation error's detail keeps of each pydantic error: never the input itself, which
#: may be a large or private body.
_ERROR_FIELDS = ("loc", "msg", "type")


def error_response(status_code: int, detail: str, **extra: Any) -> JSONResponse:
    """The JSON answer of every error: ``{"detail": ...}`` plus any `extra` fields."""
    return JSONResponse({"detail": detail, **extra}, status_code=status_code)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """`PidInputError` (400 or its subclass's status), `NotFoundError`, `ConflictError`."""
    code = getattr(exc, "status_code", status.HTTP_400_BAD_REQUEST)
    return error_response(code, str(exc))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 for a request FastAPI could not parse or validate (path, query, body, JSON)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{key: error[key] for key in _ERROR_FIELDS if key in error} for error in exc.errors()]
    return error_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT, describe_validation(exc.errors()), errors=errors
    )


async def missing_object(request: Request, exc: Exception) -> JSONResponse:
    """404 for an artifact whose row exists but whose file is gone (purged, or lost)."""
    assert isinstance(exc, ObjectNotFound)
    return error_response(status.HTTP_404_NOT_FOUND, "the artifact's file is not in storage")


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 while a backing service (`UNAVAILABLE`) is down; the request may be retried."""
    service = next(
        (name for kind, name in UNAVAILABLE.items() if isinstance(exc, kind)), "a service"
    )
    logger.warning(
        "%s unavailable during %s %s: %s", service, request.method, request.url.path, exc
    )
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE, f"the {service} is unavailable; try again later"
    )


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """500 for anything else; the answer reveals nothing of it.

    Not logged here: Starlette raises the exception again once this answer is sent, so the
    server logs it with its traceback.
    """
    return error_response(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal server error")


def describe_validation(errors: Sequence[Any]) -> str:
    """One line naming each failing field and why, e.g. ``query.limit: Input should be ...``."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            # The location of a JSON error is a character offset; the parser's reason says more.
            where = "body"
            reason = error.get("ctx", {}).get("error")
            message = f"malformed JSON ({reason})" if reason else "malformed JSON"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`.

    HTTPException (404 for an unknown route, 401, 413, ...) keeps FastAPI's own handler, which
    already answers ``{"detail": ...}``.
    """
    for domain in (PidInputError, NotFoundError, ConflictError):
        app.add_exception_handler(domain, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ObjectNotFound, missing_object)
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, unavailable)
    app.add_exception_handler(Exception, unexpected_error)
