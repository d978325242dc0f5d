"""Validation: the VAE's reconstruction PSNR, the UNet's removal diagnostics, and the run's sample images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

# the defining modules: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from .config import TrainingConfig
from .data import scene_images, validation_removals, validation_seeds
from .loop import SAMPLES_STAGE, stage_seed

#: the diagnostics' validation set: scenes, mask growth (pixels, as the demo preset) and timesteps (SIP's
#: range at strength 0.8: t = 781 ... 1)
DIAGNOSTIC_SCENES = 16
DIAGNOSTIC_MASK_DILATION = 2
DIAGNOSTIC_TIMESTEPS = (781, 581, 381, 201)


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR (dB) over the batch of two ``(B, 3, H, W)`` images in [-1, 1]."""
    error = ((reconstruction.clamp(-1, 1) - target) / 2).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / error.clamp_min(1e-10))).mean())


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Decode the posterior mean of ``images`` ``(B, 3, H, W)`` in [-1, 1]."""
    return vae.decode(vae.encode(images).latent_dist.mode()).sample.clamp(-1, 1)


def removal_scenes(config: TrainingConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagnostics' fixed validation scenes and the masks of the objects to remove, on ``device``."""
    images, masks = validation_removals(
        validation_seeds(config.validation_scenes),
        config.resolution,
        DIAGNOSTIC_MASK_DILATION,
        DIAGNOSTIC_SCENES,
    )
    return images.to(device), masks.to(device)


def removal_diagnostics(
    unet: UNet2DConditionModel,
    latents: torch.Tensor,
    noise: torch.Tensor,
    masks: torch.Tensor,
    prompt_embeds: torch.Tensor,
    scheduler: Any,
    timesteps: Sequence[int] = DIAGNOSTIC_TIMESTEPS,
) -> dict[str, float]:
    """Flat ``val_*`` metrics: the SARG signal (median over ``timesteps``) and attention selectivity per grid.

    ``val_sarg_inside`` / ``val_sarg_outside``: relative ``||eps_erased - eps_plain||`` inside / outside the
    mask; ``val_attn_entropy_16x16``: normalised attention entropy at that grid (1 = uniform);
    ``val_attn_object_16x16`` vs ``val_attn_share_16x16``: attention mass object queries put on object keys
    vs the object keys' share.
    """
    from ..core.diagnostics import attention_selectivity, sarg_signal

    context = prompt_embeds.expand(latents.shape[0], -1, -1)
    signal = sarg_signal(unet, latents, noise, masks, timesteps, context, scheduler)
    metrics = {
        "val_sarg_inside": round(signal.median_inside, 5),
        "val_sarg_outside": round(float(np.median(signal.outside)), 5),
        "val_sarg_share_inside": round(float(np.median(signal.share_inside)), 4),
    }
    selectivity = attention_selectivity(unet, latents, noise, masks, timesteps, context, scheduler)
    for grid, values in selectivity.by_grid().items():
        metrics[f"val_attn_entropy_{grid}"] = round(values["entropy"], 4)
        metrics[f"val_attn_object_{grid}"] = round(values["object_to_object"], 4)
        metrics[f"val_attn_share_{grid}"] = round(values["object_share"], 4)
    return metrics


@torch.no_grad()
def save_samples(pipeline: Any, vae: AutoencoderKL, config: TrainingConfig, path: Path) -> None:
    """A 3-row PNG: up to 8 validation scenes, their VAE reconstructions, and unconditional DDIM samples."""
    from PIL import Image

    count = min(8, config.validation_scenes)
    device = pipeline.device
    images = scene_images(validation_seeds(config.validation_scenes)[:count], config.resolution).to(device)
    reconstructions = reconstruct(vae, images)
    generator = torch.Generator(device).manual_seed(stage_seed(config.seed, SAMPLES_STAGE))
    samples = pipeline(
        [""] * count,
        height=config.resolution,
        width=config.resolution,
        num_inference_steps=25,
        guidance_scale=1.0,
        generator=generator,
        output_type="pt",
    ).images  # (B, 3, H, W) in [0, 1]
    rows = [(images + 1) / 2, (reconstructions + 1) / 2, samples.to(device)]
    grid = torch.cat([torch.cat(list(row.clamp(0, 1)), dim=2) for row in rows], dim=1)  # (3, 3H, BW)
    Image.fromarray((grid.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)).save(path)
