"""Train the demo model: a small Stable-Diffusion-architecture model on procedural scenes, from scratch.

Command line::

    python -m attentive_eraser.training.train_demo --out DIR [--config CONFIG.json] [--seed 0]
        [--device cpu|cuda] [--vae-steps N] [--unet-steps N] [--batch-size N] [--resolution 64]
        [--vae-from FOLDER] [--num-threads N] [--checkpoint-every 250] [--resume] [--overwrite]
        [--no-progress]

Two stages, each with its own seeded random streams (so a stage's result depends on the seed and the
config only): (a) an ``AutoencoderKL`` (reconstruction L1 + MSE + a small KL term), whose latent scaling
factor is then set to 1 / std of its latents, as for SD; (b) a ``UNet2DConditionModel`` on the frozen
VAE's latents (epsilon objective, SD's scaled-linear betas, AdamW, EMA of the weights), conditioned on a
frozen random CLIP text encoder fed the empty prompt. A quarter of the training images have one object
removed, so that object-free scenes occur.

``DIR`` receives ``training_config.json`` (config, seed, versions, timings, results), ``loss_log.jsonl``
(one JSON record per step and per validation; the UNet's validations include the removal diagnostics of
:mod:`attentive_eraser.core.diagnostics` -- SARG signal and decoder self-attention selectivity -- on fixed
validation scenes), ``checkpoints/`` (the training state every ``--checkpoint-every`` steps, and the
finished VAE: ``--resume`` continues a killed run from there, with the same result as an uninterrupted
run on the same machine and thread count), ``samples.png`` (validation scenes, VAE reconstructions,
25-step DDIM samples) and ``model/``, a diffusers ``StableDiffusionPipeline`` folder (safetensors) that
the eraser pipelines load with ``from_pretrained``. On CPU the result is the same for the same seed and
thread count. On a machine shared with other jobs, set ``OMP_WAIT_POLICY=PASSIVE``.

How long a run takes depends on the machine: the README's "Demo model and removal benchmark" section
gives the commands that trained the shipped weights and their wall time, and the ``training_config.json``
saved with them (``src/attentive_eraser/demo_model/training/``) records each stage's seconds and mean
seconds per step. Watch the progress bar's s/it in the first minute; a killed run continues with
``--resume``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, cast

import numpy as np
import torch
import torch.nn.functional as F

# the defining modules: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from tqdm.auto import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from .config import TrainingConfig
from .data import SceneBatches, scene_images, validation_removals, validation_seeds
from .models import (
    build_noise_scheduler,
    build_sampling_scheduler,
    build_text_encoder,
    build_tokenizer,
    build_unet,
    build_vae,
    empty_prompt_embeddings,
)

#: stage ids: each stage draws its weights, data and noise from seeds derived from (seed, stage id)
_VAE_STAGE, _UNET_STAGE, _TEXT_STAGE, _SAMPLES_STAGE = 1, 2, 3, 4
#: the mean step time leaves out these first steps (allocations, lazy initialisation)
_TIMING_WARMUP_STEPS = 3
#: validations per stage (written to the loss log)
_VALIDATIONS = 10


def stage_seed(seed: int, stage: int) -> int:
    """A 32-bit seed for one stage of the run ``seed``; stages get independent streams."""
    return int(np.random.SeedSequence([seed, stage]).generate_state(1)[0])


def lr_factor(step: int, total: int, warmup: int, final_fraction: float) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to ``final_fraction``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


_Model = TypeVar("_Model", bound=torch.nn.Module)


class ExponentialMovingAverage(Generic[_Model]):
    """An EMA copy of a model's parameters, with the usual warm-up ``min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, model: _Model, decay: float) -> None:
        self.model: _Model = copy.deepcopy(model).requires_grad_(False).eval()
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.parameters(), model.parameters(), strict=False):
            average.lerp_(current, 1 - decay)


@dataclass
class StageResult:
    """What one training stage reports (saved into ``training_config.json``)."""

    steps: int = 0
    seconds: float = 0.0
    seconds_per_step: float | None = None
    #: the loss averaged over about the last 20 steps (exponential moving average, 0.95)
    final_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class LossLog:
    """``loss_log.jsonl``: one JSON object per line (``stage``, ``step``, ``loss`` or validation metrics).

    ``keep`` (on resume) maps a stage to the last step whose records stay; later records of that stage,
    written after the checkpoint the run resumes from, are dropped, and stages not in ``keep`` are dropped.
    """

    def __init__(self, path: Path, keep: dict[str, int] | None = None) -> None:
        self.path = path
        kept: list[str] = []
        if keep is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("stage") in keep and record.get("step", 0) <= keep[record["stage"]]:
                    kept.append(line)
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        for line in kept:
            self._file.write(line + "\n")
        self._file.flush()

    def write(self, **record: Any) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _optimizer(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, config: TrainingConfig, total: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, config.warmup_steps, config.final_lr_fraction)
    )
    return optimizer, schedule


