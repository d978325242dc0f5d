"""Compositing: paste the generated pixels back into the original, alpha, demo figures."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .common import InputError, rgb_or_rgba
from .morphology import feather_weight


def _check_same_size(image: Image.Image, mask: np.ndarray, argument: str) -> None:
    """Raise unless ``image`` is the mask's size."""
    if mask.ndim != 2 or image.size != (mask.shape[1], mask.shape[0]):
        raise InputError(
            argument,
            f"image is {image.width}x{image.height} but the mask is {mask.shape[-1]}x{mask.shape[0]}"
            " (width x height)",
        )


def paste_back(
    original: Image.Image,
    generated: Image.Image,
    mask: np.ndarray,
    *,
    feather_radius: float,
    overwrite_generated: bool = False,
) -> Image.Image:
    """Keep the original outside the mask: ``a·generated + (1 − a)·original`` with a feathered ``a``.

    Pixels where ``a == 0`` (farther than ``feather_radius`` from the mask) are bit-identical to
    ``original``; pixels on the mask equal ``generated``. Returns RGB.

    Only the box where ``a > 0`` is computed, in bands of rows: besides the result, the working memory is
    a few float32 copies of a band, not of the whole photo. ``overwrite_generated=True`` writes the
    result into ``generated`` (an RGB image the caller no longer needs) instead of a new image: one
    full-size copy less.
    """
    mask = np.asarray(mask, dtype=bool)
    _check_same_size(original, mask, "original")
    _check_same_size(generated, mask, "generated")
    if overwrite_generated and generated.mode != "RGB":
        raise InputError("generated", f"can only be overwritten when RGB, got mode {generated.mode!r}")
    found = feather_weight(mask, feather_radius)  # ((left, top, right, bottom), weight) or None
    # Read before the result is written, which may be into generated: uint8 (h, w, 3)
    new = None if found is None else np.asarray(generated.crop(found[0]).convert("RGB"))
    if overwrite_generated:
        result = generated
        result.paste(original if original.mode == "RGB" else original.convert("RGB"))  # in place
    else:
        result = original.convert("RGB") if original.mode != "RGB" else original.copy()
    if found is None or new is None:
        return result
    box, weight = found  # float32 (h, w)
    kept = np.asarray(result.crop(box))  # uint8 (h, w, 3)
    blended = np.empty_like(kept)
    for top in range(0, kept.shape[0], _BAND_ROWS):
        rows = slice(top, top + _BAND_ROWS)
        blended[rows] = _blend(weight[rows, :, None], new[rows], kept[rows])
    result.paste(Image.fromarray(blended), box[:2])  # uint8 (h, w, 3) -> "RGB"
    return result


#: rows of the paste-back box blended at once (a band of a 50 MP photo's box: ~10 MB per float32 copy)
_BAND_ROWS = 256


def _blend(weight: np.ndarray, new: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """uint8 ``round(w·new + (1 − w)·kept)`` for float32 ``weight`` (h, w, 1); ``kept`` where ``w == 0``."""
    mixed = new.astype(np.float32)  # (h, w, 3)
    mixed *= weight
    rest = kept.astype(np.float32)
    rest *= 1.0 - weight
    mixed += rest
    np.rint(mixed, out=mixed)
    np.clip(mixed, 0, 255, out=mixed)
    # Untouched pixels are copied, not recomputed, so they are exact whatever the arithmetic does.
    return np.where(weight > 0, mixed.astype(np.uint8), kept)


def merge_alpha(image: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """Attach an "L" alpha channel to an RGB image (RGBA out); with ``alpha=None`` return ``image``.

    If the mask came from this alpha (transparent = object), make the removed region opaque before
    merging, or the filled-in pixels stay invisible.
    """
    if alpha is None:
        return image
    if alpha.size != image.size:
        raise InputError(
            "alpha", f"alpha is {alpha.width}x{alpha.height} but the image is {image.width}x{image.height}"
        )
    merged = image.convert("RGB")
    merged.putalpha(alpha if alpha.mode == "L" else alpha.convert("L"))
    return merged


def side_by_side(
    images: Sequence[Image.Image], *, labels: Sequence[str] | None = None, gap: int = 4
) -> Image.Image:
    """Lay images out left to right on white (top-aligned, unscaled), each with an optional caption above."""
    if len(images) == 0:
        raise InputError("images", "expected at least one image, got none")
    if labels is not None and len(labels) != len(images):
        raise InputError("labels", f"expected {len(images)} labels (one per image), got {len(labels)}")
    if not isinstance(gap, numbers.Integral) or isinstance(gap, bool) or gap < 0:
        raise InputError("gap", f"expected a non-negative integer, got {gap!r}")
    tiles = [rgb_or_rgba(image).convert("RGB") for image in images]
    tallest = max(tile.height for tile in tiles)

    font: ImageFont.ImageFont | ImageFont.FreeTypeFont | None = None
    band = 0
    if labels is not None and any(labels):
        font = ImageFont.load_default(size=max(12, tallest // 32))
        text_height = max(font.getbbox(label or " ")[3] for label in labels)
        band = int(text_height) + 2 * gap + 4

    width = sum(tile.width for tile in tiles) + gap * (len(tiles) - 1)
    strip = Image.new("RGB", (width, band + tallest), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    left = 0
    for index, tile in enumerate(tiles):
        strip.paste(tile, (left, band))
        if font is not None and labels is not None and labels[index]:
            draw.text((left + 2, gap + 2), labels[index], fill=(0, 0, 0), font=font)
        left += tile.width + gap
    return strip


def outline_mask(
    image: Image.Image,
    mask: np.ndarray,
    *,
    colour: tuple[int, int, int] = (255, 0, 0),
    thickness: int = 2,
) -> Image.Image:
    """Return an RGB copy of ``image`` with the outline of the mask drawn in ``colour``."""
    mask = np.asarray(mask, dtype=bool)
    _check_same_size(image, mask, "image")
    if not isinstance(thickness, numbers.Integral) or isinstance(thickness, bool) or thickness < 1:
        raise InputError("thickness", f"expected a positive integer, got {thickness!r}")
    import cv2

    canvas = np.array(image.convert("RGB"))  # a writable copy; the caller's image is untouched
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), int(thickness))
    return Image.fromarray(canvas)
