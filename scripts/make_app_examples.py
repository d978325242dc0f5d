"""Write the web app's example images to src/attentive_eraser/assets/examples/ (run once; output committed).

Three small synthetic scenes in the style of the demo model's training data (muted backgrounds,
one saturated object): the demo scene, a box on stripes, and a triangle over a wavy horizon saved as
a JPEG (so that the app's "download in the original format" can be tried). Each comes with its mask.

    python scripts/make_app_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from attentive_eraser import imaging
from attentive_eraser.demo import example_scene

WIDTH, HEIGHT = 256, 192
OUT = Path(__file__).resolve().parent.parent / "src" / "attentive_eraser" / "assets" / "examples"


def _grid() -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    return rows, cols


def box_on_stripes() -> tuple[Image.Image, np.ndarray]:
    """Diagonal beige and grey stripes with a yellow square left of centre."""
    rows, cols = _grid()
    stripe = 0.5 + 0.5 * np.sin((rows + cols) * 2 * np.pi / 28.0)
    light, dark = np.array([205.0, 195.0, 170.0]), np.array([140.0, 140.0, 135.0])
    pixels = stripe[..., None] * light + (1.0 - stripe[..., None]) * dark
    pixels += np.random.default_rng(1).normal(0.0, 4.0, size=pixels.shape)
    box = (np.abs(cols - 80.0) <= 26) & (np.abs(rows - 104.0) <= 26)
    pixels[box] = (240.0, 200.0, 20.0)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)), box


def triangle_over_waves() -> tuple[Image.Image, np.ndarray]:
    """A dusky sky over a wavy sandy horizon with a blue triangle standing on it."""
    rows, cols = _grid()
    horizon = 110.0 + 10.0 * np.sin(cols * 2 * np.pi / 90.0)
    t = np.clip(rows / 120.0, 0.0, 1.0)[..., None]
    sky = (1.0 - t) * np.array([120.0, 100.0, 150.0]) + t * np.array([230.0, 180.0, 160.0])
    ripple = 0.5 + 0.5 * np.sin(rows * 2 * np.pi / 9.0 + 0.3 * np.sin(cols / 11.0))
    sand = ripple[..., None] * np.array([210.0, 180.0, 130.0]) + (1 - ripple[..., None]) * np.array(
        [175.0, 145.0, 100.0]
    )
    pixels = np.where((rows >= horizon)[..., None], sand, sky)
    pixels += np.random.default_rng(2).normal(0.0, 3.0, size=pixels.shape)
    apex_x, apex_y, base_y, half = 176.0, 70.0, 140.0, 34.0
    height = base_y - apex_y
    inside = (rows >= apex_y) & (rows <= base_y)
    triangle = inside & (np.abs(cols - apex_x) <= half * (rows - apex_y) / height)
    pixels[triangle] = (30.0, 80.0, 220.0)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)), triangle


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    scenes = {
        "disc": (example_scene(), ".png"),
        "box": (box_on_stripes(), ".png"),
        "triangle": (triangle_over_waves(), ".jpg"),
    }
    for name, ((image, mask), suffix) in scenes.items():
        # a little margin, as a person painting would leave
        grown = imaging.dilate_mask(mask, 3)
        imaging.save_image(image, OUT / f"{name}{suffix}")
        imaging.save_image(Image.fromarray(grown.astype(np.uint8) * 255), OUT / f"{name}_mask.png")
        print(OUT / f"{name}{suffix}")


if __name__ == "__main__":
    main()
