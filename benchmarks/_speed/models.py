"""The UNets the speed benchmark measures: SD 2.1's and SDXL's published configs, random weights."""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from attentive_eraser.testing.tiny import build_components, build_tokenizer

#: UNet of stabilityai/stable-diffusion-2-1-base (its unet/config.json), 866 M parameters
SD21_UNET: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "attention_head_dim": (5, 10, 20, 20),  # head counts, under diffusers' legacy name
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "upcast_attention": False,
}

#: UNet of stabilityai/stable-diffusion-xl-base-1.0 (its unet/config.json), 2.57 B parameters: SD 2.1's
#: conventions (channels, norms, activation, padding) with these architecture changes
SDXL_UNET: dict[str, Any] = SD21_UNET | {
    "sample_size": 128,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (320, 640, 1280),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}


def sd21_components(unet: UNet2DConditionModel) -> dict[str, Any]:
    """The real-size SD 2.1 UNet with the tiny VAE and a small 1024-wide text encoder (``unet`` is shared)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    components = build_components("sd21")
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    components["text_encoder"] = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=unet.config.cross_attention_dim,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=16,
            max_position_embeddings=77,
            projection_dim=64,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    ).eval()
    components["unet"] = unet
    return components


def to_device(components: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Move the modules of ``components`` to ``device`` and ``dtype`` (fp32 modules are only moved)."""
    moved = {}
    for name, value in components.items():
        if isinstance(value, torch.nn.Module):
            value = value.to(device)
            if dtype != torch.float32:
                value = value.to(dtype)
        moved[name] = value
    return moved


def build_unet(config: dict[str, Any], device: torch.device, dtype: torch.dtype) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return to_device({"unet": UNet2DConditionModel(**config)}, device, dtype)["unet"].eval()
