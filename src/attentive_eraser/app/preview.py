"""The mask preview: the photo with the mask, its dilation and the paste-back band drawn over it.

Pure numpy and Pillow. The sizes mirror what the pipelines' ``finish`` does at the photo's size: dilation
and feather are given at the working resolution and scaled by (processed width / working width).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .. import imaging
from ..selection import SelectionRequest

#: longest side of the mask preview sent to the browser
PREVIEW_SIDE = 1024
# Overlay colours of the mask preview: painted, added by dilation, blended back by paste-back.
_PAINTED, _DILATED, _BLENDED = (255, 45, 85), (255, 200, 0), (60, 170, 255)
#: clicks on the mask preview: markers drawn for the object's and the excluded ones
_CLICK_COLOURS = {"points": (40, 220, 90), "exclude": (20, 20, 20)}


def shrink(image: Image.Image, side: int = PREVIEW_SIDE) -> Image.Image:
    """A copy no larger than ``side`` on its longest side, for showing in the page."""
    scale = side / max(image.size)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return imaging.resize_image(image, size)


def overlay(picture: Image.Image, mask: np.ndarray, grown: np.ndarray, blended: np.ndarray) -> Image.Image:
    """Tint the painted mask, the ring dilation adds and the paste-back band over the photo."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    out = pixels.copy()
    for region, colour, weight in (
        (blended & ~grown, _BLENDED, 0.35),
        (grown & ~mask, _DILATED, 0.6),
        (mask, _PAINTED, 0.6),
    ):
        out[region] = (1 - weight) * pixels[region] + weight * np.asarray(colour, dtype=np.float32)
    return shrink(Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8)))


def mark_clicks(image: Image.Image, size: tuple[int, int], selection: SelectionRequest) -> Image.Image:
    """Draw the clicks on the (shrunk) preview: a ringed dot, green on the object, black for exclusions."""
    from PIL import ImageDraw

    marked = image.convert("RGB")
    draw = ImageDraw.Draw(marked)
    scale = marked.width / size[0]
    radius = max(2.0, marked.width / 100)
    for name, points in (("points", selection.points), ("exclude", selection.negative_points)):
        for x, y in points:
            cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
            draw.ellipse(
                (cx - radius, cy - radius, cx + radius, cy + radius),
                fill=_CLICK_COLOURS[name],
                outline=(255, 255, 255),
                width=max(1, round(radius / 3)),
            )
    return marked


def click_on_preview(index: Sequence[float], photo_size: tuple[int, int]) -> tuple[int, int]:
    """A click at ``index`` (x, y) on the preview, shrunk to ``PREVIEW_SIDE``, in the photo's pixels."""
    width, height = photo_size
    scale = max(1.0, max(photo_size) / PREVIEW_SIDE)
    x = min(width - 1, max(0, int(float(index[0]) * scale)))
    y = min(height - 1, max(0, int(float(index[1]) * scale)))
    return x, y


def draw_preview(
    picture: Image.Image,
    mask: np.ndarray,
    *,
    mask_dilation: int,
    feather_radius: float,
    resolution: int,
    multiple: int,
    strategy: str = "resize",
    paste_back: bool = True,
    selection: SelectionRequest | None = None,
    note: str = "",
) -> tuple[Image.Image, str]:
    """The overlay of ``mask`` on ``picture`` and its caption (mask share, working size, sizes in pixels)."""
    size = picture.size
    region = imaging.context_window([mask], resolution) if strategy == "crop" else size
    working = imaging.working_size(region, resolution, multiple=multiple)
    scale = imaging.output_scale(region, working)
    grown = imaging.dilate_mask(mask, round(mask_dilation * scale))
    blended = imaging.feather_alpha(grown, feather_radius * scale) > 0 if paste_back else np.ones_like(grown)
    drawn = overlay(picture, mask, grown, blended)
    if selection is not None:
        drawn = mark_clicks(drawn, size, selection)
    share = 100.0 * mask.mean()
    parts = [
        f"Mask: {int(mask.sum()):,} px ({share:.1f} % of {size[0]}×{size[1]}).",
        (
            f"Working size {working[0]}×{working[1]}: dilation {mask_dilation} px there = "
            f"{round(mask_dilation * scale)} px here (yellow)."
        ),
        (
            f"Paste-back band {feather_radius * scale:.0f} px (blue); pixels outside it are kept "
            "bit-identical."
            if paste_back
            else "No paste-back: the whole image is the raw decode."
        ),
    ]
    if note:
        parts.append(note.capitalize() + ".")
    return drawn, " ".join(parts)
