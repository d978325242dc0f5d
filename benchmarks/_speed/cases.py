"""The inputs of the speed benchmark: masks, conditioning, and everything one SIP step needs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddim import DDIMScheduler

from attentive_eraser.core.attention import EraserState
from attentive_eraser.core.guidance import SARGBatch

#: share of the image covered by the centred box mask
MASK_AREA = 0.15
SUPPRESSION_SCALE = 0.3
SUPPRESSION_STEPS = 10


def centred_box(height: int, width: int, area: float = MASK_AREA) -> torch.Tensor:
    """``(1, 1, H, W)`` pixel mask: a centred box with the image's aspect ratio covering ``area`` of it."""
    side = math.sqrt(area)
    box_h, box_w = round(height * side), round(width * side)
    top, left = (height - box_h) // 2, (width - box_w) // 2
    mask = torch.zeros(1, 1, height, width)
    mask[..., top : top + box_h, left : left + box_w] = 1.0
    return mask


def unet_conditioning(
    unet: UNet2DConditionModel,
    batch: int,
    size: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Random text embeddings (and SDXL's pooled embeddings and size ids) shaped as the UNet config wants."""
    config = unet.config
    conditioning: dict[str, Any] = {
        "encoder_hidden_states": torch.randn(batch, 77, config.cross_attention_dim, generator=generator).to(
            device, dtype
        )
    }
    if config.addition_embed_type == "text_time":
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        height, width = size
        conditioning["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled, generator=generator).to(device, dtype),
            "time_ids": torch.tensor(
                [[height, width, 0, 0, height, width]] * batch, device=device, dtype=dtype
            ),
        }
    return conditioning


@dataclass
class StepCase:
    """Everything one SIP denoising step needs, for one image of ``size`` pixels."""

    unet: UNet2DConditionModel
    size: tuple[int, int]  # (height, width) in pixels
    latents: torch.Tensor  # (1, 4, h, w)
    image_latents: torch.Tensor
    noise: torch.Tensor
    latent_mask: torch.Tensor  # (1, 1, h, w)
    conditioning: dict[str, Any]  # already laid out as [plain, erased]
    batch: SARGBatch
    scheduler: DDIMScheduler
    timestep: torch.Tensor
    next_timestep: torch.Tensor
    state: EraserState

    def sarg_step(self) -> torch.Tensor:
        """One SIP step: SARG noise prediction (Eq. 18), DDIM step, background blended back."""
        model_output = self.unet(
            self.batch.expand(self.latents), self.timestep, **self.conditioning, return_dict=False
        )[0]
        noise_pred = self.batch.combine(model_output)
        latents = self.scheduler.step(noise_pred, self.timestep, self.latents, eta=0.0, return_dict=False)[0]
        background = self.scheduler.add_noise(self.image_latents, self.noise, self.next_timestep)
        return self.latent_mask * latents + (1 - self.latent_mask) * background

    def floor(self) -> torch.Tensor:
        """The plain UNet at the same batch of 2, stock processors."""
        return self.unet(
            self.batch.expand(self.latents), self.timestep, **self.conditioning, return_dict=False
        )[0]


def make_step_case(
    unet: UNet2DConditionModel, size: tuple[int, int], device: torch.device, dtype: torch.dtype
) -> StepCase:
    generator = torch.Generator().manual_seed(0)
    height, width = size
    latent_size = (height // 8, width // 8)
    latents = torch.randn(1, unet.config.in_channels, *latent_size, generator=generator).to(device, dtype)
    pixel_mask = centred_box(height, width).to(device)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    scheduler.set_timesteps(50, device=device)
    timesteps = scheduler.timesteps[10:]  # strength 0.8: the last 40 of 50 steps
    state = EraserState(
        suppression_scale=SUPPRESSION_SCALE, suppression_steps=SUPPRESSION_STEPS, enabled=True
    )
    state.set_mask(pixel_mask, latent_size)
    state.step_index = 0  # Similarity Suppression on: the dearer of the two kinds of step
    batch = SARGBatch(1, removal_guidance_scale=9.0)
    return StepCase(
        unet=unet,
        size=size,
        latents=latents,
        image_latents=torch.randn(latents.shape, generator=generator).to(device, dtype),
        noise=torch.randn(latents.shape, generator=generator).to(device, dtype),
        latent_mask=torch.nn.functional.adaptive_max_pool2d(pixel_mask, latent_size).to(dtype),
        conditioning=batch.expand_all(unet_conditioning(unet, 1, size, device, dtype, generator)),
        batch=batch,
        scheduler=scheduler,
        timestep=timesteps[0],
        next_timestep=timesteps[1:2],
        state=state,
    )


def image_and_mask(
    size: tuple[int, int], mask_fraction: float, seed: int = 0
) -> tuple[PIL.Image.Image, np.ndarray]:
    """A random RGB photo of ``size`` (width, height) and a centred box mask covering ``mask_fraction``."""
    width, height = size
    rng = np.random.default_rng(seed)
    # smooth random colours (a photo is not white noise), upsampled from a coarse grid
    coarse = rng.integers(0, 256, size=(max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    image = PIL.Image.fromarray(coarse).resize((width, height), PIL.Image.Resampling.BILINEAR)
    mask = centred_box(height, width, mask_fraction)[0, 0].numpy() > 0.5
    return image, mask
