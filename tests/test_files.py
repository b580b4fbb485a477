"""pid.core.files: atomic replacement and copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from pid.core.files import FILE_MODE, copy_atomically, replace_atomically


def test_a_replaced_file_is_whole_readable_by_others_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "graph.json"
    target.write_text("old")

    replace_atomically(target, lambda tmp: tmp.write_text("new"))

    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["graph.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "graph.json"
    target.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(target, fail)

    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["graph.json"]


def test_a_copy_creates_the_folder_and_matches_the_source(tmp_path: Path) -> None:
    source = tmp_path / "best.pt"
    source.write_bytes(b"\x00weights" * 1000)
    target = tmp_path / "models" / "detector.pt"

    copy_atomically(source, target)

    assert target.read_bytes() == source.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["detector.pt"]
