"""The in-process runner of the stage table: `pid run`, artifacts in a folder, no services."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pid.core.artifacts import ORIGINAL, SYMBOLS
from pid.core.errors import PidInputError
from pid.core.formats.boxes import coco_from_boxes
from pid.core.formats.jsonfile import read_json, write_json
from pid.pipeline.stages import (
    Stage,
    StageConfig,
    check_chain,
)
from pid.vision.inputs import load_pages, load_symbols, save_original

RUN_RECORD = "run.json"


@dataclass(slots=True)
class StageRecord:
    """One stage of one run, as run.json keeps it."""

    stage: str
    state: str
    started_at: str
    duration_s: float
    summary: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InputLimits:
    pdf_dpi: float = 200.0
    max_pixels: int = 300_000_000
    max_pages: int = 50


def prepare_folders(
    drawing: Path, out_dir: Path, symbols: Path | None, limits: InputLimits
) -> list[Path]:
    """original.png (and symbols.json) of every page, one folder per page.

    A one-page drawing goes straight into `out_dir`; pages of a PDF or multi-page TIFF go into
    `out_dir/page-001`, `page-002`, ... Everything is checked before anything is written.
    """
    pages = load_pages(
        drawing, pdf_dpi=limits.pdf_dpi, max_pixels=limits.max_pixels, max_pages=limits.max_pages
    )
    if symbols is not None and len(pages) > 1:
        raise PidInputError(
            f"{symbols}: symbols can only be given for a one-page drawing "
            f"({drawing} has {len(pages)} pages)"
        )
    given = None
    if symbols is not None:
        height, width = pages[0].image.shape
        given = coco_from_boxes(load_symbols(symbols, (width, height)), width, height)
    folders = []
    for page in pages:
        folder = out_dir if len(pages) == 1 else out_dir / f"page-{page.index + 1:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        save_original(page, folder / ORIGINAL)
        if given is not None:
            write_json(folder / SYMBOLS, given)
        folders.append(folder)
    return folders


def check_run(folder: Path, stages: list[Stage], config: StageConfig) -> None:
    """Refuse a run that cannot finish, before any stage writes anything."""
    check_chain(stages, artifacts_in(folder), config)


def artifacts_in(folder: Path) -> list[str]:
    """The names of the files in `folder` (none when it does not exist yet)."""
    return [path.name for path in folder.iterdir() if path.is_file()] if folder.is_dir() else []


def run_folder(
    folder: Path,
    stages: list[Stage],
    config: StageConfig,
    *,
    on_start: Callable[[Stage], None] = lambda stage: None,
    on_done: Callable[[Stage, StageRecord], None] = lambda stage, record: None,
) -> list[StageRecord]:
    """Run `stages` in order on the artifacts in `folder`; run.json records every stage."""
    check_run(folder, stages, config)
    records = []
    for stage in stages:
        on_start(stage)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        clock = time.perf_counter()
        try:
            outcome = stage.run(folder, config)
        except PidInputError as exc:
            raise PidInputError(f"stage {stage.name}: {exc}") from exc
        record = StageRecord(
            stage.name,
            outcome.state,
            started,
            round(time.perf_counter() - clock, 3),
            outcome.summary,
            outcome.provenance,
        )
        records.append(record)
        _record(folder, record)
        on_done(stage, record)
    return records


def _record(folder: Path, record: StageRecord) -> None:
    path = folder / RUN_RECORD
    kept: dict[str, Any] = read_json(path) if path.is_file() else {}
    kept[record.stage] = asdict(record)
    write_json(path, kept)
