"""Stage (a): the ``AutoencoderKL`` (reconstruction L1 + MSE + a small KL term) and its latent scaling."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

# the defining module: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL

from .checkpoints import Checkpoints, StageState
from .config import TrainingConfig
from .data import SceneBatches, scene_images, validation_seeds
from .log import LossLog
from .loop import VAE_STAGE, StageResult, run_stage, stage_seed
from .models import build_vae
from .optim import adamw
from .validation import psnr, reconstruct


def train_vae(
    config: TrainingConfig,
    device: torch.device,
    log: LossLog,
    progress: bool = True,
    checkpoints: Checkpoints | None = None,
) -> tuple[AutoencoderKL, StageResult]:
    """Stage (a): train the ``AutoencoderKL`` and set its latent scaling factor."""
    seed = stage_seed(config.seed, VAE_STAGE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = build_vae(config)
    vae.to(device).train()  # type: ignore[arg-type]  # diffusers' @wraps-ed .to() looks unbound to mypy
    batches = SceneBatches(
        seed,
        config.vae_batch_size,
        config.resolution,
        config.removed_object_probability,
        config.validation_scenes,
    )
    generator = torch.Generator(device).manual_seed(seed)
    optimizer, schedule = adamw(vae, config.vae_learning_rate, 0.0, config, config.vae_steps)
    validation = scene_images(validation_seeds(config.validation_scenes), config.resolution).to(device)

    def step() -> float:
        images = next(batches).to(device)
        posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample(generator)).sample
        loss = (
            config.vae_l1_weight * F.l1_loss(reconstruction, images)
            + config.vae_mse_weight * F.mse_loss(reconstruction, images)
            + config.vae_kl_weight * posterior.kl().mean()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), config.max_grad_norm)
        optimizer.step()
        schedule.step()
        return float(loss.detach())

    def validate(step: int) -> dict[str, float]:
        vae.eval()
        value = psnr(reconstruct(vae, validation), validation)
        vae.train()
        return {"val_psnr_db": round(value, 3)}

    state = StageState(vae, optimizer, schedule, generator, batches)
    result = run_stage("vae", config.vae_steps, step, log, progress, validate, state, checkpoints)
    vae.eval().requires_grad_(False)

    # SD's recipe: scale latents to unit variance for the diffusion model (SD 1.x: 0.18215).
    with torch.no_grad():
        latents = vae.encode(validation).latent_dist.sample(generator)
    scaling_factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=round(scaling_factor, 5))
    if not result.metrics:
        result.metrics = validate(0)
    result.metrics["scaling_factor"] = vae.config["scaling_factor"]
    return vae, result


def load_vae(path: str | os.PathLike[str], device: torch.device) -> AutoencoderKL:
    """A trained VAE from a ``vae`` folder or a model folder that has one (``--vae-from``)."""
    path = Path(path)
    if (path / "vae").is_dir():
        path = path / "vae"
    vae = AutoencoderKL.from_pretrained(path, torch_dtype=torch.float32)
    return vae.to(device).eval().requires_grad_(False)
