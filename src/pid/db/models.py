"""Tables of the service: diagrams, their stage runs and their artifacts.

Statuses and stage-run states are stored as VARCHAR with a CHECK constraint rather than as
native PostgreSQL enums. Adding a value to a native enum needs ``ALTER TYPE ... ADD VALUE``
(which cannot be used in the transaction that adds it) and removing one needs a new type and a
rewrite of the column; a CHECK constraint is dropped and recreated in one ordinary transactional
migration. The database still refuses any value outside the list.

The stage of a stage run is a plain string: the stage table lives in the pipeline package, which
validates names, and a new stage must not need a schema change.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pid.core.statuses import DiagramStatus, StageRunState

#: Constraint and index names that Alembic can reproduce, so a later migration can drop them by
#: name instead of guessing what PostgreSQL generated.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Width of the status and state columns; the longest value today is 12 characters.
ENUM_LENGTH = 32
#: Width of the stage column; stage names are short identifiers.
STAGE_LENGTH = 64
#: A SHA-256 digest in lowercase hex.
SHA256_LENGTH = 64


def _enum_column_type(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """VARCHAR holding `enum_class` values, with a CHECK constraint named after `name`."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        # Store the values, not the member names (identical today, but the values are the
        # contract the API and the other services read).
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base with the naming convention and the column types of shared hints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - read by SQLAlchemy once, never mutated
        datetime: DateTime(timezone=True),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONB(),
    }


class Diagram(Base):
    """One page of an upload and the pipeline's progress on it."""

    __tablename__ = "diagrams"
    # Read server-generated values (updated_at after an ORM update) back with RETURNING: an
    # expired attribute cannot be lazy-loaded on an async session.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - read once by the mapper

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[uuid.UUID] = mapped_column(
        unique=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    original_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    width: Mapped[int]
    height: Mapped[int]
    #: 1-based page of a multi-page upload (PDF, TIFF) that this diagram is.
    page: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    page_count: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    dpi: Mapped[float | None] = mapped_column(Float)
    #: Boxes were supplied with the upload, so detection is not run.
    has_symbols: Mapped[bool] = mapped_column(default=False, server_default=false())
    status: Mapped[DiagramStatus] = mapped_column(
        _enum_column_type(DiagramStatus, "status"),
        default=DiagramStatus.uploaded,
        server_default=DiagramStatus.uploaded.value,
    )
    error_stage: Mapped[str | None] = mapped_column(String(STAGE_LENGTH))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("width > 0 AND height > 0", name="size_positive"),
        CheckConstraint("page >= 1 AND page <= page_count", name="page_in_range"),
        # (status, created_at) serves the filtered list, newest first; created_at alone serves
        # the unfiltered list and age-based cleanup.
        Index(None, "status", "created_at"),
        Index(None, "created_at"),
    )

    def __repr__(self) -> str:
        return f"Diagram(id={self.id!r}, uid={self.uid!s}, status={self.status!s})"


class StageRun(Base):
    """The single run record of one stage of one diagram; a re-run resets the row."""

    __tablename__ = "stage_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    diagram_id: Mapped[int] = mapped_column(ForeignKey("diagrams.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(STAGE_LENGTH))
    #: Celery task id of the message that queued or runs the stage.
    task_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[StageRunState] = mapped_column(
        _enum_column_type(StageRunState, "state"),
        default=StageRunState.queued,
        server_default=StageRunState.queued.value,
    )
    #: Deliveries that claimed this run since it was last queued.
    attempt: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    queued_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint("diagram_id", "stage"),
        CheckConstraint("attempt >= 0", name="attempt_non_negative"),
        # The reaper looks for runs stuck in `running` since before a cutoff.
        Index(None, "state", "started_at"),
    )

    def __repr__(self) -> str:
        return (
            f"StageRun(diagram_id={self.diagram_id!r}, stage={self.stage!r}, "
            f"state={self.state!s}, attempt={self.attempt!r})"
        )


class Artifact(Base):
    """One stored file of a diagram (original.png, graph.json, ...), by its storage key."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    diagram_id: Mapped[int] = mapped_column(ForeignKey("diagrams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    #: When the current version was written (an upsert that replaces the file renews it).
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        UniqueConstraint("diagram_id", "name"),
        CheckConstraint("size >= 0", name="size_non_negative"),
    )

    def __repr__(self) -> str:
        return f"Artifact(diagram_id={self.diagram_id!r}, name={self.name!r})"
