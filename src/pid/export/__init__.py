"""Exports of the graph: FXML, DEXPI and GraphML (no framework imports).

Every exporter checks the graph against graph.json's schema first
(`pid.core.formats.graph.validate_graph`) and refuses a graph that fails it with a
`PidInputError` naming the failing path; `export_all` checks it once for all three files.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from pid.core.artifacts import DEXPI, FXML, GRAPHML
from pid.core.formats.graph import validate_graph
from pid.export.dexpi import (
    DexpiIntegrityError,
    dpi_of_image,
    read_dexpi_connections,
    write_checked_dexpi,
    write_dexpi,
)
from pid.export.fxml import read_fxml, write_checked_fxml, write_fxml
from pid.export.graphml import write_pid2graph_graphml

__all__ = [
    "DexpiIntegrityError",
    "dpi_of_image",
    "export_all",
    "read_dexpi_connections",
    "read_fxml",
    "write_dexpi",
    "write_fxml",
    "write_graphml",
]


def write_graphml(graph: nx.MultiGraph, path: Path) -> None:
    """Write `graph` as GraphML in PID2Graph's names after checking it against the schema.

    `pid.export.graphml.write_pid2graph_graphml` itself does not check its input; this is the
    exporter's entry point that refuses a graph failing the schema (`PidInputError`).
    """
    validate_graph(graph)
    write_pid2graph_graphml(graph, Path(path))


def export_all(
    graph: nx.MultiGraph, out_dir: Path, *, dpi: float, height_px: int
) -> dict[str, Path]:
    """Write the export stage's three artifacts into `out_dir`.

    Parameters
    ----------
    graph : nx.MultiGraph
        A graph in our model (graph.json's schema); checked once, before anything is written.
    out_dir : Path
        Folder for the files (created if missing); each file is replaced atomically.
    dpi : float
        Resolution of original.png in dots per inch (`dpi_of_image`), for DEXPI's millimetres
        and FXML's `Sheet/@dpi`.
    height_px : int
        Height of original.png in pixels (DEXPI's Y axis points up).

    Returns
    -------
    dict[str, Path]
        ``{"fxml": out_dir/output.fxml, "dexpi": out_dir/output.dexpi.xml,
        "graphml": out_dir/graph.graphml}``.

    Raises
    ------
    PidInputError
        When the graph fails the schema, or `dpi` / `height_px` are not numbers > 0; nothing is
        written then.
    """
    validate_graph(graph)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"fxml": out_dir / FXML, "dexpi": out_dir / DEXPI, "graphml": out_dir / GRAPHML}
    # DEXPI first: it checks dpi and height_px, so a bad value stops the export before any write.
    write_checked_dexpi(graph, paths["dexpi"], dpi=dpi, height_px=height_px)
    write_checked_fxml(graph, paths["fxml"], dpi=dpi)
    write_pid2graph_graphml(graph, paths["graphml"])
    return paths
