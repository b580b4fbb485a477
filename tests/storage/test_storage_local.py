"""What only the local-folder backend can get wrong: paths, folders, temporary files."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest
from storage_support import Backend

from pid.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    artifact_key,
    diagram_prefix,
)

pytestmark = pytest.mark.timeout(30)

UID = uuid.UUID("0b7f3c1e-5a56-4f0e-9d7e-3f2a7c9b1d20")


def files_under(root: Path) -> list[str]:
    """Every file under `root`, as sorted relative POSIX paths."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_objects_are_files_under_the_root(local_backend: Backend) -> None:
    assert local_backend.root is not None
    key = artifact_key(UID, "pipe_mask.png")

    async def body(storage: Storage) -> None:
        await storage.put_bytes(key, b"mask")

    local_backend.run(body)

    path = local_backend.root / key
    assert path.read_bytes() == b"mask"
    assert files_under(local_backend.root) == [key]
    # Readable by the other service users that share the folder (mkstemp alone gives 0600).
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_symbolic_link_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    (root / "diagrams").symlink_to(outside, target_is_directory=True)
    storage = LocalStorage(root)

    async def body() -> None:
        with pytest.raises(InvalidKey, match="outside"):
            await storage.get_bytes("diagrams/secret.txt")
        with pytest.raises(InvalidKey, match="outside"):
            await storage.put_bytes("diagrams/planted.txt", b"x")
        with pytest.raises(InvalidKey, match="outside"):
            await storage.list("diagrams/")
        with pytest.raises(InvalidKey, match="outside"):
            await storage.delete_prefix("diagrams/")

    Backend("local", lambda: storage).run(lambda _: body())
    assert sorted(path.name for path in outside.iterdir()) == ["secret.txt"]


def test_listing_skips_links_and_files_it_did_not_write(tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = root / "diagrams" / str(UID)
    folder.mkdir(parents=True)
    (folder / "graph.json").write_text("{}")
    (folder / ".DS_Store").write_text("")
    (folder / "link.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{}")

    async def body(storage: Storage) -> list[str]:
        return [info.key for info in await storage.list()]

    assert Backend("local", lambda: LocalStorage(root)).run(body) == [
        artifact_key(UID, "graph.json")
    ]


def test_delete_prefix_removes_empty_folders_and_stale_temporary_files(
    local_backend: Backend,
) -> None:
    assert local_backend.root is not None
    root = local_backend.root
    nested = f"{diagram_prefix(UID)}tiles/tile-1.png"
    other = artifact_key(uuid.UUID(int=7), "original.png")

    async def write(storage: Storage) -> None:
        await storage.put_bytes(artifact_key(UID, "original.png"), b"a")
        await storage.put_bytes(nested, b"b")
        await storage.put_bytes(other, b"c")

    local_backend.run(write)
    # What a process killed mid-write leaves behind.
    (root / diagram_prefix(UID) / ".graph.json.k3j4h5g6.part").write_bytes(b"partial")

    async def delete(storage: Storage) -> int:
        return await storage.delete_prefix(diagram_prefix(UID))

    assert local_backend.run(delete) == 2  # objects only, not the temporary file
    assert not (root / diagram_prefix(UID)).exists()
    assert files_under(root) == [other]


def test_a_write_that_cannot_be_renamed_into_place_leaves_nothing(
    local_backend: Backend,
) -> None:
    # "diagrams/<uid>" is a folder (it holds an object), so no file can replace it: the write
    # fails at the very last step, after all its data was written.
    assert local_backend.root is not None
    inner = artifact_key(UID, "graph.json")
    blocked = diagram_prefix(UID).rstrip("/")

    async def body(storage: Storage) -> None:
        await storage.put_bytes(inner, b"{}")
        with pytest.raises(StorageError, match="cannot write"):
            await storage.put_bytes(blocked, b"data")
        assert not await storage.exists(blocked)
        assert await storage.get_bytes(inner) == b"{}"

    local_backend.run(body)
    assert files_under(local_backend.root) == [inner]


def test_check_names_the_backend_and_the_folder_when_it_cannot_write(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")

    async def body(storage: Storage) -> None:
        await storage.check()

    with pytest.raises(StorageUnavailable) as caught:
        Backend("local", lambda: LocalStorage(not_a_folder)).run(body)
    assert caught.value.backend == "local"
    assert str(caught.value).startswith("local storage unavailable: cannot write to ")
    assert str(not_a_folder) in str(caught.value)


def test_check_creates_a_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"

    async def body(storage: Storage) -> None:
        await storage.check()

    Backend("local", lambda: LocalStorage(root)).run(body)
    assert root.is_dir()
    assert list(root.iterdir()) == []  # the probe file is gone


def test_a_folder_is_not_an_object(local_backend: Backend) -> None:
    async def body(storage: Storage) -> None:
        await storage.put_bytes(artifact_key(UID, "graph.json"), b"{}")
        folder_key = diagram_prefix(UID).rstrip("/")
        assert not await storage.exists(folder_key)
        with pytest.raises(ObjectNotFound):
            await storage.size(folder_key)
        with pytest.raises(ObjectNotFound):
            await storage.get_bytes(folder_key)
        await storage.delete(folder_key)
        assert await storage.exists(artifact_key(UID, "graph.json"))

    local_backend.run(body)
