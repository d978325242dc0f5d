"""``attentive_eraser.remove`` with a selection instead of (or besides) a mask: clicks, a box, words."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import attentive_eraser as ae
from attentive_eraser import api, imaging
from attentive_eraser.demo import example_scene
from attentive_eraser.selection import select_object

FAST = {"num_inference_steps": 4, "progress": False}


def _scene() -> tuple[Image.Image, np.ndarray, tuple[int, int]]:
    """The bundled demo scene, its object mask, and a click on the object."""
    import cv2

    scene, mask = example_scene()
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return scene, mask, (int(x), int(y))


def test_a_click_replaces_the_mask() -> None:
    scene, mask, click = _scene()
    selected = select_object(scene, points=[click])
    assert (selected & mask).sum() / (selected | mask).sum() > 0.9
    by_click = ae.remove(scene, points=[click], **FAST)
    by_mask = ae.remove(scene, selected, **FAST)
    assert by_click.size == scene.size
    assert np.array_equal(np.asarray(by_click), np.asarray(by_mask))


def test_a_box_and_a_mask_combine() -> None:
    scene, mask, _click = _scene()
    extra = np.zeros_like(mask)
    extra[:4, :4] = True  # a painted corner besides the boxed object
    rows, columns = np.nonzero(mask)
    box = (max(0, columns.min() - 2), max(0, rows.min() - 2), columns.max() + 3, rows.max() + 3)
    combined = ae.remove(scene, extra, box=box, **FAST)
    expected = ae.remove(scene, extra | select_object(scene, box=box), **FAST)
    assert np.array_equal(np.asarray(combined), np.asarray(expected))


def test_selection_errors_come_before_any_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(api, "load_pipeline", no_model)
    scene, _, click = _scene()
    with pytest.raises(
        imaging.InputError, match=r"^points: points\[0\]=\(64, 3\) lies outside the 64x64 image"
    ):
        ae.remove(scene, points=[(64, 3)])
    with pytest.raises(imaging.InputError, match=r"^object: 'the red disc' needs a text-capable segmenter"):
        ae.remove(scene, object="the red disc")
    with pytest.raises(imaging.InputError, match=r"^segmenter: 'classic' is given but nothing to select"):
        ae.remove(scene, segmenter="classic")
    with pytest.raises(imaging.InputError, match=r"^points: only negative_points given"):
        ae.remove(scene, negative_points=[click])
    with pytest.raises(imaging.InputError, match=r"^segmenter: .*not on this machine"):
        ae.remove(scene, points=[click], segmenter="sam:facebook/sam-vit-base-absent")
