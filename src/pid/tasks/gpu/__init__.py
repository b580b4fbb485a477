"""Tasks of the gpu queue."""
