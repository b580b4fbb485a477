"""End-to-end scoring of sheet folders with pid.eval.evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import networkx as nx
import numpy as np
import pytest

from pid.core.errors import PidInputError
from pid.core.formats.graph import load_graph
from pid.eval import evaluate, render_table, write_json
from pid.export.graphml import graph_to_pid2graph

RATIO_KEYS = {
    "precision",
    "recall",
    "f1",
    "iou",
    "tolerant_precision",
    "tolerant_recall",
    "tolerant_f1",
    "accuracy",
    "map50",
    "map50_95",
    "ap50",
    "ap50_95",
}


def ratios(tree: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Yield (path, value) for every score in a report dict (junction recalls included)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            here = f"{path}.{key}"
            if key in RATIO_KEYS and not isinstance(value, dict):
                yield here, value
            elif key == "recall" and isinstance(value, dict):
                yield from ((f"{here}.{k}", v) for k, v in value.items())
            else:
                yield from ratios(value, here)
    elif isinstance(tree, list):
        for i, item in enumerate(tree):
            yield from ratios(item, f"{path}[{i}]")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def save(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data))


def test_sheet_against_itself_scores_one_everywhere(truth_sheet: Path) -> None:
    report = evaluate(truth_sheet.parent, truth_sheet.parent).to_dict()

    values = dict(ratios(report))
    assert len(values) > 40  # every section was scored
    assert {k: v for k, v in values.items() if v != 1.0} == {}
    assert report["overall"]["junctions"]["ambiguous_rate"] == 0.0
    assert report["sheets"][0]["missing_artifacts"] == []
    assert report["label_space"] == "class"


def test_single_sheet_folders_are_accepted(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)

    report = evaluate(pred, truth_sheet)

    assert [s.name for s in report.sheets] == ["sheet1"]
    assert report.overall.graph is not None and report.overall.graph.edges.f1 == 1.0


def test_dropped_edge_costs_one_edge_of_recall(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    graph = load(pred / "graph.json")
    dropped = graph["edges"].pop(1)  # j0 - s1
    assert {dropped["source"], dropped["target"]} == {"j0", "s1"}
    save(pred / "graph.json", graph)

    edges = evaluate(pred.parent, truth_sheet.parent).overall.graph.edges  # type: ignore[union-attr]

    assert (edges.tp, edges.n_pred, edges.n_true) == (5, 5, 6)
    assert edges.recall == 5 / 6
    assert edges.precision == 1.0


def test_dropped_edge_breaks_the_symbol_links_through_it(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    graph = load(pred / "graph.json")
    graph["edges"].pop(1)  # j0 - s1: s1 loses its links to s0 and s2, keeps s3 (dashed)
    save(pred / "graph.json", graph)

    links = evaluate(pred.parent, truth_sheet.parent).overall.graph.symbol_links  # type: ignore[union-attr]

    assert (links.tp, links.n_pred, links.n_true) == (2, 2, 4)
    assert links.recall == 0.5


def test_moved_box_unmatches_its_node_and_incident_edges(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    graph = load(pred / "graph.json")
    pump = graph["nodes"][2]
    assert pump["id"] == "s2"
    pump["bbox"] = [105.0, 110.0, 135.0, 140.0]  # 20 px right: IoU 300 / 1500 = 0.2
    save(pred / "graph.json", graph)

    score = evaluate(pred.parent, truth_sheet.parent).overall.graph
    assert score is not None

    assert score.nodes.recall == 6 / 7 and score.nodes.precision == 6 / 7
    assert score.edges.recall == 5 / 6 and score.edges.precision == 5 / 6
    assert score.nodes_by_kind["symbol"].tp == 3
    assert (score.symbol_links.tp, score.symbol_links.n_true) == (2, 4)


def test_moved_box_in_the_boxes_costs_its_class(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    coco = load(pred / "symbols.coco.json")
    pump = next(a for a in coco["annotations"] if a["symbol_id"] == "s2")
    pump["bbox"][0] += 20
    save(pred / "symbols.coco.json", coco)

    symbols = evaluate(pred.parent, truth_sheet.parent).overall.symbols
    assert symbols is not None

    assert symbols.counts.precision == 3 / 4 and symbols.counts.recall == 3 / 4
    assert symbols.per_class["centrifugal_pump"].ap50 == 0.0
    assert symbols.per_class["vessel"].ap50 == 1.0
    assert symbols.map50 == 0.75 and symbols.map50_95 == 0.75


def test_junction_flipped_to_bridge(truth_sheet: Path, copy_sheet: Callable[..., Path]) -> None:
    pred = copy_sheet(truth_sheet)
    points = load(pred / "junctions.json")
    points[1]["kind"] = "bridge"
    save(pred / "junctions.json", points)

    junctions = evaluate(pred.parent, truth_sheet.parent).overall.junctions
    assert junctions is not None

    assert junctions.accuracy == 2 / 3
    assert junctions.confusion["junction"] == {
        "junction": 1,
        "bridge": 1,
        "ambiguous": 0,
        "missed": 0,
    }
    assert junctions.confusion["bridge"]["bridge"] == 1
    assert sum(junctions.confusion["spurious"].values()) == 0
    assert junctions.recall("junction") == 0.5 and junctions.recall("bridge") == 1.0


def test_spurious_node_costs_node_precision(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    graph = load(pred / "graph.json")
    graph["nodes"].append({"id": "e9", "kind": "endpoint", "point": [10.0, 150.0]})
    save(pred / "graph.json", graph)

    score = evaluate(pred.parent, truth_sheet.parent).overall.graph
    assert score is not None

    assert score.nodes.precision == 7 / 8 and score.nodes.recall == 1.0
    assert score.nodes_by_kind["endpoint"].precision == 0.5
    assert score.edges.f1 == 1.0


def test_missing_prediction_folder_scores_zero_and_pools_as_misses(
    tmp_path: Path, kit: Any, copy_sheet: Callable[..., Path]
) -> None:
    truth = tmp_path / "truth"
    copy_sheet(kit.write_sheet(truth / "sheet1"))
    kit.write_sheet(truth / "sheet2")
    (tmp_path / "pred" / "extra").mkdir()

    report = evaluate(tmp_path / "pred", truth)

    missing = report.sheets[1].to_dict()
    assert missing["name"] == "sheet2" and not missing["prediction_found"]
    assert {k: v for k, v in ratios(missing) if v != 0.0} == {}
    graph = report.overall.graph
    assert graph is not None
    assert (graph.edges.tp, graph.edges.n_pred, graph.edges.n_true) == (6, 6, 12)
    assert graph.edges.recall == 0.5 and graph.edges.precision == 1.0
    assert graph.nodes.recall == 0.5
    assert report.overall.junctions is not None and report.overall.junctions.accuracy == 0.5
    symbols = report.overall.symbols
    assert symbols is not None and symbols.counts.recall == 0.5
    # Each class: 1 of 2 instances found at score 1 -> precision 1 up to recall 0.5, then 0.
    assert symbols.map50 == pytest.approx(51 / 101)
    assert report.unmatched_predictions == ["extra"]


def test_missing_artifacts_score_their_section_zero(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    (pred / "pipe_mask.png").unlink()
    (pred / "junctions.json").unlink()

    report = evaluate(pred.parent, truth_sheet.parent)

    sheet = report.sheets[0]
    assert sorted(sheet.missing_artifacts) == ["junctions.json", "pipe_mask.png"]
    assert sheet.scores.masks is not None and sheet.scores.masks.iou == 0.0
    assert sheet.scores.masks.tolerant_f1 == 0.0
    assert sheet.scores.junctions is not None and sheet.scores.junctions.accuracy == 0.0
    assert sheet.scores.graph is not None and sheet.scores.graph.edges.f1 == 1.0


def test_invalid_graph_json_names_the_file_and_place(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    graph = load(pred / "graph.json")
    graph["nodes"][3]["bbox"] = [1, 2, 3]
    save(pred / "graph.json", graph)

    with pytest.raises(PidInputError) as err:
        evaluate(pred.parent, truth_sheet.parent)

    assert str(pred / "graph.json") in str(err.value)
    assert "nodes[3].bbox: expected 4 numbers" in str(err.value)


def test_mismatched_image_sizes_raise(truth_sheet: Path, copy_sheet: Callable[..., Path]) -> None:
    pred = copy_sheet(truth_sheet)
    cv2.imwrite(str(pred / "original.png"), np.zeros((160, 201), np.uint8))

    with pytest.raises(PidInputError, match=r"201x160.*200x160"):
        evaluate(pred.parent, truth_sheet.parent)


def test_mismatched_mask_sizes_raise(truth_sheet: Path, copy_sheet: Callable[..., Path]) -> None:
    pred = copy_sheet(truth_sheet)
    cv2.imwrite(str(pred / "pipe_mask.png"), np.zeros((150, 200), np.uint8))

    with pytest.raises(PidInputError, match=r"pipe_mask.png is 200x150.*200x160"):
        evaluate(pred.parent, truth_sheet.parent)


def test_missing_truth_or_no_sheets_raise(tmp_path: Path, truth_sheet: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PidInputError, match="truth folder not found"):
        evaluate(truth_sheet, tmp_path / "nowhere")
    with pytest.raises(PidInputError, match="no sheet folders"):
        evaluate(truth_sheet, tmp_path / "empty")
    with pytest.raises(PidInputError, match="prediction folder not found"):
        evaluate(tmp_path / "nowhere", truth_sheet)


def test_truth_from_pid2graph_graphml_scores_at_label_level(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    converted = graph_to_pid2graph(load_graph(truth_sheet / "graph.json"))
    for _, attrs in converted.nodes(data=True):
        attrs.pop("kind"), attrs.pop("class", None)
    nx.write_graphml(converted, truth_sheet / "graph.graphml")
    (truth_sheet / "graph.json").unlink()
    (truth_sheet / "symbols.coco.json").unlink()  # boxes now come from the graph's symbols

    report = evaluate(pred.parent, truth_sheet.parent)

    assert report.label_space == "pid2graph"
    assert report.overall.graph is not None and report.overall.graph.edges.f1 == 1.0
    assert report.overall.symbols is not None
    assert set(report.overall.symbols.per_class) == {"valve", "tank", "pump", "instrumentation"}
    assert report.overall.symbols.map50 == 1.0


def test_report_json_and_table(
    truth_sheet: Path, copy_sheet: Callable[..., Path], tmp_path: Path
) -> None:
    copy_sheet(truth_sheet)
    report = evaluate(tmp_path / "pred", truth_sheet.parent)
    out = tmp_path / "report.json"

    write_json(report, out)
    table = render_table(report)

    data = load(out)
    assert set(data) == {
        "pred_dir",
        "truth_dir",
        "label_space",
        "tolerance_px",
        "overall",
        "sheets",
        "unmatched_predictions",
    }
    assert set(data["overall"]) == {
        "symbols",
        "masks",
        "junctions",
        "graph",
        "regions",
        "leaders",
    }
    assert data["sheets"][0]["graph"]["edges"]["tp"] == 6
    assert table.row_count == 2
    assert list(tmp_path.glob(".report.json.*")) == []


def test_eval_imports_no_framework() -> None:
    code = (
        "import sys, pid.eval, pid.export.graphml; "
        "print([m for m in ('celery', 'fastapi', 'sqlalchemy', 'httpx') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_spurious_free_ends_and_junctions_are_counted(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    pred = copy_sheet(truth_sheet)
    graph = load(pred / "graph.json")
    graph["nodes"] += [
        {"id": "ep9", "kind": "endpoint", "point": [60.0, 150.0]},
        {"id": "ep8", "kind": "endpoint", "point": [190.0, 150.0]},
        {"id": "j9", "kind": "junction", "point": [130.0, 150.0]},
    ]
    save(pred / "graph.json", graph)

    report = evaluate(pred, truth_sheet)

    scores = report.to_dict()["overall"]["graph"]["spurious"]
    assert scores == {"junctions": 1, "endpoints": 2}
    table = render_table(report)
    assert [c.header for c in table.columns][-4:] == ["spur J", "spur E", "tables", "leaders"]


def test_regions_are_scored_found_and_cleared(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    table, notes = [150, 100, 40, 40], [10, 130, 30, 20]
    save(
        truth_sheet / "regions.json",
        {"items": [{"kind": "data_table", "bbox": table}, {"kind": "notes", "bbox": notes}]},
    )
    pred = copy_sheet(truth_sheet)
    (pred / "regions.json").unlink()
    mask = cv2.imread(str(pred / "pipe_mask.png"), cv2.IMREAD_GRAYSCALE)
    mask[105:110, 155:180] = 255  # a table rule left in the pipe mask
    cv2.imwrite(str(pred / "pipe_mask.png"), mask)

    missed = evaluate(pred, truth_sheet).overall.regions
    assert missed is not None
    assert (missed.ruled, missed.found, missed.regions, missed.cleared) == (1, 0, 2, 1)

    save(pred / "regions.json", {"items": [{"kind": "ruled", "bbox": [148, 98, 44, 44]}]})
    mask[105:110, 155:180] = 0
    cv2.imwrite(str(pred / "pipe_mask.png"), mask)
    found = evaluate(pred, truth_sheet).to_dict()["overall"]["regions"]
    assert found["recall"] == 1.0 and found["left_in_pipe_mask"] == 0


def test_a_bad_regions_file_names_its_place(
    truth_sheet: Path, copy_sheet: Callable[..., Path]
) -> None:
    save(truth_sheet / "regions.json", {"items": [{"kind": "notes", "bbox": [1, 2, 0, 4]}]})
    with pytest.raises(PidInputError, match=r"regions\.json: items\[0\]\.bbox: width and height"):
        evaluate(copy_sheet(truth_sheet), truth_sheet)
