"""PostgreSQL state of the service: models, the async engine, repositories and migrations.

Import the pieces from their modules (`pid.db.models`, `pid.db.engine`, `pid.db.repositories`,
`pid.db.migrate`); this package keeps no engine of its own, because every worker process builds
one on its own event loop.
"""
