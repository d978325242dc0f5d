"""Removal and selection cases with ground truth, from the procedural held-out scenes.

Shared by the benchmarks (``benchmarks/removal_quality.py``, ``benchmarks/steps_quality.py``,
``benchmarks/selection_quality.py``) and the tests that check their rules, so that neither imports the
other:

* :func:`removal_cases`: the first held-out scenes with an object whose dilated mask covers only
  background, and :func:`score_removal`, the in-mask metrics of a removal against that ground truth;
* :func:`click_cases`: the first held-out scenes with an isolated object, with the simulated user's
  prompts: one click at :func:`deepest_point`, or the :func:`bounding_box` grown by 2 px.

Scenes come from :mod:`attentive_eraser.demo.scenes` (:data:`~attentive_eraser.demo.scenes.HELD_OUT_SEEDS`,
never trained on). Only numpy is imported here; the scenes, OpenCV and torch load when first needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: per-result PSNR ceiling (dB): an exact fill (possible on flat backgrounds) would otherwise count as
#: 120 dB (the metric's 1e-12 MSE floor) and dominate the mean; 60 dB is an RMS error of 1/4 grey level
PSNR_CAP = 60.0


# --------------------------------------------------------------------------------------------------
# Removal cases


@dataclass(frozen=True)
class RemovalCase:
    """One removal item: a scene, the object to remove, and what a perfect removal gives."""

    seed: int
    object_index: int
    shape: str
    background_kind: str
    image: np.ndarray  # (H, W, 3) uint8, the scene with the object
    mask: np.ndarray  # (H, W) bool, the object's mask as given (what the pipelines receive)
    region: np.ndarray  # (H, W) bool, the mask after the preset's dilation: where every metric looks
    truth: np.ndarray  # (H, W, 3) uint8, the scene without the object (pure background on `region`)


@dataclass
class RemovalSelection:
    cases: list[RemovalCase]
    seeds_tried: int
    skipped_no_isolated: int  # scenes whose objects all overlap another
    skipped_touching: int  # scenes with isolated objects only whose dilated mask touches another object


def removal_cases(count: int, size: int, dilation: int) -> RemovalSelection:
    """The first ``count`` held-out scenes that have an object whose dilated mask covers only background.

    Each scene contributes its largest such object (the lowest index on ties). Raises ``SystemExit`` when
    the held-out seeds run out first.
    """
    from attentive_eraser.demo.scenes import HELD_OUT_SEEDS, make_scene, object_colour_fraction
    from attentive_eraser.imaging import dilate_mask

    cases: list[RemovalCase] = []
    tried = no_isolated = touching = 0
    for seed in HELD_OUT_SEEDS:
        if len(cases) == count:
            break
        tried += 1
        scene = make_scene(seed, size)
        isolated = [index for index in range(scene.num_objects) if scene.is_isolated(index)]
        usable = []
        for index in isolated:
            region = dilate_mask(scene.masks[index], dilation)
            # Ground truth on the whole region must be the object-free background: the dilation ring
            # must not reach a neighbour, whose pixels would otherwise count as a "reappearing" object.
            if np.array_equal(scene.backgrounds[index][region], scene.background[region]):
                usable.append((int(np.count_nonzero(scene.masks[index])), index, region))
        if not isolated:
            no_isolated += 1
            continue
        if not usable:
            touching += 1
            continue
        _, index, region = max(usable, key=lambda item: (item[0], -item[1]))  # largest, then lowest index
        truth = scene.backgrounds[index]
        if object_colour_fraction(truth, region) != 0.0:  # the scene generator's promise, checked
            raise RuntimeError(f"scene {seed}: the ground truth holds object-coloured pixels")
        cases.append(
            RemovalCase(
                seed=int(seed),
                object_index=index,
                shape=scene.shapes[index],
                background_kind=scene.background_kind,
                image=np.array(scene.image),
                mask=np.array(scene.masks[index]),
                region=region,
                truth=np.array(truth),
            )
        )
    if len(cases) < count:
        raise SystemExit(f"error: only {len(cases)} usable scenes among the {tried} held-out seeds")
    return RemovalSelection(cases, tried, no_isolated, touching)


def score_removal(
    results: np.ndarray, cases: Sequence[RemovalCase], threshold: float
) -> dict[str, np.ndarray]:
    """Per-scene values (each ``(N,)``, averaged over seeds) of every metric, inside each case's region.

    ``results`` is ``(N, seeds, H, W, 3)`` uint8. Keys: ``psnr`` (dB, capped at :data:`PSNR_CAP`),
    ``ssim``, ``reappearance`` (share of seeds with more than ``threshold`` object-coloured pixels in the
    region), ``object_colour_fraction``, and with two seeds or more ``instability`` (the per-pixel standard
    deviation across seeds, averaged over the region).
    """
    import torch

    from attentive_eraser.demo.scenes import object_colour_fraction
    from attentive_eraser.evaluation.metrics import masked_psnr, masked_ssim

    count, repeat = results.shape[:2]
    truth = torch.from_numpy(np.stack([case.truth for case in cases])).permute(0, 3, 1, 2).float() / 255.0
    region = torch.from_numpy(np.stack([case.region for case in cases]))[:, None]  # (N, 1, H, W)
    psnr = np.empty((count, repeat))
    ssim = np.empty((count, repeat))
    for k in range(repeat):
        result = torch.from_numpy(results[:, k]).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
        psnr[:, k] = np.minimum(masked_psnr(result, truth, region).numpy(), PSNR_CAP)
        ssim[:, k] = masked_ssim(result, truth, region).numpy()
    fraction = np.array(
        [
            [object_colour_fraction(results[n, k], case.region) for k in range(repeat)]
            for n, case in enumerate(cases)
        ]
    )
    values = {
        "psnr": psnr.mean(axis=1),
        "ssim": ssim.mean(axis=1),
        "reappearance": (fraction > threshold).mean(axis=1),
        "object_colour_fraction": fraction.mean(axis=1),
    }
    if repeat >= 2:
        spread = (results.astype(np.float32) / 255.0).std(axis=1, ddof=1)  # (N, H, W, 3)
        values["instability"] = np.array(
            [float(spread[n][case.region].mean()) for n, case in enumerate(cases)]
        )
    return values


# --------------------------------------------------------------------------------------------------
# Selection cases


@dataclass(frozen=True)
class ClickCase:
    """One scene, its object's exact mask, where the click goes, and the object-free ground truth."""

    seed: int
    shape: str
    background_kind: str
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, the object's visible pixels
    truth: np.ndarray  # (H, W, 3) uint8, the scene without the object
    click: tuple[int, int]  # (x, y)
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), the mask's bounding box grown by 2 px


