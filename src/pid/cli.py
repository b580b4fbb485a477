"""The `pid` command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pid.core.errors import PidInputError

app = typer.Typer(
    name="pid",
    help="Turn raster P&IDs into a validated topological graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()


def fail(message: str) -> typer.Exit:
    """Print one line naming the problem and return the exit to raise."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@app.command()
def synth(
    count: Annotated[int, typer.Option(help="Number of sheets.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder that receives one folder per sheet.")
    ],
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same sheets.")] = 0,
    size: Annotated[str, typer.Option(help="Sheet size WIDTHxHEIGHT in pixels.")] = "2000x1400",
    style: Annotated[
        str, typer.Option(help="clean, or scan (noise, blur, JPEG, rotation).")
    ] = "clean",
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Generate P&ID sheets with full ground truth."""
    from pid.synth.dataset import DatasetSpec, parse_size, run_dataset

    try:
        width, height = parse_size(size)
        spec = DatasetSpec(out_dir, count, seed, width, height, style, workers)
        spec.validate()
    except PidInputError as exc:
        raise fail(str(exc)) from None
    started = time.perf_counter()
    progress = Progress(
        TextColumn("synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task("sheets", total=count)
        run_dataset(spec, lambda done: progress.advance(task))
    elapsed = time.perf_counter() - started
    rate = count / elapsed * 60.0 if elapsed > 0 else float("inf")
    out.print(
        f"{count} sheets of {width}x{height} ({style}) in {elapsed:.1f} s: "
        f"{rate:.1f} sheets per minute with {workers} worker(s) -> {out_dir}"
    )


@app.command("eval")
def evaluate_cmd(
    pred: Annotated[Path, typer.Option(help="Predicted sheet folder, or a folder of them.")],
    truth: Annotated[Path, typer.Option(help="Ground-truth sheet folder, or a folder of them.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the scores as JSON.")
    ] = None,
    labels: Annotated[
        str, typer.Option(help="Symbol classes compared as: auto, class or pid2graph.")
    ] = "auto",
) -> None:
    """Score predictions against ground truth: symbols, pipe mask, meeting points, graph."""
    from pid.eval.report import render_table, write_json
    from pid.eval.score import evaluate

    if labels not in ("auto", "class", "pid2graph"):
        raise fail(f"--labels {labels!r} is unknown: use auto, class or pid2graph")
    try:
        report = evaluate(pred, truth, label_space=labels)  # type: ignore[arg-type]
    except PidInputError as exc:
        raise fail(str(exc)) from None
    # A table of 11 figures per sheet needs more than a pipe's default 80 columns.
    Console(width=max(out.width, 150)).print(render_table(report))
    if json_out is not None:
        write_json(report, json_out)
        out.print(f"scores written to {json_out}")


@app.command()
def run(
    drawing: Annotated[Path, typer.Argument(help="PNG, JPEG, TIFF or PDF drawing.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for every artifact.")],
    symbols: Annotated[
        Path | None,
        typer.Option(help="Symbol boxes (COCO JSON); detect is then skipped."),
    ] = None,
    from_stage: Annotated[
        str | None, typer.Option("--from", help="First stage (default: detect).")
    ] = None,
    to_stage: Annotated[
        str | None, typer.Option("--to", help="Last stage (default: export).")
    ] = None,
) -> None:
    """Run the pipeline on one drawing in this process, with no services."""
    from pid.core.artifacts import ORIGINAL, SYMBOLS
    from pid.pipeline.local import (
        InputLimits,
        artifacts_in,
        check_run,
        prepare_folders,
        run_folder,
    )
    from pid.pipeline.stages import StageConfig, chain, check_chain
    from pid.settings import get_settings

    try:
        settings = get_settings()
        config = StageConfig.from_settings(settings)
        stages = chain(from_stage, to_stage)
        # What the settings refuse is refused before anything is written; each page's folder is
        # checked in full once prepare_folders has written its drawing (and symbols).
        given = [ORIGINAL, *([SYMBOLS] if symbols is not None else [])]
        check_chain(stages, [*artifacts_in(out_dir), *given], config, inputs=False)
        limits = InputLimits(settings.pdf_dpi, settings.max_pixels, settings.max_pages)
        folders = prepare_folders(drawing, out_dir, symbols, limits)
        for folder in folders:
            check_run(folder, stages, config)
    except PidInputError as exc:
        raise fail(str(exc)) from None
    progress = Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        for folder in folders:
            task = progress.add_task(str(folder), total=len(stages))

            def started(stage: Any, task: Any = task, folder: Path = folder) -> None:
                progress.update(task, description=f"{folder.name}: {stage.name}")

            def done(stage: Any, record: Any, task: Any = task) -> None:
                progress.advance(task)
                progress.console.print(
                    f"  {stage.name:<20} {record.state:<10} {record.duration_s:7.2f} s  "
                    f"{_summary_text(record.summary)}",
                    highlight=False,
                )

            try:
                run_folder(folder, stages, config, on_start=started, on_done=done)
            except PidInputError as exc:
                raise fail(str(exc)) from None
    out.print(f"artifacts in {', '.join(str(f) for f in folders)}")


def _summary_text(summary: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.items() if k != "reason") or str(
        summary.get("reason", "")
    )


@app.command()
def bench(
    name: Annotated[
        str, typer.Argument(help="Which benchmark: synth, topology or service.")
    ] = "synth",
) -> None:
    """Measure and print speed figures (ratios are measured side by side in one run)."""
    from pid.bench.suite import BENCHES

    if name not in BENCHES:
        raise fail(f"benchmark {name!r} is unknown: use one of {', '.join(sorted(BENCHES))}")
    for figure in BENCHES[name]():
        out.print(f"{figure.name:<64} {figure.value:10.2f} {figure.unit}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
