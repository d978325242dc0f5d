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

The parts, one module each: :mod:`.run` (the whole run: :func:`train`), :mod:`.vae_stage` and
:mod:`.unet_stage` (the two stages), :mod:`.loop` (their step loop, seeds and results), :mod:`.optim`
(AdamW, the learning-rate schedule, the EMA), :mod:`.checkpoints` (atomic save, resume), :mod:`.log` (the
loss log), :mod:`.validation` (validation metrics, removal diagnostics, samples) and :mod:`.record` (the
run record). This module is the command line; it re-exports their public names.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from .checkpoints import Checkpoints
from .config import TrainingConfig
from .log import LossLog
from .loop import StageResult, stage_seed
from .optim import ExponentialMovingAverage, lr_factor
from .run import save_pipeline, train
from .unet_stage import train_unet
from .vae_stage import load_vae, train_vae
from .validation import (
    DIAGNOSTIC_MASK_DILATION,
    DIAGNOSTIC_SCENES,
    DIAGNOSTIC_TIMESTEPS,
    reconstruct,
    removal_diagnostics,
)

__all__ = [
    "DIAGNOSTIC_MASK_DILATION",
    "DIAGNOSTIC_SCENES",
    "DIAGNOSTIC_TIMESTEPS",
    "Checkpoints",
    "ExponentialMovingAverage",
    "LossLog",
    "StageResult",
    "load_vae",
    "lr_factor",
    "main",
    "reconstruct",
    "removal_diagnostics",
    "save_pipeline",
    "stage_seed",
    "train",
    "train_unet",
    "train_vae",
]


def _parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train the demo model into ``--out``."""
    args = _parser().parse_args(argv)

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
