"""The speed benchmark's baseline: AAS and SS computed eagerly, the way the authors' code does it.

``benchmarks/speed.py`` times it beside the package's processor, and ``tests/test_performance.py`` checks
that both compute the same, so the benchmark compares like with like. (``tests/reference.py`` is another
thing: a float64 reference of the equations for parity tests, too slow to time.)

Written from the paper (Eqs. 11-17): every decoder self-attention call materialises the ``N x N``
logits ``S = Q K^T / sqrt(d)`` of every head, adds the object mask to the object keys' columns, takes a
softmax (AAS), and during the first ``T_SS`` steps also takes a second softmax of the ``lambda``-scaled
logits (SS) and combines the two attention maps row by row with the object mask before multiplying by
``V``. It runs in the model's dtype, like the original. The package never does any of this: it scales
the object query rows by ``lambda`` and makes one ``scaled_dot_product_attention`` call with a key bias
(:mod:`attentive_eraser.core.attention`), so ``N x N`` is never stored.

The token masks come from the same :class:`~attentive_eraser.core.attention.EraserState` as our processor
(built once per mask), so the two differ only in how attention is computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

# the defining module: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from attentive_eraser.core import preamble
from attentive_eraser.core.attention import EraserState
from attentive_eraser.core.layers import swapped_processors


class EagerEraserAttnProcessor:
    """Self-attention with AAS (+ SS) through explicit softmaxes; stock attention where the eraser is off."""

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
            or hidden_states.ndim != 3
            or attn.spatial_norm is not None
        ):
            return self._stock(attn, hidden_states, encoder_hidden_states, attention_mask, temb)

        call = preamble.begin(attn, hidden_states, temb)
        batch, num_tokens = call.batch, call.num_tokens  # (P + E, N, C)
        num_erased = state.num_erased
        query = attn.head_to_batch_dim(attn.to_q(call.tokens))  # ((P + E) * heads, N, d)
        key = attn.head_to_batch_dim(attn.to_k(call.tokens))
        value = attn.head_to_batch_dim(attn.to_v(call.tokens))

        # S = Q K^T / sqrt(d) for every head: the N x N matrix the package never builds
        logits = torch.baddbmm(
            torch.empty(query.shape[0], num_tokens, num_tokens, dtype=query.dtype, device=query.device),
            query,
            key.transpose(-1, -2),
            beta=0,
            alpha=attn.scale,
        ).view(batch, attn.heads, num_tokens, num_tokens)
        objects, _ = state.grid_masks(num_tokens, query.dtype, query.device)  # (E, N) bool
        erased = logits[batch - num_erased :]  # (E, heads, N, N), a view
        # Eq. 13: lambda * S for the object rows (computed for every row, then picked row-wise)
        suppressed = erased * state.suppression_scale if state.suppressing else None
        # Eq. 11: S* = S - m_col * inf, as an added mask (finite, so that fp16 cannot overflow)
        column_mask = objects[:, None, None, :].to(query.dtype) * (torch.finfo(query.dtype).min / 2)
        erased += column_mask
        probabilities = logits.softmax(dim=-1)  # Eq. 12, (P + E, heads, N, N)
        del logits, erased
        if suppressed is not None:
            suppressed += column_mask
            suppressed = suppressed.softmax(dim=-1)  # Eqs. 14-16
            object_rows = objects[:, None, :, None]  # (E, 1, N, 1)
            # Eq. 17: object rows from the suppressed map, background rows from the AAS map
            probabilities[batch - num_erased :] = torch.where(
                object_rows, suppressed, probabilities[batch - num_erased :]
            )
            del suppressed
        out = torch.bmm(probabilities.view(-1, num_tokens, num_tokens), value)  # ((P + E) * heads, N, d)
        del probabilities
        return preamble.finish(attn, call, attn.batch_to_head_dim(out))  # (P + E, N, C) in


@contextmanager
def eager_eraser_attention(unet: UNet2DConditionModel, state: EraserState) -> Iterator[list[str]]:
    """Install :class:`EagerEraserAttnProcessor` where the package's processor would go; restore on exit."""
    processor = EagerEraserAttnProcessor(state)
    with swapped_processors(unet, lambda _name: processor) as names:
        yield names
