"""Every density and range the generator uses, in one frozen record.

`sheet.json` of each generated sheet stores these values, so a data set says how it was made.
The floors that the tests assert (at least 40 meeting points and 5 of each kind per 2000x1400
of sheet area) are frozen in the tests themselves, not read from here: the pipeline is never
tuned by making the generator easier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: The area that densities are counted per: a 2000x1400 sheet.
UNIT_AREA = 2000 * 1400

#: Smallest sheet the generator draws: room for a border, a title block, symbols and pipes.
MIN_SIZE = (1000, 700)
MAX_SIZE = (20000, 14000)

#: Kinds of meeting point; the first three join pipes, the last three are bridges.
JUNCTION_STYLES = ("t_dot", "t_plain", "cross_dot")
BRIDGE_STYLES = ("cross_plain", "hop", "gap")
MEETING_STYLES = JUNCTION_STYLES + BRIDGE_STYLES


@dataclass(frozen=True, slots=True)
class GeneratorParams:
    """Densities are per `UNIT_AREA` of sheet; lengths are pixels; ranges are inclusive."""

    terminals_per_unit: float = 9.0
    #: Target count of each meeting-point style per unit area (the tests assert a floor of 5).
    meeting_points_per_style_per_unit: float = 8.0
    free_ends_per_unit: float = 2.0
    inline_symbols_per_pipe: tuple[int, int] = (0, 3)
    #: Share of control valves that get an instrument bubble and a dashed signal line.
    signal_line_share: float = 0.8
    pipe_width: tuple[int, int] = (1, 4)
    signal_width: tuple[int, int] = (1, 2)
    symbol_line_width: tuple[int, int] = (1, 3)
    #: White space on each side between a gap bridge's line end and the line it passes.
    gap_bridge_px: tuple[int, int] = (4, 12)
    dot_radius_extra_px: tuple[int, int] = (2, 3)
    hop_radius_extra_px: tuple[int, int] = (3, 5)
    dash_px: tuple[int, int] = (8, 14)
    dash_space_px: tuple[int, int] = (4, 7)
    #: Distances that keep meeting points, bends and symbols apart so each is one thing.
    parallel_clearance_px: int = 34
    meeting_separation_px: int = 30
    #: How close a line end may come to a line it does not meet (more than any gap bridge).
    end_clearance_px: int = 22
    box_margin_px: int = 14
    stub_px: tuple[int, int] = (30, 70)
    free_end_px: tuple[int, int] = (40, 90)
    line_number_min_run_px: int = 220
    line_number_share: float = 0.5
    #: Ruled tables, description headers and notes blocks tried per unit area, each kind.
    tables_per_unit: float = 1.0
    #: Leader lines from a note to a pipe tried per unit area.
    leaders_per_unit: float = 4.0
    # Scan style: every figure below changes the picture, never the topology.
    scan_rotation_deg: float = 1.0
    scan_scale_jitter: float = 0.004
    scan_break_px: tuple[int, int] = (1, 3)
    scan_breaks_per_unit: float = 60.0
    scan_noise_sigma: tuple[float, float] = (4.0, 12.0)
    scan_blur_sigma: tuple[float, float] = (0.4, 0.9)
    scan_jpeg_quality: tuple[int, int] = (45, 80)
    scan_background_dip: tuple[float, float] = (0.08, 0.22)
    scan_speckles_per_unit: float = 400.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_PARAMS = GeneratorParams()
