"""The built-in demo: a small synthetic scene with one object to erase, runnable offline on a CPU.

``example_scene()`` is the only thing that defines the scene; swap it (for a bundled photo, say) without
touching the rest.
"""

from __future__ import annotations

import os
import sys
from importlib import resources

import numpy as np
from PIL import Image

from .. import imaging

#: captions of the demo figure's three panels
PANEL_LABELS = ("input, object outlined", "output (raw decode)", "output (pasted back)")
#: the 64 px scene is shown enlarged (nearest neighbour, so pixels stay visible)
DISPLAY_SCALE = 4


def example_scene() -> tuple[Image.Image, np.ndarray]:
    """The bundled example: a 64x64 held-out procedural scene (RGB) and its object mask (bool, H x W).

    Made by ``scripts/make_demo_scene.py`` from a seed the demo model never saw in training.
    """
    folder = resources.files("attentive_eraser") / "assets" / "demo"
    with (
        resources.as_file(folder / "scene.png") as scene_path,
        resources.as_file(folder / "mask.png") as mask_path,
    ):
        scene = imaging.load_image(scene_path)
        mask = imaging.load_mask(mask_path, size=scene.size)
    return scene.convert("RGB"), mask


def _enlarge(image: Image.Image) -> Image.Image:
    return image.resize((image.width * DISPLAY_SCALE, image.height * DISPLAY_SCALE), Image.Resampling.NEAREST)


def run_demo(
    *, model: str | os.PathLike | None = None, device: str | None = None, progress: bool = True
) -> Image.Image:
    """Erase the object of :func:`example_scene` and return the figure: input | raw output | pasted back.

    With ``progress``, each of the two removals announces itself on stderr before its progress bar.
    """
    from ..api import remove

    scene, mask = example_scene()
    # Same seed twice: the pasted-back panel is the raw panel with the original restored outside the mask.
    panels = []
    for index, (paste_back, what) in enumerate(((False, "raw decode"), (True, "pasted back")), start=1):
        if progress:
            print(f"demo: removal {index}/2, {what}", file=sys.stderr, flush=True)
        panels.append(
            remove(scene, mask, model=model, device=device, progress=progress, paste_back=paste_back)
        )
    raw, pasted = panels
    outlined = imaging.outline_mask(_enlarge(scene), _enlarge_mask(mask), colour=(255, 255, 255))
    return imaging.side_by_side([outlined, _enlarge(raw), _enlarge(pasted)], labels=list(PANEL_LABELS))


def _enlarge_mask(mask: np.ndarray) -> np.ndarray:
    return np.kron(mask, np.ones((DISPLAY_SCALE, DISPLAY_SCALE), dtype=bool))
