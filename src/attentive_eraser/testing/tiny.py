"""Tiny random-weight Stable Diffusion models (SD 1.5, SD 2.1, SDXL topologies) that need no download.

The UNets keep the real block topology of each family — the same down/mid/up block types, layers per
block and transformer depths, hence the same number and names of attention layers (16 transformer
blocks for SD 1.5/2.1, 70 for SDXL) — while every width is shrunk so that a 20-step run at 64×64 px
takes a fraction of a second on a CPU. Weights are random: images are noise, but shapes, module names,
configs and pipeline plumbing are those of the real models.

Python::

    from attentive_eraser.testing.tiny import build_components, save_tiny_model
    components = build_components("sdxl", seed=0)           # dict for StableDiffusionXLPipeline(**components)
    path = save_tiny_model("/tmp/tiny-sd15", family="sd15")  # StableDiffusionPipeline.from_pretrained(path)

Command line::

    python -m attentive_eraser.testing.tiny DIR --family sd15|sd21|sdxl [--seed N]
        [--prediction-type epsilon|v_prediction] [--overwrite]

Set ``HF_HUB_OFFLINE=1`` when loading the saved folders: everything (tokenizer files included) is local.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

# the defining modules: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

# the demo model's tokenizer (tests import build_tokenizer from here too)
from ..training.tokenizer import MAX_LENGTH, build_tokenizer

if TYPE_CHECKING:  # pragma: no cover
    # imported by save_tiny_model: diffusers' pipelines pull in transformers' image processors, whose
    # missing-torchvision notices must not print on `--help`
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import (
        StableDiffusionXLPipeline,
    )

FAMILIES: tuple[str, ...] = ("sd15", "sd21", "sdxl")
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction")

# Text encoders: both SDXL encoders share these sizes, so SDXL's cross-attention width is 2 * 32.
TEXT_HIDDEN_SIZE = 32
TEXT_PROJECTION_DIM = 32
# SDXL "text_time" conditioning: 6 time ids (original size, crop, target size) of this width each.
ADDITION_TIME_EMBED_DIM = 8


def _text_config(tokenizer: CLIPTokenizer) -> CLIPTextConfig:
    """A 2-layer, 32-wide CLIP text config whose special token ids match ``tokenizer``."""
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_LENGTH,
        projection_dim=TEXT_PROJECTION_DIM,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _sd_unet(family: str) -> UNet2DConditionModel:
    """SD 1.5 / 2.1 topology: 3 cross-attention levels + 1 plain, 2 layers each (6 + 1 + 9 blocks)."""
    if family == "sd21":
        # SD 2.1 passes per-level head counts (5, 10, 20, 20) under this legacy name; scaled down here.
        attention_head_dim: int | tuple[int, ...] = (1, 2, 4, 4)
    else:
        attention_head_dim = 2
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=2,
        transformer_layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=attention_head_dim,
        cross_attention_dim=TEXT_HIDDEN_SIZE,
        use_linear_projection=family == "sd21",
    )


def _sdxl_unet() -> UNet2DConditionModel:
    """SDXL base topology: plain level + 2 cross-attention levels of depth 2 and 10 (24 + 10 + 36 blocks)."""
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32, 32),
        layers_per_block=2,
        transformer_layers_per_block=(1, 2, 10),
        norm_num_groups=8,
        # SDXL's (5, 10, 20) head counts, scaled down like the widths.
        attention_head_dim=(1, 2, 4),
        cross_attention_dim=2 * TEXT_HIDDEN_SIZE,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=ADDITION_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * ADDITION_TIME_EMBED_DIM + TEXT_PROJECTION_DIM,
    )


def _vae(scaling_factor: float) -> AutoencoderKL:
    """A 4-level VAE (scale factor 8, 4 latent channels) with tiny widths."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=4,
        sample_size=64,
        scaling_factor=scaling_factor,
        force_upcast=True,
    )


def _ddim(steps_offset: int, prediction_type: str) -> DDIMScheduler:
    """The DDIM schedule of SD checkpoints (scaled-linear betas 0.00085..0.012)."""
    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=steps_offset,
        prediction_type=prediction_type,
    )


