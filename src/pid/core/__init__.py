"""The shared vocabulary, with no framework: errors, atomic files, the class table and the
formats of the contracts every part shares (boxes, graph.json, junctions.json, masks, artifact
names)."""
