"""Readiness diagnostics for Attentive Eraser: how strongly SARG steers, how selective attention is.

Two measurements on a UNet, noisy latents and object masks, without running a removal:

* :func:`sarg_signal` -- the relative SARG signal ``||eps_erased - eps_plain|| / ||eps_plain||`` inside and
  outside the latent mask, per timestep. The removal guidance of Eq. 18 adds ``s`` times this difference;
  when it is ~1 % of the prediction, even ``s = 9`` barely changes the result.
* :func:`attention_selectivity` -- per decoder self-attention layer (the layers AAS edits), the normalised
  row entropy of the stock attention (1 = uniform over all keys) and the attention mass object queries put on
  object keys beside the object's share of the keys. AAS redirects attention; on near-uniform attention it
  has nothing to redirect.

Both run the UNet in inference mode and restore its processors on exit. ``docs/method.md`` shows how to read
the numbers; ``benchmarks/removal_quality.py`` prints them and the demo-model trainer logs them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

# the defining module: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from . import preamble
from .attention import EraserState
from .layers import DECODER_SELF_ATTENTION, eraser_attention, swapped_processors
from .masks import latent_mask, token_masks

__all__ = [
    "AttentionSelectivity",
    "LayerSelectivity",
    "SARGSignal",
    "attention_selectivity",
    "sarg_signal",
]


@dataclass(frozen=True)
class SARGSignal:
    """Relative SARG signal per timestep (each list has one value per entry of ``timesteps``)."""

    timesteps: list[int]
    #: ``||(eps_erased - eps_plain) * m|| / ||eps_plain * m||`` over the batch, ``m`` the latent mask
    inside: list[float]
    #: the same outside the mask (``1 - m``)
    outside: list[float]
    #: share of the difference's energy ``||d||^2`` that lies inside the mask
    share_inside: list[float]

    @property
    def median_inside(self) -> float:
        return float(torch.tensor(self.inside).median())

    def as_dict(self) -> dict[str, object]:
        return {
            "timesteps": self.timesteps,
            "inside": self.inside,
            "outside": self.outside,
            "share_inside": self.share_inside,
            "median_inside": self.median_inside,
        }


@torch.no_grad()
def sarg_signal(
    unet: UNet2DConditionModel,
    latents: torch.Tensor,
    noise: torch.Tensor,
    mask: torch.Tensor,
    timesteps: Sequence[int],
    encoder_hidden_states: torch.Tensor,
    scheduler: object,
    suppression_scale: float = 1.0,
) -> SARGSignal:
    """Noise the clean ``latents`` ``(B, C, h, w)`` with ``noise`` to each timestep, run ``[plain, erased]``.

    ``mask`` is ``(B, 1, H, W)`` (pixels or latents, 1 = object); ``encoder_hidden_states`` ``(B, L, D)``
    (the empty prompt's); ``scheduler`` supplies ``add_noise``. ``suppression_scale`` is the SS factor
    lambda applied to the erased half (1 = AAS alone). Returns one value per timestep, over the whole batch.
    """
    if latents.shape != noise.shape:
        raise ValueError(
            f"noise must have the latents' shape {tuple(latents.shape)}, got {tuple(noise.shape)}"
        )
    if mask.ndim != 4 or mask.shape[0] != latents.shape[0] or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape ({latents.shape[0]}, 1, H, W), got {tuple(mask.shape)}")
    size = (int(latents.shape[-2]), int(latents.shape[-1]))
    state = EraserState(suppression_scale=suppression_scale, suppression_steps=1, step_index=0, enabled=True)
    state.set_mask(mask.float(), size)
    inside_mask = latent_mask(mask.float(), size).to(latents.dtype)  # (B, 1, h, w)
    outside_mask = 1 - inside_mask
    context = torch.cat([encoder_hidden_states, encoder_hidden_states])
    inside, outside, share = [], [], []
    with eraser_attention(unet, state):
        for timestep in timesteps:
            t, noisy = _noised(latents, noise, timestep, scheduler)
            output = unet(torch.cat([noisy, noisy]), torch.cat([t, t]), encoder_hidden_states=context).sample
            plain, erased = output.chunk(2)  # (B, C, h, w) each
            difference = erased - plain
            inside.append(_ratio(difference * inside_mask, plain * inside_mask))
            outside.append(_ratio(difference * outside_mask, plain * outside_mask))
            total = float(difference.pow(2).sum())
            share.append(float((difference * inside_mask).pow(2).sum()) / total if total > 0 else 0.0)
    return SARGSignal([int(t) for t in timesteps], inside, outside, share)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
    bottom = float(denominator.pow(2).sum().sqrt())
    return float(numerator.pow(2).sum().sqrt()) / bottom if bottom > 0 else 0.0


@dataclass(frozen=True)
class LayerSelectivity:
    """How content-selective one self-attention layer is (averages over heads, samples and timesteps)."""

    layer: str
    grid: tuple[int, int]
    #: mean over query rows of ``H(row) / log N`` (1 = uniform attention, 0 = one key per query)
    entropy: float
    #: mean attention mass that object queries put on object keys
    object_to_object: float
    #: mean share of the keys that are object keys (what uniform attention would give)
    object_share: float

    @property
    def selectivity(self) -> float:
        """``object_to_object / object_share``: 1 for attention blind to content, larger when selective."""
        return self.object_to_object / self.object_share if self.object_share > 0 else float("nan")


@dataclass(frozen=True)
class AttentionSelectivity:
    """Per-layer results of :func:`attention_selectivity`, in the UNet's layer order."""

    layers: list[LayerSelectivity]

    def by_grid(self) -> dict[str, dict[str, float]]:
        """Averages of the layers sharing a token grid, keyed ``"16x16"``: finest grid first."""
        grids: dict[tuple[int, int], list[LayerSelectivity]] = {}
        for layer in self.layers:
            grids.setdefault(layer.grid, []).append(layer)
        summary = {}
        for grid in sorted(grids, key=lambda g: -g[0] * g[1]):
            group = grids[grid]
            summary[f"{grid[0]}x{grid[1]}"] = {
                "entropy": sum(layer.entropy for layer in group) / len(group),
                "object_to_object": sum(layer.object_to_object for layer in group) / len(group),
                "object_share": sum(layer.object_share for layer in group) / len(group),
                "layers": float(len(group)),
            }
        return summary


@dataclass
class _Tally:
    grid: tuple[int, int] = (0, 0)
    entropy: float = 0.0
    rows: int = 0
    object_mass: float = 0.0
    object_rows: int = 0
    share: float = 0.0
    samples: int = 0


@dataclass
class _RecorderState:
    #: per token count, ``(B, N)`` object tokens of the current batch
    objects: dict[int, torch.Tensor] = field(default_factory=dict)
    grids: dict[int, tuple[int, int]] = field(default_factory=dict)
    tallies: dict[str, _Tally] = field(default_factory=dict)


class _RecordingProcessor:
    """Stock self-attention computed with an explicit softmax, whose rows are tallied (diagnostics only)."""

    def __init__(self, name: str, state: _RecorderState) -> None:
        self.name = name
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
        if encoder_hidden_states is not None or attention_mask is not None or attn.spatial_norm is not None:
            return self._stock(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        call = preamble.begin(attn, hidden_states, temb)
        query, key, value = preamble.project_heads(attn, call)  # (B, heads, N, d)
        probs = (query.float() @ key.float().transpose(-1, -2) * attn.scale).softmax(
            dim=-1
        )  # (B, heads, N, N)
        self._tally(probs, call.num_tokens)
        attended = probs.to(value.dtype) @ value
        return preamble.finish(attn, call, preamble.merge_heads(attended, value.dtype))

    def _tally(self, probs: torch.Tensor, num_tokens: int) -> None:
        state = self.state
        tally = state.tallies.setdefault(self.name, _Tally(grid=state.grids[num_tokens]))
        entropy = -(probs * probs.clamp_min(1e-30).log()).sum(-1) / math.log(num_tokens)  # (B, heads, N)
        tally.entropy += float(entropy.sum())
        tally.rows += entropy.numel()
        objects = state.objects[num_tokens].to(probs.device)  # (B, N) bool
        mass = (probs * objects[:, None, None, :].to(probs.dtype)).sum(-1)  # (B, heads, N): onto object keys
        rows = objects[:, None, :].expand_as(mass)
        tally.object_mass += float(mass[rows].sum())
        tally.object_rows += int(rows.sum())
        counts = objects.sum(1)
        has_object = counts > 0
        tally.share += float((counts[has_object].float() / num_tokens).sum())
        tally.samples += int(has_object.sum())


def _recording(
    unet: UNet2DConditionModel, state: _RecorderState, pattern: str
) -> AbstractContextManager[list[str]]:
    return swapped_processors(unet, lambda name: _RecordingProcessor(name, state), pattern)


def _noised(
    latents: torch.Tensor, noise: torch.Tensor, timestep: int, scheduler: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(timesteps (B,), noisy latents)``: ``latents`` noised with ``noise`` to ``timestep``."""
    t = torch.full((latents.shape[0],), int(timestep), dtype=torch.long, device=latents.device)
    return t, scheduler.add_noise(latents, noise, t)  # type: ignore[attr-defined]


@torch.no_grad()
def attention_selectivity(
    unet: UNet2DConditionModel,
    latents: torch.Tensor,
    noise: torch.Tensor,
    mask: torch.Tensor,
    timesteps: Sequence[int],
    encoder_hidden_states: torch.Tensor,
    scheduler: object,
    pattern: str = DECODER_SELF_ATTENTION,
) -> AttentionSelectivity:
    """Entropy and object-to-object attention of the layers ``pattern`` selects, on the noised ``latents``.

    Arguments as for :func:`sarg_signal`; the UNet runs its stock attention (no AAS) on each timestep's
    noisy latents and every layer's attention rows are tallied. Samples without object tokens at a grid add
    to the entropy only.
    """
    size = (int(latents.shape[-2]), int(latents.shape[-1]))
    state = _RecorderState()
    for num_tokens, (grid, objects) in token_masks(mask.float(), size).items():
        state.objects[num_tokens] = objects
        state.grids[num_tokens] = grid
    with _recording(unet, state, pattern) as names:
        for timestep in timesteps:
            t, noisy = _noised(latents, noise, timestep, scheduler)
            unet(noisy, t, encoder_hidden_states=encoder_hidden_states)
    layers = []
    for name in names:
        tally = state.tallies.get(name)
        if tally is None:  # pragma: no cover - every selected layer runs in a forward pass
            continue
        layers.append(
            LayerSelectivity(
                layer=_short_name(name),
                grid=tally.grid,
                entropy=tally.entropy / max(tally.rows, 1),
                object_to_object=tally.object_mass / tally.object_rows if tally.object_rows else float("nan"),
                object_share=tally.share / tally.samples if tally.samples else float("nan"),
            )
        )
    return AttentionSelectivity(layers)


def _short_name(processor_name: str) -> str:
    """``up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor`` -> ``up1.att0.tb0``."""
    match = re.fullmatch(
        r"up_blocks\.(\d+)\.attentions\.(\d+)\.transformer_blocks\.(\d+)\.attn1\.processor", processor_name
    )
    if match is None:
        return processor_name.removesuffix(".processor")
    return "up{}.att{}.tb{}".format(*match.groups())
