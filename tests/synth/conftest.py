from __future__ import annotations

import pytest

from pid.synth.sheet import Sheet, generate_sheet


@pytest.fixture(scope="session")
def clean_sheet() -> Sheet:
    return generate_sheet(11, 0, width=2000, height=1400, style="clean")


@pytest.fixture(scope="session")
def scan_sheet() -> Sheet:
    return generate_sheet(11, 0, width=2000, height=1400, style="scan")