@dataclass(frozen=True)
class Checkpoints:
    """Where a run keeps its training state, how often it saves it, and whether to continue from it."""

    folder: Path
    every: int = 250
    resume: bool = False

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.pt"

    def load(self, stage: str) -> dict[str, Any] | None:
        """The saved state of ``stage`` when resuming and one exists (tensors and plain values only)."""
        path = self.path(stage)
        if not self.resume or not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, stage: str, state: dict[str, Any]) -> None:
        """Write ``state`` atomically: a killed run never leaves a half-written checkpoint."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(stage)
        partial = path.with_name(path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, path)

    def saved_step(self, stage: str) -> int:
        """The step of ``stage``'s checkpoint (0 without one); loads the checkpoint, so call it once."""
        state = self.load(stage)
        return 0 if state is None else int(state["progress"]["step"])


def _numpy_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy generator's state as plain values (its 128-bit integers as strings: safe to load)."""
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": str(state["state"]["state"]),
        "inc": str(state["state"]["inc"]),
        "has_uint32": state["has_uint32"],
        "uinteger": state["uinteger"],
    }


def _set_numpy_state(rng: np.random.Generator, saved: dict[str, Any]) -> None:
    rng.bit_generator.state = {
        "bit_generator": saved["bit_generator"],
        "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
        "has_uint32": saved["has_uint32"],
        "uinteger": saved["uinteger"],
    }


def _run_steps(
    name: str,
    steps: int,
    step_fn: Callable[[], float],
    log: LossLog,
    progress: bool,
    validate: Callable[[int], dict[str, float]] | None = None,
    resumed: dict[str, Any] | None = None,
    save: Callable[[dict[str, Any]], None] | None = None,
    save_every: int = 0,
) -> StageResult:
    """Call ``step_fn`` ``steps`` times with a progress bar, logging every loss and timing the steps.

    ``resumed`` (the ``progress`` part of a checkpoint) continues after its step; ``save(progress)`` is
    called every ``save_every`` steps with what ``resumed`` needs.
    """
    result = StageResult(steps=steps)
    smoothed: float | None = None
    durations = []
    first, done_seconds = 1, 0.0
    if resumed is not None:
        first = int(resumed["step"]) + 1
        smoothed = resumed["smoothed"]
        done_seconds = float(resumed["seconds"])
        result.metrics = dict(resumed["metrics"])
    start = time.perf_counter()
    bar = tqdm(
        range(first, steps + 1),
        desc=name,
        disable=not progress,
        dynamic_ncols=True,
        initial=first - 1,
        total=steps,
    )
    for step in bar:
        tick = time.perf_counter()
        loss = step_fn()
        durations.append(time.perf_counter() - tick)
        smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
        log.write(stage=name, step=step, loss=loss, seconds=round(durations[-1], 4))
        bar.set_postfix(loss=f"{smoothed:.4f}")
        if validate is not None and (step % max(1, steps // _VALIDATIONS) == 0 or step == steps):
            metrics = validate(step)
            log.write(stage=name, step=step, **metrics)
            result.metrics = metrics
        if save is not None and save_every and (step % save_every == 0 or step == steps):
            save(
                {
                    "step": step,
                    "smoothed": smoothed,
                    "metrics": result.metrics,
                    "seconds": done_seconds + time.perf_counter() - start,
                }
            )
    bar.close()
    result.seconds = done_seconds + time.perf_counter() - start
    timed = durations[_TIMING_WARMUP_STEPS:] or durations
    result.seconds_per_step = float(np.mean(timed)) if timed else None
    result.final_loss = smoothed
    return result


# --------------------------------------------------------------------------------------------------
# (a) The VAE


def _psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR (dB) over the batch of two ``(B, 3, H, W)`` images in [-1, 1]."""
    error = ((reconstruction.clamp(-1, 1) - target) / 2).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / error.clamp_min(1e-10))).mean())


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Decode the posterior mean of ``images`` ``(B, 3, H, W)`` in [-1, 1]."""
    return vae.decode(vae.encode(images).latent_dist.mode()).sample.clamp(-1, 1)


def _restore(
    saved: dict[str, Any] | None,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LambdaLR,
    generator: torch.Generator,
    batches: SceneBatches,
) -> dict[str, Any] | None:
    """Load a stage checkpoint into the live objects; returns its ``progress`` part (None: a fresh start)."""
    if saved is None:
        return None
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    generator.set_state(saved["generator"])
    _set_numpy_state(batches.rng, saved["scenes"])
    return saved["progress"]


def _stage_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LambdaLR,
    generator: torch.Generator,
    batches: SceneBatches,
    progress: dict[str, Any],
) -> dict[str, Any]:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "generator": generator.get_state(),
        "scenes": _numpy_state(batches.rng),
        "progress": progress,
    }


