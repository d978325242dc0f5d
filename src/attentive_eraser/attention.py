"""Attention Activation and Suppression (AAS) with Similarity Suppression (SS), as a diffusers processor.

Paper: Eqs. 11-12 (AAS) and 13-17 (SS). For a decoder self-attention layer with token mask ``m``:

* AAS: ``O = softmax(S - m_col * inf) V`` -- no query reads the object's keys.
* SS (first ``T_SS`` steps): object rows use ``softmax(lambda * S - m_col * inf) V``.

``lambda * S`` on object rows equals scaling those *query rows* by lambda, so both are one
``scaled_dot_product_attention`` call with an additive key bias: the N x N matrix is never built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from .masks import token_grid, token_mask

logger = logging.getLogger(__name__)


def key_bias(object_tokens: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive key bias ``(B, 1, 1, N)``: 0 on background keys, a large finite negative on object keys (Eq. 11).

    Half the dtype's range is far below any real logit yet cannot overflow to -inf when added to one.
    """
    negative = torch.finfo(dtype).min / 2
    bias = torch.zeros(object_tokens.shape, dtype=dtype, device=object_tokens.device)
    return bias.masked_fill_(object_tokens, negative)[:, None, None, :]


def query_row_scale(object_tokens: torch.Tensor, suppression_scale: float, dtype: torch.dtype) -> torch.Tensor:
    """Per-row query factor ``(B, 1, N, 1)``: lambda on object rows, 1 on background rows (Eqs. 13, 17)."""
    scale = torch.ones(object_tokens.shape, dtype=dtype, device=object_tokens.device)
    return scale.masked_fill_(object_tokens, suppression_scale)[:, None, :, None]


@dataclass
class EraserState:
    """What the pipeline tells the processors about the current call. The pipeline owns it.

    The UNet batch is ``[plain x P, erased x E]``: the last ``E = mask.shape[0]`` samples get AAS/SS,
    the first ``P`` are left as the stock processor would compute them.
    """

    #: object mask of the erased samples, ``(E, 1, H, W)`` at pixel (or latent) resolution, 1 = object
    mask: torch.Tensor | None = None
    #: ``(height, width)`` of the latents the UNet is called on
    latent_size: tuple[int, int] | None = None
    #: paper's lambda (Eq. 13)
    suppression_scale: float = 0.3
    #: paper's T_SS: SS is applied while ``step_index < suppression_steps``
    suppression_steps: int = 10
    #: index of the denoising step being run (0-based, counted over the steps actually run)
    step_index: int = 0
    #: False: every processor behaves exactly like the stock one (e.g. during inversion)
    enabled: bool = False
    _grids: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    _warned_full: bool = field(default=False, repr=False)

    def set_mask(self, mask: torch.Tensor, latent_size: tuple[int, int]) -> None:
        """Set the object mask ``(E, 1, H, W)`` and the latent size; drops the per-grid cache."""
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise ValueError(f"mask must have shape (E, 1, H, W), got {tuple(mask.shape)}")
        self.mask = mask
        self.latent_size = (int(latent_size[0]), int(latent_size[1]))
        self._grids.clear()

    @property
    def num_erased(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    @property
    def suppressing(self) -> bool:
        """Whether SS applies at the current step."""
        return self.step_index < self.suppression_steps and self.suppression_scale != 1.0

    def grid_masks(self, num_tokens: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(object_tokens (E, N) bool, usable (E,) bool)`` for a layer with ``num_tokens`` tokens, cached per grid.

        ``usable`` is False for a sample whose token grid is entirely object: there is no background to
        attend to, so that sample is left unmodified at that layer (and one warning is logged).
        """
        key = (num_tokens, dtype, device)
        cached = self._grids.get(key)
        if cached is None:
            assert self.mask is not None and self.latent_size is not None
            grid = token_grid(self.latent_size, num_tokens)
            objects = token_mask(self.mask.to(device), grid)  # (E, N)
            usable = ~objects.all(dim=1)
            if not bool(usable.all()) and not self._warned_full:
                self._warned_full = True
                logger.warning(
                    "The object mask covers the whole %dx%d token grid of a self-attention layer; that layer "
                    "is left unmodified for those samples (a smaller mask or a larger working size avoids this).",
                    grid[0],
                    grid[1],
                )
            objects = objects & usable[:, None]
            cached = (objects, usable)
            self._grids[key] = cached
        return cached


class AttentiveEraserAttnProcessor:
    """Self-attention processor applying AAS (+ SS during the first ``T_SS`` steps) to the erased samples.

    Install it only on decoder self-attention layers (see :mod:`attentive_eraser.layers`). When the state
    is disabled, the mask is empty, or the call is a cross-attention, it is the stock ``AttnProcessor2_0``.
    """

    def __init__(self, state: EraserState) -> None:
        self.state = state
        self._stock = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: object,
        **kwargs: object,
    ) -> torch.Tensor:
        state = self.state
        if (
            not state.enabled
            or state.mask is None
            or encoder_hidden_states is not None
            or attention_mask is not None
        ):
            return self._stock(attn, hidden_states, encoder_hidden_states, attention_mask, temb)

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch, num_tokens, _ = hidden_states.shape  # (P + E, N, C)
        num_erased = state.num_erased
        if num_erased > batch:
            raise ValueError(f"the eraser state holds {num_erased} masks but the UNet batch has {batch} samples")

        objects, usable = state.grid_masks(num_tokens, hidden_states.dtype, hidden_states.device)
        if not bool(objects.any()):
            # empty token mask at this grid: AAS is the identity; keep the stock result bit for bit
            return self._stock(attn, residual, None, None, temb)

        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)  # (P + E, heads, N, d)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        num_plain = batch - num_erased
        bias = key_bias(objects, query.dtype)  # (E, 1, 1, N), Eq. 11
        if num_plain:
            bias = torch.cat([bias.new_zeros((num_plain, 1, 1, num_tokens)), bias])
        if state.suppressing:
            row_scale = query_row_scale(objects, state.suppression_scale, query.dtype)  # (E, 1, N, 1), Eq. 13
            if num_plain:
                row_scale = torch.cat([row_scale.new_ones((num_plain, 1, num_tokens, 1)), row_scale])
            query = query * row_scale

        # Eqs. 11-17 in one call: lambda-scaled object rows, object keys masked, rows combined implicitly
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor
