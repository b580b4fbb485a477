from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

RunPid = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_pid() -> RunPid:
    """Run the `pid` command in a fresh interpreter, as a user would."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pid.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run
