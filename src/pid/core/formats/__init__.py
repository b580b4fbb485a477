"""One reader, writer and check per shared contract (docs/formats.md): boxes (`boxes`),
graph.json (`graph`), junctions.json (`junctions`), masks and image headers (`images`), and the
JSON layout every JSON artifact uses (`jsonfile`)."""
