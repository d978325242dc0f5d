"""Procedural scenes with a known background behind every object: training data and ground truth.

Every scene is a muted background (gradients, a wavy horizon, stripes, checkers, low-frequency noise,
wood grain, grass, tiles, bricks or plaid) with 1–3 flat, saturated objects on top (discs, ellipses,
boxes, triangles, rings, stars, crosses), some overlapping. For each object the generator also renders
the **ground truth of its removal**: the same scene without that object, identical to the image outside
the object's mask.

Python::

    from attentive_eraser.demo.scenes import HELD_OUT_SEEDS, make_scene, object_colour_fraction
    scene = make_scene(HELD_OUT_SEEDS[0], size=64)
    scene.image, scene.masks[0], scene.backgrounds[0]     # (64, 64, 3) uint8, (64, 64) bool, uint8
    object_colour_fraction(result, scene.masks[0])          # ~0 once the object is really gone

Conventions (those of :mod:`attentive_eraser.imaging`): sizes are ``(width, height)``, arrays are
``(height, width[, 3])``, a mask is ``True`` on the object. Objects are listed bottom to top (drawing
order). Only numpy is needed; the same seed gives the same arrays.

Colours: the backgrounds mix colours of :data:`PALETTES` only (every background pixel is a convex
combination of one or two palettes' colours), while objects use :data:`OBJECT_COLOURS`, all of which lie
far from every palette colour. So "is this pixel object-coloured?" is a simple distance test
(:func:`object_colour_fraction`), which is what the removal benchmark's *object reappearance* rests on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "BACKGROUND_KINDS",
    "DEFAULT_COLOUR_TOLERANCE",
    "HELD_OUT_SEEDS",
    "OBJECT_COLOURS",
    "PALETTES",
    "SHAPES",
    "STRUCTURED_KINDS",
    "TRAIN_SEEDS",
    "Scene",
    "make_scene",
    "object_colour_fraction",
]

#: seeds of the training scenes, and of the held-out scenes the benchmark uses (disjoint ranges)
TRAIN_SEEDS = range(1_000_000)
HELD_OUT_SEEDS = range(10_000_000, 10_001_000)

#: saturated object colours (RGB); every one is ≥ 100 away (RGB Euclidean) from every background pixel
OBJECT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (225, 30, 35),  # red
    (255, 130, 0),  # orange
    (250, 225, 20),  # yellow
    (30, 205, 50),  # green
    (0, 215, 235),  # cyan
    (35, 65, 235),  # blue
    (225, 35, 205),  # magenta
    (135, 35, 235),  # violet
)

#: muted background palettes (RGB), four colours each
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "sand": ((214, 196, 160), (190, 168, 128), (160, 140, 105), (232, 220, 194)),
    "slate": ((112, 122, 134), (140, 148, 158), (86, 94, 104), (170, 176, 182)),
    "sky": ((150, 178, 200), (184, 202, 216), (122, 150, 174), (210, 218, 226)),
    "fog": ((200, 202, 204), (222, 222, 220), (176, 180, 184), (238, 236, 232)),
    "dusk": ((122, 106, 128), (152, 130, 140), (96, 86, 108), (182, 162, 160)),
    "moss": ((96, 112, 80), (122, 134, 98), (72, 88, 64), (146, 150, 118)),
    "grass": ((92, 116, 64), (70, 96, 50), (116, 134, 82), (56, 76, 44)),
    "clay": ((168, 122, 102), (140, 102, 88), (188, 152, 130), (116, 88, 76)),
    "wood": ((150, 112, 78), (122, 90, 62), (176, 140, 102), (98, 74, 54)),
    "stone": ((128, 124, 116), (104, 100, 94), (156, 150, 140), (186, 180, 170)),
    "sea": ((84, 116, 130), (106, 140, 150), (66, 94, 110), (140, 166, 168)),
    "night": ((42, 46, 58), (62, 66, 80), (30, 32, 42), (84, 88, 98)),
}

BACKGROUND_KINDS: tuple[str, ...] = (
    "vertical_gradient",
    "horizontal_gradient",
    "horizon",
    "stripes",
    "checkers",
    "noise",
    "wood",
    "grass",
    "tiles",
    "bricks",
    "plaid",
)

#: the background kinds with repeated structure and sharp edges crossing the objects, which interpolating
#: inpainters smear and a model that copies structure from elsewhere in the image can rebuild
STRUCTURED_KINDS: tuple[str, ...] = ("stripes", "checkers", "tiles", "bricks", "plaid")

SHAPES: tuple[str, ...] = ("disc", "ellipse", "box", "triangle", "ring", "star", "cross")

#: RGB distance under which a pixel counts as object-coloured (half the smallest object-to-background gap)
DEFAULT_COLOUR_TOLERANCE = 50.0

_ALL_PALETTES = tuple(PALETTES)
# Which palettes suit which background kind (those not listed may use any palette).
_KIND_PALETTES: dict[str, tuple[str, ...]] = {
    "wood": ("wood", "clay", "sand"),
    "grass": ("grass", "moss"),
}
_SKY_PALETTES = ("sky", "fog", "dusk", "sand", "night")
_GROUND_PALETTES = ("moss", "grass", "sand", "stone", "clay", "slate")

# Objects: radius as a share of the shorter side, and the chance that one is placed onto an earlier one.
_RADIUS_RANGE = (0.09, 0.2)
_OVERLAP_PROBABILITY = 0.4
# Every object keeps at least this share of its own area visible, and the image keeps this much background.
_MIN_VISIBLE_SHARE = 0.5
_MAX_OBJECT_COVER = 0.5
_PLACEMENT_TRIES = 8


@dataclass(frozen=True)
class Scene:
    """One rendered scene. Arrays are read-only; objects are listed bottom to top.

    Attributes:
        image: the scene, ``(H, W, 3)`` uint8.
        masks: per object, its visible pixels ``(H, W)`` bool (every pixel it changed, anti-aliased rim
            included): removing the object changes exactly these pixels.
        backgrounds: per object, the scene without it (everything else, the other objects included, is
            identical): ``backgrounds[i]`` equals ``image`` wherever ``masks[i]`` is False.
        background: the scene without any object.
        objects_below: per object, the earlier objects its mask overlaps — removing object ``i`` uncovers
            parts of these, so its ground truth is not pure background there.
        objects_above: per object, the later objects drawn over part of its mask (their anti-aliased rims
            lie inside it). An object with neither is *isolated*: its ground truth inside the mask is pure
            background.
        shapes: per object, its shape (one of :data:`SHAPES`).
        colours: per object, its index into :data:`OBJECT_COLOURS`.
        background_kind: one of :data:`BACKGROUND_KINDS`.
        seed: the seed the scene was made from.
    """

    image: np.ndarray
    masks: tuple[np.ndarray, ...]
    backgrounds: tuple[np.ndarray, ...]
    background: np.ndarray
    objects_below: tuple[tuple[int, ...], ...]
    objects_above: tuple[tuple[int, ...], ...]
    shapes: tuple[str, ...]
    colours: tuple[int, ...]
    background_kind: str
    seed: int

    @property
    def num_objects(self) -> int:
        return len(self.masks)

    def is_isolated(self, index: int) -> bool:
        """Whether no other object overlaps object ``index``'s mask (its ground truth there is background)."""
        return not self.objects_below[index] and not self.objects_above[index]


