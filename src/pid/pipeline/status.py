"""The status machine of a diagram: which status a stage leaves it in, which status it has
while a stage is next, where a run resumes, and which stage follows a review gate.

The statuses themselves are pid.core.statuses; each stage's own status is its row's
`status_after` in the stage table. Everything that moves a diagram's status asks this module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pid.core.errors import ConflictError
from pid.core.statuses import DiagramStatus
from pid.pipeline.stages import CHAIN, STAGES, Stage, chain_order
from pid.settings import Settings

#: The status of each review gate, and the stage a person's go-ahead continues with: the one
#: after the gated stage in the chain.
GATE_NEXT: Mapping[DiagramStatus, str] = {
    stage.gate.status: CHAIN[CHAIN.index(name) + 1]
    for name, stage in STAGES.items()
    if stage.gate is not None and name in CHAIN[:-1]
}


def gate_is_on(stage: Stage, settings: Settings) -> bool:
    """Whether a review gate follows `stage` under `settings`."""
    return stage.gate is not None and bool(getattr(settings, stage.gate.setting))


def until_gate(stages: list[Stage], settings: Settings) -> list[Stage]:
    """The stages up to and including the first one whose review gate is on."""
    for index, stage in enumerate(stages):
        if gate_is_on(stage, settings):
            return stages[: index + 1]
    return stages


def status_after(stage: Stage, settings: Settings) -> tuple[DiagramStatus, bool]:
    """The diagram's status once `stage` has ended well, and whether the chain goes on."""
    if gate_is_on(stage, settings):
        assert stage.gate is not None
        return stage.gate.status, False
    return stage.status_after, True


def status_before(stage: Stage) -> DiagramStatus:
    """The status a diagram has when `stage` is the next to run."""
    order = chain_order(stage.name)
    position = order.index(stage.name)
    return STAGES[order[position - 1]].status_after if position else DiagramStatus.uploaded


def resume_stage(status: DiagramStatus, error_stage: str | None, done: Collection[str]) -> str:
    """Where a run without a given start begins: the failed stage of a diagram in error, the
    stage after the review gate it waits at, else the first stage not yet done."""
    if status == DiagramStatus.error and error_stage:
        return error_stage
    if status in GATE_NEXT:
        return GATE_NEXT[status]
    return next((name for name in CHAIN if name not in done), CHAIN[0])


def stage_after_review(status: DiagramStatus) -> str:
    """The stage that continues a diagram waiting at a review gate; refused elsewhere."""
    if status not in GATE_NEXT:
        raise ConflictError(f"not waiting for a review ({status})")
    return GATE_NEXT[status]


__all__ = [
    "GATE_NEXT",
    "gate_is_on",
    "resume_stage",
    "stage_after_review",
    "status_after",
    "status_before",
    "until_gate",
]
