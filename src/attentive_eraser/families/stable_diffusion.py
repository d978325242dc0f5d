"""Stable Diffusion 1.x / 2.x and the embedded demo model: one UNet backbone, four families.

SD 1.x cross-attends to 768-wide CLIP features; SD 2.x to 1024-wide OpenCLIP ones (with linear
projections), and is the 768-px model when its latents are 96 wide or more. The demo model has the same
architecture at 64 px; it is recognised by the preset its folder names, never by its config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.layers import DECODER_SELF_ATTENTION
from ..core.masks import UNetPyramid
from .base import Backbone, Family

SD_UNET = Backbone(
    name="sd-unet",
    denoiser="unet",
    eraser_layers=DECODER_SELF_ATTENTION,  # 9 layers on SD 1.5 / 2.1
    token_layout=UNetPyramid(),
    sampler="ddim",
    weight_folders=("unet", "vae", "text_encoder"),
    pipelines={
        "sip": "attentive_eraser.pipelines.sd:AttentiveEraserSIPPipeline",
        "dip": "attentive_eraser.pipelines.sd:AttentiveEraserDIPPipeline",
    },
    load_kwargs={"safety_checker": None, "requires_safety_checker": False},
)


def _is_sd15(config: Mapping[str, Any], vae_scale_factor: int) -> bool:
    return config.get("cross_attention_dim") == 768


def _is_sd21(config: Mapping[str, Any], vae_scale_factor: int) -> bool:
    wide = config.get("cross_attention_dim") == 1024 or bool(config.get("use_linear_projection", False))
    return wide and not _is_sd15(config, vae_scale_factor)


def _is_sd21_768(config: Mapping[str, Any], vae_scale_factor: int) -> bool:
    return _is_sd21(config, vae_scale_factor) and int(config.get("sample_size", 64)) * vae_scale_factor >= 768


FAMILIES = (
    Family(
        "sd21-768",
        SD_UNET,
        "Stable Diffusion 2.x, 768 px",
        _is_sd21_768,
        hub_ids=("stabilityai/stable-diffusion-2-1",),
    ),
    Family(
        "sd21",
        SD_UNET,
        "Stable Diffusion 2.x",
        _is_sd21,
        hub_ids=("stabilityai/stable-diffusion-2-1-base",),
        checkpoint_prefixes=("cond_stage_model.model.",),  # OpenCLIP
    ),
    Family(
        "sd15",
        SD_UNET,
        "Stable Diffusion 1.x",
        _is_sd15,
        hub_ids=(
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "runwayml/stable-diffusion-v1-5",
            "CompVis/stable-diffusion-v1-4",
        ),
        # CLIP; a bare UNet state dict is taken as SD 1.x, as the SD 2.x and XL rules are tried first
        checkpoint_prefixes=("cond_stage_model.transformer.", "model.diffusion_model."),
    ),
    Family("demo", SD_UNET, "the embedded demo model (64 px, procedural scenes)"),
)
