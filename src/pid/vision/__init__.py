"""Pure image and graph algorithms of the pipeline (no framework imports)."""
