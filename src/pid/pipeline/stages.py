"""The stage table: every stage of the pipeline as one function from artifacts to artifacts.

Each row names the stage's queue, the artifacts it reads and writes, the diagram status after
it, and the setting that picks its method. Two runners use this table and nothing else:
`pid run` (pid.pipeline.local: a folder, no services) and the Celery tasks (artifacts in
storage, state in the database). Adding a stage means one function and one row.

A stage function gets a folder holding its input artifacts under their table names and writes
its outputs there, atomically. It returns what it did (a small summary) and its provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pid.core.artifacts import (
    BRIDGE_MASK,
    DETECTIONS,
    DEXPI,
    FXML,
    GRAPH,
    GRAPHML,
    JUNCTION_MASK,
    JUNCTIONS,
    NODE_MASK,
    ORIGINAL,
    OVERLAY,
    PIPE_MASK,
    REGIONS,
    SKELETON,
    SYMBOLS,
    VALIDATED_DETECTIONS,
    VALIDATED_GRAPH,
    YOLO_PREDICTED,
)
from pid.core.errors import PidInputError
from pid.core.files import copy_atomically
from pid.core.formats.boxes import TopologyBoxes, coco_from_boxes, load_boxes, topology_boxes
from pid.core.formats.graph import load_graph, write_graph
from pid.core.formats.images import image_size, read_mask, write_image, write_mask
from pid.core.formats.jsonfile import read_json, write_json, write_text
from pid.core.formats.regions import write_regions
from pid.core.statuses import DiagramStatus
from pid.export import dpi_of_image, export_all
from pid.pipeline.ports import StageQueue
from pid.settings import Settings
from pid.vision import detect
from pid.vision.inputs import load_pages
from pid.vision.nodes import node_mask_from_boxes
from pid.vision.overlay import draw_overlay
from pid.vision.pipe_mask import classical_segmentation
from pid.vision.skeleton import skeletonize_pipes, skeletonize_simple
from pid.vision.topology import (
    AnalysisMemo,
    build_graph,
    classify_meeting_points,
    meeting_point_masks,
)

#: Symbol boxes around which pipe ink is cut, grown by this many pixels so a stroke that ends
#: on a box edge ends inside it.
NODE_PAD = 2

#: classify and build_graph in one process (`pid run`) analyse the skeleton once between them.
_ANALYSES = AnalysisMemo()

#: The setting a user sets to give detect its weights, as the environment spells it.
DETECT_WEIGHTS_SETTING = "PID_DETECT_WEIGHTS"


@dataclass(frozen=True, slots=True)
class Gate:
    """A review gate after a stage: the settings flag that turns it on, the status it waits in."""

    setting: str
    status: DiagramStatus


@dataclass(frozen=True, slots=True)
class StageConfig:
    """What the stages take from the settings (kept free of pydantic so `vision` stays plain)."""

    detect_method: str = "yolo_sahi"
    segment_method: str = "classical"
    skeletonize_method: str = "classical"
    classify_method: str = "rules"
    detect_weights: Path | None = None
    detect_confidence: float = 0.25
    sahi_slice_size: int = 640
    sahi_overlap: float = 0.2
    device: str = "auto"
    default_dpi: float = 200.0
    gate_cvat: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> StageConfig:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


@dataclass(slots=True)
class StageOutcome:
    """What a stage did: succeeded or skipped, a small summary, and its provenance."""

    state: Literal["succeeded", "skipped"]
    summary: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


StageFunction = Callable[[Path, StageConfig], StageOutcome]


@dataclass(frozen=True, slots=True)
class Stage:
    """One row of the stage table."""

    name: str
    queue: StageQueue
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: The diagram's status once the stage has ended (its gate's status when the gate is on).
    status_after: DiagramStatus
    method_setting: str | None
    run: StageFunction
    #: Read when present (e.g. the symbols that came with the upload).
    optional_inputs: tuple[str, ...] = ()
    #: Review gate after this stage.
    gate: Gate | None = None
    #: A stage of the chain this one takes the place of when a run starts with it.
    replaces: str | None = None
    #: Refuses a run that could not get through this stage, before anything runs; given the
    #: artifact names there will be and the config.
    precheck: Callable[[Collection[str], StageConfig], None] | None = None


class MissingArtifactError(PidInputError):
    """A stage's input artifact is not there (an earlier stage has not run)."""