# --------------------------------------------------------------------------------------------------
# Backgrounds: each returns an (H, W, 3) float32 image mixing palette colours with weights in [0, 1].


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)``, each ``(H, W)`` float32, in units of the shorter side."""
    scale = min(height, width)
    x = (np.arange(width, dtype=np.float32) + 0.5) / scale
    y = (np.arange(height, dtype=np.float32) + 0.5) / scale
    xx, yy = np.meshgrid(x, y)
    xx.setflags(write=False)
    yy.setflags(write=False)
    return xx, yy


def _mix(first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``first`` where ``weight`` is 0, ``second`` where it is 1: colours or images, ``weight`` ``(H, W)``."""
    return first + (second - first) * weight[..., None]


def _colours(rng: np.random.Generator, palette: str, count: int) -> list[np.ndarray]:
    """``count`` distinct colours of ``palette`` in random order, as float32 RGB."""
    chosen = rng.choice(len(PALETTES[palette]), size=count, replace=False)
    return [np.asarray(PALETTES[palette][index], dtype=np.float32) for index in chosen]


def _palette(rng: np.random.Generator, options: tuple[str, ...] = _ALL_PALETTES) -> str:
    return options[int(rng.integers(len(options)))]


def _ramp(value: np.ndarray, softness: float) -> np.ndarray:
    """0 below, 1 above zero, with an anti-aliased band of ``softness`` (same units as ``value``)."""
    return np.clip(0.5 + value / softness, 0.0, 1.0)


