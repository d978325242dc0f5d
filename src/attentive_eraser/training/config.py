"""The demo model's training settings: one frozen dataclass, saved with every run as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that determines a training run of the demo model (with the seed, the result is fixed).

    How long the default step counts take depends on the machine; ``train_demo``'s docstring says where
    the measured times of the shipped model's run are.
    """

    seed: int = 0
    #: training image side (pixels); the latent grid is ``resolution / 4``
    resolution: int = 64
    #: share of training images showing a scene with one object removed: the model must learn that the
    #: background also occurs without objects (a strong "an object is here" prior makes objects reappear)
    removed_object_probability: float = 0.5

    # (a) The VAE: 3 levels (4x down), 4 latent channels.
    vae_block_out_channels: tuple[int, ...] = (32, 64, 64)
    vae_layers_per_block: int = 1
    vae_latent_channels: int = 4
    #: GroupNorm groups; 32 groups of 32 channels would normalise each channel alone, erasing colour
    vae_norm_num_groups: int = 8
    #: 32 gave the most images per second on the CPU the defaults were tuned on (at 64 the 64x64
    #: activations outgrew its caches)
    vae_batch_size: int = 32
    vae_steps: int = 2000
    vae_learning_rate: float = 1e-3
    vae_l1_weight: float = 1.0
    vae_mse_weight: float = 1.0
    #: weight of the KL term (summed over latent elements, averaged over the batch), as in SD's VAE
    vae_kl_weight: float = 1e-6

    # (b) The UNet: cross-attention (and so decoder self-attention) at the two finest latent grids.
    unet_block_out_channels: tuple[int, ...] = (64, 128, 128)
    unet_layers_per_block: int = 1
    #: 2 heads: head width 32 at the 16x16 grid and 64 at 8x8 (SD's is 64; 4 heads gave near-uniform
    #: 16-wide heads at 16x16)
    unet_attention_heads: int = 2
    unet_norm_num_groups: int = 32
    unet_batch_size: int = 64
    unet_steps: int = 4000
    unet_learning_rate: float = 6e-4
    unet_weight_decay: float = 1e-2
    #: the UNet stage's forward passes under autocast: "bf16" (about 1.4x faster on CPUs with AVX-512 BF16
    #: and on GPUs; the weights, the optimiser and the loss stay float32) or "no"
    mixed_precision: str = "bf16"
    #: EMA decay of the UNet weights (with the usual warm-up ``min(decay, (1 + n) / (10 + n))``)
    ema_decay: float = 0.999

    # Shared optimisation settings (AdamW, linear warm-up then cosine decay to ``final_lr_fraction``).
    warmup_steps: int = 100
    final_lr_fraction: float = 0.1
    max_grad_norm: float = 1.0

    # The noise schedule of Stable Diffusion (sampling uses DDIM on the same betas).
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012

    # The frozen, random CLIP text encoder that turns the empty prompt into the cross-attention context.
    text_hidden_size: int = 32
    text_layers: int = 2
    text_heads: int = 2
    text_intermediate_size: int = 64

    #: dtype of the saved weights: "float32" or "float16"
    save_dtype: str = "float32"
    #: held-out training scenes (taken from the end of the training seed range) for the VAE's PSNR
    validation_scenes: int = 64

    def __post_init__(self) -> None:
        positive = (
            "resolution",
            "vae_batch_size",
            "unet_batch_size",
            "vae_layers_per_block",
            "vae_latent_channels",
            "unet_layers_per_block",
            "unet_attention_heads",
            "vae_norm_num_groups",
            "unet_norm_num_groups",
            "num_train_timesteps",
            "text_hidden_size",
            "text_layers",
            "text_heads",
            "text_intermediate_size",
            "validation_scenes",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("vae_steps", "unet_steps", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.removed_object_probability <= 1.0:
            raise ValueError(
                f"removed_object_probability must be in [0, 1], got {self.removed_object_probability!r}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.mixed_precision not in ("bf16", "no"):
            raise ValueError(f"mixed_precision must be 'bf16' or 'no', got {self.mixed_precision!r}")
        if self.save_dtype not in ("float32", "float16"):
            raise ValueError(f"save_dtype must be 'float32' or 'float16', got {self.save_dtype!r}")
        # The latent grid is resolution / 2^(levels - 1); the UNet halves it (levels - 1) more times.
        factor = 2 ** (len(self.vae_block_out_channels) - 1 + len(self.unet_block_out_channels) - 1)
        if self.resolution % factor:
            raise ValueError(
                f"resolution must be a multiple of {factor} for these models, got {self.resolution}"
            )
        for prefix in ("vae", "unet"):
            groups = getattr(self, f"{prefix}_norm_num_groups")
            channels = getattr(self, f"{prefix}_block_out_channels")
            if any(width % groups for width in channels):
                raise ValueError(f"{prefix}_norm_num_groups={groups} must divide every width of {channels}")
        if len(self.unet_block_out_channels) < 3:
            raise ValueError(
                "unet_block_out_channels needs >= 3 levels (cross-attention at the two finest grids), got "
                f"{self.unet_block_out_channels!r}"
            )

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae_block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.vae_scale_factor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """A config from (JSON) values; unknown keys raise, lists become tuples."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config has unknown keys {unknown}; known keys: {sorted(known)}")
        converted: dict[str, Any] = {key: tuple(v) if isinstance(v, list) else v for key, v in values.items()}
        return cls(**converted)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> TrainingConfig:
        """Read a JSON object of config fields (a full ``training_config.json``'s ``"config"`` also works)."""
        with open(path, encoding="utf-8") as file:
            values = json.load(file)
        if isinstance(values, dict) and isinstance(values.get("config"), dict):
            values = values["config"]
        return cls.from_dict(values)

    def with_overrides(self, **overrides: Any) -> TrainingConfig:
        """A copy with the given fields changed; ``None`` values are ignored (options not given)."""
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})
