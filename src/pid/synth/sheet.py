"""One generated sheet: build, render, optionally scan, and write its folder atomically."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import networkx as nx
import numpy as np
from PIL import Image

from pid.core.classes import CLASS_NAMES, CLASS_TABLE
from pid.core.errors import PidInputError
from pid.core.formats.graph import graph_to_json
from pid.core.formats.jsonfile import json_text
from pid.export.graphml import write_pid2graph_graphml
from pid.synth.layout import LayoutError, build_layout
from pid.synth.leaders import draw_leaders
from pid.synth.params import DEFAULT_PARAMS, MAX_SIZE, MEETING_STYLES, MIN_SIZE, GeneratorParams
from pid.synth.render import render_layout
from pid.synth.scan import (
    break_lines,
    degrade,
    scan_matrix,
    warp_box_xywh,
    warp_graph,
    warp_image,
    warp_mask,
    warp_points,
)
from pid.synth.symbols import SIZE_RANGES
from pid.synth.tables import draw_tables
from pid.vision.nodes import node_mask_from_boxes

GENERATOR_VERSION = "1"
STYLES = ("clean", "scan")
#: Width of an A1 sheet; the generator states a DPI that makes every sheet A1-sized.
A1_WIDTH_MM = 841.0
_LAYOUT_TRIES = 5


@dataclass(slots=True)
class Sheet:
    name: str
    seed: int
    index: int
    style: str
    image: np.ndarray
    pipe_mask: np.ndarray
    node_mask: np.ndarray
    graph: nx.MultiGraph
    junctions: list[dict[str, Any]]
    text_items: list[dict[str, Any]]
    #: Tables, description headers and notes: regions.json's items.
    regions: list[dict[str, Any]]
    meta: dict[str, Any]

    @property
    def dpi(self) -> float:
        return float(self.meta["dpi"])


def check_size(width: int, height: int) -> None:
    """Refuse sizes the generator cannot fill, naming the limits."""
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise PidInputError(
            f"size {width}x{height} is too small: a sheet needs at least "
            f"{MIN_SIZE[0]}x{MIN_SIZE[1]} px for its border, title block, symbols and pipes"
        )
    if width > MAX_SIZE[0] or height > MAX_SIZE[1]:
        raise PidInputError(
            f"size {width}x{height} is too large: at most {MAX_SIZE[0]}x{MAX_SIZE[1]} px"
        )


def generate_sheet(
    seed: int,
    index: int = 0,
    *,
    width: int = 2000,
    height: int = 1400,
    style: str = "clean",
    params: GeneratorParams = DEFAULT_PARAMS,
) -> Sheet:
    """Generate sheet `index` of the data set with `seed`.

    The same (seed, index, size) gives the same topology in both styles; the scan style only
    changes the picture and warps the ground truth with it.
    """
    check_size(width, height)
    if style not in STYLES:
        raise PidInputError(f"style {style!r} is unknown: use one of {', '.join(STYLES)}")
    last_error: LayoutError | None = None
    for attempt in range(_LAYOUT_TRIES):
        # Children by position: adding a stream leaves the earlier ones (and sheets) as they were.
        layout_ss, render_ss, scan_ss, tables_ss, leaders_ss = np.random.SeedSequence(
            [seed, index, attempt]
        ).spawn(5)
        try:
            layout = build_layout(width, height, np.random.default_rng(layout_ss), params)
        except LayoutError as exc:
            last_error = exc
            continue
        rendered = render_layout(layout, np.random.default_rng(render_ss), params)
        regions, table_texts = draw_tables(
            rendered.image, layout.frame, np.random.default_rng(tables_ss), params.tables_per_unit
        )
        leaders, leader_texts = draw_leaders(
            rendered.image,
            rendered.pipe_mask,
            rendered.graph,
            np.random.default_rng(leaders_ss),
            params.leaders_per_unit,
        )
        sheet = Sheet(
            name=f"sheet_{index:05d}",
            seed=seed,
            index=index,
            style=style,
            image=rendered.image,
            pipe_mask=rendered.pipe_mask,
            node_mask=rendered.node_mask,
            graph=rendered.graph,
            junctions=rendered.junctions,
            text_items=[*rendered.text_items, *table_texts, *leader_texts],
            regions=[*regions, *leaders],
            meta={},
        )
        if style == "scan":
            _apply_scan(sheet, np.random.default_rng(scan_ss), params)
        sheet.meta = _meta(sheet, width, height, attempt, params)
        return sheet
    raise RuntimeError(
        f"seed {seed} sheet {index}: layout failed {_LAYOUT_TRIES} times: {last_error}"
    )


def _apply_scan(sheet: Sheet, rng: np.random.Generator, params: GeneratorParams) -> None:
    h, w = sheet.image.shape
    break_lines(sheet.image, sheet.graph, sheet.junctions, rng, params)
    matrix = scan_matrix(w, h, rng, params)
    sheet.image = degrade(warp_image(sheet.image, matrix, 255), rng, params)
    warp_graph(sheet.graph, matrix)
    for item in sheet.junctions:
        p = warp_points(np.asarray(item["point"]), matrix)[0]
        item["point"] = [round(float(p[0]), 2), round(float(p[1]), 2)]
    for item in sheet.text_items:
        item["bbox"] = warp_box_xywh(item["bbox"], matrix)
        if "inner" in item:
            item["inner"] = warp_box_xywh(item["inner"], matrix)
    for region in sheet.regions:
        region["bbox"] = warp_box_xywh(region["bbox"], matrix)
        for end in ("from", "to"):
            if end in region:
                p = warp_points(np.asarray(region[end]), matrix)[0]
                region[end] = [round(float(p[0]), 2), round(float(p[1]), 2)]
    boxes = [d["bbox"] for _, d in sheet.graph.nodes(data=True) if d["kind"] == "symbol"]
    node_mask = node_mask_from_boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), (h, w))
    pipe_mask = warp_mask(sheet.pipe_mask, matrix)
    pipe_mask[node_mask] = 0
    sheet.pipe_mask = pipe_mask
    sheet.node_mask = (node_mask * 255).astype(np.uint8)


def _meta(
    sheet: Sheet, width: int, height: int, attempt: int, params: GeneratorParams
) -> dict[str, Any]:
    styles = Counter(j["style"] for j in sheet.junctions)
    classes = Counter(d["class"] for _, d in sheet.graph.nodes(data=True) if d["kind"] == "symbol")
    return {
        "name": sheet.name,
        "seed": sheet.seed,
        "index": sheet.index,
        "layout_attempt": attempt,
        "style": sheet.style,
        "width": width,
        "height": height,
        "dpi": round(width * 25.4 / A1_WIDTH_MM, 3),
        "generator_version": GENERATOR_VERSION,
        "meeting_points": {s: styles.get(s, 0) for s in MEETING_STYLES},
        "symbols": dict(sorted(classes.items())),
        "regions": dict(sorted(Counter(r["kind"] for r in sheet.regions).items())),
        "params": params.to_dict(),
        "symbol_sizes": SIZE_RANGES,
    }


def coco_from_graph(graph: nx.MultiGraph, width: int, height: int) -> dict[str, Any]:
    """Ground-truth boxes of a graph's symbols as COCO (score 1, categories by name)."""
    categories = [
        {"id": i + 1, "name": c.name, "supercategory": c.pid2graph_label}
        for i, c in enumerate(CLASS_TABLE)
    ]
    cat_id = {c["name"]: c["id"] for c in categories}
    annotations: list[dict[str, Any]] = []
    for node, data in graph.nodes(data=True):
        if data["kind"] != "symbol":
            continue
        x1, y1, x2, y2 = data["bbox"]
        w, h = x2 - x1, y2 - y1
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": 1,
                "category_id": cat_id[data["class"]],
                "bbox": [x1, y1, w, h],
                "area": w * h,
                "iscrowd": 0,
                "score": 1.0,
                "symbol_id": node,
            }
        )
    return {
        "images": [{"id": 1, "file_name": "original.png", "width": width, "height": height}],
        "categories": categories,
        "annotations": annotations,
    }


