"""The statuses of a diagram and the states of a stage run (the contract the API, the database
and every worker share). Which status follows which is pid.pipeline.status's to decide."""

from __future__ import annotations

import enum


class DiagramStatus(enum.StrEnum):
    """Where a diagram stands: one value per finished stage, per review gate, and the ends."""

    uploaded = "uploaded"
    detected = "detected"
    in_review = "in_review"
    validated = "validated"
    segmented = "segmented"
    skeletonized = "skeletonized"
    mask_review = "mask_review"
    classified = "classified"
    built = "built"
    graph_review = "graph_review"
    completed = "completed"
    error = "error"
    cancelled = "cancelled"
    deleted = "deleted"


#: Statuses in which a diagram's stages may still move it on (not an end of its life).
MOVABLE_STATUSES = tuple(
    s
    for s in DiagramStatus
    if s not in (DiagramStatus.cancelled, DiagramStatus.deleted, DiagramStatus.error)
)

#: Statuses in which a diagram waits for a person.
REVIEW_STATUSES = (DiagramStatus.in_review, DiagramStatus.mask_review, DiagramStatus.graph_review)
#: Statuses in which nothing more happens to a diagram unless someone runs it again.
RESTING_STATUSES = (DiagramStatus.completed, DiagramStatus.error, DiagramStatus.cancelled)


class StageRunState(enum.StrEnum):
    """The state of one stage of one diagram."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
