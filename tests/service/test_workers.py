"""The distributed runner end to end: real worker processes for every pool on real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fleet_support import Fleet, call, enqueue, upload, wait_idle

from pid.core.errors import ConflictError
from pid.core.statuses import DiagramStatus, StageRunState
from pid.pipeline.local import InputLimits, prepare_folders, run_folder
from pid.pipeline.ports import Message
from pid.pipeline.service import DiagramService
from pid.pipeline.stages import CHAIN, StageConfig, chain
from pid.storage import artifact_key
from pid.synth.sheet import generate_sheet, write_sheet


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generated = generate_sheet(231, 0, width=1200, height=850)
    generated.name = "sheet"
    return write_sheet(generated, tmp_path_factory.mktemp("truth"))


def test_an_upload_with_symbols_completes_with_every_artifact(
    fleet: Fleet, sheet: Path, tmp_path: Path
) -> None:
    uid = upload(fleet, sheet)
    task_ids = call(fleet, lambda s: s.run(uid, None, None))
    detail = wait_idle(fleet, uid)
    assert detail.diagram.status == DiagramStatus.completed, detail.diagram.error_message
    runs = {run.stage: run for run in detail.runs}
    assert list(runs) == list(CHAIN)
    # Stage runs hold the real Celery task ids, the ones the chain was sent with.
    assert [runs[name].task_id for name in CHAIN] == task_ids
    states = {name: run.state for name, run in runs.items()}
    assert states["detect"] == states["cvat_upload"] == StageRunState.skipped
    assert all(states[name] == StageRunState.succeeded for name in CHAIN[3:])
    assert all(run.provenance and "method" in run.provenance for run in detail.runs)
    names = {a.name for a in detail.artifacts}
    expected = {n for stage in chain() for n in stage.outputs} | {"original.png", "symbols.json"}
    assert expected <= names
    for artifact in detail.artifacts:
        stored = fleet.data_dir / artifact_key(uid, artifact.name)
        assert stored.stat().st_size == artifact.size > 0
    # graph.json equals what `pid run` gives on the same inputs.
    folder = prepare_folders(
        sheet / "original.png", tmp_path / "local", sheet / "symbols.coco.json", InputLimits()
    )[0]
    run_folder(folder, chain(), StageConfig())
    served = json.loads((fleet.data_dir / artifact_key(uid, "graph.json")).read_text())
    assert served == json.loads((folder / "graph.json").read_text())


def test_a_failed_stage_leaves_error_and_a_resume_completes(fleet: Fleet, sheet: Path) -> None:
    uid = upload(fleet, sheet)
    call(fleet, lambda s: s.run(uid, None, "segment"))
    assert wait_idle(fleet, uid).diagram.status == DiagramStatus.segmented
    mask_path = fleet.data_dir / artifact_key(uid, "pipe_mask.png")
    good = mask_path.read_bytes()
    _, wrong = cv2.imencode(".png", np.zeros((50, 60), np.uint8))
    mask_path.write_bytes(wrong.tobytes())
    call(fleet, lambda s: s.run(uid, None, None))
    failed = wait_idle(fleet, uid)
    assert failed.diagram.status == DiagramStatus.error
    assert failed.diagram.error_stage == "skeletonize"
    assert "pipe_mask.png" in (failed.diagram.error_message or "")
    mask_path.write_bytes(good)
    call(fleet, lambda s: s.run(uid, None, None))  # resumes at the failed stage
    done = wait_idle(fleet, uid)
    assert done.diagram.status == DiagramStatus.completed
    runs = {run.stage: run for run in done.runs}
    assert runs["skeletonize"].state == StageRunState.succeeded


def test_two_runs_at_once_are_refused(fleet: Fleet, sheet: Path) -> None:
    uid = upload(fleet, sheet)

    async def twice(service: DiagramService) -> None:
        await service.run(uid, None, None)
        with pytest.raises(ConflictError):
            await service.run(uid, None, None)

    call(fleet, twice)
    assert wait_idle(fleet, uid).diagram.status == DiagramStatus.completed


def test_a_redelivered_message_for_a_finished_stage_does_not_redo_it(
    fleet: Fleet, sheet: Path
) -> None:
    uid = upload(fleet, sheet, auto_run=True)
    before = {run.stage: run for run in wait_idle(fleet, uid).runs}
    assert before["export"].state == StageRunState.succeeded
    messages = [
        Message(name, "cpu", str(before[name].task_id), str(uid))
        for name in ("build_graph", "export")
    ]
    enqueue(messages)
    # The result backend keeps a task id's first success, so the worker's log is where the
    # second delivery shows.
    log = fleet.log_dir / "cpu.log"
    expected = [f"task {m.task_id}: already done" for m in messages]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(e in log.read_text() for e in expected):
        time.sleep(0.5)
    assert all(e in log.read_text() for e in expected)
    after = {run.stage: run for run in call(fleet, lambda s: s.detail(uid)).runs}
    for name in ("build_graph", "export"):
        assert after[name].finished_at == before[name].finished_at
        assert after[name].attempt == before[name].attempt
