"""Mask morphology: true-disk dilation and the feathered paste-back weight."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .common import InputError


def _disk(radius: int) -> np.ndarray:
    """Euclidean disk structuring element: offsets with dx² + dy² <= radius²."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.uint8)


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the object outwards by a disk of radius ``pixels`` (0 returns a copy)."""
    if not isinstance(pixels, numbers.Integral) or isinstance(pixels, bool) or pixels < 0:
        raise InputError("mask_dilation", f"expected a non-negative whole number of pixels, got {pixels!r}")
    mask = np.asarray(mask, dtype=bool)
    if pixels == 0:
        return mask.copy()
    import cv2

    # OpenCV's MORPH_ELLIPSE is not a true disk (its rows at dy = ±1 reach dx = ±r), so build one.
    grown = cv2.dilate(mask.astype(np.uint8), _disk(int(pixels)))  # outside the frame counts as background
    return grown.astype(bool)


def feather_alpha(mask: np.ndarray, radius: float) -> np.ndarray:
    """Blend weight, float32 (H, W): 1 on the mask, falling linearly to 0 at ``radius`` pixels outside."""
    if not isinstance(radius, numbers.Real) or not math.isfinite(radius) or radius < 0:
        raise InputError("feather_radius", f"expected a finite number >= 0, got {radius!r}")
    mask = np.asarray(mask, dtype=bool)
    if radius == 0 or not mask.any():
        return mask.astype(np.float32)
    import cv2

    # Exact Euclidean distance from every background pixel to the nearest object pixel (0 on the object).
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(1.0 - distance / np.float32(radius), 0.0, 1.0).astype(np.float32)