def train_vae(
    config: TrainingConfig,
    device: torch.device,
    log: LossLog,
    progress: bool = True,
    checkpoints: Checkpoints | None = None,
) -> tuple[AutoencoderKL, StageResult]:
    """Stage (a): train the ``AutoencoderKL`` and set its latent scaling factor."""
    seed = stage_seed(config.seed, _VAE_STAGE)
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
    optimizer, schedule = _optimizer(vae, config.vae_learning_rate, 0.0, config, config.vae_steps)
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
        psnr = _psnr(reconstruct(vae, validation), validation)
        vae.train()
        return {"val_psnr_db": round(psnr, 3)}

    saved = checkpoints.load("vae") if checkpoints is not None else None
    resumed = _restore(saved, vae, optimizer, schedule, generator, batches)

    def save(done: dict[str, Any]) -> None:
        assert checkpoints is not None
        checkpoints.save("vae", _stage_state(vae, optimizer, schedule, generator, batches, done))

    result = _run_steps(
        "vae",
        config.vae_steps,
        step,
        log,
        progress,
        validate,
        resumed=resumed,
        save=save if checkpoints is not None else None,
        save_every=checkpoints.every if checkpoints is not None else 0,
    )
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


# --------------------------------------------------------------------------------------------------
# (b) The UNet

