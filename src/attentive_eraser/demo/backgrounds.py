"""The procedural scenes' backgrounds: muted palettes and the kinds of background drawn from them.

Each background function takes a generator and the pixel grid of :func:`pixel_grid` and returns an
``(H, W, 3)`` float32 image mixing colours of :data:`PALETTES` with weights in [0, 1], so every
background pixel is a convex combination of one or two palettes' colours (what keeps them apart from the
object colours of :mod:`attentive_eraser.demo.scenes`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

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

_ALL_PALETTES = tuple(PALETTES)
# Which palettes suit which background kind (those not listed may use any palette).
_KIND_PALETTES: dict[str, tuple[str, ...]] = {
    "wood": ("wood", "clay", "sand"),
    "grass": ("grass", "moss"),
}
_SKY_PALETTES = ("sky", "fog", "dusk", "sand", "night")
_GROUND_PALETTES = ("moss", "grass", "sand", "stone", "clay", "slate")


@lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
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


BACKGROUNDS: dict[str, Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]] = {
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
