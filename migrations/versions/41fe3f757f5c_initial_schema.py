"""Initial schema: diagrams, stage_runs, artifacts.

Revision ID: 41fe3f757f5c
Revises:
Create Date: 2025-11-21 09:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "41fe3f757f5c"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The allowed values as of this revision. They are spelled out rather than imported from the
# models, so that this revision keeps creating the same schema after the models change; a new
# status or state needs a new revision that replaces the CHECK constraint.
DIAGRAM_STATUSES = (
    "uploaded",
    "detected",
    "in_review",
    "validated",
    "segmented",
    "skeletonized",
    "mask_review",
    "classified",
    "built",
    "graph_review",
    "completed",
    "error",
    "cancelled",
    "deleted",
)
STAGE_RUN_STATES = ("queued", "running", "succeeded", "failed", "skipped")


def _one_of(column: str, values: Sequence[str]) -> str:
    """SQL condition: `column` holds one of `values`."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def _timestamp(name: str, *, default_now: bool) -> sa.Column[datetime]:
    """A timestamptz column, NOT NULL DEFAULT now() when `default_now`, else nullable."""
    if default_now:
        return sa.Column(
            name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        )
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _diagram_fk(table: str) -> sa.ForeignKeyConstraint:
    """`table`.diagram_id references diagrams.id; deleting a diagram deletes the child rows."""
    return sa.ForeignKeyConstraint(
        ["diagram_id"],
        ["diagrams.id"],
        name=op.f(f"fk_{table}_diagram_id_diagrams"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the three tables with their constraints and indexes."""
    op.create_table(
        "diagrams",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.Uuid(), server_default=sa.func.gen_random_uuid(), nullable=False),
        sa.Column("original_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("page_count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("dpi", sa.Float(), nullable=True),
        sa.Column("has_symbols", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="uploaded", nullable=False),
        sa.Column("error_stage", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        _timestamp("created_at", default_now=True),
        _timestamp("updated_at", default_now=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagrams")),
        sa.UniqueConstraint("uid", name=op.f("uq_diagrams_uid")),
        sa.CheckConstraint(_one_of("status", DIAGRAM_STATUSES), name=op.f("ck_diagrams_status")),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_diagrams_size_positive")),
        sa.CheckConstraint(
            "page >= 1 AND page <= page_count", name=op.f("ck_diagrams_page_in_range")
        ),
    )
    op.create_index(op.f("ix_diagrams_status_created_at"), "diagrams", ["status", "created_at"])
    op.create_index(op.f("ix_diagrams_created_at"), "diagrams", ["created_at"])

    op.create_table(
        "stage_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("diagram_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=32), server_default="queued", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("queued_at", default_now=True),
        _timestamp("started_at", default_now=False),
        _timestamp("finished_at", default_now=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("provenance", postgresql.JSONB(), nullable=True),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_runs")),
        _diagram_fk("stage_runs"),
        sa.UniqueConstraint("diagram_id", "stage", name=op.f("uq_stage_runs_diagram_id_stage")),
        sa.CheckConstraint(_one_of("state", STAGE_RUN_STATES), name=op.f("ck_stage_runs_state")),
        sa.CheckConstraint("attempt >= 0", name=op.f("ck_stage_runs_attempt_non_negative")),
    )
    op.create_index(op.f("ix_stage_runs_state_started_at"), "stage_runs", ["state", "started_at"])

    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("diagram_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        _timestamp("created_at", default_now=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        _diagram_fk("artifacts"),
        sa.UniqueConstraint("diagram_id", "name", name=op.f("uq_artifacts_diagram_id_name")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_artifacts_size_non_negative")),
    )


def downgrade() -> None:
    """Drop the tables, children first; their indexes and constraints go with them."""
    op.drop_table("artifacts")
    op.drop_table("stage_runs")
    op.drop_index(op.f("ix_diagrams_created_at"), table_name="diagrams")
    op.drop_index(op.f("ix_diagrams_status_created_at"), table_name="diagrams")
    op.drop_table("diagrams")
