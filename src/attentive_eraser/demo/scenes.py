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

The backgrounds are drawn by :mod:`attentive_eraser.demo.backgrounds`, the objects' shapes, coverage and
compositing by :mod:`attentive_eraser.demo.objects`; this module puts a scene together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backgrounds import BACKGROUND_KINDS, BACKGROUNDS, PALETTES, STRUCTURED_KINDS, pixel_grid
from .objects import SHAPES, composite, object_coverage, place_object, visible_masks

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

#: RGB distance under which a pixel counts as object-coloured (half the smallest object-to-background gap)
DEFAULT_COLOUR_TOLERANCE = 50.0

# Objects: radius as a share of the shorter side.
_RADIUS_RANGE = (0.09, 0.2)
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
    x, y = pixel_grid(height, width)

    # 1. Background
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    background = BACKGROUNDS[kind](rng, x, y).astype(np.float32)

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
            centre = place_object(rng, radius, (width, height), placed)
            coverage = object_coverage(shape, rng, centre, radius, (width, height))
            candidate = [*coverages, coverage]
            visible = visible_masks(candidate)
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
    image = composite(background, layers)
    backgrounds = tuple(
        _readonly(composite(background, layers[:index] + layers[index + 1 :])) for index in range(len(layers))
    )
    masks = tuple(_readonly(mask) for mask in visible_masks(coverages))
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
