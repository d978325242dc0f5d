"""The procedural scenes' objects: shapes as signed distances, their coverage, placement and compositing.

Coverage comes from a signed distance (in pixels, negative inside), anti-aliased over one pixel. Sizes are
``(width, height)``, arrays ``(height, width)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

SHAPES: tuple[str, ...] = ("disc", "ellipse", "box", "triangle", "ring", "star", "cross")

#: the chance that an object is placed onto an earlier one
_OVERLAP_PROBABILITY = 0.4


def _polygon_distance(px: np.ndarray, py: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points ``(N,)`` to a closed polygon ``(E, 2)``."""
    start = vertices[:, None, :]  # (E, 1, 2)
    edge = np.roll(vertices, -1, axis=0)[:, None, :] - start
    dx = px[None, :] - start[..., 0]  # (E, N)
    dy = py[None, :] - start[..., 1]
    length2 = np.maximum(edge[..., 0] ** 2 + edge[..., 1] ** 2, 1e-12)
    t = np.clip((dx * edge[..., 0] + dy * edge[..., 1]) / length2, 0.0, 1.0)
    distance = np.sqrt(np.min((dx - t * edge[..., 0]) ** 2 + (dy - t * edge[..., 1]) ** 2, axis=0))
    # Even-odd rule: count the edges a horizontal ray from each point crosses.
    y0, y1 = start[..., 1], start[..., 1] + edge[..., 1]
    straddles = (y0 > py[None, :]) != (y1 > py[None, :])
    slope = edge[..., 0] / np.where(edge[..., 1] == 0, 1.0, edge[..., 1])  # dx/dy of each edge
    crossing_x = start[..., 0] + (py[None, :] - y0) * slope
    inside = np.count_nonzero(straddles & (px[None, :] < crossing_x), axis=0) % 2 == 1
    return np.where(inside, -distance, distance)


def _regular_polygon(count: int, radius: float, rotation: float, inner: float | None = None) -> np.ndarray:
    """Vertices of a regular polygon (or, with ``inner``, a star alternating radius and ``inner``)."""
    if inner is None:
        angles = rotation + 2 * np.pi * np.arange(count) / count
        radii = np.full(count, radius)
    else:
        angles = rotation + np.pi * np.arange(2 * count) / count
        radii = np.where(np.arange(2 * count) % 2 == 0, radius, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _shape_distance(shape: str, rng: np.random.Generator, radius: float) -> Distance:
    """Draw the shape's random parameters; return its signed distance for offsets from its centre."""
    angle = rng.uniform(0, 2 * np.pi)
    if shape == "disc":
        return lambda dx, dy: np.hypot(dx, dy) - radius
    if shape == "ring":
        width = radius * rng.uniform(0.3, 0.5)
        return lambda dx, dy: np.abs(np.hypot(dx, dy) - (radius - width / 2)) - width / 2
    if shape == "ellipse":
        a, b = radius, radius * rng.uniform(0.45, 0.75)
        cos, sin = math.cos(angle), math.sin(angle)

        def ellipse(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
            u, v = dx * cos + dy * sin, -dx * sin + dy * cos
            # First-order distance estimate: (|p/r| - 1) * |p/r| / |p/r²|; exact enough for a 1-pixel rim.
            k0 = np.hypot(u / a, v / b)
            k1 = np.maximum(np.hypot(u / a**2, v / b**2), 1e-9)
            return k0 * (k0 - 1.0) / k1

        return ellipse
    if shape == "box":
        half = radius * np.array([1.0, rng.uniform(0.5, 1.0)]) / math.sqrt(1.3)
        vertices = _rotate(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half, angle)
    elif shape == "triangle":
        vertices = _regular_polygon(3, radius * 1.1, angle)
    elif shape == "star":
        vertices = _regular_polygon(int(rng.integers(5, 7)), radius * 1.15, angle, inner=radius * 0.5)
    elif shape == "cross":
        arm = radius * rng.uniform(0.3, 0.4)
        r = radius
        outline = np.array(
            [
                [-arm, -r],
                [arm, -r],
                [arm, -arm],
                [r, -arm],
                [r, arm],
                [arm, arm],
                [arm, r],
                [-arm, r],
                [-arm, arm],
                [-r, arm],
                [-r, -arm],
                [-arm, -arm],
            ]
        )
        vertices = _rotate(outline, angle)
    else:  # pragma: no cover - SHAPES lists every case above
        raise ValueError(f"shape={shape!r} is not one of {SHAPES}")
    return lambda dx, dy: _polygon_distance(dx.ravel(), dy.ravel(), vertices).reshape(dx.shape)


def object_coverage(
    shape: str, rng: np.random.Generator, centre: tuple[float, float], radius: float, size: tuple[int, int]
) -> np.ndarray:
    """The object's coverage ``(H, W)`` float32 in [0, 1]: 1 inside, 0 outside, a 1-pixel ramp between."""
    width, height = size
    distance = _shape_distance(shape, rng, radius)
    coverage = np.zeros((height, width), dtype=np.float32)
    # Only the bounding box (plus the rim) can be covered: evaluate the distance there.
    extent = 1.25 * radius + 1.0
    left, right = max(0, int(centre[0] - extent)), min(width, math.ceil(centre[0] + extent) + 1)
    top, bottom = max(0, int(centre[1] - extent)), min(height, math.ceil(centre[1] + extent) + 1)
    dx = np.arange(left, right, dtype=np.float32) + 0.5 - centre[0]
    dy = np.arange(top, bottom, dtype=np.float32) + 0.5 - centre[1]
    dx, dy = np.meshgrid(dx, dy)
    coverage[top:bottom, left:right] = np.clip(0.5 - distance(dx, dy), 0.0, 1.0)
    return coverage


def composite(background: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Paint ``(coverage, colour)`` layers over ``background`` in order; return uint8.

    Where a layer's coverage is exactly 0 the image is unchanged (``x * 1 + c * 0 == x`` in floating point)
    and where it is exactly 1 the result is the colour whatever lay below: this is what makes every
    ground-truth background identical to the image outside the removed object's mask.
    """
    image = background
    for coverage, colour in layers:
        weight = coverage[..., None]
        # Not the lerp form x + (c - x) * w, which is not exactly c at w == 1.
        image = image * (1 - weight) + colour * weight
    return np.rint(image).astype(np.uint8)


def place_object(
    rng: np.random.Generator, radius: float, size: tuple[int, int], placed: list[tuple[float, float, float]]
) -> tuple[float, float]:
    """A centre for an object of ``radius``: inside the image, often on top of an earlier object."""
    width, height = size
    if placed and rng.random() < _OVERLAP_PROBABILITY:
        other_x, other_y, other_radius = placed[int(rng.integers(len(placed)))]
        distance = (radius + other_radius) * rng.uniform(0.5, 0.9)
        direction = rng.uniform(0, 2 * np.pi)
        x = other_x + distance * math.cos(direction)
        y = other_y + distance * math.sin(direction)
    else:
        x, y = rng.uniform(0, width), rng.uniform(0, height)
    return float(np.clip(x, radius, width - radius)), float(np.clip(y, radius, height - radius))


def visible_masks(coverages: list[np.ndarray]) -> list[np.ndarray]:
    """Per object, the pixels it changes: covered by it and not fully covered by an object above it."""
    visible = []
    for index, coverage in enumerate(coverages):
        mask = coverage > 0
        for above in coverages[index + 1 :]:
            mask &= above < 1
        visible.append(mask)
    return visible
