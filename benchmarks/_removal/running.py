"""Running a method on the benchmark's cases: a pipeline in batches (one generator per result), or a
function of the case."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from attentive_eraser.testing.scene_cases import RemovalCase as Case

from .methods import Method


def progress_bar(total: int, label: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="scene", file=sys.stderr, disable=not enabled, leave=False)


def run_pipeline(
    pipe: Any, cases: Sequence[Case], method: Method, seeds: Sequence[int], batch_size: int, progress: bool
) -> tuple[np.ndarray, float]:
    """Results ``(N, seeds, H, W, 3)`` uint8 (one "seed" for DIP) and the wall time of the calls."""
    import torch

    repeat = len(seeds) if method.stochastic else 1
    height, width = cases[0].image.shape[:2]
    results = np.empty((len(cases), repeat, height, width, 3), dtype=np.uint8)
    elapsed = 0.0
    with progress_bar(len(cases), method.short, progress) as bar:
        for start in range(0, len(cases), batch_size):
            chunk = cases[start : start + batch_size]
            extra: dict[str, Any] = {}
            if method.stochastic:
                # one generator per result, ordered as the pipeline lays them out: scene-major, then seed
                generators = [torch.Generator("cpu").manual_seed(seed) for _ in chunk for seed in seeds]
                extra = {"num_images_per_prompt": repeat, "generator": generators}
            begin = time.perf_counter()
            output = pipe(
                [Image.fromarray(case.image) for case in chunk],
                [case.mask for case in chunk],
                paste_back=True,
                feather_radius=0,
                output_type="np",
                **method.call,
                **extra,
            )
            elapsed += time.perf_counter() - begin
            images = np.clip(np.rint(np.asarray(output.images) * 255.0), 0, 255).astype(np.uint8)
            results[start : start + len(chunk)] = images.reshape(len(chunk), repeat, height, width, 3)
            for case, used in zip(chunk, output.masks[::repeat], strict=False):
                if not np.array_equal(used, case.region):  # the classical rows rely on the same region
                    raise RuntimeError(f"scene {case.seed}: the pipeline's dilated mask differs from ours")
            bar.update(len(chunk))
    return results, elapsed


def run_classical(cases: Sequence[Case], method: Method) -> tuple[np.ndarray, float]:
    """Results ``(N, 1, H, W, 3)`` uint8 of an inpainter (or reference) on the dilated masks, and its time."""
    assert method.fill is not None
    begin = time.perf_counter()
    results = np.stack([method.fill(case) for case in cases])[:, None]
    return results, time.perf_counter() - begin
