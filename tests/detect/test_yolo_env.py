"""Ultralytics runs offline, with its settings and fonts in a folder the project owns."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

from pid.vision.yolo_env import FONT_NAMES, prepare_ultralytics, resolve_device


def test_fonts_and_offline_mode_are_in_place(ultralytics_dir: Path) -> None:
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in FONT_NAMES:
        assert (ultralytics_dir / name).read_bytes() == dejavu.read_bytes()
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert os.environ["YOLO_AUTOINSTALL"] == "0"
    assert Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" == ultralytics_dir


def test_ultralytics_reads_that_folder_and_stays_offline(ultralytics_dir: Path) -> None:
    from ultralytics import utils
    from ultralytics.utils.checks import check_font

    assert Path(utils.USER_CONFIG_DIR).resolve() == ultralytics_dir
    assert utils.ONLINE is False
    assert utils.AUTOINSTALL is False
    # What training asks for: found locally, never downloaded.
    assert Path(str(check_font("Arial.ttf"))) == ultralytics_dir / "Arial.ttf"
    assert Path(str(check_font("Arial.Unicode.ttf"))) == ultralytics_dir / "Arial.Unicode.ttf"


def test_a_later_call_keeps_the_folder_in_use(ultralytics_dir: Path, tmp_path: Path) -> None:
    from ultralytics import utils  # imported: its folder can no longer change

    (ultralytics_dir / "Arial.ttf").unlink()
    assert prepare_ultralytics(tmp_path / "elsewhere") == ultralytics_dir
    assert (ultralytics_dir / "Arial.ttf").is_file()
    assert Path(utils.USER_CONFIG_DIR).resolve() == ultralytics_dir


def test_pillow_still_refuses_unreadable_images_itself(
    ultralytics_dir: Path, tmp_path: Path
) -> None:
    """Ultralytics swaps in an Image.open that fetches a HEIF plugin; the import undoes it."""
    from PIL import Image, UnidentifiedImageError
    from ultralytics.utils import patches

    assert Image.open is not patches.image_open
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(UnidentifiedImageError):
        Image.open(tmp_path / "bad.png")


@pytest.mark.parametrize(
    ("setting", "device"),
    [("cpu", "cpu"), (" CPU ", "cpu"), ("cuda", "cuda:0"), ("cuda:1", "cuda:1")],
)
def test_device_settings(setting: str, device: str) -> None:
    assert resolve_device(setting) == device


def test_auto_device_follows_torch() -> None:
    import torch

    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("setting", ["gpu", "cuda:x", "cuda:", ""])
def test_unknown_devices_are_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N"):
        resolve_device(setting)
