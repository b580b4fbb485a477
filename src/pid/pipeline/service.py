"""The service's orchestration: uploads, runs, cancels and a person's corrections.

The API calls this and nothing else; the Celery tasks (pid.tasks) are the other half of the
distributed runner. A submission is recorded in the database first (stage runs `queued`, with
their task ids) and the chain of immutable signatures is sent only after that commit, so a
worker never meets a message whose run is not in the database yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import tempfile
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from pid.core.artifacts import NODE_MASK, ORIGINAL, PIPE_MASK, SYMBOLS, VALIDATED_GRAPH
from pid.core.errors import ConflictError, NotFoundError, PayloadTooLargeError, PidInputError
from pid.core.formats.boxes import coco_from_boxes
from pid.core.formats.graph import load_graph, validate_graph
from pid.core.statuses import DiagramStatus, StageRunState
from pid.db.models import Artifact, Diagram, StageRun
from pid.db.repositories import ArtifactRepository, DiagramRepository, StageRunRepository
from pid.pipeline.ports import Enqueue, Message, QueueUnavailableError, Revoke
from pid.pipeline.stages import STAGES, Stage, chain, check_chain
from pid.pipeline.status import resume_stage, stage_after_review, status_before, until_gate
from pid.settings import Settings
from pid.storage import Storage, artifact_key
from pid.vision.inputs import Page, load_page_bytes, load_symbols, save_original

#: The error a diagram is left in when its chain could not be sent.
BROKER_UNAVAILABLE = "the task broker was unavailable"

log = logging.getLogger(__name__)


class BrokerUnavailableError(QueueUnavailableError):
    """A chain could not be sent; its runs were failed and its diagram left in error."""


@dataclass(frozen=True, slots=True)
class DiagramDetail:
    diagram: Diagram
    runs: Sequence[StageRun]
    artifacts: Sequence[Artifact]


class DiagramService:
    def __init__(
        self,
        session: AsyncSession,
        storage: Storage,
        settings: Settings,
        enqueue: Enqueue,
        revoke: Revoke,
    ) -> None:
        self.session = session
        self.storage = storage
        self.settings = settings
        self.enqueue = enqueue
        self.revoke = revoke
        self.diagrams = DiagramRepository(session)
        self.runs = StageRunRepository(session)
        self.artifacts = ArtifactRepository(session)

    # ---- reading ---------------------------------------------------------------------------

    async def list_diagrams(
        self, status: DiagramStatus | None, limit: int, offset: int
    ) -> tuple[Sequence[Diagram], int]:
        # Deleted diagrams wait for the purge; they are no longer the user's.
        shown = (
            status
            if status is not None
            else [s for s in DiagramStatus if s != DiagramStatus.deleted]
        )
        return await self.diagrams.list(status=shown, limit=limit, offset=offset)

    async def detail(self, uid: uuid.UUID) -> DiagramDetail:
        await self._one_snapshot()
        diagram = await self._get(uid)
        runs = await self.runs.for_diagram(diagram.id, order=list(STAGES))
        return DiagramDetail(diagram, runs, await self.artifacts.list(diagram.id))

    async def artifact(
        self, uid: uuid.UUID, name: str
    ) -> tuple[Artifact, AsyncGenerator[bytes, None]]:
        diagram = await self._get(uid)
        found = await self.artifacts.get(diagram.id, name)
        if found is None:
            raise NotFoundError(f"diagram {uid} has no artifact {name!r}")
        return found, self.storage.stream(found.storage_key)

    async def _one_snapshot(self) -> None:
        """Make the reads that follow see one moment of the database.

        Under PostgreSQL's default READ COMMITTED each statement sees its own moment, so a
        stage committing between two reads could show every run finished while the diagram
        still has the status before the last one.
        """
        if not self.session.in_transaction():
            await self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    async def _get(self, uid: uuid.UUID) -> Diagram:
        diagram = await self.diagrams.get_by_uid(uid)
        if diagram is None or diagram.status == DiagramStatus.deleted:
            raise NotFoundError(f"no diagram {uid}")
        return diagram

    # ---- uploads ---------------------------------------------------------------------------

    async def upload(
        self, data: bytes, filename: str, symbols: bytes | None, auto_run: bool
    ) -> list[Diagram]:
        """One diagram per page, original.png (and symbols.json) stored, rows committed."""
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLargeError(
                f"{filename}: {len(data)} bytes, more than the limit of "
                f"{self.settings.max_upload_bytes}"
            )
        # Decoding a large drawing takes seconds: off the event loop.
        pages = await asyncio.to_thread(
            load_page_bytes,
            data,
            filename,
            pdf_dpi=self.settings.pdf_dpi,
            max_pixels=self.settings.max_pixels,
            max_pages=self.settings.max_pages,
        )
        given = self._symbols(symbols, pages) if symbols is not None else None
        digest = hashlib.sha256(data).hexdigest()
        created = []
        for page in pages:
            created.append(await self._store_page(page, len(pages), filename, digest, given))
        await self.session.commit()
        if auto_run:
            for diagram in created:
                with contextlib.suppress(BrokerUnavailableError):
                    # The drawing is stored all the same: the diagram is answered in error
                    # ("the task broker was unavailable") and POST /run starts it later. A
                    # failed upload would have the client send it again, as a duplicate.
                    await self.run(diagram.uid, None, None)
        return created

    def _symbols(self, data: bytes, pages: list[Page]) -> dict[str, Any]:
        if len(pages) > 1:
            raise PidInputError(
                f"symbols can only be given for a one-page drawing (this one has {len(pages)})"
            )
        height, width = pages[0].image.shape
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "symbols.json"
            path.write_bytes(data)
            try:
                boxes = load_symbols(path, (width, height))
            except PidInputError as exc:
                raise PidInputError(str(exc).replace(str(path), "symbols")) from None
        return coco_from_boxes(boxes, width, height)

    async def _store_page(
        self,
        page: Page,
        page_count: int,
        filename: str,
        digest: str,
        symbols: dict[str, Any] | None,
    ) -> Diagram:
        height, width = page.image.shape
        diagram = await self.diagrams.create(
            original_name=filename,
            sha256=digest,
            width=int(width),
            height=int(height),
            page=page.index + 1,
            page_count=page_count,
            dpi=page.dpi,
            has_symbols=symbols is not None,
        )
        with tempfile.TemporaryDirectory() as tmp:
            original = Path(tmp) / ORIGINAL
            await asyncio.to_thread(save_original, page, original)
            await self._put(diagram, ORIGINAL, original.read_bytes())
        if symbols is not None:
            await self._put(diagram, SYMBOLS, json.dumps(symbols).encode())
        return diagram

    async def _put(self, diagram: Diagram, name: str, data: bytes) -> None:
        stored = await self.storage.put_bytes(artifact_key(diagram.uid, name), data)
        await self.artifacts.upsert(diagram.id, name, stored.key, stored.size, stored.sha256)

    # ---- runs ------------------------------------------------------------------------------

    async def run(self, uid: uuid.UUID, from_stage: str | None, to_stage: str | None) -> list[str]:
        """Queue the stages from `from_stage` (default: where the diagram stopped) and send them.

        Raises ConflictError while a run of this diagram is queued or running.
        """
        diagram = await self._lock_idle(uid)
        start = from_stage or await self._resume_point(diagram)
        stages = self._stages(start, to_stage)
        await self._check_inputs(diagram, stages)
        messages = [Message(s.name, s.queue, str(uuid.uuid4()), str(uid)) for s in stages]
        await self.runs.queue(
            diagram.id, [m.stage for m in messages], {m.stage: m.task_id for m in messages}
        )
        await self.diagrams.set_status(uid, status_before(stages[0]))
        await self.session.commit()
        try:
            await asyncio.to_thread(self.enqueue, messages)
        except Exception as exc:
            # Nothing reached the broker: the runs must not stay queued, or every later run
            # would be refused as a conflict.
            await self.runs.fail_queued(diagram.id, f"could not be queued: {exc}")
            await self.diagrams.set_status(
                uid, DiagramStatus.error, stages[0].name, BROKER_UNAVAILABLE
            )
            await self.session.commit()
            raise BrokerUnavailableError(f"{BROKER_UNAVAILABLE}: {exc}") from exc
        return [m.task_id for m in messages]

    async def _resume_point(self, diagram: Diagram) -> str:
        """The failed stage of a diagram in error, else the first stage not yet succeeded."""
        done = {
            run.stage
            for run in await self.runs.for_diagram(diagram.id)
            if run.state in (StageRunState.succeeded, StageRunState.skipped)
        }
        return resume_stage(diagram.status, diagram.error_stage, done)

    def _stages(self, start: str, to_stage: str | None) -> list[Stage]:
        """The stages a run from `start` queues: up to `to_stage`, or to the first gate on."""
        return until_gate(chain(start, to_stage), self.settings)

    async def _check_inputs(
        self, diagram: Diagram, stages: list[Stage], supplied: frozenset[str] = frozenset()
    ) -> None:
        """Every stage's inputs are stored, `supplied` now, or made by a stage before it."""
        stored = {a.name for a in await self.artifacts.list(diagram.id)}
        check_chain(stages, stored | supplied)

    async def cancel(self, uid: uuid.UUID) -> Diagram:
        """Revoke what is queued and mark the diagram cancelled."""
        return await self._stop(uid, DiagramStatus.cancelled)

    async def delete(self, uid: uuid.UUID) -> Diagram:
        """Revoke what is queued and mark the diagram deleted (the purge removes it)."""
        return await self._stop(uid, DiagramStatus.deleted)

    async def _stop(self, uid: uuid.UUID, status: DiagramStatus) -> Diagram:
        diagram = await self.diagrams.get_for_update(uid)
        if diagram is None or diagram.status == DiagramStatus.deleted:
            raise NotFoundError(f"no diagram {uid}")
        active = await self.runs.active(diagram.id)
        await self.runs.fail_queued(diagram.id, status.value)
        updated = await self.diagrams.set_status(uid, status)
        await self.session.commit()
        try:
            await asyncio.to_thread(self.revoke, [run.task_id for run in active if run.task_id])
        except QueueUnavailableError as exc:
            # Already recorded: its queued runs are failed, and a worker that gets one of their
            # messages finds the diagram stopped and runs nothing. Revoking only saves it that.
            log.warning("diagram %s %s; its queued messages were not revoked: %s", uid, status, exc)
        assert updated is not None
        return updated

    # ---- a person's corrections --------------------------------------------------------------

    async def put_pipe_mask(self, uid: uuid.UUID, data: bytes) -> list[str]:
        """A corrected pipe mask (PNG of the drawing's size); continues with skeletonize_simple."""
        diagram = await self._get(uid)
        if not await self.artifacts.get(diagram.id, NODE_MASK):
            raise PidInputError("this diagram has no node mask yet: run segment first")
        image = await asyncio.to_thread(_decode_mask, data, diagram.width, diagram.height)
        if image is None:
            raise PidInputError("pipe mask: not a readable PNG image")
        if image.shape != (diagram.height, diagram.width):
            raise PidInputError(
                f"pipe mask: size {image.shape[1]}x{image.shape[0]} does not match the "
                f"drawing's {diagram.width}x{diagram.height}"
            )
        _, png = cv2.imencode(".png", (image > 127).astype(np.uint8) * 255)
        return await self._correct(uid, PIPE_MASK, png.tobytes(), "skeletonize_simple")

    async def put_graph(self, uid: uuid.UUID, data: bytes) -> list[str]:
        """A corrected graph (graph.json's schema); continues with export."""
        await self._get(uid)  # an unknown diagram is a 404 before the body is looked at
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "graph.json"
            path.write_bytes(data)
            try:
                validate_graph(load_graph(path), source="graph")
            except PidInputError as exc:
                raise PidInputError(str(exc).replace(str(path), "graph")) from None
        return await self._correct(uid, VALIDATED_GRAPH, data, "export")

    async def accept_review(self, uid: uuid.UUID) -> list[str]:
        """Continue past the review gate the diagram waits at, unchanged."""
        diagram = await self._get(uid)
        try:
            next_stage = stage_after_review(diagram.status)
        except ConflictError as exc:
            raise ConflictError(f"diagram {uid} is {exc}") from None
        return await self.run(uid, next_stage, None)

    async def _correct(self, uid: uuid.UUID, name: str, data: bytes, start: str) -> list[str]:
        """Store the corrected artifact `name` and run from `start`.

        Checked, stored and queued in one transaction under the row lock: no run starts in
        between, and a refused correction has written nothing.
        """
        diagram = await self._lock_idle(uid)
        await self._check_inputs(diagram, self._stages(start, None), frozenset([name]))
        await self._put(diagram, name, data)
        return await self.run(uid, start, None)

    async def _lock_idle(self, uid: uuid.UUID) -> Diagram:
        """The diagram, row-locked until this transaction ends, with nothing queued or running:
        one run at a time, and no correction replaces an input under a running stage."""
        diagram = await self.diagrams.get_for_update(uid)
        if diagram is None or diagram.status == DiagramStatus.deleted:
            raise NotFoundError(f"no diagram {uid}")
        active = await self.runs.active(diagram.id)
        if active:
            # Names first: the rollback expires the loaded rows.
            names = ", ".join(run.stage for run in active)
            await self.session.rollback()
            raise ConflictError(f"diagram {uid} is already running ({names})")
        return diagram


def _decode_mask(data: bytes, width: int, height: int) -> np.ndarray | None:
    """The mask as gray pixels; its size is read from the PNG header before decoding."""
    if len(data) < 24 or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    header_width = int.from_bytes(data[16:20], "big")
    header_height = int.from_bytes(data[20:24], "big")
    if (header_width, header_height) != (width, height):
        raise PidInputError(
            f"pipe mask: size {header_width}x{header_height} does not match the drawing's "
            f"{width}x{height}"
        )
    decoded: np.ndarray | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return decoded
