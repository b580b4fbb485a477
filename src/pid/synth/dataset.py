"""Many sheets at once, in worker processes, each written into its own folder."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pid.core.errors import PidInputError
from pid.synth.params import DEFAULT_PARAMS, GeneratorParams
from pid.synth.sheet import GENERATOR_VERSION, STYLES, check_size, generate_sheet, write_sheet

MAX_COUNT = 100_000


@dataclass(frozen=True, slots=True)
class SheetDone:
    name: str
    path: Path
    seconds: float


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    out: Path
    count: int
    seed: int = 0
    width: int = 2000
    height: int = 1400
    style: str = "clean"
    workers: int = 1
    params: GeneratorParams = DEFAULT_PARAMS

    def validate(self) -> None:
        if self.count < 1:
            raise PidInputError(f"--count must be at least 1 (got {self.count})")
        if self.count > MAX_COUNT:
            raise PidInputError(f"--count must be at most {MAX_COUNT} (got {self.count})")
        if self.workers < 1:
            raise PidInputError(f"--workers must be at least 1 (got {self.workers})")
        if self.seed < 0:
            raise PidInputError(f"--seed must be zero or positive (got {self.seed})")
        check_size(self.width, self.height)
        if self.style not in STYLES:
            raise PidInputError(
                f"--style {self.style!r} is unknown: use one of {', '.join(STYLES)}"
            )
        if self.out.exists() and not self.out.is_dir():
            raise PidInputError(f"--out {self.out} exists and is not a folder")


def parse_size(text: str) -> tuple[int, int]:
    """'4000x3000' -> (4000, 3000)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise PidInputError(f"--size {text!r} is not WIDTHxHEIGHT in pixels, e.g. 4000x3000")
    return int(parts[0]), int(parts[1])


def _make_one(spec: DatasetSpec, index: int) -> SheetDone:
    started = time.perf_counter()
    sheet = generate_sheet(
        spec.seed, index, width=spec.width, height=spec.height, style=spec.style, params=spec.params
    )
    path = write_sheet(sheet, spec.out)
    return SheetDone(sheet.name, path, time.perf_counter() - started)


def _worker_init() -> None:
    import cv2

    # One OpenCV thread per worker: the processes are the parallelism.
    cv2.setNumThreads(1)


def generate_dataset(spec: DatasetSpec) -> Iterator[SheetDone]:
    """Generate `spec.count` sheets, yielding each as it is written (in completion order)."""
    spec.validate()
    spec.out.mkdir(parents=True, exist_ok=True)
    (spec.out / "dataset.json").write_text(
        json.dumps(
            {
                "count": spec.count,
                "seed": spec.seed,
                "size": [spec.width, spec.height],
                "style": spec.style,
                "generator_version": GENERATOR_VERSION,
                "params": spec.params.to_dict(),
            },
            indent=1,
        )
        + "\n"
    )
    if spec.workers == 1 or spec.count == 1:
        for index in range(spec.count):
            yield _make_one(spec, index)
        return
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(spec.workers, mp_context=context, initializer=_worker_init) as pool:
        futures = [pool.submit(_make_one, spec, index) for index in range(spec.count)]
        for future in futures:
            yield future.result()


def run_dataset(
    spec: DatasetSpec, on_sheet: Callable[[SheetDone], None] | None = None
) -> list[SheetDone]:
    done = []
    for item in generate_dataset(spec):
        done.append(item)
        if on_sheet is not None:
            on_sheet(item)
    return done
