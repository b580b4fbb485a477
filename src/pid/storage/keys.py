"""Storage keys: how artifact keys are made and which keys the backends accept.

Keys are never built from user input: a diagram's artifacts live under `diagrams/{uid}/` and
their names come from code (`original.png`, `graph.json`, ...). The checks here are a second
line of defence that makes both backends refuse the same keys, so a key that works on the local
folder also works on S3 and none can leave its namespace.
"""

from __future__ import annotations

import re
import uuid

from pid.storage.base import InvalidKey

DIAGRAMS = "diagrams"

# A stem of lowercase letters, digits, "_" and "-", then one or more ".ext" parts.
_ARTIFACT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9]+)+")
_MAX_NAME_LENGTH = 128
# S3's limit on a key, in UTF-8 bytes.
_MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def diagram_prefix(uid: uuid.UUID) -> str:
    """The prefix, ending in "/", under which every artifact of diagram `uid` is stored."""
    if not isinstance(uid, uuid.UUID):
        raise TypeError(f"diagram uid must be a uuid.UUID, not {type(uid).__name__}")
    return f"{DIAGRAMS}/{uid}/"


def artifact_key(uid: uuid.UUID, name: str) -> str:
    """The key of artifact `name` (such as "skeleton.png") of diagram `uid`.

    Raises `ValueError` (`InvalidKey`) unless `name` is a stem of lowercase letters, digits,
    "_" and "-" followed by one or more ".ext" parts, at most 128 characters.
    """
    if not (
        isinstance(name, str) and len(name) <= _MAX_NAME_LENGTH and _ARTIFACT_NAME.fullmatch(name)
    ):
        raise InvalidKey(
            f"artifact name {name!r} is not lowercase letters, digits, '_' or '-' "
            "followed by one or more '.ext' parts"
        )
    return diagram_prefix(uid) + name


def validate_key(key: str) -> str:
    """Return `key` if both backends can store it safely, else raise `InvalidKey`.

    Refused: an empty key, a leading "/", a backslash, control characters, empty segments
    ("a//b", a trailing "/"), and any segment that starts with "." (this covers "." and "..",
    and keeps the local backend's temporary files out of the key space).
    """
    _check_text(key, "key")
    if not key:
        raise InvalidKey("empty storage key")
    _check_segments(key, key.split("/"), "key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it is a valid listing prefix, else raise `InvalidKey`.

    The empty prefix (everything) and a trailing "/" are allowed; otherwise the rules of
    `validate_key` apply. The last segment may be partial: prefixes are plain string prefixes.
    """
    _check_text(prefix, "prefix")
    if not prefix:
        return prefix
    segments = prefix.split("/")
    if segments[-1] == "":
        segments = segments[:-1]
    _check_segments(prefix, segments, "prefix")
    return prefix


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidKey(f"storage {what} must be a str, not {type(value).__name__}")
    if len(value.encode("utf-8")) > _MAX_KEY_BYTES:
        raise InvalidKey(f"storage {what} longer than {_MAX_KEY_BYTES} bytes")
    if "\\" in value:
        raise InvalidKey(f"storage {what} {value!r} contains a backslash")
    if _CONTROL.search(value):
        raise InvalidKey(f"storage {what} {value!r} contains a control character")
    if value.startswith("/"):
        raise InvalidKey(f"storage {what} {value!r} is absolute")


def _check_segments(value: str, segments: list[str], what: str) -> None:
    for segment in segments:
        if not segment:
            raise InvalidKey(f"storage {what} {value!r} has an empty segment")
        if segment.startswith("."):
            raise InvalidKey(f"storage {what} {value!r} has a segment starting with '.'")
