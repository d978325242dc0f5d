"""Size policy and resizing: working sizes, crop windows, image and mask resizing."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .common import InputError, check_size, rgb_or_rgba

#: working resolutions above this may not exceed the image's own size, sqrt(width x height): upscaling a
#: small image far beyond the largest native size (SDXL's 1024) only costs memory (8192 on a 64 px
#: image asks the VAE for gigabytes)
MAX_UPSCALED_RESOLUTION = 1024


def working_size(
    size: tuple[int, int], resolution: int, *, multiple: int = 64, max_aspect: float = 4.0
) -> tuple[int, int]:
    """Model ``(width, height)``: the input's aspect ratio at an area of about ``resolution``².

    Each side is rounded to the nearest multiple of ``multiple`` (at least one ``multiple``), so the
    result's aspect ratio is the input's within one rounding step. Aspect ratios beyond
    ``max_aspect`` (or below its inverse) are clamped to it: the working image is then stretched, and
    the result is resized back to the input's size, so only the model sees the distortion.
    Examples: (333, 517) at 512 -> (384, 640); (4000, 3000) at 1024 -> (1152, 896).
    """
    width, height = check_size(size, "size")
    if not isinstance(multiple, numbers.Integral) or isinstance(multiple, bool) or multiple < 1:
        raise InputError("multiple", f"expected a positive integer, got {multiple!r}")
    if not isinstance(resolution, numbers.Integral) or isinstance(resolution, bool) or resolution < multiple:
        raise InputError("resolution", f"expected an integer of at least {multiple}, got {resolution!r}")
    if not isinstance(max_aspect, numbers.Real) or not math.isfinite(max_aspect) or max_aspect < 1:
        raise InputError("max_aspect", f"expected a finite number >= 1, got {max_aspect!r}")
    aspect = min(max(width / height, 1.0 / max_aspect), float(max_aspect))
    scale = math.sqrt(aspect)  # w = r·sqrt(a), h = r/sqrt(a) gives w/h = a and w·h = r²

    def snap(side: float) -> int:
        return max(multiple, int(round(side / multiple)) * multiple)

    return snap(resolution * scale), snap(resolution / scale)


def check_resolution(size: tuple[int, int], resolution: int, *, argument: str = "resolution") -> None:
    """Refuse a working resolution that would upscale ``size`` beyond :data:`MAX_UPSCALED_RESOLUTION`.

    Any resolution up to 1024 is accepted (small inputs are upsampled to the model's native size, as
    diffusion models want); above it, at most the image's own size, sqrt(width x height).
    """
    width, height = check_size(size, "size")
    own = math.isqrt(width * height)
    limit = max(MAX_UPSCALED_RESOLUTION, own)
    if isinstance(resolution, numbers.Integral) and not isinstance(resolution, bool) and resolution > limit:
        raise InputError(
            argument,
            f"{resolution} would upscale the {width}x{height} image {resolution / max(own, 1):.0f}x; above "
            f"{MAX_UPSCALED_RESOLUTION} the working resolution may not exceed the image's own size ({own})",
        )


def mask_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(left, top, right, bottom)`` of the mask's set pixels (right and bottom exclusive); None if empty.

    Two 1-D reductions instead of ``np.nonzero``, whose index arrays take 16 bytes per set pixel.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def context_window(masks: Sequence[np.ndarray], resolution: int, *, context: float = 2.0) -> tuple[int, int]:
    """``(width, height)`` of a crop around the masks for the ``"crop"`` strategy, one size for all.

    The window has the image's aspect ratio, spans ``context`` times each mask's bounding box (so the
    model sees background around the object) and at least ``resolution``² pixels (so the crop is never
    upsampled), and at most the whole image. Same-size windows let a batch share one working size.
    """
    if not masks:
        raise InputError("mask", "no mask to place a context window around")
    height, width = masks[0].shape
    scale = resolution / math.sqrt(width * height)
    for mask in masks:
        bounds = mask_bounds(mask)
        if bounds is not None:
            left, top, right, bottom = bounds
            scale = max(scale, context * (right - left) / width, context * (bottom - top) / height)
    scale = min(scale, 1.0)
    return min(width, max(1, round(width * scale))), min(height, max(1, round(height * scale)))


def place_window(mask: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` box of ``size`` centred on ``mask``'s bounding box, inside the image."""
    height, width = mask.shape
    bounds = mask_bounds(mask)
    left, top, right, bottom = (0, 0, width, height) if bounds is None else bounds
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    left = int(round(min(max(centre_x - size[0] / 2, 0), width - size[0])))
    top = int(round(min(max(centre_y - size[1] / 2, 0), height - size[1])))
    return left, top, left + size[0], top + size[1]


