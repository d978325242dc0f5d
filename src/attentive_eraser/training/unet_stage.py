"""Stage (b): the ``UNet2DConditionModel`` on the frozen VAE's latents, conditioned on the empty prompt.

Epsilon objective, SD's scaled-linear betas, AdamW and an EMA of the weights; the frozen random CLIP text
encoder that embeds the empty prompt is seeded by a stage of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F

# the defining modules: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from transformers import CLIPTextModel, CLIPTokenizer

from .checkpoints import Checkpoints, StageState
from .config import TrainingConfig
from .data import SceneBatches, scene_images, validation_seeds
from .log import LossLog
from .loop import TEXT_STAGE, UNET_STAGE, StageResult, run_stage, stage_seed
from .models import (
    build_noise_scheduler,
    build_text_encoder,
    build_tokenizer,
    build_unet,
    empty_prompt_embeddings,
)
from .optim import ExponentialMovingAverage, adamw
from .validation import removal_diagnostics, removal_scenes


def text_conditioning(
    config: TrainingConfig, device: torch.device
) -> tuple[CLIPTokenizer, CLIPTextModel, torch.Tensor]:
    """The tokenizer, the frozen random CLIP text encoder, and the empty prompt's embeddings."""
    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stage_seed(config.seed, TEXT_STAGE))
        text_encoder = build_text_encoder(config, tokenizer)
    text_encoder.to(device)  # type: ignore[arg-type]  # transformers' @wraps-ed .to(), as diffusers'
    return tokenizer, text_encoder, empty_prompt_embeddings(text_encoder, tokenizer, device)


@dataclass(frozen=True)
class EpsilonObjective:
    """SD's objective: predict the noise added to the frozen VAE's scaled latents at a random timestep."""

    vae: AutoencoderKL
    scaling_factor: float
    noise_scheduler: DDPMScheduler
    prompt_embeds: torch.Tensor
    num_train_timesteps: int
    device: torch.device

    def latents(self, images: torch.Tensor, noise_generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            return self.vae.encode(images).latent_dist.sample(noise_generator) * self.scaling_factor

    def loss(self, model: torch.nn.Module, latents: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        batch = latents.shape[0]
        noise = torch.randn(latents.shape, generator=rng, device=self.device)
        timesteps = torch.randint(0, self.num_train_timesteps, (batch,), generator=rng, device=self.device)
        # diffusers annotates the timesteps as IntTensor; any integer tensor works (randint's are int64)
        noisy = self.noise_scheduler.add_noise(latents, noise, cast(torch.IntTensor, timesteps))
        context = self.prompt_embeds.expand(batch, -1, -1)
        prediction = model(noisy, timesteps, encoder_hidden_states=context).sample
        return F.mse_loss(prediction.float(), noise)  # epsilon objective, in float32 under autocast too


def train_unet(
    config: TrainingConfig,
    vae: AutoencoderKL,
    prompt_embeds: torch.Tensor,
    device: torch.device,
    log: LossLog,
    progress: bool = True,
    checkpoints: Checkpoints | None = None,
) -> tuple[UNet2DConditionModel, StageResult]:
    """Stage (b): train the UNet on the frozen VAE's latents; returns the EMA weights.

    Each validation logs the EMA model's loss on fixed noise and timesteps and its removal diagnostics
    (:func:`.validation.removal_diagnostics`) on fixed validation scenes.
    """
    seed = stage_seed(config.seed, UNET_STAGE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_unet(config)
    unet.to(device).train()  # type: ignore[arg-type]  # diffusers' @wraps-ed .to() looks unbound to mypy
    ema = ExponentialMovingAverage(unet, config.ema_decay)
    noise_scheduler = build_noise_scheduler(config)
    batches = SceneBatches(
        seed,
        config.unet_batch_size,
        config.resolution,
        config.removed_object_probability,
        config.validation_scenes,
    )
    generator = torch.Generator(device).manual_seed(seed)
    optimizer, schedule = adamw(
        unet, config.unet_learning_rate, config.unet_weight_decay, config, config.unet_steps
    )
    objective = EpsilonObjective(
        vae, vae.config["scaling_factor"], noise_scheduler, prompt_embeds, config.num_train_timesteps, device
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.mixed_precision == "bf16")

    def step() -> float:
        with autocast:
            latents = objective.latents(next(batches).to(device), generator)
            loss = objective.loss(unet, latents, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), config.max_grad_norm)
        optimizer.step()
        schedule.step()
        ema.update(unet)
        return float(loss.detach())

    validation = scene_images(validation_seeds(config.validation_scenes), config.resolution).to(device)
    removal_images, removal_masks = removal_scenes(config, device)

    @torch.no_grad()
    def validate(step: int) -> dict[str, float]:
        # The same latents, noise and timesteps every time, so that the numbers are comparable.
        fixed = torch.Generator(device).manual_seed(seed + 1)
        latents = objective.latents(validation, fixed)
        metrics = {"val_loss_ema": round(float(objective.loss(ema.model, latents, fixed)), 5)}
        fixed = torch.Generator(device).manual_seed(seed + 2)
        removal_latents = objective.latents(removal_images, fixed)
        noise = torch.randn(removal_latents.shape, generator=fixed, device=device)
        metrics.update(
            removal_diagnostics(
                ema.model, removal_latents, noise, removal_masks, prompt_embeds, noise_scheduler
            )
        )
        return metrics

    state = StageState(unet, optimizer, schedule, generator, batches, ema)
    result = run_stage("unet", config.unet_steps, step, log, progress, validate, state, checkpoints)
    if not result.metrics:
        result.metrics = validate(0)
    return ema.model, result
