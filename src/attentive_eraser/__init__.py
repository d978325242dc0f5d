"""Attentive Eraser: training-free object removal with pretrained Stable Diffusion.

Implements "Attentive Eraser: Unleashing Diffusion Model's Object Removal Potential via
Self-Attention Redirection Guidance" (Sun et al., AAAI 2025) on Hugging Face diffusers.

Importing this package is cheap and side-effect free: heavy modules (torch, diffusers) load on
first use of the names below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "remove": "attentive_eraser.api",
    "load_pipeline": "attentive_eraser.api",
    "detect_family": "attentive_eraser.api",
    "Preset": "attentive_eraser.settings",
    "get_preset": "attentive_eraser.settings",
    "PRESETS": "attentive_eraser.settings",
    "AttentiveEraserSIPPipeline": "attentive_eraser.pipelines",
    "AttentiveEraserDIPPipeline": "attentive_eraser.pipelines",
    "AttentiveEraserSDXLSIPPipeline": "attentive_eraser.pipelines",
    "AttentiveEraserSDXLDIPPipeline": "attentive_eraser.pipelines",
    "AttentiveEraserPipelineOutput": "attentive_eraser.pipelines",
    "AttentiveEraserAttnProcessor": "attentive_eraser.core.attention",
    "EraserState": "attentive_eraser.core.attention",
    "InputError": "attentive_eraser.imaging",
}

__all__ = [
    "PRESETS",
    "AttentiveEraserAttnProcessor",
    "AttentiveEraserDIPPipeline",
    "AttentiveEraserPipelineOutput",
    "AttentiveEraserSDXLDIPPipeline",
    "AttentiveEraserSDXLSIPPipeline",
    "AttentiveEraserSIPPipeline",
    "EraserState",
    "InputError",
    "Preset",
    "__version__",
    "detect_family",
    "get_preset",
    "load_pipeline",
    "remove",
]

if TYPE_CHECKING:  # pragma: no cover
    from .api import detect_family, load_pipeline, remove
    from .core.attention import AttentiveEraserAttnProcessor, EraserState
    from .imaging import InputError
    from .pipelines import (
        AttentiveEraserDIPPipeline,
        AttentiveEraserPipelineOutput,
        AttentiveEraserSDXLDIPPipeline,
        AttentiveEraserSDXLSIPPipeline,
        AttentiveEraserSIPPipeline,
    )
    from .settings import PRESETS, Preset, get_preset


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'attentive_eraser' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
