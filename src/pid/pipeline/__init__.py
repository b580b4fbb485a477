"""The stage table and its in-process runner (the Celery tasks are the other runner)."""