def resize_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize a photo to ``(width, height)`` with Lanczos filtering (never nearest-neighbour)."""
    target = check_size(size, "size")
    if image.mode in ("1", "P", "PA") or image.mode.startswith("I;16"):
        # Pillow silently falls back to nearest-neighbour for palette and 1-bit images.
        image = rgb_or_rgba(image) if image.mode != "1" else image.convert("L")
    if image.size == target:
        return image.copy()
    return image.resize(target, Image.Resampling.LANCZOS)


def _nearest_indices(source: int, target: int) -> np.ndarray:
    """Source index of each target pixel centre along one axis (exact integer arithmetic)."""
    # floor((j + 0.5) * source / target) without floating point
    return (2 * np.arange(target, dtype=np.int64) + 1) * source // (2 * target)


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour (pixel-centre) resize of a bool mask to ``(width, height)``."""
    width, height = size
    rows = _nearest_indices(mask.shape[0], height)
    cols = _nearest_indices(mask.shape[1], width)
    return mask[rows[:, None], cols[None, :]]


def _shrink_any(mask: np.ndarray, target: int, axis: int) -> np.ndarray:
    """Downsample along ``axis``: a target pixel is set if any source pixel it overlaps is set.

    One vectorised ``any`` per target line (row or column): only the output is allocated, whatever the
    source size (a cumulative count would take 8 bytes per source pixel).
    """
    source = mask.shape[axis]
    j = np.arange(target + 1, dtype=np.int64)
    starts = (j[:-1] * source // target).tolist()  # floor(j * s / t)
    stops = (-((-j[1:] * source) // target)).tolist()  # ceil((j + 1) * s / t)
    shape = list(mask.shape)
    shape[axis] = target
    covered = np.empty(shape, dtype=bool)
    lines, out = np.moveaxis(mask, axis, 0), np.moveaxis(covered, axis, 0)  # views, target axis first
    for index, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        out[index] = lines[start:stop].any(axis=0)
    return covered


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to ``(width, height)``: any-overlap when shrinking, nearest when enlarging.

    Shrinking never loses the object: a target pixel is object if any source pixel under its area is
    (the same as area averaging followed by ``> 0``). Each axis is handled on its own.
    """
    width, height = check_size(size, "size")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise InputError("mask", f"expected a 2-D (H, W) mask array, got shape {mask.shape}")
    targets = ((0, height), (1, width))
    # The axes are independent, so shrink first: the enlarging pass then works on the smaller array.
    for axis, target in targets:
        if target < mask.shape[axis]:
            mask = _shrink_any(mask, target, axis)
    for axis, target in targets:
        if target > mask.shape[axis]:
            mask = np.take(mask, _nearest_indices(mask.shape[axis], target), axis=axis)
    return mask.copy()


def output_scale(region_size: tuple[int, int], working_size: tuple[int, int]) -> float:
    """Processed pixels per working pixel: the factor from the working size back to the original (or crop
    window) ``region_size``. Dilation becomes ``round(mask_dilation * scale)``, feather
    ``feather_radius * scale`` pixels of the original."""
    return region_size[0] / working_size[0]
