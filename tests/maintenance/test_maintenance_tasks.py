"""Purge, retention, scratch cleanup, stale reviews and the lock every maintenance task takes."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from maintenance_support import Site
from sqlalchemy import text

from pid.core.statuses import DiagramStatus
from pid.db.repositories import ArtifactRepository, DiagramRepository
from pid.storage import artifact_key
from pid.tasks.maintenance import reviews
from pid.tasks.maintenance.locked import lock_name
from pid.tasks.maintenance.purge import purge_deleted
from pid.tasks.maintenance.retention import expire_intermediates
from pid.tasks.maintenance.reviews import report_stale_reviews
from pid.tasks.maintenance.scratch import remove_old_scratch


def _diagram(site: Site, status: DiagramStatus, artifacts: dict[str, bytes]) -> uuid.UUID:
    """A diagram in `status` with each artifact stored and recorded."""

    async def create() -> uuid.UUID:
        async with site.runtime.sessions() as session:
            diagrams = DiagramRepository(session)
            diagram = await diagrams.create(
                original_name="sheet.png", sha256="0" * 64, width=10, height=10
            )
            for name, data in artifacts.items():
                stored = await site.runtime.storage.put_bytes(artifact_key(diagram.uid, name), data)
                await ArtifactRepository(session).upsert(
                    diagram.id, name, stored.key, stored.size, stored.sha256
                )
            await diagrams.set_status(diagram.uid, status)
            await session.commit()
            return diagram.uid

    return site.runtime.run(create)


def _sql(site: Site, statement: str, **params: object) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        async with site.runtime.sessions() as session:
            result = await session.execute(text(statement), params)
            rows = [tuple(row) for row in result.all()] if result.returns_rows else []
            await session.commit()
            return rows

    return site.runtime.run(run)


def _stored(site: Site, uid: uuid.UUID) -> set[str]:
    return {
        path.name for path in (site.data_dir / "diagrams" / str(uid)).rglob("*") if path.is_file()
    }


def _recorded(site: Site, uid: uuid.UUID) -> set[str]:
    rows = _sql(
        site,
        "SELECT a.name FROM artifacts a JOIN diagrams d ON d.id = a.diagram_id WHERE d.uid = :uid",
        uid=uid,
    )
    return {str(name) for (name,) in rows}


@pytest.fixture(autouse=True)
def _empty(site: Site) -> Iterator[None]:
    yield
    _sql(site, "TRUNCATE diagrams, stage_runs, artifacts CASCADE")


def test_purge_removes_deleted_diagrams_objects_then_rows_and_repeats_as_a_no_op(
    site: Site,
) -> None:
    gone = _diagram(site, DiagramStatus.deleted, {"original.png": b"a", "graph.json": b"{}"})
    kept = _diagram(site, DiagramStatus.completed, {"original.png": b"b"})

    assert purge_deleted() == {"diagrams": 1, "objects": 2}

    assert _stored(site, gone) == set() and _recorded(site, gone) == set()
    assert _sql(site, "SELECT count(*) FROM diagrams WHERE uid = :uid", uid=gone) == [(0,)]
    assert _stored(site, kept) == {"original.png"}
    assert purge_deleted() == {"diagrams": 0, "objects": 0}


def test_retention_removes_old_intermediates_of_resting_diagrams_only(site: Site) -> None:
    files = {
        "original.png": b"o",
        "symbols.json": b"[]",
        "pipe_mask.png": b"mask!",
        "skeleton.png": b"sk",
        "graph.json": b"{}",
        "output.fxml": b"<f/>",
        "overlay.png": b"ov",
    }
    old_done = _diagram(site, DiagramStatus.completed, files)
    old_review = _diagram(site, DiagramStatus.mask_review, files)
    new_done = _diagram(site, DiagramStatus.completed, files)
    _sql(
        site,
        "UPDATE artifacts SET created_at = now() - interval '2 days' WHERE diagram_id IN "
        "(SELECT id FROM diagrams WHERE uid IN (:a, :b))",
        a=old_done,
        b=old_review,
    )

    assert expire_intermediates() == {"artifacts": 2, "bytes": len(b"mask!") + len(b"sk")}

    outputs = set(files) - {"pipe_mask.png", "skeleton.png"}
    assert _stored(site, old_done) == outputs and _recorded(site, old_done) == outputs
    assert _stored(site, old_review) == set(files)  # a person may still need its mask
    assert _stored(site, new_done) == set(files)
    assert expire_intermediates() == {"artifacts": 0, "bytes": 0}


def test_scratch_cleanup_removes_only_folders_untouched_for_the_age_limit(site: Site) -> None:
    day_ago = time.time() - 25 * 3600
    stale = site.tmp_dir / "stage-stale"
    busy = site.tmp_dir / "stage-busy"
    fresh = site.tmp_dir / "stage-fresh"
    for folder in (stale, busy, fresh):
        folder.mkdir(parents=True)
        (folder / "pipe_mask.png").write_bytes(b"x")
    for path in (stale / "pipe_mask.png", stale, busy):
        os.utime(path, (day_ago, day_ago))  # busy still has a file written just now

    assert remove_old_scratch() == {"entries": 1}

    assert sorted(p.name for p in site.tmp_dir.iterdir()) == ["stage-busy", "stage-fresh"]


def test_stale_reviews_are_reported_and_left_as_they_are(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    waiting = _diagram(site, DiagramStatus.graph_review, {})
    recent = _diagram(site, DiagramStatus.mask_review, {})
    _diagram(site, DiagramStatus.completed, {})
    _sql(
        site,
        "UPDATE diagrams SET updated_at = now() - interval '3 hours' WHERE uid <> :recent",
        recent=recent,
    )

    with caplog.at_level(logging.INFO, logger="pid.maintenance"):
        assert report_stale_reviews() == {"stale_reviews": 1}

    assert any(
        str(waiting) in r.getMessage() and "graph_review" in r.getMessage() for r in caplog.records
    )
    assert not any(str(recent) in r.getMessage() for r in caplog.records)
    assert _sql(site, "SELECT status FROM diagrams WHERE uid = :uid", uid=waiting) == [
        ("graph_review",)
    ]


def test_a_run_that_finds_the_lock_taken_skips_and_changes_nothing(site: Site) -> None:
    gone = _diagram(site, DiagramStatus.deleted, {"original.png": b"a"})
    held = site.redis.lock(lock_name("purge_deleted"), timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert purge_deleted() == {"skipped": 1}
        assert _stored(site, gone) == {"original.png"}
    finally:
        held.release()

    assert purge_deleted() == {"diagrams": 1, "objects": 1}
    assert site.redis.exists(lock_name("purge_deleted")) == 0  # released after the run


def test_each_run_holds_its_lock_with_a_ttl(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    ttls: list[int] = []

    async def report_while_watching_the_lock(runtime: object) -> dict[str, int]:
        ttls.append(int(site.redis.pttl(lock_name("report_stale_reviews"))))
        return {"stale_reviews": 0}

    monkeypatch.setattr(reviews, "_report", report_while_watching_the_lock)

    assert report_stale_reviews() == {"stale_reviews": 0}
    assert len(ttls) == 1 and 0 < ttls[0] <= site.runtime.settings.maintenance_lock_ttl * 1000
