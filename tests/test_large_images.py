"""Large photos: the full-resolution pixel work (mask resize, dilation, feather, paste-back) is exact and
costs memory and time that follow the pixels near the object, not the photo's size or the radius.

Memory is measured with ``tracemalloc``, which sees numpy's buffers (every float copy the maths makes) but
not Pillow's (the one uint8 result image): the bounds below are on the numpy working memory.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from attentive_eraser import imaging

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "benchmarks" / "large_images.py"

#: a 12 MP photo, as phones take them
LARGE = (4000, 3000)


def _peak_bytes(work: Callable[[], Any]) -> tuple[Any, int]:
    """``work()``'s result and the peak of numpy/Python allocations while it ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _ellipse(size: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    width, height = size
    rows, cols = np.ogrid[:height, :width]
    return ((cols - centre[0]) / radii[0]) ** 2 + ((rows - centre[1]) / radii[1]) ** 2 <= 1


def _object_mask(size: tuple[int, int] = LARGE) -> np.ndarray:
    """An ellipse of about 3 % of the photo, off centre, as in benchmarks/large_images.py."""
    width, height = size
    radius_x = 0.12 * width
    return _ellipse(
        size, (0.62 * width, 0.55 * height), (radius_x, 0.03 * width * height / (math.pi * radius_x))
    )


def _disk_reference(mask: np.ndarray, radius: int) -> np.ndarray:
    """Obviously-correct dilation: OR of the mask shifted by every (dy, dx) with dx² + dy² <= r²."""
    height, width = mask.shape
    grown = np.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            grown[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] |= mask[
                max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
            ]
    return grown


