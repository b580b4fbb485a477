"""What the maintenance tests share: the site their fixture sets up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from pid.tasks.runtime import Runtime

#: The Redis database of the maintenance tests: their locks, and any broker a test starts.
REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass
class Site:
    runtime: Runtime
    redis: redis.Redis
    data_dir: Path
    tmp_dir: Path
