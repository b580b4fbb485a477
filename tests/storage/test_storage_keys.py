"""Artifact keys come from code, never from users; the validators are the second line."""

from __future__ import annotations

import uuid

import pytest

from pid.storage import InvalidKey, artifact_key, diagram_prefix, validate_key, validate_prefix

UID = uuid.UUID("c0ffee00-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    "name",
    [
        "original.png",
        "output.dexpi.xml",
        "yolo_predicted.txt",
        "validated_detections.json",
        "pipe-mask-2.png",
        "graph.graphml",
        "0.json",
    ],
)
def test_artifact_key_places_the_name_under_the_diagram(name: str) -> None:
    key = artifact_key(UID, name)
    assert key == f"diagrams/{UID}/{name}"
    assert key.startswith(diagram_prefix(UID))
    assert validate_key(key) == key


def test_diagram_prefix_is_the_canonical_uid_folder() -> None:
    assert diagram_prefix(UID) == "diagrams/c0ffee00-0000-4000-8000-000000000001/"
    assert diagram_prefix(uuid.UUID("C0FFEE00000040008000000000000001")) == diagram_prefix(UID)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "original",  # no extension
        "../x",
        "../x.png",
        "a/b.png",
        "X.PNG",
        "Original.png",
        "original.PNG",
        ".png",
        "a..png",
        "a.png.",
        "original.png\n",
        "a b.png",
        "-a.png",
        "_a.png",
        "a\\b.png",
        "a.p-g",
        "é.png",
        "a" * 125 + ".png",  # 129 characters
    ],
)
def test_artifact_key_refuses_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="artifact name"):
        artifact_key(UID, name)
    with pytest.raises(InvalidKey):
        artifact_key(UID, name)


def test_artifact_key_takes_a_uuid_only() -> None:
    with pytest.raises(TypeError, match="uuid"):
        artifact_key(str(UID), "original.png")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="uuid"):
        diagram_prefix("../..")  # type: ignore[arg-type]


def test_the_longest_name_is_accepted() -> None:
    name = "a" * 124 + ".png"
    assert artifact_key(UID, name).endswith(name)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("a/../b", "'.'"),
        ("..", "'.'"),
        ("a/.", "'.'"),
        (".a", "'.'"),
        ("a\\..\\b", "backslash"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\x00b", "control"),
        ("a\rb", "control"),
        ("k" * 1025, "longer than"),
    ],
)
def test_validate_key_refuses_with_a_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason):
        validate_key(key)


@pytest.mark.parametrize("key", ["a", "a/b", "diagrams/x/y/z.png", "a..b/c", "ä/ö.png"])
def test_validate_key_accepts_ordinary_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("prefix", ["", "diagrams/", "diagrams/c0f", "a/b/"])
def test_validate_prefix_accepts_listing_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "../", "a//", "a/../b/", ".", "a\\"])
def test_validate_prefix_refuses_escaping_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidKey):
        validate_prefix(prefix)
