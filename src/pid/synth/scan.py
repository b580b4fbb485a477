"""Scan style: the clean sheet as a scanner would give it back.

Breaks, a small rotation, an uneven background, blur, noise, specks and JPEG artefacts change
the picture only. The rotation is an affine warp that every box, point, polyline and mask goes
through as well, so the ground truth still describes the picture exactly.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import networkx as nx
import numpy as np

from pid.synth.params import UNIT_AREA, GeneratorParams


def break_lines(
    image: np.ndarray,
    graph: nx.MultiGraph,
    junctions: list[dict[str, Any]],
    rng: np.random.Generator,
    params: GeneratorParams,
) -> None:
    """Erase short pieces (1-3 px) of solid pipe strokes, away from meeting points and ends."""
    edges = [d for _, _, d in graph.edges(data=True) if d["line_type"] == "solid"]
    if not edges:
        return
    lengths = np.asarray([d["length"] for d in edges], dtype=np.float64)
    points = np.asarray([j["point"] for j in junctions], dtype=np.float64).reshape(-1, 2)
    count = round(params.scan_breaks_per_unit * image.size / UNIT_AREA)
    keep_away = 14.0
    for _ in range(count):
        edge = edges[int(rng.choice(len(edges), p=lengths / lengths.sum()))]
        poly = np.asarray(edge["polyline"], dtype=np.float64)
        k = int(rng.integers(len(poly) - 1))
        a, b = poly[k], poly[k + 1]
        if a[0] != b[0] and a[1] != b[1]:
            continue  # hop arcs stay whole
        seg_len = float(np.abs(b - a).sum())
        if seg_len < 2 * keep_away + 4:
            continue
        t = rng.uniform(keep_away, seg_len - keep_away)
        at = a + (b - a) / seg_len * t
        if len(points) and float(np.min(np.linalg.norm(points - at, axis=1))) < keep_away:
            continue
        size = int(rng.integers(params.scan_break_px[0], params.scan_break_px[1] + 1))
        half_w = math.ceil(edge["width"] / 2) + 1
        x, y = round(at[0]), round(at[1])
        if a[1] == b[1]:
            image[y - half_w : y + half_w + 1, x : x + size] = 255
        else:
            image[y : y + size, x - half_w : x + half_w + 1] = 255


def scan_matrix(
    width: int, height: int, rng: np.random.Generator, params: GeneratorParams
) -> np.ndarray:
    angle = float(rng.uniform(-params.scan_rotation_deg, params.scan_rotation_deg))
    scale = 1.0 + float(rng.uniform(-params.scan_scale_jitter, params.scan_scale_jitter))
    matrix: np.ndarray = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, scale)
    return matrix


def warp_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    warped: np.ndarray = pts @ matrix[:, :2].T + matrix[:, 2]
    return warped


def warp_box_xyxy(box: list[float], matrix: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = box
    corners = warp_points(np.asarray([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), matrix)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return [
        round(float(lo[0]), 2),
        round(float(lo[1]), 2),
        round(float(hi[0]), 2),
        round(float(hi[1]), 2),
    ]


def warp_box_xywh(box: list[float], matrix: np.ndarray) -> list[float]:
    x, y, w, h = box
    x1, y1, x2, y2 = warp_box_xyxy([x, y, x + w, y + h], matrix)
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]


def warp_image(image: np.ndarray, matrix: np.ndarray, border: int) -> np.ndarray:
    h, w = image.shape
    return cv2.warpAffine(
        image,
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def warp_mask(mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    warped = warp_image(mask, matrix, 0)
    return np.where(warped >= 128, 255, 0).astype(np.uint8)


def warp_graph(graph: nx.MultiGraph, matrix: np.ndarray) -> None:
    for _, data in graph.nodes(data=True):
        if "bbox" in data:
            data["bbox"] = warp_box_xyxy(data["bbox"], matrix)
        if "point" in data:
            p = warp_points(np.asarray(data["point"]), matrix)[0]
            data["point"] = [round(float(p[0]), 2), round(float(p[1]), 2)]
    for _, _, data in graph.edges(data=True):
        poly = warp_points(np.asarray(data["polyline"]), matrix)
        data["polyline"] = [[round(float(x), 2), round(float(y), 2)] for x, y in poly]
        data["length"] = round(float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum()), 2)


def degrade(image: np.ndarray, rng: np.random.Generator, params: GeneratorParams) -> np.ndarray:
    """Uneven background, blur, noise, specks and a JPEG round trip."""
    h, w = image.shape
    grid = rng.uniform(0.0, 1.0, size=(4, 5)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    dip = float(rng.uniform(*params.scan_background_dip))
    light = 1.0 - dip * np.clip(field, 0.0, 1.0)
    out = image.astype(np.float32)
    out *= light
    sigma = float(rng.uniform(*params.scan_blur_sigma))
    cv2.GaussianBlur(out, (0, 0), sigma, dst=out)
    noise = rng.standard_normal(size=out.shape, dtype=np.float32)
    noise *= float(rng.uniform(*params.scan_noise_sigma))
    out += noise
    del noise
    n_specks = round(params.scan_speckles_per_unit * image.size / UNIT_AREA)
    xs = rng.integers(0, w, size=n_specks)
    ys = rng.integers(0, h, size=n_specks)
    out[ys, xs] = rng.uniform(40, 140, size=n_specks).astype(np.float32)
    result = np.clip(out, 0, 255).astype(np.uint8)
    quality = int(rng.integers(params.scan_jpeg_quality[0], params.scan_jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", result, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return np.asarray(decoded, dtype=np.uint8)
