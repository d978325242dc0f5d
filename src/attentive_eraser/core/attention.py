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

from . import preamble
from .masks import TokenLayout, UNetPyramid

logger = logging.getLogger(__name__)


def key_bias(object_tokens: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive key bias ``(B, 1, 1, N)``: 0 on background keys, a large finite negative on object ones.

    This is Eq. 11.

    Half the dtype's range is far below any real logit yet cannot overflow to -inf when added to one.
    """
    negative = torch.finfo(dtype).min / 2
    bias = torch.zeros(object_tokens.shape, dtype=dtype, device=object_tokens.device)
    return bias.masked_fill_(object_tokens, negative)[:, None, None, :]


def query_row_scale(
    object_tokens: torch.Tensor, suppression_scale: float, dtype: torch.dtype
) -> torch.Tensor:
    """Per-row query factor ``(B, 1, N, 1)``: lambda on object rows, 1 on background rows (Eqs. 13, 17)."""
    scale = torch.ones(object_tokens.shape, dtype=dtype, device=object_tokens.device)
    return scale.masked_fill_(object_tokens, suppression_scale)[:, None, :, None]


@dataclass(frozen=True)
class TokenGrid:
    """The object tokens of one UNet level, computed once per mask (outside the hot path)."""

    shape: tuple[int, int]
    #: ``(E, N)``: object tokens, cleared for samples whose grid is entirely object
    objects: torch.Tensor
    #: ``(E,)``: False where a sample's grid is entirely object (that sample is left unmodified)
    usable: torch.Tensor
    #: any object token at all (else the layer is exactly the stock one)
    has_object: bool
    #: some sample's grid is entirely object
    has_full: bool


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
    #: how the backbone lays the latent grid out as tokens (the family says; a UNet's pyramid by default)
    layout: TokenLayout = field(default_factory=UNetPyramid)
    _grids: dict[int, TokenGrid] = field(default_factory=dict, repr=False)
    _tensors: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    _warned_full: bool = field(default=False, repr=False)
    #: set by ``__setattr__`` whenever a value it depends on changes (no default: ``__init__`` never
    #: assigns it, so the value computed from the constructor's arguments stays)
    _suppressing: bool = field(init=False, repr=False, compare=False)

    def set_mask(self, mask: torch.Tensor, latent_size: tuple[int, int]) -> None:
        """Set the object mask ``(E, 1, H, W)`` and the latent size; builds the token masks of every level."""
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise ValueError(f"mask must have shape (E, 1, H, W), got {tuple(mask.shape)}")
        self.mask = mask
        self.latent_size = (int(latent_size[0]), int(latent_size[1]))
        self._grids.clear()
        self._tensors.clear()
        for num_tokens, (shape, objects) in self.layout.object_tokens(mask, self.latent_size).items():
            usable = ~objects.all(dim=1)
            objects = objects & usable[:, None]
            self._grids[num_tokens] = TokenGrid(
                shape=shape,
                objects=objects,
                usable=usable,
                has_object=bool(objects.any()),
                has_full=not bool(usable.all()),
            )

    @property
    def num_erased(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name in ("step_index", "suppression_steps", "suppression_scale"):
            # kept as a plain bool: a compiled UNet then guards on it (2 graphs), not on every step index
            fields = self.__dict__
            active = (
                fields.get("step_index", 0) < fields.get("suppression_steps", 0)
                and fields.get("suppression_scale", 1.0) != 1.0
            )
            super().__setattr__("_suppressing", active)

    @property
    def suppressing(self) -> bool:
        """Whether SS applies at the current step (``step_index < T_SS`` and ``lambda != 1``)."""
        return self._suppressing

    def grid(self, num_tokens: int) -> TokenGrid:
        """The token grid of a layer with ``num_tokens`` tokens (logs one warning per run for full grids)."""
        found = self._grids.get(num_tokens)
        if found is None:
            assert self.latent_size is not None, "set_mask() first"
            self.layout.grid(self.latent_size, num_tokens)  # raises with a clear message
            raise AssertionError("unreachable")
        if found.has_full and not self._warned_full and not torch.compiler.is_compiling():
            self._warned_full = True
            logger.warning(
                "The object mask covers the whole %dx%d token grid of a self-attention layer; that layer "
                "is left unmodified for those samples (a smaller mask or a larger working size avoids this).",
                *found.shape,
            )
        return found

    def grid_masks(
        self, num_tokens: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(object_tokens (E, N) bool, usable (E,) bool)`` for a layer with ``num_tokens`` tokens."""
        found = self.grid(num_tokens)
        return found.objects.to(device), found.usable.to(device)

    def attention_inputs(
        self, num_tokens: int, num_plain: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(key bias (P+E, 1, 1, N), query row scale (P+E, 1, N, 1))`` for the whole batch, cached.

        The plain samples get a zero bias and unit scale: they are computed exactly as without the eraser.
        """
        key = (num_tokens, num_plain, dtype, device, self.suppression_scale)
        cached = self._tensors.get(key)
        if cached is None:
            objects = self.grid(num_tokens).objects.to(device)
            bias = key_bias(objects, dtype)  # (E, 1, 1, N), Eq. 11
            row_scale = query_row_scale(objects, self.suppression_scale, dtype)  # (E, 1, N, 1), Eq. 13
            if num_plain:
                bias = torch.cat([bias.new_zeros((num_plain, *bias.shape[1:])), bias])
                row_scale = torch.cat([row_scale.new_ones((num_plain, *row_scale.shape[1:])), row_scale])
            cached = (bias, row_scale)
            self._tensors[key] = cached
        return cached


class AttentiveEraserAttnProcessor:
    """Self-attention processor applying AAS (+ SS during the first ``T_SS`` steps) to the erased samples.

    Install it only on decoder self-attention layers (see :mod:`attentive_eraser.core.layers`). When the state
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

        call = preamble.begin(attn, hidden_states, temb)
        batch, num_tokens = call.batch, call.num_tokens  # (P + E, N, C)
        num_erased = state.num_erased
        if num_erased > batch:
            raise ValueError(
                f"the eraser state holds {num_erased} masks but the UNet batch has {batch} samples"
            )
        if not state.grid(num_tokens).has_object:
            # no object token at this grid: AAS is the identity; keep the stock result bit for bit
            return self._stock(attn, call.residual, None, None, temb)

        query, key, value = preamble.project_heads(attn, call)  # (P + E, heads, N, d)
        bias, row_scale = state.attention_inputs(num_tokens, batch - num_erased, query.dtype, query.device)
        if state.suppressing:
            # lambda on the erased samples' object rows (Eq. 13), in place: no second copy of the queries
            erased = slice(batch - num_erased, batch)
            query[erased] *= row_scale[erased]

        # Eqs. 11-17 in one call: lambda-scaled object rows, object keys masked, rows combined implicitly
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        return preamble.finish(attn, call, preamble.merge_heads(attended, query.dtype))
