"""JSON artifacts: one reader that names the file on any failure, one layout for every writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pid.core.files import replace_atomically
from pid.core.formats._checks import fail


def json_text(data: Any) -> str:
    """The text every JSON artifact is written as: one-space indent, a final newline."""
    return json.dumps(data, indent=1) + "\n"


def read_json(path: Path) -> Any:
    """Return the parsed JSON of `path`, or raise `PidInputError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(path, "", "file not found")
    except (OSError, UnicodeDecodeError) as exc:
        fail(path, "", f"cannot read: {exc}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(path, "", f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}")


def write_json(path: Path, data: Any) -> None:
    """Write `data` as `json_text`, replacing `path` atomically."""
    text = json_text(data)
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def write_text(path: Path, text: str) -> None:
    """Write `text`, replacing `path` atomically."""
    replace_atomically(path, lambda tmp: tmp.write_text(text))