def code_version() -> str:
    try:
        return version("pid")
    except PackageNotFoundError:
        return "unknown"


def _provenance(method: str, **settings: Any) -> dict[str, Any]:
    return {
        "method": method,
        "weights_sha256": None,
        "settings": settings,
        "code_version": code_version(),
    }


def _drawing(folder: Path) -> NDArray[np.uint8]:
    return load_pages(folder / ORIGINAL, max_pixels=2**40, max_pages=1)[0].image


def _image_size(folder: Path) -> tuple[int, int]:
    return image_size(folder / ORIGINAL)


def _boxes(folder: Path) -> TopologyBoxes:
    return topology_boxes(load_boxes(folder / VALIDATED_DETECTIONS, image_size=_image_size(folder)))


def _shape(folder: Path) -> tuple[int, int]:
    width, height = _image_size(folder)
    return (height, width)


# ---- stages --------------------------------------------------------------------------------


def run_detect(folder: Path, config: StageConfig) -> StageOutcome:
    """Symbol boxes: the upload's own symbols when it has them, else YOLO with SAHI slicing."""
    width, height = _image_size(folder)
    if (folder / SYMBOLS).is_file():
        coco = coco_from_boxes(
            load_boxes(folder / SYMBOLS, image_size=(width, height)), width, height
        )
        names = [c["name"] for c in coco["categories"]]
        _write_detections(folder, coco, detect.yolo_lines(coco, width, height, names))
        return StageOutcome(
            "skipped",
            {"reason": "symbols came with the upload", "boxes": len(coco["annotations"])},
            _provenance("given"),
        )
    detector = loaded_detector(
        require_detector_weights(config), config.detect_confidence, config.device
    )
    image = _drawing(folder)
    coco = detect.detect_symbols(
        detector, image, slice_size=config.sahi_slice_size, overlap=config.sahi_overlap
    )
    _write_detections(folder, coco, detect.yolo_lines(coco, width, height, detector.class_names))
    provenance = _provenance(config.detect_method)
    provenance["weights_sha256"] = detector.weights_sha256
    provenance["settings"] = detect.detector_provenance(
        detector, slice_size=config.sahi_slice_size, overlap=config.sahi_overlap
    )
    return StageOutcome("succeeded", {"boxes": len(coco["annotations"])}, provenance)


def load_models(settings: Settings) -> None:
    """Load the models the settings name, once per process (a gpu child, as it starts)."""
    weights = settings.detect_weights
    if weights is not None and weights.is_file():
        loaded_detector(weights, settings.detect_confidence, settings.device)


@lru_cache(maxsize=2)
def loaded_detector(weights: Path, confidence: float, device: str) -> detect.Detector:
    """The detector, loaded once per process (a worker child keeps it between tasks)."""
    return detect.load_detector(weights, confidence=confidence, device=device)


def require_detector_weights(config: StageConfig) -> Path:
    """The detector weights file, or a one-line error naming the setting and --symbols."""
    weights = config.detect_weights
    if weights is None:
        raise PidInputError(
            f"detect needs a detector weights file: set {DETECT_WEIGHTS_SETTING} to a YOLO .pt "
            "file, or give the symbols (--symbols COCO.json, or a symbols part on upload)"
        )
    if not Path(weights).is_file():
        raise PidInputError(f"{DETECT_WEIGHTS_SETTING}={weights}: file not found")
    return Path(weights)


def check_detector(available: Collection[str], config: StageConfig) -> None:
    """detect can run: the upload's symbols are there, or a detector weights file is set."""
    if SYMBOLS not in available:
        require_detector_weights(config)


def _write_detections(folder: Path, coco: dict[str, Any], yolo: list[str]) -> None:
    write_json(folder / DETECTIONS, coco)
    write_text(folder / YOLO_PREDICTED, "".join(line + "\n" for line in yolo))


