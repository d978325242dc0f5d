"""Mask morphology: true-disk dilation and the feathered paste-back weight.

Both work on the mask's bounding box grown by their radius, never on the whole frame: outside it the
answer is known (background, weight 0), and a large photo with a small object then costs what the
object's neighbourhood costs. Their cost does not grow with the radius either (a distance transform, not
a structuring element of r² offsets), since radii given at the working resolution grow with the photo.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .common import InputError
from .geometry import mask_bounds

#: elements of one batch of the exact-distance check in :func:`_dilate_disk`: (pixels, 2r + 1) int32
_CHECK_BATCH = 1 << 20


def _disk(radius: int) -> np.ndarray:
    """Euclidean disk structuring element: offsets with dx² + dy² <= radius²."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.uint8)


def padded_bounds(mask: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    """The mask's bounding box ``(left, top, right, bottom)`` grown by ``margin`` pixels, inside the frame."""
    bounds = mask_bounds(mask)
    if bounds is None:
        return None
    height, width = mask.shape
    left, top, right, bottom = bounds
    return (
        max(left - margin, 0),
        max(top - margin, 0),
        min(right + margin, width),
        min(bottom + margin, height),
    )


def _column_distance(mask: np.ndarray) -> np.ndarray:
    """int32 (H, W): rows from each pixel to the nearest object pixel in its column (H + 1 where none)."""
    height = mask.shape[0]
    rows = np.arange(height, dtype=np.int32)[:, None]
    far = np.int32(2 * height + 1)
    above = np.where(mask, rows, -far)  # the last object row at or above each pixel: a running max
    np.maximum.accumulate(above, axis=0, out=above)
    below = np.where(mask, rows, far)  # the first object row at or below: a running min from the bottom
    np.minimum.accumulate(below[::-1], axis=0, out=below[::-1])
    np.subtract(rows, above, out=above)
    np.subtract(below, rows, out=below)
    np.minimum(above, below, out=above)
    return np.minimum(above, height + 1, out=above)


def _dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Exact dilation of a bool (H, W) mask by the disk ``dx² + dy² <= radius²`` (outside = background).

    A pixel is in when its squared distance n (an integer) to the nearest object pixel is <= r². OpenCV's
    exact distance transform gives sqrt(n) in float32, a hair off at worst, so only pixels it places
    within 1 of r are decided again in integers: n = min over dx of column_distance(x + dx)² + dx².
    """
    import cv2

    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    grown = distance <= radius - 1
    ring = distance > radius - 1  # with the next line: the pixels within 1 of r, left to decide
    ring &= distance < radius + 1
    del distance
    rows, cols = (index.astype(np.int32) for index in np.nonzero(ring))
    del ring
    if rows.size == 0:
        return grown
    column = _column_distance(mask)
    width = mask.shape[1]
    offsets = np.arange(-radius, radius + 1, dtype=np.int32)  # dx
    # (2r + 1,): the largest column distance from which column x + dx still reaches the pixel
    reach = np.array([math.isqrt(radius * radius - int(dx) * int(dx)) for dx in offsets], dtype=np.int32)
    batch = max(1, _CHECK_BATCH // offsets.size)
    for start in range(0, rows.size, batch):
        ring_rows, ring_cols = rows[start : start + batch], cols[start : start + batch]
        sample = ring_cols[:, None] + offsets[None, :]  # (batch, 2r + 1) int32: the columns x + dx
        inside = (sample >= 0) & (sample < width)
        np.clip(sample, 0, width - 1, out=sample)
        near = column[ring_rows[:, None], sample] <= reach[None, :]
        near &= inside
        grown[ring_rows, ring_cols] = near.any(axis=1)
    return grown


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the object outwards by a disk of radius ``pixels`` (0 returns a copy)."""
    if not isinstance(pixels, numbers.Integral) or isinstance(pixels, bool) or pixels < 0:
        raise InputError("mask_dilation", f"expected a non-negative whole number of pixels, got {pixels!r}")
    mask = np.asarray(mask, dtype=bool)
    if pixels == 0:
        return mask.copy()
    grown = np.zeros(mask.shape, dtype=bool)
    box = padded_bounds(mask, int(pixels))
    if box is not None:
        left, top, right, bottom = box
        grown[top:bottom, left:right] = _dilate_disk(mask[top:bottom, left:right], int(pixels))
    return grown


def feather_weight(mask: np.ndarray, radius: float) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """:func:`feather_alpha` where it can be non-zero: ``(box, weight)`` with ``box`` the
    ``(left, top, right, bottom)`` it covers and ``weight`` float32 of the box's shape; None if the mask
    is empty. Everywhere outside ``box`` the weight is exactly 0."""
    if not isinstance(radius, numbers.Real) or not math.isfinite(radius) or radius < 0:
        raise InputError("feather_radius", f"expected a finite number >= 0, got {radius!r}")
    mask = np.asarray(mask, dtype=bool)
    # Farther than ceil(radius) + 1 from the object the weight 1 - d / radius is below 0, clipped to 0.
    box = padded_bounds(mask, math.ceil(radius) + 1 if radius > 0 else 0)
    if box is None:
        return None
    left, top, right, bottom = box
    region = mask[top:bottom, left:right]
    if radius == 0:
        return box, region.astype(np.float32)
    import cv2

    # Exact Euclidean distance from every background pixel to the nearest object pixel (0 on the object).
    weight = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.divide(weight, np.float32(radius), out=weight)  # in place: the same float32 steps as 1 - d / r
    np.subtract(np.float32(1.0), weight, out=weight)
    return box, np.clip(weight, 0.0, 1.0, out=weight)


def feather_alpha(mask: np.ndarray, radius: float) -> np.ndarray:
    """Blend weight, float32 (H, W): 1 on the mask, falling linearly to 0 at ``radius`` pixels outside."""
    mask = np.asarray(mask, dtype=bool)
    alpha = np.zeros(mask.shape, dtype=np.float32)
    found = feather_weight(mask, radius)
    if found is not None:
        (left, top, right, bottom), weight = found
        alpha[top:bottom, left:right] = weight
    return alpha


# --------------------------------------------------------------------------------------------------
# Tidying a selected mask: growth or shrinking, small holes, stray parts

#: a pixel position ``(x, y)`` from the top-left corner
Point = tuple[float, float]


def resize_selection(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the mask by a disk of ``pixels`` (> 0), shrink it (< 0), or return a copy (0)."""
    if not isinstance(pixels, numbers.Integral) or isinstance(pixels, bool):
        raise InputError("grow", f"{pixels!r} is not a whole number of pixels (negative shrinks)")
    mask = np.asarray(mask, dtype=bool)
    if pixels == 0:
        return mask.copy()
    import cv2

    disk = _disk(abs(int(pixels)))
    if pixels > 0:
        return cv2.dilate(mask.astype(np.uint8), disk).astype(bool)
    # Outside the frame counts as object when shrinking, so an object cut by the border keeps that edge.
    return cv2.erode(mask.astype(np.uint8), disk, borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)


def fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill the holes of ``mask`` (background parts off the border) of at most ``max_area`` pixels."""
    import cv2

    mask = np.asarray(mask, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    filled = mask.copy()
    height, width = mask.shape
    for label in range(1, count):
        left, top, box_width, box_height, area = stats[label]
        touches_border = left == 0 or top == 0 or left + box_width == width or top + box_height == height
        if not touches_border and area <= max_area:
            filled[labels == label] = True
    return filled


def keep_components(mask: np.ndarray, points: tuple[Point, ...] | list[Point] = ()) -> np.ndarray:
    """Keep the connected parts of ``mask`` holding one of ``points`` ``(x, y)``; without such a part,
    the largest."""
    import cv2

    mask = np.asarray(mask, dtype=bool)
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.copy()
    wanted = {int(labels[int(y), int(x)]) for x, y in points} - {0}
    if not wanted:
        areas = np.bincount(labels.ravel(), minlength=count)
        areas[0] = 0
        wanted = {int(np.argmax(areas))}
    return np.isin(labels, sorted(wanted))
