"""The built-in demo: a small synthetic scene with one object to erase, runnable offline on a CPU.

``example_scene()`` is the only thing that defines the scene; swap it (for a bundled photo, say) without
touching the rest.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from . import io

#: captions of the demo figure's three panels
PANEL_LABELS = ("input, object outlined", "output (raw decode)", "output (pasted back)")


def example_scene() -> tuple[Image.Image, np.ndarray]:
    """A 256x192 RGB scene and its object mask (bool, H x W): a red disc on striped ground under a sky."""
    width, height, horizon = 256, 192, 120
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)

    # Sky: deep blue at the top, pale near the horizon.
    t = (rows / horizon)[..., None]  # (H, W, 1)
    sky = (1.0 - t) * np.array([60.0, 115.0, 200.0]) + t * np.array([190.0, 215.0, 240.0])

    # Ground: furrows that crowd together towards the horizon, in alternating greens, with a light grain.
    depth = np.maximum(rows - horizon, 0.0) + 6.0
    furrow = 0.5 + 0.5 * np.sin(60.0 * np.log(depth) + 0.15 * cols)
    light, dark = np.array([125.0, 160.0, 70.0]), np.array([80.0, 110.0, 45.0])
    ground = furrow[..., None] * light + (1.0 - furrow[..., None]) * dark
    ground += np.random.default_rng(0).normal(0.0, 6.0, size=ground.shape)

    pixels = np.where((rows >= horizon)[..., None], ground, sky)

    # The object: a saturated red disc across the horizon, kept off the image's centre lines so that it
    # leaves background in every cell of even a 2x2 token grid.
    disc = (cols - 190.0) ** 2 + (rows - 130.0) ** 2 <= 28.0**2
    pixels[disc] = (215.0, 25.0, 30.0)
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))  # (H, W, 3) -> "RGB"
    return image, disc


def run_demo(
    *, model: str | os.PathLike | None = None, device: str | None = None, progress: bool = True
) -> Image.Image:
    """Erase the object of :func:`example_scene` and return the figure: input | raw output | pasted back."""
    from .api import remove

    scene, mask = example_scene()
    # Same seed twice: the pasted-back panel is the raw panel with the original restored outside the mask.
    raw = remove(scene, mask, model=model, device=device, progress=progress, paste_back=False)
    pasted = remove(scene, mask, model=model, device=device, progress=progress)
    outlined = io.outline_mask(scene, mask, colour=(255, 230, 0))  # yellow: visible on the red object
    return io.side_by_side([outlined, raw, pasted], labels=list(PANEL_LABELS))