def run_cvat_upload(folder: Path, config: StageConfig) -> StageOutcome:
    """Pre-annotations to CVAT for a person to check; skipped while the CVAT gate is off."""
    if config.gate_cvat:
        raise PidInputError("the CVAT review gate is not available in this version")
    return StageOutcome("skipped", {"reason": "CVAT gate off"}, _provenance("none"))


def run_cvat_fetch(folder: Path, config: StageConfig) -> StageOutcome:
    """The boxes a person checked; with the CVAT gate off, the detections as they are."""
    if config.gate_cvat:
        raise PidInputError("the CVAT review gate is not available in this version")
    copy_atomically(folder / DETECTIONS, folder / VALIDATED_DETECTIONS)
    return StageOutcome(
        "skipped",
        {"reason": "CVAT gate off: validated_detections.json is a copy of detections.json"},
        _provenance("copy"),
    )


def run_segment(folder: Path, config: StageConfig) -> StageOutcome:
    """Pipe mask of the drawing, with symbol areas (the node mask) cut out."""
    image = _drawing(folder)
    boxes = _boxes(folder)
    node_mask = node_mask_from_boxes([b[2] for b in boxes], image.shape, pad=NODE_PAD)
    segmentation = classical_segmentation(image, node_mask)
    pipe_mask = segmentation.pipe_mask
    write_mask(folder / NODE_MASK, node_mask)
    write_mask(folder / PIPE_MASK, pipe_mask)
    write_regions(
        folder / REGIONS,
        [
            *(
                {"kind": "ruled", "bbox": [x1, y1, x2 - x1, y2 - y1]}
                for x1, y1, x2, y2 in segmentation.regions
            ),
            # Kept as notes pointing at pipes, for the text to attach to; never as pipes.
            *(
                {"kind": "leader", "bbox": [x1, y1, x2 - x1, y2 - y1]}
                for x1, y1, x2, y2 in segmentation.leaders
            ),
        ],
    )
    share = float(pipe_mask.mean())
    return StageOutcome(
        "succeeded",
        {
            "pipe_pixels": int(pipe_mask.sum()),
            "pipe_share": round(share, 5),
            "ruled_regions": len(segmentation.regions),
            "leaders": len(segmentation.leaders),
        },
        _provenance(config.segment_method, node_pad=NODE_PAD),
    )


def run_skeletonize(folder: Path, config: StageConfig) -> StageOutcome:
    """Skeleton with cleanup: spurs pruned, breaks bridged, stray strokes removed."""
    shape = _shape(folder)
    skeleton = skeletonize_pipes(
        read_mask(folder / PIPE_MASK, shape), read_mask(folder / NODE_MASK, shape)
    )
    write_mask(folder / SKELETON, skeleton)
    return StageOutcome(
        "succeeded",
        {"skeleton_pixels": int(skeleton.sum())},
        _provenance(config.skeletonize_method),
    )


def run_skeletonize_simple(folder: Path, config: StageConfig) -> StageOutcome:
    """Thinning only, for a pipe mask a person has corrected."""
    shape = _shape(folder)
    pipe_mask = read_mask(folder / PIPE_MASK, shape)
    skeleton = skeletonize_simple(pipe_mask & ~read_mask(folder / NODE_MASK, shape))
    write_mask(folder / SKELETON, skeleton)
    return StageOutcome(
        "succeeded", {"skeleton_pixels": int(skeleton.sum())}, _provenance("thinning")
    )


def run_classify(folder: Path, config: StageConfig) -> StageOutcome:
    """Every meeting point told junction, bridge or ambiguous; masks of both kinds."""
    shape = _shape(folder)
    skeleton = read_mask(folder / SKELETON, shape)
    pipe_mask = read_mask(folder / PIPE_MASK, shape)
    boxes = _boxes(folder)
    analysis = _ANALYSES.get(skeleton, pipe_mask, boxes)
    junctions = classify_meeting_points(skeleton, pipe_mask, boxes, analysis=analysis)
    junction_mask, bridge_mask = meeting_point_masks(junctions, shape)
    write_json(folder / JUNCTIONS, junctions)
    write_mask(folder / JUNCTION_MASK, junction_mask)
    write_mask(folder / BRIDGE_MASK, bridge_mask)
    counts = dict.fromkeys(("junction", "bridge", "ambiguous"), 0)
    for item in junctions:
        counts[item["kind"]] += 1
    return StageOutcome("succeeded", counts, _provenance(config.classify_method))


