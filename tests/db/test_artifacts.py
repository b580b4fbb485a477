"""ArtifactRepository against PostgreSQL: upsert, listing and deletion."""

from __future__ import annotations

from pg import MakeDiagram
from sqlalchemy.ext.asyncio import AsyncSession

from pid.db.repositories import ArtifactRepository


async def test_upsert_replaces_the_row_of_the_same_name(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    artifacts = ArtifactRepository(session)
    diagram = await make_diagram(session)
    key = f"diagrams/{diagram.uid}/graph.json"

    first = await artifacts.upsert(diagram.id, "graph.json", key, 100, "a" * 64)
    second = await artifacts.upsert(diagram.id, "graph.json", key + ".v2", 250, "b" * 64)

    assert second.id == first.id
    assert (second.storage_key, second.size, second.sha256) == (key + ".v2", 250, "b" * 64)
    stored = await artifacts.get(diagram.id, "graph.json")
    assert stored is not None
    assert (stored.storage_key, stored.size, stored.sha256) == (key + ".v2", 250, "b" * 64)
    assert len(await artifacts.list(diagram.id)) == 1


async def test_list_get_and_delete_for_diagram(
    session: AsyncSession, make_diagram: MakeDiagram
) -> None:
    artifacts = ArtifactRepository(session)
    diagram = await make_diagram(session)
    other = await make_diagram(session)
    for name in ("skeleton.png", "original.png", "detections.json"):
        await artifacts.upsert(diagram.id, name, f"diagrams/{diagram.uid}/{name}", 1, "c" * 64)
    await artifacts.upsert(other.id, "original.png", f"diagrams/{other.uid}/original.png", 1, "d")

    names = [artifact.name for artifact in await artifacts.list(diagram.id)]
    assert names == ["detections.json", "original.png", "skeleton.png"]
    assert await artifacts.get(diagram.id, "graph.json") is None

    assert await artifacts.delete_for_diagram(diagram.id) == 3
    assert await artifacts.list(diagram.id) == []
    assert await artifacts.get(other.id, "original.png") is not None
