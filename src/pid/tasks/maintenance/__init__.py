"""Tasks of the maintenance queue."""