def run_build_graph(folder: Path, config: StageConfig) -> StageOutcome:
    """graph.json from boxes, skeleton and the junction and bridge masks; overlay.png."""
    image = _drawing(folder)
    shape = (int(image.shape[0]), int(image.shape[1]))
    skeleton = read_mask(folder / SKELETON, shape)
    pipe_mask = read_mask(folder / PIPE_MASK, shape)
    boxes = _boxes(folder)
    graph = build_graph(
        skeleton,
        pipe_mask,
        boxes,
        read_mask(folder / JUNCTION_MASK, shape),
        read_mask(folder / BRIDGE_MASK, shape),
        analysis=_ANALYSES.get(skeleton, pipe_mask, boxes),
    )
    junctions = read_json(folder / JUNCTIONS) if (folder / JUNCTIONS).is_file() else []
    write_graph(folder / GRAPH, graph)
    write_image(folder / OVERLAY, draw_overlay(image, graph, skeleton, junctions))
    kinds = [k for _, k in graph.nodes(data="kind")]
    summary = {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        **{f"{kind}s": kinds.count(kind) for kind in ("symbol", "junction", "endpoint")},
    }
    return StageOutcome("succeeded", summary, _provenance("rules"))


def run_export(folder: Path, config: StageConfig) -> StageOutcome:
    """FXML, DEXPI and GraphML of the person's graph when there is one, else of graph.json."""
    source = VALIDATED_GRAPH if (folder / VALIDATED_GRAPH).is_file() else GRAPH
    graph = load_graph(folder / source)
    # The image's header is enough: no need to decode the drawing for its resolution.
    dpi = dpi_of_image(folder / ORIGINAL, config.default_dpi)
    export_all(graph, folder, dpi=dpi, height_px=_shape(folder)[0])
    return StageOutcome(
        "succeeded",
        {"source": source, "dpi": round(dpi, 4)},
        _provenance("export", default_dpi=config.default_dpi),
    )


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "detect",
            "gpu",
            (ORIGINAL,),
            (DETECTIONS, YOLO_PREDICTED),
            DiagramStatus.detected,
            "detect_method",
            run_detect,
            optional_inputs=(SYMBOLS,),
            precheck=check_detector,
        ),
        Stage(
            "cvat_upload",
            "io",
            (ORIGINAL, DETECTIONS),
            (),
            # The boxes are unchanged until a person has checked them: with the gate off the
            # diagram stays detected.
            DiagramStatus.detected,
            None,
            run_cvat_upload,
            gate=Gate("gate_cvat", DiagramStatus.in_review),
        ),
        Stage(
            "cvat_fetch",
            "io",
            (DETECTIONS,),
            (VALIDATED_DETECTIONS,),
            DiagramStatus.validated,
            None,
            run_cvat_fetch,
        ),
        Stage(
            "segment",
            "gpu",
            (ORIGINAL, VALIDATED_DETECTIONS),
            (NODE_MASK, PIPE_MASK, REGIONS),
            DiagramStatus.segmented,
            "segment_method",
            run_segment,
        ),
        Stage(
            "skeletonize",
            "cpu",
            (ORIGINAL, PIPE_MASK, NODE_MASK),
            (SKELETON,),
            DiagramStatus.skeletonized,
            "skeletonize_method",
            run_skeletonize,
            gate=Gate("gate_mask", DiagramStatus.mask_review),
        ),
        Stage(
            "skeletonize_simple",
            "cpu",
            (ORIGINAL, PIPE_MASK, NODE_MASK),
            (SKELETON,),
            DiagramStatus.skeletonized,
            None,
            run_skeletonize_simple,
            replaces="skeletonize",
        ),
        Stage(
            "classify",
            "gpu",
            (ORIGINAL, SKELETON, PIPE_MASK, VALIDATED_DETECTIONS),
            (JUNCTIONS, JUNCTION_MASK, BRIDGE_MASK),
            DiagramStatus.classified,
            "classify_method",
            run_classify,
        ),
        Stage(
            "build_graph",
            "cpu",
            (
                ORIGINAL,
                VALIDATED_DETECTIONS,
                SKELETON,
                PIPE_MASK,
                JUNCTION_MASK,
                BRIDGE_MASK,
            ),
            (GRAPH, OVERLAY),
            DiagramStatus.built,
            None,
            run_build_graph,
            optional_inputs=(JUNCTIONS,),
            gate=Gate("gate_graph", DiagramStatus.graph_review),
        ),
        Stage(
            "export",
            "cpu",
            (ORIGINAL, GRAPH),
            (FXML, DEXPI, GRAPHML),
            DiagramStatus.completed,
            None,
            run_export,
            optional_inputs=(VALIDATED_GRAPH,),
        ),
    )
}

