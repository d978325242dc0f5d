"""An eager, obviously-correct reference of the paper's attention equations, for parity tests.

Written from the paper (Eqs. 10-17) and docs/method.md without looking at how the package computes them:
the ``N x N`` logits are materialised, every softmax is explicit, object keys are removed with a real
``-inf``, the two softmaxes of Similarity Suppression are computed separately and combined row by row,
and everything runs in float64. Slow on purpose; only for tiny inputs.

Token masks follow the UNet's own geometry: a stride-2 downsampling turns ``n`` rows into ``ceil(n / 2)``,
so token ``i`` of the next level covers rows ``2i`` and ``2i + 1`` of the level below (only ``2i`` for the
last row of an odd size). A token is "object" if any pixel of that cell is object.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention


# --------------------------------------------------------------------------------------------- masks
def latent_object_mask(pixel_mask: np.ndarray, latent_size: tuple[int, int]) -> np.ndarray:
    """Boolean ``(h, w)`` latent mask of a boolean ``(H, W)`` pixel mask: object if any pixel of the cell is.

    The pixel size must be the latent size times a whole factor (8 for the VAE, or 1).
    """
    height, width = pixel_mask.shape
    h, w = latent_size
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"pixel mask {height}x{width} is not a whole multiple of the latent grid {h}x{w}")
    factor = height // h
    out = np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            out[i, j] = bool(pixel_mask[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor].any())
    return out


def halve(mask: np.ndarray) -> np.ndarray:
    """One stride-2 level down: ``(h, w) -> (ceil(h/2), ceil(w/2))``.

    A cell is object if any of its 2x2 is.
    """
    h, w = mask.shape
    out = np.zeros(((h + 1) // 2, (w + 1) // 2), dtype=bool)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = bool(mask[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].any())
    return out


def token_object_mask(pixel_mask: np.ndarray, latent_size: tuple[int, int], level: int) -> np.ndarray:
    """Flattened boolean token mask ``(n_tokens,)`` at UNet level ``level`` (0 = the latent grid itself)."""
    mask = latent_object_mask(pixel_mask, latent_size)
    for _ in range(level):
        mask = halve(mask)
    return mask.reshape(-1)


# ----------------------------------------------------------------------------------------- attention
def plain_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d)) V`` on ``(heads, N, d)`` tensors, float64."""
    logits = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])  # (heads, N, N)
    return torch.softmax(logits, dim=-1) @ value


def eraser_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    object_tokens: torch.Tensor | None,
    suppression_scale: float = 0.3,
    suppress: bool = False,
) -> torch.Tensor:
    """AAS (Eqs. 11-12), plus SS (Eqs. 13-17) when ``suppress``, on ``(B, heads, N, d)`` q/k/v.

    ``object_tokens`` is a boolean ``(B, N)`` mask (``None``: no sample is erased). A sample whose mask is
    empty or covers every token gets plain attention. Returns float64 ``(B, heads, N, d)``.
    """
    query, key, value = query.double(), key.double(), value.double()
    batch, _, num_tokens, head_dim = query.shape
    outputs = []
    for b in range(batch):
        q, k, v = query[b], key[b], value[b]  # (heads, N, d)
        m = None if object_tokens is None else object_tokens[b].bool()
        if m is None or not bool(m.any()) or bool(m.all()):
            outputs.append(plain_attention(q, k, v))
            continue
        logits = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # S, (heads, N, N)
        object_keys = m[None, None, :]  # m as columns
        # Eq. 11: S* = S - m_col * inf ; Eq. 12: O = softmax(S*) V
        activated = torch.softmax(logits.masked_fill(object_keys, -math.inf), dim=-1) @ v
        if not suppress:
            outputs.append(activated)
            continue
        # Eqs. 13-16: the object rows take softmax(lambda * S - m_col * inf) V
        flattened = (
            torch.softmax((suppression_scale * logits).masked_fill(object_keys, -math.inf), dim=-1) @ v
        )
        # Eq. 17: rows combined by m (object rows from the suppressed softmax, background rows from AAS)
        object_rows = m[None, :, None]
        outputs.append(torch.where(object_rows, flattened, activated))
    return torch.stack(outputs)


def _linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    bias = None if layer.bias is None else layer.bias.double()
    return F.linear(x, layer.weight.double(), bias)


def attention_module_forward(
    attn: Attention,
    hidden_states: torch.Tensor,
    object_tokens: torch.Tensor | None = None,
    suppression_scale: float = 0.3,
    suppress: bool = False,
) -> torch.Tensor:
    """Eager self-attention forward of a diffusers ``Attention`` module on ``(B, N, C)``, float64.

    ``object_tokens`` ``(B, N)`` bool applies AAS (and SS when ``suppress``) per sample; ``None`` or an
    all-False row gives the module's plain self-attention. Only the plain layout of SD self-attention is
    supported (no group/spatial/q-k norms).
    """
    if attn.group_norm is not None or attn.spatial_norm is not None or attn.norm_q is not None:
        raise NotImplementedError("the reference covers plain self-attention modules only")
    x = hidden_states.double()
    batch, num_tokens, _ = x.shape
    query, key, value = _linear(attn.to_q, x), _linear(attn.to_k, x), _linear(attn.to_v, x)
    heads = attn.heads
    head_dim = query.shape[-1] // heads

    def split(t: torch.Tensor) -> torch.Tensor:  # (B, N, heads * d) -> (B, heads, N, d)
        return t.reshape(batch, num_tokens, heads, head_dim).permute(0, 2, 1, 3)

    out = eraser_attention(split(query), split(key), split(value), object_tokens, suppression_scale, suppress)
    out = out.permute(0, 2, 1, 3).reshape(batch, num_tokens, heads * head_dim)
    out = _linear(attn.to_out[0], out)  # to_out[1] is dropout: identity in eval
    if attn.residual_connection:
        out = out + x
    return out / attn.rescale_output_factor


class ReferenceEraserProcessor:
    """A diffusers attention processor: :func:`attention_module_forward` on a ``[plain, erased]`` batch.

    ``object_tokens`` maps a layer's token count to the erased samples' ``(E, N)`` object mask at that grid;
    ``suppressing()`` says whether SS is on for the current call. Slow: for tests on tiny models only.
    """

    def __init__(self, object_tokens: dict[int, torch.Tensor], suppression_scale: float, suppressing) -> None:
        self.object_tokens = object_tokens
        self.suppression_scale = suppression_scale
        self.suppressing = suppressing

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3:
            raise NotImplementedError("the reference processor is for plain self-attention only")
        batch, num_tokens, _ = hidden_states.shape
        objects = self.object_tokens[num_tokens]
        layout = torch.zeros(batch, num_tokens, dtype=torch.bool)
        layout[batch - objects.shape[0] :] = objects  # the erased samples are the last ones
        out = attention_module_forward(
            attn, hidden_states, layout, self.suppression_scale, self.suppressing()
        )
        return out.to(hidden_states.dtype)
