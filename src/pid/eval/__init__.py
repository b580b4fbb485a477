"""Scoring of predicted sheets against ground truth (no framework imports).

`evaluate` scores a prediction folder against a truth folder and returns an `EvalReport`;
`render_table` and `write_json` present it. The section scorers (`score_symbols`, `mask_counts`,
`score_junctions`, `score_graph`) and `load_pid2graph_graphml` (PID2Graph's GraphML ground
truth) are usable on their own; the artifact readers are in `pid.core.formats`.
"""

from pid.eval.counts import Counts
from pid.eval.graph import GraphScore, match_nodes, score_graph, symbol_links
from pid.eval.junctions import JunctionScore, match_radius, score_junctions
from pid.eval.masks import MaskCounts, mask_counts
from pid.eval.pid2graph import load_pid2graph_graphml
from pid.eval.report import EvalReport, Sections, SheetReport, render_table, write_json
from pid.eval.score import evaluate
from pid.eval.symbols import SymbolScore, score_symbols

__all__ = [
    "Counts",
    "EvalReport",
    "GraphScore",
    "JunctionScore",
    "MaskCounts",
    "Sections",
    "SheetReport",
    "SymbolScore",
    "evaluate",
    "load_pid2graph_graphml",
    "mask_counts",
    "match_nodes",
    "match_radius",
    "render_table",
    "score_graph",
    "score_junctions",
    "score_symbols",
    "symbol_links",
    "write_json",
]
