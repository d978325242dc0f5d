"""Object masks at every resolution the method needs: pixels -> latent grid -> token grids.

Convention everywhere: 1 = object to remove, 0 = background to keep. Pixel-level loading, resizing
and dilation of user masks live in :mod:`attentive_eraser.imaging`; this module works on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F


def pool_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Max-pool a ``(B, 1, H, W)`` mask onto an ``(h, w)`` grid (Eq. 10).

    A cell is object if any pixel in it is.
    """
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    # adaptive pooling handles grids that do not divide the input exactly (odd latent sizes)
    return F.adaptive_max_pool2d(mask.float(), size).to(mask.dtype)


def latent_mask(mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """The pixel mask on the latent grid, in the dtype of ``mask``.

    This is ``m_lat`` of the SIP/DIP blend (docs/method.md).
    """
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


def token_masks(
    mask: torch.Tensor, latent_size: tuple[int, int]
) -> dict[int, tuple[tuple[int, int], torch.Tensor]]:
    """Boolean object tokens ``(B, h*w)`` at every UNet level, keyed by token count (``M_{l,t}``, Eq. 10).

    The ``(B, 1, H, W)`` mask is max-pooled onto the latent grid, then halved as the UNet halves it
    (2x2 cells, rounding up), so a token is object if any pixel of its cell is, for odd sizes too.
    """
    levels: dict[int, tuple[tuple[int, int], torch.Tensor]] = {}
    grid = pool_mask(mask.float(), latent_size) > 0.5  # (B, 1, H, W)
    while True:
        height, width = grid.shape[-2:]
        levels[height * width] = ((height, width), grid.flatten(1))
        if height == 1 and width == 1:
            return levels
        grid = F.max_pool2d(grid.float(), kernel_size=2, stride=2, ceil_mode=True) > 0.5


def token_mask(
    mask: torch.Tensor, grid: tuple[int, int], latent_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Boolean object tokens ``(B, h*w)`` of a ``(B, 1, H, W)`` mask.

    The tokens are those of ``grid``, one level of a UNet fed latents of ``latent_size``.

    Without ``latent_size`` the grid is taken as the latent grid itself.
    """
    levels = token_masks(mask, latent_size or grid)
    num_tokens = grid[0] * grid[1]
    if num_tokens not in levels or levels[num_tokens][0] != tuple(grid):
        raise ValueError(f"grid={grid} is no UNet level of the {latent_size} latent grid")
    return levels[num_tokens][1]


class TokenLayout(Protocol):
    """How a backbone lays the latent grid out as the tokens of its attention calls.

    The eraser asks it once per mask for the object tokens of every token count its layers can see, and
    for the grid of a count it did not expect (to raise a clear error). A UNet has one grid per level; a
    transformer has one patch grid (and a text prefix the processor handles).
    """

    def object_tokens(
        self, mask: torch.Tensor, latent_size: tuple[int, int]
    ) -> dict[int, tuple[tuple[int, int], torch.Tensor]]: ...

    def grid(self, latent_size: tuple[int, int], num_tokens: int) -> tuple[int, int]: ...


@dataclass(frozen=True)
class UNetPyramid:
    """A UNet's token grids: the latent grid and each halving of it (rounding up), keyed by token count."""

    def object_tokens(
        self, mask: torch.Tensor, latent_size: tuple[int, int]
    ) -> dict[int, tuple[tuple[int, int], torch.Tensor]]:
        return token_masks(mask, latent_size)

    def grid(self, latent_size: tuple[int, int], num_tokens: int) -> tuple[int, int]:
        return token_grid(latent_size, num_tokens)