def deepest_point(mask: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the mask pixel farthest from the mask's edge (the image border counts as edge).

    The maximum of the distance transform; the first in raster order on ties.
    """
    import cv2

    padded = np.pad(mask, 1).astype(np.uint8)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y)


def bounding_box(mask: np.ndarray, margin: int = 2) -> tuple[int, int, int, int]:
    """The mask's bounding box ``(x0, y0, x1, y1)`` (exclusive ends), grown by ``margin`` and clipped."""
    rows, columns = np.nonzero(mask)
    height, width = mask.shape
    return (
        max(0, int(columns.min()) - margin),
        max(0, int(rows.min()) - margin),
        min(width, int(columns.max()) + 1 + margin),
        min(height, int(rows.max()) + 1 + margin),
    )


def click_cases(count: int, size: int) -> tuple[list[ClickCase], int]:
    """The first ``count`` held-out scenes with an isolated object, and how many scenes were skipped.

    Each scene contributes its largest isolated object (the lowest index on ties), so the ground-truth
    mask is the object's whole shape. Raises ``SystemExit`` when the held-out seeds run out first.
    """
    from attentive_eraser.demo.scenes import HELD_OUT_SEEDS, make_scene

    cases: list[ClickCase] = []
    skipped = 0
    for seed in HELD_OUT_SEEDS:
        if len(cases) == count:
            break
        scene = make_scene(seed, size)
        isolated = [index for index in range(scene.num_objects) if scene.is_isolated(index)]
        if not isolated:
            skipped += 1
            continue
        index = max(isolated, key=lambda k: (int(scene.masks[k].sum()), -k))  # largest, then lowest index
        mask = np.array(scene.masks[index])
        cases.append(
            ClickCase(
                int(seed),
                scene.shapes[index],
                scene.background_kind,
                np.array(scene.image),
                mask,
                np.array(scene.backgrounds[index]),
                deepest_point(mask),
                bounding_box(mask),
            )
        )
    if len(cases) < count:
        raise SystemExit(f"error: only {len(cases)} scenes with an isolated object among the held-out seeds")
    return cases, skipped
