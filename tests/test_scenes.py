"""The procedural scene generator: determinism, exact ground truth, colour separation, seed splits."""

from __future__ import annotations

import numpy as np
import pytest

from attentive_eraser.demo.scenes import (
    BACKGROUND_KINDS,
    DEFAULT_COLOUR_TOLERANCE,
    HELD_OUT_SEEDS,
    OBJECT_COLOURS,
    PALETTES,
    SHAPES,
    TRAIN_SEEDS,
    Scene,
    make_scene,
    object_colour_fraction,
)

SEEDS = [*range(50), *HELD_OUT_SEEDS[:10]]


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [make_scene(seed) for seed in SEEDS]


def _arrays(scene: Scene) -> list[np.ndarray]:
    return [scene.image, scene.background, *scene.masks, *scene.backgrounds]


def test_same_seed_same_scene_and_different_seeds_differ() -> None:
    first, again, other = make_scene(7), make_scene(7), make_scene(8)
    assert len(_arrays(first)) == len(_arrays(again))
    for a, b in zip(_arrays(first), _arrays(again), strict=False):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for name in ("shapes", "colours", "background_kind", "objects_below", "objects_above"):
        assert getattr(first, name) == getattr(again, name)
    assert not np.array_equal(first.image, other.image)


def test_shapes_dtypes_and_sizes() -> None:
    scene = make_scene(3, size=(96, 48))  # (width, height)
    assert scene.image.shape == (48, 96, 3) and scene.image.dtype == np.uint8
    assert scene.background.shape == (48, 96, 3)
    for mask, background in zip(scene.masks, scene.backgrounds, strict=False):
        assert mask.shape == (48, 96) and mask.dtype == bool
        assert background.shape == (48, 96, 3) and background.dtype == np.uint8
    assert make_scene(3, size=128).image.shape == (128, 128, 3)
    with pytest.raises(ValueError, match="seed"):
        make_scene(-1)
    with pytest.raises(ValueError, match="size"):
        make_scene(0, size=(64,))


def test_arrays_are_read_only() -> None:
    scene = make_scene(0)
    with pytest.raises(ValueError):
        scene.image[0, 0] = 0
    with pytest.raises(ValueError):
        scene.masks[0][0, 0] = True


def test_ground_truth_equals_image_outside_each_mask(scenes: list[Scene]) -> None:
    for scene in scenes:
        assert len(scene.masks) == len(scene.backgrounds) == scene.num_objects
        for mask, background in zip(scene.masks, scene.backgrounds, strict=False):
            assert np.array_equal(background[~mask], scene.image[~mask])
            # ... and the object did change the image inside its mask
            assert not np.array_equal(background[mask], scene.image[mask])


def test_masks_are_neither_empty_nor_full_and_objects_counted(scenes: list[Scene]) -> None:
    counts = set()
    for scene in scenes:
        counts.add(scene.num_objects)
        assert 1 <= scene.num_objects <= 3
        assert len(scene.shapes) == len(scene.colours) == scene.num_objects
        assert set(scene.shapes) <= set(SHAPES)
        assert len(set(scene.colours)) == scene.num_objects  # distinct colours within a scene
        for mask in scene.masks:
            assert 10 <= np.count_nonzero(mask) <= 0.5 * mask.size
    assert counts == {1, 2, 3}


def test_some_objects_overlap(scenes: list[Scene]) -> None:
    overlapping = [scene for scene in scenes if any(scene.objects_below)]
    assert len(overlapping) >= 5
    for scene in overlapping:
        for index, below in enumerate(scene.objects_below):
            for other in below:
                assert other < index and index in scene.objects_above[other]


def test_several_background_kinds_across_50_seeds(scenes: list[Scene]) -> None:
    kinds = {scene.background_kind for scene in scenes[:50]}
    assert kinds <= set(BACKGROUND_KINDS)
    assert len(kinds) >= 6


def test_object_colours_are_far_from_every_background(scenes: list[Scene]) -> None:
    palette_colours = np.array([colour for palette in PALETTES.values() for colour in palette], dtype=float)
    objects = np.array(OBJECT_COLOURS, dtype=float)
    gap = np.sqrt(((palette_colours[:, None] - objects[None]) ** 2).sum(-1)).min()
    assert gap > 2 * DEFAULT_COLOUR_TOLERANCE
    everywhere = np.ones(scenes[0].image.shape[:2], dtype=bool)
    for scene in scenes:
        # Mixtures of palette colours (gradients, textures) stay far too.
        assert object_colour_fraction(scene.background, everywhere) == 0.0


