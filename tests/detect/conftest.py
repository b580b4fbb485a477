"""Fixtures of the detector tests: an offline ultralytics set-up and a tiny model config."""

from __future__ import annotations

from pathlib import Path

import pytest

from pid.vision.yolo_env import import_ultralytics


@pytest.fixture(scope="session")
def ultralytics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_ultralytics(tmp_path_factory.mktemp("ultralytics"))


@pytest.fixture(scope="session")
def tiny_model_cfg(tmp_path_factory: pytest.TempPathFactory, ultralytics_dir: Path) -> Path:
    """yolov8n's config at half its width (width multiple 0.25 -> 0.125): a quarter the work."""
    from ultralytics.utils import ROOT

    stock = (ROOT / "cfg" / "models" / "v8" / "yolov8.yaml").read_text()
    line = "n: [0.33, 0.25, 1024]"
    assert line in stock, "the bundled yolov8.yaml changed its scales"
    # The file name keeps "yolov8n" so ultralytics picks the "n" scale from it.
    cfg = tmp_path_factory.mktemp("model") / "yolov8n-tiny.yaml"
    cfg.write_text(stock.replace(line, "n: [0.33, 0.125, 1024]"))
    return cfg
