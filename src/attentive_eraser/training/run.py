"""The whole run: both stages into an output folder, the diffusers model folder, samples and the record."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

# the defining modules: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from .checkpoints import Checkpoints
from .config import TrainingConfig
from .log import LossLog
from .loop import StageResult
from .models import build_sampling_scheduler
from .record import new_record, note_results, note_resume, read_record, write_record
from .unet_stage import text_conditioning, train_unet
from .vae_stage import load_vae, train_vae
from .validation import save_samples


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


def _vae(
    config: TrainingConfig,
    device: torch.device,
    vae_from: str | os.PathLike[str] | None,
    finished: Path,
    done: bool,
    log: LossLog,
    progress: bool,
    checkpoints: Checkpoints,
) -> tuple[AutoencoderKL, StageResult]:
    """Stage (a), or a trained VAE: ``vae_from``'s, or the ``finished`` one of the run being resumed."""
    if vae_from is not None:
        return load_vae(vae_from, device), StageResult()
    if done:
        vae = load_vae(finished, device)
        return vae, StageResult(**json.loads((finished / "result.json").read_text(encoding="utf-8")))
    vae, result = train_vae(config, device, log, progress, checkpoints)
    vae.save_pretrained(finished, safe_serialization=True)
    (finished / "result.json").write_text(json.dumps(asdict(result)) + "\n", encoding="utf-8")
    return vae, result


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
    """Run both stages and write everything into ``out`` (see :mod:`.train_demo`); returns the record.

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
    previous = read_record(record_path, config) if resume else None
    out.mkdir(parents=True, exist_ok=True)
    record = new_record(config, device, vae_from, command)
    finished_vae = checkpoints.folder / "vae"
    vae_done = resume and (finished_vae / "config.json").is_file()
    unet_step = checkpoints.saved_step("unet") if resume else 0
    if previous is not None:
        note_resume(record, previous, command, vae_done, unet_step)
    write_record(record_path, record)

    keep = None
    if resume:
        keep = {"vae": config.vae_steps if vae_done else checkpoints.saved_step("vae"), "unet": unet_step}
    log = LossLog(out / "loss_log.jsonl", keep=keep)
    try:
        vae, vae_result = _vae(config, device, vae_from, finished_vae, vae_done, log, progress, checkpoints)
        tokenizer, text_encoder, prompt_embeds = text_conditioning(config, device)
        unet, unet_result = train_unet(config, vae, prompt_embeds, device, log, progress, checkpoints)
    finally:
        log.close()

    pipeline = save_pipeline(config, vae, unet.eval(), text_encoder, tokenizer, model_dir)
    pipeline.set_progress_bar_config(disable=True)
    save_samples(pipeline, vae, config, out / "samples.png")
    modules = (("vae", vae), ("unet", unet), ("text_encoder", text_encoder))
    note_results(record, vae_result, unet_result, modules, model_dir)
    write_record(record_path, record)
    return record