def _low_frequency_noise(
    rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """Smooth noise in [0, 1]: a ``cells`` (rows, columns) grid of random values, bilinearly upsampled."""
    height, width = shape
    values = rng.random((cells[0] + 1, cells[1] + 1), dtype=np.float32)
    # Bilinear interpolation of the coarse grid at the pixel centres, done with two separable lerps.
    rows = (np.arange(height, dtype=np.float32) + 0.5) * (cells[0] / height)
    columns = (np.arange(width, dtype=np.float32) + 0.5) * (cells[1] / width)
    row0 = np.minimum(rows.astype(np.int64), cells[0] - 1)
    column0 = np.minimum(columns.astype(np.int64), cells[1] - 1)
    row_weight = _smoothstep(rows - row0)[:, None]
    column_weight = _smoothstep(columns - column0)[None, :]
    left = values[:, column0]  # (rows + 1, W)
    right = values[:, column0 + 1]
    across = left * (1 - column_weight) + right * column_weight
    noise = across[row0] * (1 - row_weight) + across[row0 + 1] * row_weight
    low, high = float(noise.min()), float(noise.max())
    return (noise - low) / max(high - low, 1e-6)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def _gradient_along(rng: np.random.Generator, coordinate: np.ndarray, extent: float) -> np.ndarray:
    """A two-colour gradient along ``coordinate`` (0..``extent``), starting and ending at random places."""
    first, second = _colours(rng, _palette(rng), 2)
    start, end = sorted(rng.uniform(-0.3, 1.3, size=2) * extent)
    weight = np.clip((coordinate - start) / max(end - start, 0.2 * extent), 0.0, 1.0)
    return _mix(first, second, weight)


def _vertical_gradient(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _gradient_along(rng, y, float(y[-1, 0] + y[0, 0]))


def _horizontal_gradient(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _gradient_along(rng, x, float(x[0, -1] + x[0, 0]))


def _horizon(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sky over ground, split by a wavy horizon (two sines); each half is a vertical gradient."""
    sky_top, sky_bottom = _colours(rng, _palette(rng, _SKY_PALETTES), 2)
    ground_top, ground_bottom = _colours(rng, _palette(rng, _GROUND_PALETTES), 2)
    height = float(y[-1, 0] + y[0, 0])
    level = rng.uniform(0.3, 0.7) * height
    line = np.full_like(x[0], level)
    for amplitude, frequency in (
        (rng.uniform(0.0, 0.08), rng.uniform(0.5, 2.0)),
        (rng.uniform(0.0, 0.03), rng.uniform(2.0, 5.0)),
    ):
        line += amplitude * np.sin(2 * np.pi * frequency * x[0] + rng.uniform(0, 2 * np.pi))
    sky = _mix(sky_top, sky_bottom, np.clip(y / level, 0.0, 1.0))
    ground = _mix(ground_top, ground_bottom, np.clip((y - level) / (height - level), 0.0, 1.0))
    return _mix(sky, ground, _ramp(y - line[None, :], 1.0 / min(x.shape)))  # a 1-pixel anti-aliased edge


def _stripes(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Straight stripes at a random angle and period, two colours, soft edges."""
    first, second = _colours(rng, _palette(rng), 2)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.08, 0.3)
    along = x * np.cos(angle) + y * np.sin(angle)
    wave = np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi))
    # The wave's slope at its zero crossings is 2π/period per unit: an edge band of `softness` pixels.
    softness = rng.uniform(1.0, 3.0) / min(x.shape) * (2 * np.pi / period)
    return _mix(first, second, _ramp(wave, softness))


def _checkers(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A checkerboard, possibly rotated, two colours."""
    first, second = _colours(rng, _palette(rng), 2)
    angle = rng.uniform(0, np.pi / 2) if rng.random() < 0.5 else 0.0
    period = rng.uniform(0.15, 0.5)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    phase_u, phase_v = rng.uniform(0, 2 * np.pi, size=2)
    wave = np.sin(2 * np.pi * u / period + phase_u) * np.sin(2 * np.pi * v / period + phase_v)
    softness = 1.5 / min(x.shape) * (2 * np.pi / period)
    return _mix(first, second, _ramp(wave, softness))


def _noise(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Low-frequency noise blending three colours of one palette (clouds, blotches)."""
    first, second, third = _colours(rng, _palette(rng), 3)
    rows, columns = rng.integers(2, 6, size=2)
    cells = (int(rows), int(columns))
    shape = x.shape
    image = _mix(first, second, _low_frequency_noise(rng, shape, cells))
    return _mix(image, third, 0.7 * _low_frequency_noise(rng, shape, cells))


def _wood(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Wood grain: thin, dark, warped lines running mostly along one direction over a lighter base."""
    base, light, dark = _colours(rng, _palette(rng, _KIND_PALETTES["wood"]), 3)
    angle = rng.uniform(-0.25, 0.25) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
    across = -x * np.sin(angle) + y * np.cos(angle)
    warp = _low_frequency_noise(rng, x.shape, (2, 3)) * rng.uniform(0.1, 0.3)
    period = rng.uniform(0.06, 0.12)  # >= 4 pixels at 64 px: no aliasing
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (across + warp) / period)
    image = _mix(base, light, _low_frequency_noise(rng, x.shape, (2, 2)))
    return _mix(image, dark, grain**4)


def _grass(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Grass: fine vertical blades (noise stretched vertically) over a top-to-bottom light-to-dark ground."""
    light, mid, dark = _colours(rng, _palette(rng, _KIND_PALETTES["grass"]), 3)
    height, width = x.shape
    blades = _low_frequency_noise(rng, x.shape, (max(2, height // 12), max(4, width // 2)))
    depth = np.clip(y / float(y[-1, 0] + y[0, 0]), 0.0, 1.0)
    image = _mix(light, mid, depth)
    return _mix(image, dark, blades**2)


def _grout(coordinate: np.ndarray, period: float, phase: float, width: float, pixel: float) -> np.ndarray:
    """1 on thin lines every ``period`` along ``coordinate`` (``width`` wide, anti-aliased), else 0."""
    offset = np.abs(((coordinate / period + phase) % 1.0) - 0.5) * period  # distance to the cell centre
    return _ramp(offset - (period / 2 - width / 2), pixel)


def _tiles(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Square tiles of two or three alternating colours with thin grout lines, possibly rotated."""
    palette = _palette(rng)
    first, second, grout_colour = _colours(rng, palette, 3)
    angle = rng.uniform(0, np.pi / 2) if rng.random() < 0.4 else 0.0
    period = rng.uniform(0.14, 0.3)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    phase_u, phase_v = rng.uniform(0, 1, size=2)
    pixel = 1.0 / min(x.shape)
    # Alternate the tile colours in a checker pattern of whole tiles.
    parity = (np.floor(u / period + phase_u) + np.floor(v / period + phase_v)) % 2
    image = _mix(first, second, parity.astype(np.float32))
    width = rng.uniform(1.5, 2.5) * pixel
    lines = np.maximum(_grout(u, period, phase_u, width, pixel), _grout(v, period, phase_v, width, pixel))
    return _mix(image, grout_colour, lines)


def _bricks(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A running-bond brick wall: rows offset by half a brick, mortar lines between, one brick colour."""
    brick, shade, mortar = _colours(rng, _palette(rng), 3)
    vertical = rng.random() < 0.3
    along, across = (y, x) if vertical else (x, y)
    row_height = rng.uniform(0.1, 0.18)
    brick_length = row_height * rng.uniform(1.8, 2.6)
    phase_row, phase_brick = rng.uniform(0, 1, size=2)
    pixel = 1.0 / min(x.shape)
    width = rng.uniform(1.5, 2.5) * pixel
    row = np.floor(across / row_height + phase_row)
    shifted = along + (row % 2) * brick_length / 2
    # Each brick a slightly different mix of the two brick colours: structure a smear cannot rebuild.
    brick_index = np.floor(shifted / brick_length + phase_brick)
    tone = (np.sin(row * 12.9898 + brick_index * 78.233) * 43758.5453) % 1.0
    image = _mix(brick, shade, (0.6 * tone).astype(np.float32))
    lines = np.maximum(
        _grout(across, row_height, phase_row, width, pixel),
        _grout(shifted, brick_length, phase_brick, width, pixel),
    )
    return _mix(image, mortar, lines)


def _plaid(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two sets of soft stripes crossing at different angles and periods (a plaid)."""
    base, first, second = _colours(rng, _palette(rng), 3)
    angle = rng.uniform(0, np.pi)
    image = base
    for colour, turn in ((first, 0.0), (second, rng.uniform(np.pi / 4, 3 * np.pi / 4))):
        period = rng.uniform(0.12, 0.3)
        along = x * np.cos(angle + turn) + y * np.sin(angle + turn)
        wave = np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi)) - rng.uniform(0.2, 0.6)
        softness = 1.5 / min(x.shape) * (2 * np.pi / period)
        image = _mix(image, colour, 0.7 * _ramp(wave, softness))
    return image


_BACKGROUNDS: dict[str, Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]] = {
    "vertical_gradient": _vertical_gradient,
    "horizontal_gradient": _horizontal_gradient,
    "horizon": _horizon,
    "stripes": _stripes,
    "checkers": _checkers,
    "noise": _noise,
    "wood": _wood,
    "grass": _grass,
    "tiles": _tiles,
    "bricks": _bricks,
    "plaid": _plaid,
}


# --------------------------------------------------------------------------------------------------
# Objects: coverage from a signed distance (in pixels, negative inside), anti-aliased over one pixel.


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


def _coverage(
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


def _composite(background: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
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


def _place(
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


def _visible(coverages: list[np.ndarray]) -> list[np.ndarray]:
    """Per object, the pixels it changes: covered by it and not fully covered by an object above it."""
    visible = []
    for index, coverage in enumerate(coverages):
        mask = coverage > 0
        for above in coverages[index + 1 :]:
            mask &= above < 1
        visible.append(mask)
    return visible


def _normalise_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if len(size) != 2 or any(not isinstance(side, (int, np.integer)) or side < 16 for side in size):
        raise ValueError(f"size must be an int or a (width, height) pair of ints >= 16, got {size!r}")
    return int(size[0]), int(size[1])


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def make_scene(seed: int, size: int | tuple[int, int] = 64) -> Scene:
    """Render the scene of ``seed`` at ``size`` (pixels, or ``(width, height)``); same seed, same arrays."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    width, height = _normalise_size(size)
    rng = np.random.default_rng(int(seed))
    x, y = _grid(height, width)

    # 1. Background
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    background = _BACKGROUNDS[kind](rng, x, y).astype(np.float32)

    # 2. Objects, bottom to top, each keeping enough of itself (and of the background) visible
    count = int(rng.integers(1, 4))
    colour_indices = rng.choice(len(OBJECT_COLOURS), size=count, replace=False).tolist()
    shortest = min(width, height)
    coverages: list[np.ndarray] = []
    shapes: list[str] = []
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        for _ in range(_PLACEMENT_TRIES):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            radius = rng.uniform(*_RADIUS_RANGE) * shortest
            centre = _place(rng, radius, (width, height), placed)
            coverage = _coverage(shape, rng, centre, radius, (width, height))
            candidate = [*coverages, coverage]
            visible = _visible(candidate)
            covered = np.count_nonzero(np.logical_or.reduce(visible))
            if covered <= _MAX_OBJECT_COVER * width * height and all(
                np.count_nonzero(mask) >= _MIN_VISIBLE_SHARE * np.count_nonzero(c > 0)
                for mask, c in zip(visible, candidate, strict=False)
            ):
                coverages, shapes = candidate, [*shapes, shape]
                placed.append((*centre, radius))
                break
    # The first object always fits (it covers at most ~13% of the image); later ones may be dropped.
    colours = colour_indices[: len(coverages)]
    layers = [
        (c, np.asarray(OBJECT_COLOURS[k], dtype=np.float32)) for c, k in zip(coverages, colours, strict=False)
    ]

    # 3. The image, and per object the image without it
    image = _composite(background, layers)
    backgrounds = tuple(
        _readonly(_composite(background, layers[:index] + layers[index + 1 :]))
        for index in range(len(layers))
    )
    masks = tuple(_readonly(mask) for mask in _visible(coverages))
    overlapping = [
        [j for j in range(len(masks)) if j != index and np.any(coverages[j][masks[index]] > 0)]
        for index in range(len(masks))
    ]
    objects_below = tuple(tuple(j for j in others if j < index) for index, others in enumerate(overlapping))
    objects_above = tuple(tuple(j for j in others if j > index) for index, others in enumerate(overlapping))
    return Scene(
        image=_readonly(image),
        masks=masks,
        backgrounds=backgrounds,
        background=_readonly(np.rint(background).astype(np.uint8)),
        objects_below=objects_below,
        objects_above=objects_above,
        shapes=tuple(shapes),
        colours=tuple(colours),
        background_kind=kind,
        seed=int(seed),
    )


def object_colour_fraction(
    image: np.ndarray, mask: np.ndarray, tolerance: float = DEFAULT_COLOUR_TOLERANCE
) -> float:
    """Share of the ``mask`` pixels of ``image`` within ``tolerance`` (RGB distance) of any object colour.

    ``image`` is ``(H, W, 3)`` uint8 (or float in 0..255); ``mask`` is ``(H, W)`` bool. 0 for an empty
    mask. The backgrounds never come within :data:`DEFAULT_COLOUR_TOLERANCE` of an object colour, so a
    clean removal scores ~0 and an object that survives (or a newly invented one) scores high.
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask must have shape {image.shape[:2]}, got {mask.shape}")
    pixels = image[mask].astype(np.float32)  # (N, 3)
    if pixels.shape[0] == 0:
        return 0.0
    colours = np.asarray(OBJECT_COLOURS, dtype=np.float32)  # (K, 3)
    distance2 = ((pixels[:, None, :] - colours[None, :, :]) ** 2).sum(axis=-1)  # (N, K)
    return float(np.mean(distance2.min(axis=1) <= tolerance**2))