#: The unattended chain. skeletonize_simple replaces skeletonize when a person has corrected
#: the pipe mask.
CHAIN: tuple[str, ...] = (
    "detect",
    "cvat_upload",
    "cvat_fetch",
    "segment",
    "skeletonize",
    "classify",
    "build_graph",
    "export",
)

#: Every artifact name a stage reads or writes; storage keys are only ever built from these.
ARTIFACT_NAMES: frozenset[str] = frozenset(
    name for s in STAGES.values() for name in (*s.inputs, *s.outputs, *s.optional_inputs)
)


def chain_order(start: str | None = None) -> list[str]:
    """The chain's stage names for a run starting at `start`: a stage that replaces another
    (skeletonize_simple) takes its place."""
    order = list(CHAIN)
    replaced = STAGES[start].replaces if start in STAGES else None
    if start is not None and replaced is not None:
        order[order.index(replaced)] = start
    return order


def chain(from_stage: str | None = None, to_stage: str | None = None) -> list[Stage]:
    """The stages from `from_stage` to `to_stage` (both included), in chain order.

    Starting at a stage that replaces another (skeletonize_simple) runs it in that one's place.
    """
    for name in (from_stage, to_stage):
        if name is not None and name not in STAGES:
            raise PidInputError(f"unknown stage {name!r}: use one of {', '.join(STAGES)}")
    order = chain_order(from_stage)
    start = from_stage or order[0]
    end = to_stage or order[-1]
    replacing = {stage.replaces: stage.name for stage in STAGES.values() if stage.replaces}
    if end in replacing.values() and end not in order:
        raise PidInputError(f"{end} only runs as the start of a run (--from)")
    end = end if end in order else replacing.get(end, end)
    first, last = order.index(start), order.index(end)
    if first > last:
        raise PidInputError(f"stage {start!r} comes after {end!r} in the chain")
    return [STAGES[name] for name in order[first : last + 1]]


def check_chain(
    stages: list[Stage],
    available: Collection[str],
    config: StageConfig | None = None,
    *,
    inputs: bool = True,
) -> None:
    """Refuse a run of `stages` that could not finish, before any of them runs.

    Parameters
    ----------
    stages
        The run's stages, in order.
    available
        Artifact names there before the run (files in the folder, objects in storage, what a
        request supplies).
    config
        When given, each stage's own precheck runs too (detect: its weights file). The service
        leaves it out: the workers, perhaps on other machines, have their own settings.
    inputs
        Whether inputs are checked (False: the prechecks alone, as `pid run` does before it
        has written the pages' folders).

    Raises
    ------
    MissingArtifactError
        Naming the first stage with an input that neither is there nor comes from a stage
        before it in the run.
    """
    there = set(available)
    for stage in stages:
        missing = [name for name in stage.inputs if name not in there]
        if inputs and missing:
            raise MissingArtifactError(
                f"stage {stage.name} needs {', '.join(missing)}: run the stages before it first"
            )
        if config is not None and stage.precheck is not None:
            stage.precheck(there, config)
        there.update(stage.outputs)
