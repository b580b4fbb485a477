"""Request and response bodies of the API (pydantic), built from the database rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pid.core.statuses import DiagramStatus, StageRunState
from pid.db.models import Artifact, Diagram
from pid.pipeline.service import DiagramDetail
from pid.pipeline.stages import STAGES


class ErrorOut(BaseModel):
    """Every error answer."""

    detail: str = Field(description="What went wrong, in one line.")


# ---- diagrams --------------------------------------------------------------------------------


class DiagramOut(BaseModel):
    """A diagram: one page of an upload and where the pipeline stands on it."""

    model_config = ConfigDict(from_attributes=True)

    uid: uuid.UUID
    original_name: str = Field(description="The uploaded file's name, sanitised.")
    status: DiagramStatus
    error_stage: str | None = Field(description="The stage that failed, when status is error.")
    error_message: str | None
    page: int = Field(description="1-based page of the upload this diagram is.")
    page_count: int
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    dpi: float | None
    has_symbols: bool = Field(description="Boxes came with the upload; detection is skipped.")
    created_at: datetime
    updated_at: datetime


class StageRunOut(BaseModel):
    """The run record of one stage of a diagram."""

    model_config = ConfigDict(from_attributes=True)

    stage: str
    task_id: str | None = Field(description="Celery task id; see GET /api/v1/tasks/{task_id}.")
    state: StageRunState
    attempt: int = Field(description="Deliveries that started this run since it was queued.")
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    error: str | None
    provenance: dict[str, Any] | None = Field(
        description="Method, weights hash, settings used and code version of the output."
    )
    result: dict[str, Any] | None = Field(description="A small summary of what the stage did.")


class ArtifactOut(BaseModel):
    """A stored file of a diagram."""

    name: str
    size: int = Field(description="Bytes.")
    sha256: str
    url: str = Field(description="Where to download it.")
    created_at: datetime

    @classmethod
    def of(cls, artifact: Artifact, url: str) -> ArtifactOut:
        return cls(
            name=artifact.name,
            size=artifact.size,
            sha256=artifact.sha256,
            url=url,
            created_at=artifact.created_at,
        )


class DiagramDetailOut(DiagramOut):
    """A diagram with its stage runs (in chain order) and its artifacts."""

    stage_runs: list[StageRunOut]
    artifacts: list[ArtifactOut]

    @classmethod
    def of(cls, detail: DiagramDetail, url_of: Callable[[str], str]) -> DiagramDetailOut:
        """`url_of` gives the download URL of an artifact from its name."""
        summary = DiagramOut.model_validate(detail.diagram)
        return cls(
            **summary.model_dump(),
            stage_runs=[StageRunOut.model_validate(run) for run in detail.runs],
            artifacts=[ArtifactOut.of(a, url_of(a.name)) for a in detail.artifacts],
        )


class DiagramPage(BaseModel):
    """One page of the diagram list, newest first."""

    items: list[DiagramOut]
    total: int = Field(description="Diagrams matching the filter, on all pages.")
    limit: int
    offset: int


class UploadOut(BaseModel):
    """The diagrams an upload created: one per page."""

    uids: list[uuid.UUID]
    diagrams: list[DiagramOut]

    @classmethod
    def of(cls, diagrams: Sequence[Diagram]) -> UploadOut:
        return cls(
            uids=[d.uid for d in diagrams],
            diagrams=[DiagramOut.model_validate(d) for d in diagrams],
        )


# ---- runs and tasks --------------------------------------------------------------------------


def _known_stage(name: str | None) -> str | None:
    if name is not None and name not in STAGES:
        raise ValueError(f"unknown stage {name!r}: use one of {', '.join(STAGES)}")
    return name


StageName = Annotated[
    str | None,
    AfterValidator(_known_stage),
    Field(json_schema_extra={"enum": [*STAGES, None]}),
]


class RunRequest(BaseModel):
    """Which stages to run; both ends are included, in chain order."""

    model_config = ConfigDict(extra="forbid")

    from_stage: StageName = Field(
        None, description="First stage; default: where the diagram stopped (or failed)."
    )
    to_stage: StageName = Field(None, description="Last stage; default: export.")


class TasksOut(BaseModel):
    """The Celery task ids of the stages just queued, in chain order."""

    uid: uuid.UUID
    task_ids: list[str]


class TaskOut(BaseModel):
    """What Celery knows of a task (PENDING also stands for unknown ids)."""

    task_id: str
    state: str = Field(description="PENDING, STARTED, RETRY, SUCCESS, FAILURE or REVOKED.")
    ready: bool = Field(description="The task has finished, one way or another.")
    info: dict[str, Any] | None = Field(description="The task's metadata, when it is a mapping.")
    error: str | None = Field(description="The exception of a failed task.")


# ---- health ----------------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    """Every dependency answered."""

    status: Literal["ok"] = "ok"
    checks: dict[str, str] = Field(description="Each dependency and its state.")


class NotReadyOut(ErrorOut):
    """At least one dependency failed; `detail` names them, `checks` says why."""

    checks: dict[str, str]
