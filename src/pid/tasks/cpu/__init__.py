"""Tasks of the cpu queue."""
