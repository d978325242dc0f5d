"""Object masks at every resolution the method needs: pixels -> latent grid -> token grids.

Convention everywhere: 1 = object to remove, 0 = background to keep. Pixel-level loading, resizing
and dilation of user masks live in :mod:`attentive_eraser.io`; this module works on tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pool_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Max-pool a ``(B, 1, H, W)`` mask onto an ``(h, w)`` grid: a cell is object if any pixel in it is (SPEC §1)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    # adaptive pooling handles grids that do not divide the input exactly (odd latent sizes)
    return F.adaptive_max_pool2d(mask.float(), size).to(mask.dtype)


def latent_mask(mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """The pixel mask on the latent grid (``m_lat`` of SPEC §3), same dtype as ``mask``."""
    return pool_mask(mask, latent_size)


def token_grid(latent_size: tuple[int, int], num_tokens: int) -> tuple[int, int]:
    """The ``(h, w)`` grid of a self-attention layer with ``num_tokens`` tokens on a UNet fed ``latent_size``.

    Each UNet downsampling halves both sides (rounding up, as a stride-2 convolution with padding 1 does),
    so the grid is the unique level ``k`` with ``ceil(H / 2^k) * ceil(W / 2^k) == num_tokens``.
    """
    height, width = latent_size
    while True:
        if height * width == num_tokens:
            return height, width
        if height * width < num_tokens or (height == 1 and width == 1):
            raise ValueError(
                f"a self-attention layer has {num_tokens} tokens, which is no downsampling level of the "
                f"{latent_size[0]}x{latent_size[1]} latent grid"
            )
        height, width = -(-height // 2), -(-width // 2)


def token_mask(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Flattened boolean token mask ``(B, h*w)`` of a ``(B, 1, H, W)`` pixel mask (``M_{l,t}``, Eq. 10)."""
    pooled = pool_mask(mask.float(), grid)
    return pooled.flatten(1) > 0.5
