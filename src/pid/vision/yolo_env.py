"""Offline set-up of ultralytics, to run before the package is first imported.

Ultralytics reads its environment once, at import: whether it may go online (``YOLO_OFFLINE``),
whether it may pip-install missing packages (``YOLO_AUTOINSTALL``) and where its settings and
fonts live (``YOLO_CONFIG_DIR``). Training checks for ``Arial.ttf`` (``Arial.Unicode.ttf`` for
non-ASCII class names) in that folder and downloads it when absent, so a local TTF is copied
there under both names. Every module of pid that uses ultralytics (or SAHI, which imports it)
calls `import_ultralytics` (or at least `prepare_ultralytics`) before anything imports it.

Importing ultralytics also replaces ``PIL.Image.open`` for the whole process with a wrapper
that, on a file Pillow cannot identify, installs and registers a HEIF plugin and retries.
Offline that turns a corrupt upload's ``UnidentifiedImageError`` into a
``ModuleNotFoundError`` (online, into a pip install at run time), so the input loaders'
one-line refusals would fail in any process that has loaded the detector. `import_ultralytics`
puts Pillow's own function back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pid.core.files import copy_atomically

__all__ = [
    "DEFAULT_CONFIG_DIR",
    "FONT_NAMES",
    "import_ultralytics",
    "prepare_ultralytics",
    "resolve_device",
]

#: The project's own ultralytics folder (under var/, which git ignores), relative to the CWD.
DEFAULT_CONFIG_DIR = Path("var/ultralytics")
#: The font files ultralytics looks for in its settings folder.
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
#: Ultralytics puts its settings in this subfolder of YOLO_CONFIG_DIR.
_SETTINGS_SUBDIR = "Ultralytics"


def prepare_ultralytics(config_dir: Path | None = None) -> Path:
    """Make ultralytics work offline with its settings and fonts in `config_dir`.

    Parameters
    ----------
    config_dir : Path, optional
        Folder given to ultralytics as ``YOLO_CONFIG_DIR``; `DEFAULT_CONFIG_DIR` when None.
        Created when absent.

    Returns
    -------
    Path
        The folder ultralytics reads its settings and fonts from: ``config_dir/Ultralytics``,
        or, when ultralytics was already imported by an earlier call with another folder, the
        folder it uses since (the fonts are put there too).

    Raises
    ------
    RuntimeError
        When ultralytics was imported before any call, while it could go online or install
        packages: its environment is fixed at import, so the process must call this first.

    Notes
    -----
    Idempotent, and cheap once the fonts are in place.
    """
    imported = _imported_settings_dir()
    # Also set after an import, for child processes (dataloader workers) that import again.
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    if imported is not None:
        _install_fonts(imported)
        return imported
    base = (config_dir if config_dir is not None else DEFAULT_CONFIG_DIR).resolve()
    settings_dir = base / _SETTINGS_SUBDIR
    settings_dir.mkdir(parents=True, exist_ok=True)
    _install_fonts(settings_dir)
    os.environ["YOLO_CONFIG_DIR"] = str(base)
    return settings_dir


def import_ultralytics(config_dir: Path | None = None) -> Path:
    """`prepare_ultralytics`, then import ultralytics and keep Pillow's own ``Image.open``.

    Returns the settings folder, as `prepare_ultralytics` does.
    """
    settings_dir = prepare_ultralytics(config_dir)
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original
    return settings_dir


def resolve_device(device: str) -> str:
    """Turn a device setting ("auto", "cpu", "cuda", "cuda:N") into a torch device string.

    "auto" is the first CUDA device when torch sees one, else the CPU.
    """
    import torch

    name = device.strip().lower()
    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return "cuda:0"
    if name == "cpu" or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise ValueError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N")


def _install_fonts(settings_dir: Path) -> None:
    """Copy matplotlib's DejaVu Sans into `settings_dir` under the names ultralytics wants."""
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in FONT_NAMES:
        target = settings_dir / name
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            continue
        # A worker starting at the same time must never see a half-written font file.
        copy_atomically(source, target)


def _imported_settings_dir() -> Path | None:
    """Ultralytics' settings folder when it is already imported (None when it is not).

    Refuses an import made while ultralytics could go online or pip-install: that cannot be
    undone in this process.
    """
    utils = sys.modules.get("ultralytics.utils")
    if utils is None:
        return None
    if utils.ONLINE or utils.AUTOINSTALL:
        raise RuntimeError(
            f"ultralytics was imported before prepare_ultralytics (online={utils.ONLINE}, "
            f"autoinstall={utils.AUTOINSTALL}); call prepare_ultralytics before anything "
            "imports ultralytics or sahi"
        )
    return Path(utils.USER_CONFIG_DIR).resolve()
