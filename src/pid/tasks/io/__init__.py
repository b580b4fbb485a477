"""Tasks of the io queue."""
