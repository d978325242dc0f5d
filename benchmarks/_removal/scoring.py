"""Summaries of per-scene scores: means with 95 % confidence half-widths, overall and per background kind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from attentive_eraser.testing.scene_cases import RemovalCase as Case

#: 95 % normal quantile for the confidence half-widths
Z95 = 1.96


def mean_ci(values: np.ndarray) -> tuple[float, float | None]:
    """Mean and 95 % confidence half-width (normal approximation) of per-scene values."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    return mean, float(Z95 * np.std(values, ddof=1) / math.sqrt(len(values)))


def summarise(values: dict[str, np.ndarray], seconds: float, images: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in ("psnr", "ssim", "reappearance", "object_colour_fraction", "instability"):
        if name in values:
            mean, ci = mean_ci(values[name])
            summary[name] = {"mean": mean, "ci95": ci}
        else:
            summary[name] = None
    summary["seconds_per_image"] = seconds / images
    summary["seconds"] = seconds
    summary["images"] = images
    return summary


def kind_summaries(values: dict[str, np.ndarray], cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
    """PSNR and reappearance (mean ± 95 % CI, scene count) per background kind and per kind group."""
    from attentive_eraser.demo.scenes import STRUCTURED_KINDS

    kinds = np.array([case.background_kind for case in cases])
    groups: dict[str, np.ndarray] = {
        "structured": np.isin(kinds, STRUCTURED_KINDS),
        "smooth": ~np.isin(kinds, STRUCTURED_KINDS),
    }
    for kind in sorted(set(kinds.tolist())):
        groups[kind] = kinds == kind
    summaries = {}
    for name, chosen in groups.items():
        if not chosen.any():
            continue
        entry: dict[str, Any] = {"scenes": int(chosen.sum())}
        for metric in ("psnr", "reappearance"):
            mean, ci = mean_ci(values[metric][chosen])
            entry[metric] = {"mean": mean, "ci95": ci}
        summaries[name] = entry
    return summaries