def yolo_lines(coco: dict[str, Any]) -> list[str]:
    """YOLO label lines (`class cx cy w h`, normalised) in CLASS_NAMES order."""
    image = coco["images"][0]
    width, height = image["width"], image["height"]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    lines = []
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        index = CLASS_NAMES.index(names[ann["category_id"]])
        lines.append(
            f"{index} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} "
            f"{w / width:.6f} {h / height:.6f}"
        )
    return lines


def _write_json(path: Path, data: Any) -> None:
    # Plain writes: the sheet's folder is built aside and renamed into place whole.
    path.write_text(json_text(data))


def write_sheet(sheet: Sheet, out_dir: Path) -> Path:
    """Write every artifact of `sheet` into `out_dir/sheet.name`, replacing it atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / sheet.name
    tmp = out_dir / f".{sheet.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    h, w = sheet.image.shape
    Image.fromarray(sheet.image).save(
        tmp / "original.png", dpi=(sheet.dpi, sheet.dpi), compress_level=1
    )
    png = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    cv2.imwrite(str(tmp / "pipe_mask.png"), sheet.pipe_mask, png)
    cv2.imwrite(str(tmp / "node_mask.png"), sheet.node_mask, png)
    coco = coco_from_graph(sheet.graph, w, h)
    _write_json(tmp / "symbols.coco.json", coco)
    (tmp / "symbols.txt").write_text("".join(line + "\n" for line in yolo_lines(coco)))
    (tmp / "classes.txt").write_text("".join(name + "\n" for name in CLASS_NAMES))
    _write_json(tmp / "text.json", {"items": sheet.text_items})
    _write_json(tmp / "regions.json", {"items": sheet.regions})
    _write_json(tmp / "junctions.json", sheet.junctions)
    _write_json(tmp / "graph.json", graph_to_json(sheet.graph))
    write_pid2graph_graphml(sheet.graph, tmp / "graph.graphml")
    _write_json(tmp / "sheet.json", sheet.meta)
    old = out_dir / f".{sheet.name}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final
