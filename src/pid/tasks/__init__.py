"""Celery tasks, one package per queue: gpu, cpu, io, maintenance (routing follows the package)."""
