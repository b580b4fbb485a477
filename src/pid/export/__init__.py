"""Exports of the graph: FXML, DEXPI and GraphML (no framework imports)."""
