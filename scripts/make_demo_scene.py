"""Write the README demo's bundled example: a held-out procedural scene and its object mask.

    python scripts/make_demo_scene.py

The scene is chosen by a fixed rule, not by eye: the first scene of the held-out seed range
(``attentive_eraser.demo.scenes.HELD_OUT_SEEDS``, never trained on) that has an object no other object
overlaps and whose dilated mask (the demo preset's growth) touches no other object, so that the ground
truth behind it is pure background; of those objects, the largest. This is exactly the first case of
``benchmarks/removal_quality.py``, so the README picture is the benchmark grid's first row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from attentive_eraser.demo.scenes import HELD_OUT_SEEDS, make_scene
from attentive_eraser.imaging import dilate_mask
from attentive_eraser.settings import PRESETS

OUT = Path(__file__).resolve().parents[1] / "src" / "attentive_eraser" / "assets" / "demo"


def first_usable_scene(size: int, dilation: int) -> tuple[int, int]:
    """``(seed, object index)`` of the rule above."""
    for seed in HELD_OUT_SEEDS:
        scene = make_scene(seed, size)
        usable = []
        for index in range(scene.num_objects):
            if not scene.is_isolated(index):
                continue
            region = dilate_mask(scene.masks[index], dilation)
            if np.array_equal(scene.backgrounds[index][region], scene.background[region]):
                usable.append(index)
        if usable:
            return seed, max(usable, key=lambda i: (int(scene.masks[i].sum()), -i))
    raise SystemExit("no held-out scene has a usable object")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    preset = PRESETS["demo"]
    seed, index = first_usable_scene(preset.resolution, preset.mask_dilation)
    scene = make_scene(seed, size=preset.resolution)
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(OUT / "scene.png")
    Image.fromarray(scene.masks[index].astype(np.uint8) * 255).save(OUT / "mask.png")
    Image.fromarray(scene.backgrounds[index]).save(OUT / "ground_truth.png")
    print(f"seed {seed}, object {index} ({scene.shapes[index]} on {scene.background_kind}) -> {OUT}")


if __name__ == "__main__":
    main()
