"""The benchmarks: one step (ours, eager, floor), one attention layer, whole calls, large-photo strategies.

Each returns the rows it measured (and prints one progress line per row).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from attentive_eraser import (
    AttentiveEraserDIPPipeline,
    AttentiveEraserSDXLDIPPipeline,
    AttentiveEraserSDXLSIPPipeline,
    AttentiveEraserSIPPipeline,
)
from attentive_eraser.core.attention import AttentiveEraserAttnProcessor, EraserState
from attentive_eraser.core.layers import eraser_attention, select_layers
from attentive_eraser.testing.eager_reference import EagerEraserAttnProcessor, eager_eraser_attention

from .cases import (
    MASK_AREA,
    SUPPRESSION_SCALE,
    SUPPRESSION_STEPS,
    centred_box,
    image_and_mask,
    make_step_case,
)
from .measuring import Measurement, Setup, Variant, measure, time_call


@dataclass
class StepRow:
    model: str
    size: tuple[int, int]
    latent: tuple[int, int]
    layers: int
    max_tokens: int
    repeats: int
    ours: Measurement
    eager: Measurement
    floor: Measurement
    max_difference: float

    @property
    def ours_over_eager(self) -> float:
        return self.ours.median / self.eager.median

    @property
    def ours_over_floor(self) -> float:
        return self.ours.median / self.floor.median


@dataclass
class LayerRow:
    label: str
    size: tuple[int, int]
    tokens: int
    heads: int
    head_dim: int
    batch: int
    dtype_bytes: int
    ours: Measurement
    eager: Measurement
    stock: Measurement

    @property
    def ours_analytic(self) -> tuple[int, int]:
        """(bias + row scale, cached per grid; the lambda-scaled query copy during SS steps), bytes."""
        cached = 2 * self.batch * self.tokens * self.dtype_bytes
        query_copy = self.batch * self.tokens * self.heads * self.head_dim * self.dtype_bytes
        return cached, query_copy

    @property
    def eager_analytic(self) -> tuple[int, int]:
        """(one logits tensor, the peak as written: logits + AAS map + SS logits), bytes."""
        square = self.tokens * self.tokens * self.heads * self.dtype_bytes
        return self.batch * square, (self.batch + self.batch + self.batch // 2) * square


@dataclass
class EndToEndRow:
    model: str
    size: tuple[int, int]
    sip_steps: int
    dip_steps: int
    sip: float
    dip: float
    note: str = ""


@dataclass
class StrategyRow:
    model: str
    photo: tuple[int, int]
    mask_fraction: float
    strategy: str
    working: str
    steps: int
    seconds: float


@dataclass
class Results:
    """The rows of every table, filled in as they are measured, and the headline row among the steps."""

    steps: list[StepRow] = field(default_factory=list)
    layers: list[LayerRow] = field(default_factory=list)
    end_to_end: list[EndToEndRow] = field(default_factory=list)
    strategies: list[StrategyRow] = field(default_factory=list)
    headline: StepRow | None = None


def decoder_self_attention(unet: UNet2DConditionModel, latent: tuple[int, int]) -> tuple[int, int]:
    """(number of decoder self-attention layers, largest token count among them) at ``latent``."""
    names = select_layers(unet)
    levels = len(unet.config.block_out_channels)
    # an up block i works at the grid of down level (levels - 1 - i); count ceil halvings to there
    largest = 0
    for name in names:
        block = int(name.split(".")[1])
        height, width = latent
        for _ in range(levels - 1 - block):
            height, width = -(-height // 2), -(-width // 2)
        largest = max(largest, height * width)
    return len(names), largest


def bench_step(
    model: str,
    unet: UNet2DConditionModel,
    size: tuple[int, int],
    *,
    repeats: int,
    warmup: Sequence[str],
    setup: Setup,
) -> StepRow:
    case = make_step_case(unet, size, setup.device, setup.dtype)
    variants = {
        "ours": Variant(lambda: eraser_attention(unet, case.state), case.sarg_step),
        "eager": Variant(lambda: eager_eraser_attention(unet, case.state), case.sarg_step),
        "floor": Variant(nullcontext, case.floor),
    }
    results = measure(variants, repeats=repeats, warmup=warmup, setup=setup)
    ours, eager = results["ours"].output, results["eager"].output
    difference = float((ours - eager).abs().max()) if ours is not None and eager is not None else float("nan")
    latent = (size[0] // 8, size[1] // 8)
    layers, tokens = decoder_self_attention(unet, latent)
    row = StepRow(
        model,
        size,
        latent,
        layers,
        tokens,
        repeats,
        results["ours"],
        results["eager"],
        results["floor"],
        difference,
    )
    print(
        f"  step  {model:<10} {size[1]}x{size[0]}: ours {row.ours.median:.3f} s, "
        f"eager {row.eager.median:.3f} s, floor {row.floor.median:.3f} s",
        flush=True,
    )
    return row


def bench_layer(
    label: str,
    channels: int,
    heads: int,
    size: tuple[int, int],
    latent_level: int,
    *,
    repeats: int,
    setup: Setup,
) -> LayerRow:
    """One decoder self-attention layer, ``channels`` wide, on ``[plain, erased]`` at ``latent_level``."""
    device, dtype = setup.device, setup.dtype
    generator = torch.Generator().manual_seed(0)
    height, width = size
    latent = (height // 8, width // 8)
    grid = latent
    for _ in range(latent_level):
        grid = (-(-grid[0] // 2), -(-grid[1] // 2))
    tokens = grid[0] * grid[1]
    torch.manual_seed(0)
    attn = Attention(query_dim=channels, heads=heads, dim_head=channels // heads).to(device, dtype).eval()
    state = EraserState(
        suppression_scale=SUPPRESSION_SCALE, suppression_steps=SUPPRESSION_STEPS, enabled=True
    )
    state.set_mask(centred_box(height, width).to(device), latent)
    hidden = torch.randn(1, tokens, channels, generator=generator).to(device, dtype).repeat(2, 1, 1)
    ours, eager, stock = AttentiveEraserAttnProcessor(state), EagerEraserAttnProcessor(state), attn.processor

    def run(processor: Any) -> Callable[[], torch.Tensor]:
        return lambda: processor(attn, hidden)

    variants = {
        "ours": Variant(nullcontext, run(ours)),
        "eager": Variant(nullcontext, run(eager)),
        "stock": Variant(nullcontext, run(stock)),
    }
    results = measure(variants, repeats=repeats, warmup=list(variants), setup=setup)
    element = torch.finfo(dtype).bits // 8
    row = LayerRow(
        label,
        size,
        tokens,
        heads,
        channels // heads,
        2,
        element,
        results["ours"],
        results["eager"],
        results["stock"],
    )
    print(
        f"  layer {label:<10} {width}x{height} N={tokens}: ours {row.ours.median * 1e3:.1f} ms, "
        f"eager {row.eager.median * 1e3:.1f} ms, stock {row.stock.median * 1e3:.1f} ms",
        flush=True,
    )
    return row


def _pipeline(components: dict[str, Any], method: str, setup: Setup) -> Any:
    """The SIP or DIP pipeline of ``components`` (SDXL's when they have its second text encoder) on the
    setup's device, its progress bar off."""
    kind: type[Any]
    if "text_encoder_2" in components:
        kind = AttentiveEraserSDXLSIPPipeline if method == "sip" else AttentiveEraserSDXLDIPPipeline
    else:
        kind = AttentiveEraserSIPPipeline if method == "sip" else AttentiveEraserDIPPipeline
    pipe = kind(**components).to(setup.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bench_end_to_end(
    model: str,
    components: dict[str, Any],
    size: int,
    *,
    num_inference_steps: int,
    sip_strength: float,
    repeats: int,
    setup: Setup,
    note: str = "",
) -> EndToEndRow:
    """Seconds per image of a whole SIP call and a whole DIP call (inversion included), median of repeats."""
    sip, dip = _pipeline(components, "sip", setup), _pipeline(components, "dip", setup)
    image, mask = image_and_mask((size, size), MASK_AREA)
    common = {
        "image": image,
        "mask_image": mask,
        "num_inference_steps": num_inference_steps,
        "resolution": size,
    }

    def run_sip() -> Any:
        return sip(**common, strength=sip_strength, generator=torch.Generator().manual_seed(123))

    def run_dip() -> Any:
        return dip(**common, strength=1.0)

    sip_times: list[float] = []
    dip_times: list[float] = []
    for index in range(repeats):
        order = (run_sip, run_dip) if index % 2 == 0 else (run_dip, run_sip)
        for call in order:
            (sip_times if call is run_sip else dip_times).append(time_call(call, setup))
    sip_steps = min(int(num_inference_steps * sip_strength), num_inference_steps)
    row = EndToEndRow(
        model,
        (size, size),
        sip_steps,
        num_inference_steps,
        statistics.median(sip_times),
        statistics.median(dip_times),
        note,
    )
    print(
        f"  e2e   {model:<10} {size}x{size}: SIP {row.sip:.2f} s ({sip_steps} steps), "
        f"DIP {row.dip:.2f} s ({num_inference_steps} + {num_inference_steps} steps)",
        flush=True,
    )
    return row


def bench_strategies(
    model: str,
    components: dict[str, Any],
    photo: tuple[int, int],
    mask_fraction: float,
    *,
    resolution: int,
    num_inference_steps: int,
    setup: Setup,
) -> list[StrategyRow]:
    """A SIP call on a large photo with a small mask: the whole image resized vs a crop around the mask."""
    sip = _pipeline(components, "sip", setup)
    image, mask = image_and_mask(photo, mask_fraction, seed=1)
    rows = []
    for strategy in ("resize", "crop"):

        def call(strategy: str = strategy) -> None:
            sip(
                image,
                mask,
                num_inference_steps=num_inference_steps,
                strength=1.0,
                resolution=resolution,
                strategy=strategy,
                generator=torch.Generator().manual_seed(123),
            )

        seconds = time_call(call, setup)
        inputs = sip.prepare_eraser_inputs(
            image,
            mask,
            resolution=resolution,
            mask_dilation=sip.preset.mask_dilation,
            num_images_per_prompt=1,
            strategy=strategy,
        )
        width, height = inputs.working_size
        rows.append(
            StrategyRow(
                model, photo, mask_fraction, strategy, f"{width}x{height}", num_inference_steps, seconds
            )
        )
        print(
            f"  crop  {model:<10} {photo[0]}x{photo[1]} {strategy}: {seconds:.2f} s at {width}x{height}",
            flush=True,
        )
    return rows
