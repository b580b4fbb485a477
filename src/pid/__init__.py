"""pid: raster P&IDs to validated topological graphs."""
