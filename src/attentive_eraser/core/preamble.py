"""What our self-attention processors do around the attention itself, as diffusers' ``AttnProcessor2_0`` does.

The eraser's processor, the eager baseline of the speed benchmark and the diagnostics recorder change only
how the attention weights are computed; the steps before (spatial norm, ``(B, C, H, W)`` to tokens, group
norm, the projections into heads, the q/k norms) and after (output projection, dropout, back to an image,
residual, rescale) must stay the stock processor's, bit for bit. They are written once, here, following
``diffusers.models.attention_processor.AttnProcessor2_0`` of the diffusers range in ``pyproject.toml``
(:data:`FOLLOWS_DIFFUSERS`); ``tests/test_preamble.py`` checks them against the stock processor and fails
when the pinned range moves past the one they were checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.attention_processor import Attention

#: the diffusers requirement these steps were written and checked against (``pyproject.toml``)
FOLLOWS_DIFFUSERS = "diffusers>=0.32,<0.50"


@dataclass(frozen=True)
class SelfAttentionCall:
    """One self-attention call's inputs after the stock preamble, and what :func:`finish` needs."""

    tokens: torch.Tensor  # (B, N, C), normalised: what the projections read
    residual: torch.Tensor  # the call's input, as given
    image_shape: tuple[int, int, int, int] | None  # (B, C, H, W) when the input was a feature map

    @property
    def batch(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[1])


def begin(
    attn: Attention, hidden_states: torch.Tensor, temb: torch.Tensor | None = None
) -> SelfAttentionCall:
    """The stock preamble of a self-attention call: spatial norm, feature map to tokens, group norm."""
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    image_shape = None
    if hidden_states.ndim == 4:
        batch, channels, height, width = hidden_states.shape
        image_shape = (batch, channels, height, width)
        hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    return SelfAttentionCall(hidden_states, residual, image_shape)


def project_heads(
    attn: Attention, call: SelfAttentionCall
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values per head, ``(B, heads, N, d)`` each, with the module's q/k norms applied."""
    tokens = call.tokens
    query, key, value = attn.to_q(tokens), attn.to_k(tokens), attn.to_v(tokens)
    head_dim = key.shape[-1] // attn.heads
    query, key, value = (
        tensor.view(call.batch, -1, attn.heads, head_dim).transpose(1, 2) for tensor in (query, key, value)
    )
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return query, key, value


def merge_heads(attended: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, heads, N, d)`` attention outputs as ``(B, N, heads * d)`` tokens in ``dtype``."""
    batch, heads, num_tokens, head_dim = attended.shape
    return attended.transpose(1, 2).reshape(batch, num_tokens, heads * head_dim).to(dtype)


def finish(attn: Attention, call: SelfAttentionCall, hidden_states: torch.Tensor) -> torch.Tensor:
    """The stock epilogue: output projection and dropout, back to a feature map, residual, rescale."""
    hidden_states = attn.to_out[0](hidden_states)
    hidden_states = attn.to_out[1](hidden_states)
    if call.image_shape is not None:
        hidden_states = hidden_states.transpose(-1, -2).reshape(call.image_shape)
    if attn.residual_connection:
        hidden_states = hidden_states + call.residual
    return hidden_states / attn.rescale_output_factor
