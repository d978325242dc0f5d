"""The crop-around-mask strategy for large photos: window geometry and full-resolution paste-back."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from attentive_eraser import AttentiveEraserSIPPipeline, imaging
from attentive_eraser.testing.tiny import build_components


def _mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = True
    return mask


def test_context_window_keeps_aspect_covers_context_and_never_upsamples() -> None:
    mask = _mask((3000, 4000), (2500, 1400, 2620, 1500))  # 120 x 100 object in a 4000 x 3000 photo
    width, height = imaging.context_window([mask], 512)
    assert abs(width / height - 4000 / 3000) < 0.01
    assert width * height >= 512 * 512 * 0.99  # at least the working area: the crop is never upsampled
    big = _mask((3000, 4000), (1000, 500, 3000, 2000))  # 2000 x 1500 object: 2x context is the whole photo
    assert imaging.context_window([big], 512) == (4000, 3000)
    wide = _mask((3000, 4000), (100, 100, 1100, 200))  # 1000 wide: window at least 2000 wide
    assert imaging.context_window([wide], 512)[0] >= 2000


def test_place_window_centres_on_the_mask_and_stays_inside() -> None:
    mask = _mask((300, 400), (190, 140, 210, 160))
    assert imaging.place_window(mask, (100, 80)) == (150, 110, 250, 190)
    corner = _mask((300, 400), (0, 0, 10, 10))
    assert imaging.place_window(corner, (100, 80)) == (0, 0, 100, 80)
    edge = _mask((300, 400), (390, 290, 400, 300))
    assert imaging.place_window(edge, (100, 80)) == (300, 220, 400, 300)


@pytest.fixture(scope="module")
def pipe() -> AttentiveEraserSIPPipeline:
    pipeline = AttentiveEraserSIPPipeline(**build_components("sd15", seed=0))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _photo(width: int, height: int) -> PIL.Image.Image:
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    return PIL.Image.fromarray(np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8)))


def test_crop_changes_only_the_window_and_matches_the_input_size(pipe) -> None:
    photo = _photo(800, 600)
    mask = _mask((600, 800), (500, 280, 530, 310))
    raw = pipe(
        photo,
        mask,
        strategy="crop",
        paste_back=False,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert raw.size == photo.size
    window = imaging.place_window(mask, imaging.context_window([mask], pipe.preset.resolution))
    changed = np.abs(np.asarray(raw, int) - np.asarray(photo, int)).sum(-1) > 0
    inside = np.zeros_like(changed)
    inside[window[1] : window[3], window[0] : window[2]] = True
    assert not changed[~inside].any()  # outside the window: the original, bit for bit
    assert changed[mask].mean() > 0.9


def test_crop_with_paste_back_keeps_everything_but_the_feathered_mask(pipe) -> None:
    photo = _photo(800, 600)
    mask = _mask((600, 800), (100, 100, 140, 130))
    out = pipe(
        photo, mask, strategy="crop", num_inference_steps=4, generator=torch.Generator().manual_seed(0)
    )
    result = np.asarray(out.images[0], int)
    band = imaging.feather_alpha(out.masks[0], 40) > 0  # generous: dilation + feather at the window's scale
    changed = np.abs(result - np.asarray(photo, int)).sum(-1) > 0
    assert not changed[~band].any()
    assert changed[mask].mean() > 0.9


def test_crop_and_resize_process_different_areas(pipe) -> None:
    photo = _photo(640, 448)
    mask = _mask((448, 640), (300, 200, 330, 230))
    kwargs = dict(num_inference_steps=4, paste_back=False, output_type="latent")
    whole = pipe(photo, mask, strategy="resize", generator=torch.Generator().manual_seed(0), **kwargs)
    crop = pipe(photo, mask, strategy="crop", generator=torch.Generator().manual_seed(0), **kwargs)
    assert whole.images.shape == crop.images.shape  # same working size, different content
    assert not torch.allclose(whole.images, crop.images)
    with pytest.raises(ValueError, match="strategy='tiles'"):
        pipe(photo, mask, strategy="tiles", num_inference_steps=4)
