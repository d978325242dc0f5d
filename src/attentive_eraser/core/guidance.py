"""Self-Attention Redirection Guidance (SARG, Eq. 18) and the batch layout it needs.

Each step runs the UNet once on ``[plain x B, erased x B]`` (the same latents twice; the erased half
goes through AAS), then ``eps_hat = eps_plain + s * (eps_erased - eps_plain)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


def sarg_combine(
    noise_pred_plain: torch.Tensor, noise_pred_erased: torch.Tensor, removal_guidance_scale: float
) -> torch.Tensor:
    """Eq. 18: ``eps_plain + s * (AAS(eps) - eps_plain)``. Linear, so it applies to v-predictions too."""
    return noise_pred_plain + removal_guidance_scale * (noise_pred_erased - noise_pred_plain)


@dataclass(frozen=True)
class SARGBatch:
    """Owns the ``[plain x B, erased x B]`` layout: duplicates every per-sample input, splits the output.

    With ``removal_guidance_scale == 0`` the erased half contributes nothing, so it is not computed:
    the batch is just the plain ``B`` samples (plain blended inpainting).
    """

    batch_size: int
    removal_guidance_scale: float

    @property
    def guided(self) -> bool:
        return self.removal_guidance_scale != 0.0

    @property
    def num_erased(self) -> int:
        """How many samples at the end of the UNet batch get AAS."""
        return self.batch_size if self.guided else 0

    def expand(self, tensor: torch.Tensor) -> torch.Tensor:
        """``(B, ...) -> (2B, ...)`` as ``[plain, erased]`` (identity when unguided)."""
        if tensor.shape[0] != self.batch_size:
            raise ValueError(f"expected a batch of {self.batch_size}, got {tensor.shape[0]}")
        return torch.cat([tensor, tensor]) if self.guided else tensor

    def expand_all(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`expand` every tensor of a (nested) mapping of per-sample UNet inputs.

        The inputs are e.g. embeddings and time ids.
        """
        return {
            name: self.expand_all(value)
            if isinstance(value, Mapping)
            else self.expand(value)
            if isinstance(value, torch.Tensor)
            else value
            for name, value in inputs.items()
        }

    def combine(self, model_output: torch.Tensor) -> torch.Tensor:
        """Split the UNet output ``(2B, ...)`` and apply Eq. 18; ``(B, ...)`` passes through unguided."""
        if not self.guided:
            return model_output
        noise_pred_plain, noise_pred_erased = model_output.chunk(2)
        return sarg_combine(noise_pred_plain, noise_pred_erased, self.removal_guidance_scale)