#: the diagnostics' validation set: scenes, mask growth (pixels, as the demo preset) and timesteps (SIP's
#: range at strength 0.8: t = 781 ... 1)
DIAGNOSTIC_SCENES = 16
DIAGNOSTIC_MASK_DILATION = 2
DIAGNOSTIC_TIMESTEPS = (781, 581, 381, 201)


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
    (:func:`removal_diagnostics`) on fixed validation scenes.
    """
    seed = stage_seed(config.seed, _UNET_STAGE)
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
    optimizer, schedule = _optimizer(
        unet, config.unet_learning_rate, config.unet_weight_decay, config, config.unet_steps
    )
    scaling_factor = vae.config["scaling_factor"]

    def latents_of(images: torch.Tensor, noise_generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            return vae.encode(images).latent_dist.sample(noise_generator) * scaling_factor

    def loss_of(model: torch.nn.Module, latents: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        batch = latents.shape[0]
        noise = torch.randn(latents.shape, generator=rng, device=device)
        timesteps = torch.randint(0, config.num_train_timesteps, (batch,), generator=rng, device=device)
        # diffusers annotates the timesteps as IntTensor; any integer tensor works (randint's are int64)
        noisy = noise_scheduler.add_noise(latents, noise, cast(torch.IntTensor, timesteps))
        context = prompt_embeds.expand(batch, -1, -1)
        prediction = model(noisy, timesteps, encoder_hidden_states=context).sample
        return F.mse_loss(prediction.float(), noise)  # epsilon objective, in float32 under autocast too

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.mixed_precision == "bf16")

    def step() -> float:
        with autocast:
            latents = latents_of(next(batches).to(device), generator)
            loss = loss_of(unet, latents, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), config.max_grad_norm)
        optimizer.step()
        schedule.step()
        ema.update(unet)
        return float(loss.detach())

    validation = scene_images(validation_seeds(config.validation_scenes), config.resolution).to(device)

    removal_images, removal_masks = validation_removals(
        validation_seeds(config.validation_scenes),
        config.resolution,
        DIAGNOSTIC_MASK_DILATION,
        DIAGNOSTIC_SCENES,
    )
    removal_images, removal_masks = removal_images.to(device), removal_masks.to(device)

    @torch.no_grad()
    def validate(step: int) -> dict[str, float]:
        # The same latents, noise and timesteps every time, so that the numbers are comparable.
        fixed = torch.Generator(device).manual_seed(seed + 1)
        latents = latents_of(validation, fixed)
        metrics = {"val_loss_ema": round(float(loss_of(ema.model, latents, fixed)), 5)}
        fixed = torch.Generator(device).manual_seed(seed + 2)
        removal_latents = latents_of(removal_images, fixed)
        noise = torch.randn(removal_latents.shape, generator=fixed, device=device)
        metrics.update(
            removal_diagnostics(
                ema.model, removal_latents, noise, removal_masks, prompt_embeds, noise_scheduler
            )
        )
        return metrics

    saved = checkpoints.load("unet") if checkpoints is not None else None
    resumed = _restore(saved, unet, optimizer, schedule, generator, batches)
    if saved is not None:
        ema.model.load_state_dict(saved["ema"])
        ema.updates = int(saved["ema_updates"])

    def save(done: dict[str, Any]) -> None:
        assert checkpoints is not None
        state = _stage_state(unet, optimizer, schedule, generator, batches, done)
        state.update(ema=ema.model.state_dict(), ema_updates=ema.updates)
        checkpoints.save("unet", state)

    result = _run_steps(
        "unet",
        config.unet_steps,
        step,
        log,
        progress,
        validate,
        resumed=resumed,
        save=save if checkpoints is not None else None,
        save_every=checkpoints.every if checkpoints is not None else 0,
    )
    if not result.metrics:
        result.metrics = validate(0)
    return ema.model, result


# --------------------------------------------------------------------------------------------------
# Saving and the whole run


def _versions() -> dict[str, str]:
    import diffusers
    import transformers

    from .. import __version__

    versions = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "attentive_eraser": __version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if commit.returncode == 0:
            versions["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return versions


def _folder_megabytes(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1e6


@torch.no_grad()
def _save_samples(pipeline: Any, vae: AutoencoderKL, config: TrainingConfig, path: Path) -> None:
    """A 3-row PNG: up to 8 validation scenes, their VAE reconstructions, and unconditional DDIM samples."""
    from PIL import Image

    count = min(8, config.validation_scenes)
    device = pipeline.device
    images = scene_images(validation_seeds(config.validation_scenes)[:count], config.resolution).to(device)
    reconstructions = reconstruct(vae, images)
    generator = torch.Generator(device).manual_seed(stage_seed(config.seed, _SAMPLES_STAGE))
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


def save_pipeline(
    config: TrainingConfig,
    vae: AutoencoderKL,
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    path: Path,
) -> Any:
    """Assemble the ``StableDiffusionPipeline``, save it (safetensors) to ``path`` and return it."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline

    # diffusers annotates ``scheduler`` with its enum of scheduler names and both safety components as
    # required; the pipeline takes any scheduler instance, and None for both without a safety checker.
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=build_sampling_scheduler(config),  # type: ignore[arg-type]
        safety_checker=None,  # type: ignore[arg-type]
        feature_extractor=None,  # type: ignore[arg-type]
        requires_safety_checker=False,
    )
    if config.save_dtype == "float16":
        copy_to_save = copy.deepcopy(pipeline).to(dtype=torch.float16)
        copy_to_save.save_pretrained(path, safe_serialization=True)
    else:
        pipeline.save_pretrained(path, safe_serialization=True)
    return pipeline


