"""/api/v1/diagrams: uploads, listing, detail, runs, cancel, delete, artifacts and reviews.

Each route reads its request, calls one `DiagramService` method and shapes the answer; the
service validates, commits and enqueues.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile, status
from fastapi.responses import StreamingResponse

from pid.api.deps import ServiceDep
from pid.api.files import image_body, media_type, opened, safe_filename
from pid.api.schemas import (
    DiagramDetailOut,
    DiagramOut,
    DiagramPage,
    ErrorOut,
    RunRequest,
    TasksOut,
    UploadOut,
)
from pid.core.statuses import DiagramStatus

router = APIRouter(prefix="/diagrams", tags=["diagrams"])

#: Most diagrams on one page of the list.
MAX_PAGE_SIZE = 200


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    return {code: {"model": ErrorOut} for code in codes}


_BINARY = {"type": "string", "format": "binary"}

#: Bodies the routes read themselves, described for OpenAPI (FastAPI cannot infer them).
_PNG_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": {"schema": _BINARY},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {"file": _BINARY}}
            },
        },
    }
}
_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=_errors(400, 413, 415, 422),
    # The drawing and its symbols; anything more is not ours.
    form_limits={"max_files": 2, "max_fields": 2},
)
async def upload_diagram(
    service: ServiceDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG, TIFF or PDF; one diagram a page.")],
    symbols: Annotated[
        UploadFile | None,
        File(description="Symbol boxes as COCO JSON, in the drawing's pixels; skips detection."),
    ] = None,
    auto_run: Annotated[bool, Form(description="Queue the whole chain right away.")] = False,
) -> UploadOut:
    """Store a drawing: one diagram per page, each with its original.png."""
    data = await file.read()
    symbols_data = await symbols.read() if symbols is not None else None
    diagrams = await service.upload(data, safe_filename(file.filename), symbols_data, auto_run)
    return UploadOut.of(diagrams)


@router.get("", responses=_errors(422))
async def list_diagrams(
    service: ServiceDep,
    status_filter: Annotated[
        DiagramStatus | None, Query(alias="status", description="Only diagrams in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DiagramPage:
    """Diagrams, newest first, one page at a time."""
    diagrams, total = await service.list_diagrams(status_filter, limit, offset)
    return DiagramPage(
        items=[DiagramOut.model_validate(d) for d in diagrams],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{uid}", responses=_errors(404, 422))
async def get_diagram(uid: uuid.UUID, service: ServiceDep, request: Request) -> DiagramDetailOut:
    """A diagram with each stage run and each stored artifact."""
    detail = await service.detail(uid)

    def url_of(name: str) -> str:
        return str(request.url_for("get_artifact", uid=uid, name=name))

    return DiagramDetailOut.of(detail, url_of)


@router.delete("/{uid}", status_code=status.HTTP_202_ACCEPTED, responses=_errors(404, 422))
async def delete_diagram(uid: uuid.UUID, service: ServiceDep) -> DiagramOut:
    """Revoke its queued stages and mark it deleted; its files are purged later."""
    return DiagramOut.model_validate(await service.delete(uid))


@router.post(
    "/{uid}/run", status_code=status.HTTP_202_ACCEPTED, responses=_errors(400, 404, 409, 422)
)
async def run_diagram(
    uid: uuid.UUID,
    service: ServiceDep,
    stages: Annotated[RunRequest | None, Body()] = None,
) -> TasksOut:
    """Queue stages of the chain (default: from where the diagram stopped to the end)."""
    chosen = stages or RunRequest()
    task_ids = await service.run(uid, chosen.from_stage, chosen.to_stage)
    return TasksOut(uid=uid, task_ids=task_ids)


@router.post("/{uid}/cancel", responses=_errors(404, 422))
async def cancel_diagram(uid: uuid.UUID, service: ServiceDep) -> DiagramOut:
    """Revoke its queued stages and mark it cancelled; it can be run again later."""
    return DiagramOut.model_validate(await service.cancel(uid))


@router.get(
    "/{uid}/artifacts/{name}",
    response_class=StreamingResponse,
    responses={**_errors(404, 422), 200: {"content": {"application/octet-stream": {}}}},
)
async def get_artifact(uid: uuid.UUID, name: str, service: ServiceDep) -> StreamingResponse:
    """Download one artifact (original.png, graph.json, output.fxml, ...)."""
    artifact, chunks = await service.artifact(uid, name)
    return StreamingResponse(
        await opened(chunks),
        media_type=media_type(name),
        headers={"Content-Length": str(artifact.size), "ETag": f'"{artifact.sha256}"'},
    )


@router.put(
    "/{uid}/pipe_mask",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_errors(400, 404, 409, 413, 422),
    openapi_extra=_PNG_BODY,
)
async def put_pipe_mask(uid: uuid.UUID, service: ServiceDep, request: Request) -> TasksOut:
    """A corrected pipe mask (PNG of the drawing's size); continues with skeletonize_simple."""
    data = await image_body(request, "pipe mask")
    return TasksOut(uid=uid, task_ids=await service.put_pipe_mask(uid, data))


@router.put(
    "/{uid}/graph",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_errors(400, 404, 409, 413, 422),
    openapi_extra=_JSON_BODY,
)
async def put_graph(uid: uuid.UUID, service: ServiceDep, request: Request) -> TasksOut:
    """A corrected graph in graph.json's schema; continues with export."""
    data = await request.body()
    return TasksOut(uid=uid, task_ids=await service.put_graph(uid, data))


@router.post(
    "/{uid}/review/accept",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_errors(404, 409, 422),
)
async def accept_review(uid: uuid.UUID, service: ServiceDep) -> TasksOut:
    """Continue past the review gate the diagram waits at, without changes."""
    return TasksOut(uid=uid, task_ids=await service.accept_review(uid))
