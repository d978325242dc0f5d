"""Stable Diffusion XL: a UNet with two text encoders, conditioned on time ids ("text_time")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.layers import DECODER_SELF_ATTENTION
from ..core.masks import UNetPyramid
from .base import Backbone, Family

SDXL_UNET = Backbone(
    name="sdxl-unet",
    denoiser="unet",
    eraser_layers=DECODER_SELF_ATTENTION,  # 36 layers on SDXL
    token_layout=UNetPyramid(),
    sampler="ddim",
    weight_folders=("unet", "vae", "text_encoder", "text_encoder_2"),
    pipelines={
        "sip": "attentive_eraser.pipelines.sdxl:AttentiveEraserSDXLSIPPipeline",
        "dip": "attentive_eraser.pipelines.sdxl:AttentiveEraserSDXLDIPPipeline",
    },
)


def _is_sdxl(config: Mapping[str, Any], vae_scale_factor: int) -> bool:
    return config.get("addition_embed_type") == "text_time"


FAMILIES = (
    Family(
        "sdxl",
        SDXL_UNET,
        "Stable Diffusion XL",
        _is_sdxl,
        hub_ids=("stabilityai/stable-diffusion-xl-base-1.0",),
        checkpoint_prefixes=("conditioner.embedders.1.",),
    ),
)