def _check_family(family: str, prediction_type: str | None) -> None:
    """Raise ``ValueError`` naming the bad argument."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if prediction_type is not None and prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"prediction_type must be one of {PREDICTION_TYPES} or None, got {prediction_type!r}"
        )


def build_components(family: str, seed: int = 0, prediction_type: str | None = None) -> dict[str, Any]:
    """Random-weight pipeline components of ``family`` (sd15, sd21, sdxl); equal seeds, equal weights."""
    _check_family(family, prediction_type)
    prediction_type = prediction_type or "epsilon"
    tokenizer = build_tokenizer()
    text_config = _text_config(tokenizer)

    # Reseed before every component so that each one's weights depend on the seed only (not on the
    # sizes of the others); the caller's global RNG state is restored afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = _sd_unet(family) if family != "sdxl" else _sdxl_unet()
        torch.manual_seed(seed)
        vae = _vae(scaling_factor=0.13025 if family == "sdxl" else 0.18215)
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(text_config)
        if family == "sdxl":
            torch.manual_seed(seed)
            text_encoder_2 = CLIPTextModelWithProjection(text_config)

    if family == "sdxl":
        return {
            "vae": vae,
            "text_encoder": text_encoder,
            "text_encoder_2": text_encoder_2,
            "tokenizer": tokenizer,
            "tokenizer_2": build_tokenizer(),
            "unet": unet,
            "scheduler": _ddim(steps_offset=0, prediction_type=prediction_type),
            "image_encoder": None,
            "feature_extractor": None,
        }
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": _ddim(steps_offset=1, prediction_type=prediction_type),
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def count_parameters(components: dict[str, Any]) -> int:
    """Total number of parameters over the ``torch.nn.Module`` components."""
    return sum(
        parameter.numel()
        for component in components.values()
        if isinstance(component, torch.nn.Module)
        for parameter in component.parameters()
    )


def save_tiny_model(
    path: str | os.PathLike[str],
    family: str = "sd15",
    seed: int = 0,
    prediction_type: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a tiny ``family`` pipeline to ``path`` (safetensors) and return the folder."""
    path = Path(path)
    _check_family(family, prediction_type)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty directory; pass overwrite=True to use it")
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import (
        StableDiffusionXLPipeline,
    )

    components = build_components(family, seed=seed, prediction_type=prediction_type)
    pipeline: StableDiffusionPipeline | StableDiffusionXLPipeline
    if family == "sdxl":
        # The invisible watermark is an optional package; the tiny model never needs it.
        pipeline = StableDiffusionXLPipeline(**components, add_watermarker=False)
    else:
        pipeline = StableDiffusionPipeline(**components, requires_safety_checker=False)
    pipeline.save_pretrained(path, safe_serialization=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a tiny model folder and print its path and parameter count."""
    parser = argparse.ArgumentParser(
        prog="python -m attentive_eraser.testing.tiny",
        description="Write a tiny random-weight Stable Diffusion pipeline folder (no download).",
    )
    parser.add_argument("directory", type=Path, help="output folder (must be absent or empty)")
    parser.add_argument("--family", choices=FAMILIES, default="sd15", help="UNet topology (default: sd15)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    parser.add_argument(
        "--prediction-type",
        choices=PREDICTION_TYPES,
        default=None,
        help="scheduler objective (default: epsilon)",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    args = parser.parse_args(argv)
    from ..runtime import quiet_third_party

    # transformers' and diffusers' notices (missing torchvision, …) are nothing a caller of this can act on
    with quiet_third_party(quiet=True):
        try:
            path = save_tiny_model(
                args.directory,
                family=args.family,
                seed=args.seed,
                prediction_type=args.prediction_type,
                overwrite=args.overwrite,
            )
        except FileExistsError:
            print(f"error: {args.directory} exists and is not empty; use --overwrite", file=sys.stderr)
            return 1
        # Rebuilding is cheaper than loading the folder back and gives the same weights.
        parameters = count_parameters(build_components(args.family, seed=args.seed))
    print(f"{path}")
    print(f"{args.family}: {parameters:,} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
