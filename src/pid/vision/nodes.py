"""Node mask: the areas of symbol boxes, where pipes stop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def node_mask_from_boxes(
    boxes_xyxy: NDArray[np.floating] | NDArray[np.integer] | Sequence[Sequence[float]],
    shape: tuple[int, int],
    *,
    pad: int = 0,
) -> NDArray[np.bool_]:
    """Fill symbol boxes into a boolean mask.

    Parameters
    ----------
    boxes_xyxy
        (N, 4) boxes [x1, y1, x2, y2] in pixels, corners inclusive.
    shape
        (height, width) of the image.
    pad
        Pixels to grow every box by, so pipe strokes that end on a box edge end inside it.

    Returns
    -------
    (height, width) bool array, True inside a box.
    """
    height, width = shape
    mask = np.zeros((height, width), dtype=bool)
    arr = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    for x1, y1, x2, y2 in arr:
        c1 = max(int(np.floor(x1)) - pad, 0)
        r1 = max(int(np.floor(y1)) - pad, 0)
        c2 = min(int(np.ceil(x2)) + pad, width - 1)
        r2 = min(int(np.ceil(y2)) + pad, height - 1)
        if c2 >= c1 and r2 >= r1:
            mask[r1 : r2 + 1, c1 : c2 + 1] = True
    return mask
