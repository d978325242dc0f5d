"""The demo model's components, built from a :class:`TrainingConfig`: Stable Diffusion's architecture."""

from __future__ import annotations

import torch

# the defining modules: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .config import TrainingConfig
from .tokenizer import build_tokenizer

__all__ = [
    "build_noise_scheduler",
    "build_sampling_scheduler",
    "build_text_encoder",
    "build_tokenizer",
    "build_unet",
    "build_vae",
    "empty_prompt_embeddings",
]


def build_vae(config: TrainingConfig) -> AutoencoderKL:
    """An ``AutoencoderKL`` with ``len(vae_block_out_channels)`` levels (3 levels: 4x down)."""
    levels = len(config.vae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=config.vae_block_out_channels,
        layers_per_block=config.vae_layers_per_block,
        latent_channels=config.vae_latent_channels,
        norm_num_groups=config.vae_norm_num_groups,
        sample_size=config.resolution,
    )


def build_unet(config: TrainingConfig) -> UNet2DConditionModel:
    """A ``UNet2DConditionModel`` with cross-attention blocks at the two finest latent grids only.

    With the default 16x16 latents: transformer blocks at 16x16 and 8x8 in the encoder and the decoder,
    none at 4x4 (mid block aside), so the eraser's decoder self-attention acts on two token grids.
    """
    levels = len(config.unet_block_out_channels)
    plain = levels - 2
    return UNet2DConditionModel(
        sample_size=config.latent_size,
        in_channels=config.vae_latent_channels,
        out_channels=config.vae_latent_channels,
        down_block_types=("CrossAttnDownBlock2D",) * 2 + ("DownBlock2D",) * plain,
        up_block_types=("UpBlock2D",) * plain + ("CrossAttnUpBlock2D",) * 2,
        block_out_channels=config.unet_block_out_channels,
        layers_per_block=config.unet_layers_per_block,
        norm_num_groups=config.unet_norm_num_groups,
        # diffusers' legacy name: this is the number of heads (see UNet2DConditionModel's docstring)
        attention_head_dim=config.unet_attention_heads,
        cross_attention_dim=config.text_hidden_size,
    )


def build_text_encoder(config: TrainingConfig, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """A small random CLIP text encoder; it stays frozen (the model only ever sees the empty prompt)."""
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.text_hidden_size,
        intermediate_size=config.text_intermediate_size,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=config.text_hidden_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(text_config).requires_grad_(False).eval()


def build_noise_scheduler(config: TrainingConfig) -> DDPMScheduler:
    """The training noise schedule: SD's scaled-linear betas, epsilon objective."""
    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
    )


def build_sampling_scheduler(config: TrainingConfig) -> DDIMScheduler:
    """The scheduler saved with the model: DDIM on the training betas, configured like SD 1.5's."""
    return DDIMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


@torch.no_grad()
def empty_prompt_embeddings(
    text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, device: torch.device
) -> torch.Tensor:
    """``(1, 77, D)`` embeddings of ``""``, tokenized and encoded exactly as the SD pipelines do."""
    tokens = tokenizer(
        [""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    return text_encoder(tokens.input_ids.to(device))[0]
