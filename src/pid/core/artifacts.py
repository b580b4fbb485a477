"""The names of a diagram's artifacts, as files in a folder and as storage keys.

Storage keys are only ever built from these names, never from user input.
"""

from __future__ import annotations

ORIGINAL = "original.png"
SYMBOLS = "symbols.json"
DETECTIONS = "detections.json"
YOLO_PREDICTED = "yolo_predicted.txt"
VALIDATED_DETECTIONS = "validated_detections.json"
NODE_MASK = "node_mask.png"
REGIONS = "regions.json"
PIPE_MASK = "pipe_mask.png"
SKELETON = "skeleton.png"
JUNCTIONS = "junctions.json"
JUNCTION_MASK = "junction_mask.png"
BRIDGE_MASK = "bridge_mask.png"
GRAPH = "graph.json"
VALIDATED_GRAPH = "validated_graph.json"
OVERLAY = "overlay.png"
FXML = "output.fxml"
DEXPI = "output.dexpi.xml"
GRAPHML = "graph.graphml"

#: What retention keeps: the original, the supplied symbols and the outputs.
KEPT_ARTIFACTS = (ORIGINAL, SYMBOLS, GRAPH, VALIDATED_GRAPH, OVERLAY, FXML, DEXPI, GRAPHML)