def train(
    config: TrainingConfig,
    out: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    vae_from: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: Sequence[str] | None = None,
    checkpoint_every: int = 250,
    resume: bool = False,
) -> dict[str, Any]:
    """Run both stages and write everything into ``out`` (see the module docstring); returns the record.

    ``resume=True`` continues from ``out/checkpoints`` (the finished VAE, then the last UNet checkpoint)
    with the config of the run being resumed, which ``config`` must equal.
    """
    out = Path(out)
    model_dir = out / "model"
    if model_dir.exists() and not (overwrite or resume):
        raise FileExistsError(f"{model_dir} exists; pass overwrite=True (--overwrite) to replace it")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every!r}")
    device = torch.device(device)
    record_path = out / "training_config.json"
    checkpoints = Checkpoints(out / "checkpoints", checkpoint_every, resume)
    previous: dict[str, Any] | None = None
    if resume:
        if not record_path.is_file():
            raise FileNotFoundError(f"nothing to resume: {record_path} does not exist")
        previous = json.loads(record_path.read_text(encoding="utf-8"))
        if TrainingConfig.from_dict(previous["config"]) != config:
            raise ValueError(f"resume: the config differs from the one in {record_path}")
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "config": config.to_dict(),
        "seed": config.seed,
        "device": str(device),
        "num_threads": torch.get_num_threads(),
        "vae_from": None if vae_from is None else str(vae_from),
        "command": list(command) if command is not None else None,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    finished_vae = checkpoints.folder / "vae"
    vae_done = resume and (finished_vae / "config.json").is_file()
    unet_step = checkpoints.saved_step("unet") if resume else 0
    if previous is not None:
        record["started"] = previous["started"]
        record["command"] = previous["command"]
        record["resumed"] = [
            *previous.get("resumed", []),
            {
                "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "command": list(command) if command is not None else None,
                "vae_done": vae_done,
                "unet_step": unet_step,
            },
        ]
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    keep = None
    if resume:
        keep = {"vae": config.vae_steps if vae_done else checkpoints.saved_step("vae"), "unet": unet_step}
    log = LossLog(out / "loss_log.jsonl", keep=keep)
    try:
        # (a) The VAE, or a trained one (a resumed run reuses its finished VAE)
        if vae_from is not None:
            vae, vae_result = load_vae(vae_from, device), StageResult()
        elif vae_done:
            vae = load_vae(finished_vae, device)
            vae_result = StageResult(**json.loads((finished_vae / "result.json").read_text(encoding="utf-8")))
        else:
            vae, vae_result = train_vae(config, device, log, progress, checkpoints)
            vae.save_pretrained(finished_vae, safe_serialization=True)
            (finished_vae / "result.json").write_text(json.dumps(asdict(vae_result)) + "\n", encoding="utf-8")

        # (b) The UNet, on the empty prompt's embeddings
        tokenizer = build_tokenizer()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stage_seed(config.seed, _TEXT_STAGE))
            text_encoder = build_text_encoder(config, tokenizer)
        text_encoder.to(device)  # type: ignore[arg-type]  # transformers' @wraps-ed .to(), as above
        prompt_embeds = empty_prompt_embeddings(text_encoder, tokenizer, device)
        unet, unet_result = train_unet(config, vae, prompt_embeds, device, log, progress, checkpoints)
    finally:
        log.close()

    pipeline = save_pipeline(config, vae, unet.eval(), text_encoder, tokenizer, model_dir)
    pipeline.set_progress_bar_config(disable=True)
    _save_samples(pipeline, vae, config, out / "samples.png")

    record["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    record["results"] = {
        "vae": asdict(vae_result),
        "unet": asdict(unet_result),
        "parameters": {
            name: sum(p.numel() for p in module.parameters())
            for name, module in (("vae", vae), ("unet", unet), ("text_encoder", text_encoder))
        },
        "model_megabytes": round(_folder_megabytes(model_dir), 2),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train the demo model into ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m attentive_eraser.training.train_demo",
        description="Train the small SD-architecture demo model on procedural scenes (offline).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (model/ goes inside)")
    parser.add_argument("--config", type=Path, help="JSON file of TrainingConfig fields (defaults otherwise)")
    parser.add_argument("--seed", type=int, help="training seed (default: the config's, 0)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--vae-steps", type=int, help="VAE training steps")
    parser.add_argument("--unet-steps", type=int, help="UNet training steps")
    parser.add_argument("--batch-size", type=int, help="images per step, both stages")
    parser.add_argument("--resolution", type=int, help="training image side in pixels (default 64)")
    parser.add_argument(
        "--mixed-precision",
        choices=("bf16", "no"),
        help="UNet stage under bf16 autocast (default: the config's, bf16)",
    )
    parser.add_argument("--vae-from", type=Path, help="reuse the trained VAE of this model or vae folder")
    parser.add_argument("--num-threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=250,
        help="save the training state every N steps (default 250)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (same config and options)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR/model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    try:
        config = TrainingConfig.from_json(args.config) if args.config else TrainingConfig()
        config = config.with_overrides(
            seed=args.seed,
            vae_steps=args.vae_steps,
            unet_steps=args.unet_steps,
            vae_batch_size=args.batch_size,
            unet_batch_size=args.batch_size,
            resolution=args.resolution,
            mixed_precision=args.mixed_precision,
        )
    except (OSError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    try:
        record = train(
            config,
            args.out,
            device=args.device,
            vae_from=args.vae_from,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            command=sys.argv if argv is None else ["train_demo", *argv],
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
        )
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = record["results"]
    print(f"model: {args.out / 'model'} ({results['model_megabytes']} MB)")
    for stage in ("vae", "unet"):
        done = results[stage]
        print(f"{stage}: {done['steps']} steps in {done['seconds']:.0f} s; {done['metrics']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