def _paste_reference(original: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The paste-back formula on the whole frame at once, as it was computed before the box and bands."""
    alpha = weight[:, :, None]
    blended = alpha * generated.astype(np.float32) + (1.0 - alpha) * original.astype(np.float32)
    blended = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, blended, original)


def _random_masks() -> list[np.ndarray]:
    """Blobs, scattered specks, a mask touching two borders, a single pixel: the ring check's cases."""
    rng = np.random.default_rng(7)
    blobs = np.zeros((90, 120), dtype=bool)
    for _ in range(3):
        blobs |= _ellipse((120, 90), tuple(rng.uniform(10, 100, 2)), tuple(rng.uniform(3, 20, 2)))
    specks = rng.random((70, 80)) < 0.01
    corner = np.zeros((60, 50), dtype=bool)
    corner[:12, 40:] = True
    single = np.zeros((41, 41), dtype=bool)
    single[20, 20] = True
    return [blobs, specks, corner, single]


# ------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("radius", [1, 2, 5, 13, 30])
def test_dilate_mask_is_the_exact_disk_dilation(radius: int) -> None:
    for mask in _random_masks():
        np.testing.assert_array_equal(imaging.dilate_mask(mask, radius), _disk_reference(mask, radius))


def test_dilate_mask_of_an_empty_mask_is_empty() -> None:
    empty = np.zeros((30, 40), dtype=bool)
    grown = imaging.dilate_mask(empty, 5)
    assert grown.shape == empty.shape and not grown.any()


def test_feather_alpha_is_zero_outside_its_box_and_the_distance_formula_inside() -> None:
    mask = _random_masks()[0]
    radius = 6.5
    alpha = imaging.feather_alpha(mask, radius)
    rows, cols = np.mgrid[: mask.shape[0], : mask.shape[1]]
    object_rows, object_cols = np.nonzero(mask)
    nearest = np.full(mask.shape, np.inf)
    for row, col in zip(object_rows, object_cols, strict=True):
        nearest = np.minimum(nearest, np.hypot(rows - row, cols - col))
    expected = np.clip(1 - nearest / radius, 0, 1)
    np.testing.assert_allclose(alpha, expected, atol=1e-6)
    assert (alpha[nearest >= radius] == 0).all() and (alpha[mask] == 1).all()


def test_paste_back_equals_the_whole_frame_formula() -> None:
    rng = np.random.default_rng(3)
    size = (700, 520)  # taller than one band of rows, so the bands are stitched
    mask = _object_mask(size)
    original = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    for radius in (0.0, 3.5, 40.0):
        expected = _paste_reference(original, generated, imaging.feather_alpha(mask, radius))
        kept, new = Image.fromarray(original), Image.fromarray(generated)
        out = imaging.paste_back(kept, new, mask, feather_radius=radius)
        assert out is not kept and out is not new
        np.testing.assert_array_equal(np.asarray(out), expected)
        np.testing.assert_array_equal(np.asarray(kept), original)  # the inputs are left alone
        np.testing.assert_array_equal(np.asarray(new), generated)
        # Written into generated instead of a new image (what the pipelines do): the same pixels.
        into = imaging.paste_back(kept, new, mask, feather_radius=radius, overwrite_generated=True)
        assert into is new
        np.testing.assert_array_equal(np.asarray(into), expected)
        np.testing.assert_array_equal(np.asarray(kept), original)


def test_paste_back_overwrites_only_an_rgb_generated_image() -> None:
    original = Image.new("RGB", (8, 6))
    mask = np.zeros((6, 8), dtype=bool)
    mask[2:4, 3:5] = True
    with pytest.raises(imaging.InputError, match="^generated: .*'L'"):
        imaging.paste_back(original, Image.new("L", (8, 6)), mask, feather_radius=1, overwrite_generated=True)


# ------------------------------------------------------------------------- memory and time at 12 MP
def test_resize_mask_of_a_large_mask_allocates_only_its_output() -> None:
    mask = _object_mask()
    small, peak = _peak_bytes(lambda: imaging.resize_mask(mask, (80, 64)))
    assert small.shape == (64, 80) and small.any()
    # A cumulative count per pixel (int64) would be 8x the mask, 96 MB here.
    assert peak < mask.nbytes // 20, f"{peak / 2**20:.1f} MiB for a {mask.nbytes / 2**20:.0f} MiB mask"


def test_dilation_and_paste_back_at_12_megapixels_stay_near_the_object() -> None:
    """What ``finish`` does at full resolution, with the radii the demo model's 64 px working size gives."""
    width, height = LARGE
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    original = Image.fromarray(coarse).resize(LARGE, Image.Resampling.BILINEAR)
    generated = Image.fromarray(coarse[::-1]).resize(LARGE, Image.Resampling.BILINEAR)
    image_bytes = width * height * 3  # the photo as uint8 RGB, 36 MB
    mask = _object_mask()
    scale = width / 80  # working width 80 -> 50 original pixels per working pixel
    dilation, feather = round(2 * scale), 2 * scale  # the demo preset: 2 and 2 working pixels

    grown, dilate_peak = _peak_bytes(lambda: imaging.dilate_mask(mask, dilation))
    pasted, paste_peak = _peak_bytes(
        lambda: imaging.paste_back(original, generated, grown, feather_radius=feather)
    )

    # One float32 (H, W) weight over the frame is already 1.33x the photo; whole-frame blending holds
    # several (H, W, 3) float32 copies, 4-16x. Near the object (a box of ~10 % of the frame) it is less.
    assert dilate_peak < image_bytes, f"dilation: {dilate_peak / 2**20:.0f} MiB"
    assert paste_peak < image_bytes, f"paste-back: {paste_peak / 2**20:.0f} MiB"
    assert grown.sum() > mask.sum()
    out, before, new = (np.asarray(picture) for picture in (pasted, original, generated))
    far = ~imaging.dilate_mask(grown, math.ceil(feather) + 1)
    assert np.array_equal(out[far], before[far]) and np.array_equal(out[grown], new[grown])


# ------------------------------------------------------------------------------------- the benchmark
@pytest.mark.slow
def test_large_images_benchmark_quick_run(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    command = [sys.executable, str(BENCHMARK), "--quick", "--json", str(figures)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if re.match(r"^\| \d", line)]
    strategies = [row.split("|")[3].strip() for row in rows]
    assert strategies == ["resize", "resize", "crop"], completed.stdout + completed.stderr[-3000:]
    records = json.loads(figures.read_text(encoding="utf-8"))
    assert [record["width"] * record["height"] for record in records][0] == 300 * 200
    assert all(record["returncode"] == 0 and record["peak_rss_mib"] > 50 for record in records)
