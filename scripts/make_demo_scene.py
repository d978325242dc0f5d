"""Write the README demo's bundled example: a held-out procedural scene and its object mask.

    python scripts/make_demo_scene.py [--seed N] [--object I]

The scene comes from the held-out seed range (never trained on); the object is one that no other object
overlaps, so the ground truth behind it is pure background.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from attentive_eraser.scenes import HELD_OUT_SEEDS, make_scene

OUT = Path(__file__).resolve().parents[1] / "src" / "attentive_eraser" / "assets" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEEDS[0], help="a held-out scene seed")
    parser.add_argument("--object", type=int, default=None, help="object index (default: largest isolated)")
    args = parser.parse_args()
    scene = make_scene(args.seed, size=64)
    candidates = [i for i in range(scene.num_objects) if scene.is_isolated(i)]
    if args.object is not None:
        index = args.object
    elif candidates:
        index = max(candidates, key=lambda i: int(scene.masks[i].sum()))
    else:
        raise SystemExit(f"scene {args.seed} has no isolated object; pick another --seed")
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(OUT / "scene.png")
    Image.fromarray(scene.masks[index].astype(np.uint8) * 255).save(OUT / "mask.png")
    Image.fromarray(scene.backgrounds[index]).save(OUT / "ground_truth.png")
    print(f"seed {args.seed}, object {index} ({scene.shapes[index]} on {scene.background_kind}) -> {OUT}")


if __name__ == "__main__":
    main()