def test_object_colour_fraction_separates_objects_from_ground_truth(scenes: list[Scene]) -> None:
    isolated = 0
    for scene in scenes:
        for index, (mask, background) in enumerate(zip(scene.masks, scene.backgrounds, strict=False)):
            if scene.is_isolated(index):
                isolated += 1
                assert object_colour_fraction(background, mask) == 0.0
                # Only the anti-aliased rim is less than fully object-coloured.
                assert object_colour_fraction(scene.image, mask) > 0.5
            elif not scene.objects_below[index]:
                # Other objects' rims may reach into the mask: still mostly background.
                assert object_colour_fraction(background, mask) < 0.5
    assert isolated >= 30


def test_object_colour_fraction_inputs() -> None:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[0, 0] = OBJECT_COLOURS[2]
    mask = np.zeros((4, 4), dtype=bool)
    assert object_colour_fraction(image, mask) == 0.0
    mask[0, :2] = True
    assert object_colour_fraction(image, mask) == 0.5
    assert object_colour_fraction(image.astype(np.float32) + 20.0, mask) == 0.5  # within the tolerance
    assert object_colour_fraction(image, mask, tolerance=0.0) == 0.5
    with pytest.raises(ValueError, match="mask"):
        object_colour_fraction(image, mask[:2])
    with pytest.raises(ValueError, match="image"):
        object_colour_fraction(image[..., 0], mask)


def test_train_and_held_out_seed_ranges_are_disjoint() -> None:
    assert len(TRAIN_SEEDS) >= 100_000 and len(HELD_OUT_SEEDS) >= 200
    assert TRAIN_SEEDS.step == HELD_OUT_SEEDS.step == 1
    assert TRAIN_SEEDS.stop <= HELD_OUT_SEEDS.start or HELD_OUT_SEEDS.stop <= TRAIN_SEEDS.start


def test_generation_is_vectorised() -> None:
    """A scene is a few hundred Python calls (array operations), never a loop over its 4096 pixels.

    A count of calls, not a wall-clock bound: it fails for a per-pixel loop whatever the machine's load.
    """
    import cProfile
    import pstats

    counts = []
    for seed in range(20):
        profile = cProfile.Profile()
        profile.enable()
        make_scene(seed)
        profile.disable()
        counts.append(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]
    assert max(counts) < 2000, counts


def test_the_bundled_demo_scene_is_the_first_usable_held_out_scene() -> None:
    """The README's demo scene is chosen by rule (scripts/make_demo_scene.py), not by eye."""
    from attentive_eraser.demo import example_scene
    from attentive_eraser.demo.scenes import HELD_OUT_SEEDS
    from attentive_eraser.imaging import dilate_mask
    from attentive_eraser.settings import PRESETS

    dilation = PRESETS["demo"].mask_dilation
    for seed in HELD_OUT_SEEDS:
        scene = make_scene(seed, 64)
        usable = [
            index
            for index in range(scene.num_objects)
            if scene.is_isolated(index)
            and np.array_equal(
                scene.backgrounds[index][dilate_mask(scene.masks[index], dilation)],
                scene.background[dilate_mask(scene.masks[index], dilation)],
            )
        ]
        if usable:
            break
    index = max(usable, key=lambda i: (int(scene.masks[i].sum()), -i))
    image, mask = example_scene()
    assert np.array_equal(np.asarray(image), scene.image)
    assert np.array_equal(mask, scene.masks[index])


def test_structured_kinds_have_edges_everywhere() -> None:
    """Tiles, bricks and plaid are not smooth: strong gradients occur across the whole image."""
    for kind in ("tiles", "bricks", "plaid"):
        scenes = [
            scene for scene in (make_scene(seed, 64) for seed in range(400)) if scene.background_kind == kind
        ]
        assert len(scenes) >= 10, kind
        for scene in scenes[:10]:
            background = scene.background.astype(np.float32)
            vertical = np.abs(np.diff(background, axis=0)).sum(-1)[:, :-1]
            edges = vertical + np.abs(np.diff(background, axis=1)).sum(-1)[:-1]
            # every 16x16 block holds an edge of at least 10 RGB levels (a smooth gradient changes by
            # 1-3 a pixel)
            blocks = edges[:48, :48].reshape(3, 16, 3, 16).max(axis=(1, 3))
            assert blocks.min() >= 10, (kind, scene.seed)
